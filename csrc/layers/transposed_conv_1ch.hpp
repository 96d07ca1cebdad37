// The decoders' last layer on the CPU (plain C++, no Python): a 4x4 transposed convolution
// with stride 2, padding 1 and ONE output channel,
//
//   out[n, y, x] = bias + sum_{i, j, c} h[n, i, j, c] * w[c, ky, kx],
//                  y = 2i - 1 + ky,  x = 2j - 1 + kx,  ky, kx in 0..3,
//
// i.e. torch's conv_transpose2d(h, w, bias, stride=2, padding=1) with h in channels-last
// layout. oneDNN runs this shape several times slower than its other layers (one output
// channel leaves its vector units idle); here each input position's 16 contributions are
// one 16-wide vector of C multiply-adds, scattered into a per-image output buffer that
// stays in L1.
#pragma once
#include <cstdint>

namespace cvae {

// h:   N x H x W x C, contiguous (channels last), float32 or bfloat16 bits (uint16);
// w:   C x 16 float32 (w[c * 16 + ky * 4 + kx]);
// out: N x 2H x 2W float32, contiguous.
// Sums are float32 in a fixed order (input rows, then columns, then channels), so the
// result does not depend on num_threads (0 = all cores; images are split over threads).
void transposed_conv_1ch(const float* h, int64_t N, int64_t H, int64_t W, int64_t C, const float* w, float bias,
                         float* out, int num_threads);
void transposed_conv_1ch_bf16(const uint16_t* h, int64_t N, int64_t H, int64_t W, int64_t C, const float* w,
                              float bias, float* out, int num_threads);

}  // namespace cvae
