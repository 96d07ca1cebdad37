// See transposed_conv_1ch.hpp. One image at a time: for each input position (i, j) the
// vector col[0..15] = sum_c h[i, j, c] * w[c, :] (C vector multiply-adds, vectorised over
// the 16 taps), then col[ky * 4 + kx] is added to the padded output grid at
// (2i + ky, 2j + kx), which covers output rows and columns -1 .. 2H (the border is cropped).
// The grid of one image (66 x 66 floats for a 64 x 64 output) stays in L1.
#include "layers/transposed_conv_1ch.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#include "common/parallel.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CVAE_LAYER_X86_VARIANTS 1
#else
#define CVAE_LAYER_X86_VARIANTS 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CVAE_LAYER_INLINE inline __attribute__((always_inline))
#else
#define CVAE_LAYER_INLINE inline
#endif

namespace cvae {
namespace {

CVAE_LAYER_INLINE float widen(float v) { return v; }
CVAE_LAYER_INLINE float widen(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <class T>
CVAE_LAYER_INLINE void image(const T* h, int64_t H, int64_t W, int64_t C, const float* w, float bias, float* out,
                             float* grid) {
  const int64_t GW = 2 * W + 2;
  std::fill(grid, grid + (2 * H + 2) * GW, 0.0f);
  for (int64_t i = 0; i < H; ++i) {
    for (int64_t j = 0; j < W; ++j) {
      const T* hv = h + (i * W + j) * C;
      float col[16] = {};
      for (int64_t c = 0; c < C; ++c) {
        const float v = widen(hv[c]);
        const float* wc = w + c * 16;
        for (int k = 0; k < 16; ++k) col[k] += v * wc[k];
      }
      float* g = grid + (2 * i) * GW + 2 * j;
      for (int ky = 0; ky < 4; ++ky)
        for (int kx = 0; kx < 4; ++kx) g[ky * GW + kx] += col[ky * 4 + kx];
    }
  }
  for (int64_t y = 0; y < 2 * H; ++y) {
    const float* g = grid + (y + 1) * GW + 1;
    float* o = out + y * 2 * W;
    for (int64_t x = 0; x < 2 * W; ++x) o[x] = g[x] + bias;
  }
}

template <class T>
using ImageFn = void (*)(const T*, int64_t, int64_t, int64_t, const float*, float, float*, float*);

template <class T>
void image_generic(const T* h, int64_t H, int64_t W, int64_t C, const float* w, float bias, float* out, float* grid) {
  image(h, H, W, C, w, bias, out, grid);
}

#if CVAE_LAYER_X86_VARIANTS
// col holds the 4 x 4 taps of one input position, row ky in lanes 4 ky .. 4 ky + 3: each row
// is added to grid row ky at once (the grid row stride is gw).
__attribute__((target("avx512f,avx2,fma"))) inline void scatter(__m512 col, float* g, int64_t gw) {
  _mm_storeu_ps(g, _mm_add_ps(_mm_loadu_ps(g), _mm512_extractf32x4_ps(col, 0)));
  _mm_storeu_ps(g + gw, _mm_add_ps(_mm_loadu_ps(g + gw), _mm512_extractf32x4_ps(col, 1)));
  _mm_storeu_ps(g + 2 * gw, _mm_add_ps(_mm_loadu_ps(g + 2 * gw), _mm512_extractf32x4_ps(col, 2)));
  _mm_storeu_ps(g + 3 * gw, _mm_add_ps(_mm_loadu_ps(g + 3 * gw), _mm512_extractf32x4_ps(col, 3)));
}

// Four input positions at a time: four independent accumulator chains hide the
// multiply-add latency (one chain of C dependent FMAs per position would stall).
template <class T>
__attribute__((target("avx512f,avx2,fma"))) void image_avx512(const T* h, int64_t H, int64_t W, int64_t C,
                                                             const float* w, float bias, float* out, float* grid) {
  const int64_t GW = 2 * W + 2;
  std::fill(grid, grid + (2 * H + 2) * GW, 0.0f);
  for (int64_t i = 0; i < H; ++i) {
    float* grow = grid + (2 * i) * GW;
    int64_t j = 0;
    for (; j + 4 <= W; j += 4) {
      const T* hv = h + (i * W + j) * C;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t c = 0; c < C; ++c) {
        const __m512 wc = _mm512_loadu_ps(w + c * 16);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(widen(hv[c])), wc, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(widen(hv[C + c])), wc, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(widen(hv[2 * C + c])), wc, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(widen(hv[3 * C + c])), wc, a3);
      }
      // in order of j, so each grid cell gets its contributions in the generic order
      scatter(a0, grow + 2 * j, GW);
      scatter(a1, grow + 2 * j + 2, GW);
      scatter(a2, grow + 2 * j + 4, GW);
      scatter(a3, grow + 2 * j + 6, GW);
    }
    for (; j < W; ++j) {
      const T* hv = h + (i * W + j) * C;
      __m512 a0 = _mm512_setzero_ps();
      for (int64_t c = 0; c < C; ++c)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(widen(hv[c])), _mm512_loadu_ps(w + c * 16), a0);
      scatter(a0, grow + 2 * j, GW);
    }
  }
  for (int64_t y = 0; y < 2 * H; ++y) {
    const float* g = grid + (y + 1) * GW + 1;
    float* o = out + y * 2 * W;
    for (int64_t x = 0; x < 2 * W; ++x) o[x] = g[x] + bias;
  }
}
#endif

// AVX-512 where the CPU has it (fused multiply-adds), the portable loop elsewhere (separate
// multiply and add): the two differ in the last bits, never between runs on one machine.
template <class T>
ImageFn<T> best_image_fn() {
#if CVAE_LAYER_X86_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return image_avx512<T>;
#endif
  return image_generic<T>;
}

template <class T>
void run(const T* h, int64_t N, int64_t H, int64_t W, int64_t C, const float* w, float bias, float* out,
         int num_threads) {
  if (N <= 0 || H <= 0 || W <= 0) return;
  static const ImageFn<T> fn = best_image_fn<T>();
  const int64_t grid_size = (2 * H + 2) * (2 * W + 2);
  // ~20 us of work per 32 x 32 image: blocks of images keep thread start-up negligible
  const int64_t per_block = 16;
  const int64_t blocks = (N + per_block - 1) / per_block;
  parallel_for(blocks, num_threads, [&](int64_t blk) {
    std::vector<float> grid(static_cast<size_t>(grid_size));
    const int64_t n1 = std::min(N, (blk + 1) * per_block);
    for (int64_t n = blk * per_block; n < n1; ++n)
      fn(h + n * H * W * C, H, W, C, w, bias, out + n * 4 * H * W, grid.data());
  });
}

}  // namespace

void transposed_conv_1ch(const float* h, int64_t N, int64_t H, int64_t W, int64_t C, const float* w, float bias,
                         float* out, int num_threads) {
  run(h, N, H, W, C, w, bias, out, num_threads);
}

void transposed_conv_1ch_bf16(const uint16_t* h, int64_t N, int64_t H, int64_t W, int64_t C, const float* w,
                              float bias, float* out, int num_threads) {
  run(h, N, H, W, C, w, bias, out, num_threads);
}

}  // namespace cvae
