/* Included first by the AVX2 kernel files, on x86-64 only. meson compiles
 * them with -mavx2 -mfma; a plain `cc` of all the sources gets the same
 * from these pragmas of GCC and clang. A file that includes this ends
 * with
 *   #if defined(ND_AVX2_TARGET_PUSHED)
 *   #pragma clang attribute pop
 *   #endif */
#ifndef NANODIFF_TENSOR_AVX2_TARGET_H
#define NANODIFF_TENSOR_AVX2_TARGET_H

#if !defined(__AVX2__) || !defined(__FMA__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define ND_AVX2_TARGET_PUSHED
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif
#endif
#include <immintrin.h>

#endif
