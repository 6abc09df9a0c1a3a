/* fa_half.h: the 16-bit storage types, float16 (IEEE binary16) and bfloat16, widened to
 * float and rounded back to nearest-even, as branch-free integer and float operations.
 *
 * The kernels read 16-bit values, widen them in registers, compute with the float32
 * math and narrow the result once (fa_activations.h's _f16 and _bf16 entry points).
 * Both directions are exact functions of their input (widening is exact, narrowing
 * rounds to nearest, ties to even), so every SIMD level, compiler and CPU gives the same
 * bits: these are the semantics of F16C's vcvtph2ps / vcvtps2ph (rounding to nearest)
 * and of ml_dtypes' and PyTorch's bfloat16 conversions, written as integer shifts and
 * selects, which GCC and clang vectorize at every level (GCC 12 leaves _Float16
 * conversions scalar, one at a time, even with F16C). NaN stays NaN (quiet, sign and the
 * top payload bits kept, as F16C does), infinities and signed zeros survive, subnormals
 * are kept and rounded, never flushed.
 */
#ifndef FA_HALF_H
#define FA_HALF_H

#include <stdint.h>

typedef uint16_t fa_half_t;    /* the bits of a float16 or bfloat16 */

typedef union { float f; uint32_t u; } fa_half_bits_t;
FA_INLINE uint32_t fa_half_f2u(float x) { fa_half_bits_t b; b.f = x; return b.u; }
FA_INLINE float fa_half_u2f(uint32_t u) { fa_half_bits_t b; b.u = u; return b.f; }

/* ---- bfloat16: the top half of a float ---- */
FA_INLINE float fa_widen_bf16(fa_half_t h) { return fa_half_u2f((uint32_t)h << 16); }

FA_INLINE fa_half_t fa_narrow_bf16(float x) {
    uint32_t u = fa_half_f2u(x);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;   /* overflow gives inf */
    uint32_t quiet = (u >> 16) | 0x40u;
    /* signed compare of the magnitude (SSE2 has no unsigned 32-bit compare) */
    int nan = (int32_t)(u & 0x7FFFFFFFu) > (int32_t)0x7F800000;
    return (fa_half_t)(nan ? quiet : rounded);
}

/* ---- float16: 5 exponent bits, 10 mantissa bits ---- */
FA_INLINE float fa_widen_f16(fa_half_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t em = (uint32_t)h & 0x7FFFu;
    /* the bits shifted into float position are the value times 2^-112 (also for the
     * subnormals, which become float subnormals): one exact multiplication rescales */
    uint32_t finite = fa_half_f2u(fa_half_u2f(em << 13) * 5.192296858534828e33f);  /* 2^112 */
    uint32_t special = (em << 13) | 0x7F800000u;                    /* inf, NaN (payload) */
    return fa_half_u2f((em >= 0x7C00u ? special : finite) | sign);
}

FA_INLINE fa_half_t fa_narrow_f16(float x) {
    uint32_t u = fa_half_f2u(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7FFFFFFFu;
    /* normal results: rebias the exponent (-112 << 23), round the 13 dropped bits to
     * nearest-even; a carry out of the mantissa steps the exponent, up to inf */
    uint32_t normal = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
    /* subnormal results (|x| < 2^-14): adding 0.5 rounds x to a multiple of 2^-24 (the
     * float16 subnormal step) in the float unit, the low bits are then the result */
    uint32_t sub = fa_half_f2u(fa_half_u2f(a) + 0.5f) - 0x3F000000u;
    uint32_t nan = 0x7E00u | ((a >> 13) & 0x3FFu);
    int32_t sa = (int32_t)a;
    uint32_t big = sa > (int32_t)0x7F800000 ? nan : 0x7C00u;      /* NaN, or inf */
    uint32_t r = sa >= (int32_t)0x47800000 ? big                    /* |x| >= 2^16 */
               : (sa < (int32_t)0x38800000 ? sub : normal);        /* |x| < 2^-14 */
    return (fa_half_t)(r | sign);
}

#endif
