// CVAE_HD marks functions that are compiled for both the host and the GPU: __host__ __device__
// under nvcc, nothing for the plain C++ compiler. Code written with it is tested on the CPU.
#pragma once

#if defined(__CUDACC__)
#define CVAE_HD __host__ __device__
#define CVAE_HD_INLINE __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define CVAE_HD
#define CVAE_HD_INLINE inline __attribute__((always_inline))
#else
#define CVAE_HD
#define CVAE_HD_INLINE inline
#endif
