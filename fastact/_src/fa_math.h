/* fa_math.h: branch-free scalar math for fastact's kernels.
 *
 * Every function here is a short sequence of IEEE operations and selects (no libm
 * calls, no branches per element), so that GCC and Clang vectorize the Cython loops
 * that call them, at whatever instruction set the including file is compiled for.
 * The algorithms are written once in fa_math_impl.h and instantiated for float
 * (suffix _f32) and double (_f64). Build with -fno-math-errno -fno-trapping-math and
 * -ffp-contract=off: the code relies on IEEE rounding of each operation and uses FMA
 * only where it says so (FA_FMA), so that vector and scalar code give the same bits.
 */
#ifndef FA_MATH_H
#define FA_MATH_H

#include <math.h>     /* sqrt, sqrtf (MSVC; GCC and clang use their builtins) */
#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#  define FA_INLINE static __forceinline
#else
#  define FA_INLINE static inline __attribute__((always_inline))
#endif

#if (defined(__FMA__) || defined(__ARM_FEATURE_FMA)) && (defined(__GNUC__) || defined(__clang__))
#  define FA_HAVE_FMA 1
#  define FA_FMA(a, b, c) _Generic((a), float: __builtin_fmaf, default: __builtin_fma)((a), (b), (c))
#else
#  define FA_HAVE_FMA 0
#  define FA_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* FA_KNOWN(c): c, where the compiler can evaluate it at compile time (a parameter the
 * loop passes as a constant), else 0: lets a kernel have a cheaper path for a common
 * parameter value without testing it per element in the general loop. */
#if defined(__GNUC__) || defined(__clang__)
#  define FA_KNOWN(c) (__builtin_constant_p(c) && (c))
#else
#  define FA_KNOWN(c) 0
#endif

/* FA_HAVE_CMP64: a vector compare of signed 64-bit integers (SSE4.2, NEON), which
 * S(limit_num) needs to take a double's minimum on its bits; SSE2 has none */
#if defined(__SSE4_2__) || defined(__aarch64__) || defined(__ARM_NEON)
#  define FA_HAVE_CMP64 1
#else
#  define FA_HAVE_CMP64 0
#endif

#include "fa_coeffs.h"

/* Per-type constants. exp's argument is clamped below at EXP_MIN, where 2^k is exactly
 * zero (k = -bias), and EXP_MIN_TAIL does the same for e^x 2^FA_TAIL; EXP_MAX is the
 * largest argument it is defined for (2^k still finite);
 * LN2_HI has few bits so that k*LN2_HI is exact; SPLIT is Dekker's splitter
 * 2^ceil(p/2) + 1. */
#define FA_F32_MANT 23
#define FA_F32_BIAS 127u
#define FA_F32_SIGN 0x80000000u
#define FA_F32_MAGIC 12582912.0f              /* 1.5 * 2^23 */
#define FA_F32_MAGIC_BITS 0x4B400000u
#define FA_F32_LOG2E 1.44269502f
#define FA_F32_LN2_HI 0.693359375f
#define FA_F32_LN2_LO -2.12194440e-4f
#define FA_F32_EXP_MIN -88.0f                 /* k = -127: 2^k = 0 */
#define FA_F32_EXP_MIN_TAIL -132.5f           /* k + 64 = -127: 2^(k + 64) = 0 */
#define FA_F32_EXP_MAX 88.0f                  /* k <= 127 */
#define FA_F32_EXPM1_MIN -25.0f
#define FA_F32_EXP_FULL_LO -176.0f            /* k = -254: 2^k1 = 0 */
#define FA_F32_EXP_FULL_HI 177.0f             /* k = 255: 2^k2 = inf */
#define FA_F32_EXPM1_BIG 20.0f                /* e^x - 1 rounds as e^x does above */
#define FA_F32_TINY_Q 9.31322575e-10f         /* 2^-30: expm1(q) = q to 2^-31 */
#define FA_F32_SPLIT 4097.0f
#define FA_F32_SPLIT_MAX 4.15383749e34f        /* 2^115: SPLIT * x stays finite */
#define FA_F32_TAIL_INV 5.42101086e-20f       /* 2^-64 */
#define FA_F32_TAIL 1.84467441e19f            /* 2^64 */
#define FA_F32_INF_BITS 0x7F800000u

#define FA_F64_MANT 52
#define FA_F64_BIAS 1023u
#define FA_F64_SIGN 0x8000000000000000ull
#define FA_F64_MAGIC 6755399441055744.0       /* 1.5 * 2^52 */
#define FA_F64_MAGIC_BITS 0x4338000000000000ull
#define FA_F64_LOG2E 1.4426950408889634
#define FA_F64_LN2_HI 6.93147180369123816490e-01
#define FA_F64_LN2_LO 1.90821492927058770002e-10
#define FA_F64_EXP_MIN -709.0                 /* k = -1023: 2^k = 0 */
#define FA_F64_EXP_MIN_TAIL -753.5            /* k + 64 = -1023: 2^(k + 64) = 0 */
#define FA_F64_EXP_MAX 709.0                 /* k <= 1023 */
#define FA_F64_EXPM1_MIN -40.0
#define FA_F64_EXP_FULL_LO -1418.5            /* k = -2046: 2^k1 = 0 */
#define FA_F64_EXP_FULL_HI 1419.5             /* k = 2048: 2^k1 = inf */
#define FA_F64_EXPM1_BIG 40.0
#define FA_F64_TINY_Q 8.6736173798840355e-19  /* 2^-60 */
#define FA_F64_SPLIT 134217729.0
#define FA_F64_SPLIT_MAX 6.6969287949141707e299  /* 2^996 */
#define FA_F64_TAIL_INV 5.421010862427522e-20 /* 2^-64 */
#define FA_F64_TAIL 18446744073709551616.0    /* 2^64 */
#define FA_F64_INF_BITS 0x7FF0000000000000ull

/* Results whose exponential factor e^x may be subnormal while the result is not
 * (x e^x, x^3 e^-x^2, ...) are computed on e^x * 2^FA_TAIL and scaled back at the end. */
#define FA_TAIL 64u

#define T float
#define U uint32_t
#define I int32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#include "fa_math_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C

#define T double
#define U uint64_t
#define I int64_t
#define S(name) fa_##name##_f64
#define C(name) FA_F64_##name
#include "fa_math_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C

#endif
