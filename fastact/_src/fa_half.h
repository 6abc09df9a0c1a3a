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

#include <stddef.h>
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
    int32_t sa = (int32_t)a;
    /* normal results: rebias the exponent (-112 << 23), round the 13 dropped bits to
     * nearest-even; a carry out of the mantissa steps the exponent, up to inf */
    uint32_t normal = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;
    /* subnormal results (|x| < 2^-14): adding 0.5 rounds x to a multiple of 2^-24 (the
     * float16 subnormal step) in the float unit, the low bits are then the result */
    uint32_t sub = fa_half_f2u(fa_half_u2f(a) + 0.5f) - 0x3F000000u;
    /* |x| >= 2^16: inf, or NaN (quiet, the top payload bits kept) */
    uint32_t nan = (uint32_t)0 - (uint32_t)(sa > (int32_t)0x7F800000);
    uint32_t big = 0x7C00u | (nan & (0x200u | ((a >> 13) & 0x3FFu)));
    /* the three cases chosen with masks, not ?: (GCC threads a select that follows
     * another, relu's, into branches, and then leaves the loop scalar) */
    uint32_t is_big = (uint32_t)0 - (uint32_t)(sa >= (int32_t)0x47800000);
    uint32_t is_sub = (uint32_t)0 - (uint32_t)(sa < (int32_t)0x38800000);
    uint32_t r = (big & is_big) | (~is_big & ((sub & is_sub) | (normal & ~is_sub)));
    return (fa_half_t)(r | sign);
}

/* ---- float16 arrays of n elements to float and back: F16C's vcvtph2ps / vcvtps2ph
 * (8 or 16 at a time) where the level has them, else the functions above; the same bits
 * either way. The elementwise float16 loops of the F16C levels (fastact/_src/
 * _kernels.pyx.in) run in chunks of FA_HVEC elements (two vectors) with these, whose
 * float buffers GCC keeps in registers: 2 instructions per 8 or 16 elements instead of
 * some 25 vector operations per vector for the integer conversions. bfloat16's loops run
 * in blocks of FA_HBLK elements through float buffers, as fast or faster for them (and
 * float16's where the compiler is not GCC: docs/half.md). ---- */
#define FA_HBLK 256
/* GCC vectorizes the float32 loop of a chunk (or unrolls it and vectorizes it by SLP);
 * clang 14 left it scalar (it keeps the chunk buffers as vector values indexed by the
 * loop: 5-7x slower than its blocks), so other compilers take the blocks */
#if defined(__GNUC__) && !defined(__clang__)
#  define FA_HALF_CHUNKS 1
#else
#  define FA_HALF_CHUNKS 0
#endif
#if defined(__AVX512F__)
#  define FA_HVEC 32
#else
#  define FA_HVEC 16
#endif
#if defined(__F16C__) && (defined(__x86_64__) || defined(_M_X64))
#  include <immintrin.h>
#  define FA_F16C 1
#else
#  define FA_F16C 0
#endif

/* GCC 12 reports (-Waggressive-loop-optimizations) that the scalar tails of the four
 * array conversions below would overflow i after 2^63 iterations where they are inlined
 * into the blocks of the constant length FA_HBLK, whose tail is dead: a false positive,
 * some 750 lines of every build's log, silenced for these functions only */
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#endif
FA_INLINE void fa_widen_f16_n(const fa_half_t *h, float *f, ptrdiff_t n) {
    ptrdiff_t i = 0;
#if FA_F16C
#  if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
#  endif
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    for (; i < n; i++) f[i] = fa_widen_f16(h[i]);
}

FA_INLINE void fa_narrow_f16_n(const float *f, fa_half_t *h, ptrdiff_t n) {
    ptrdiff_t i = 0;
#if FA_F16C
#  if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(h + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
#  endif
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) h[i] = fa_narrow_f16(f[i]);
}

/* ---- bfloat16 arrays of n elements to float and back, for the same blocks: AVX2 /
 * AVX-512 integer shifts (zero-extend and shift up; add 0x7FFF plus the kept lowest bit,
 * shift down, pack) with NaN quieted by a compare, 8 or 16 at a time; the scalar
 * functions above for the tails and the other levels. The same bits either way. ---- */
#if defined(__AVX2__) && (defined(__x86_64__) || defined(_M_X64))
#  include <immintrin.h>
#  define FA_BF16_SIMD 1
#else
#  define FA_BF16_SIMD 0
#endif

FA_INLINE void fa_widen_bf16_n(const fa_half_t *h, float *f, ptrdiff_t n) {
    ptrdiff_t i = 0;
#if FA_BF16_SIMD
#  if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i)));
        _mm512_storeu_ps(f + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
#  endif
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(f + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++) f[i] = fa_widen_bf16(h[i]);
}

FA_INLINE void fa_narrow_bf16_n(const float *f, fa_half_t *h, ptrdiff_t n) {
    ptrdiff_t i = 0;
#if FA_BF16_SIMD
#  if defined(__AVX512F__)
    /* 32 at a time: the rounding bias (0x7FFF, 0x8000 where the kept lowest bit is set)
     * added where x is a number, the quiet bit set where it is NaN, and the top halves
     * of two vectors gathered by one word permute */
    const __m512i odd16 = _mm512_set1_epi32(0x10000), quiet16 = _mm512_set1_epi32(0x400000);
    const __m512i even_bias = _mm512_set1_epi32(0x7FFF), odd_bias = _mm512_set1_epi32(0x8000);
    const __m512i tops = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39,
                                          37, 35, 33, 31, 29, 27, 25, 23, 21, 19, 17, 15, 13,
                                          11, 9, 7, 5, 3, 1);
    for (; i + 32 <= n; i += 32) {
        __m512i r[2];
        for (int k = 0; k < 2; k++) {
            __m512 x = _mm512_loadu_ps(f + i + 16 * k);
            __m512i u = _mm512_castps_si512(x);
            __m512i bias = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(u, odd16),
                                                   even_bias, odd_bias);
            r[k] = _mm512_mask_add_epi32(_mm512_or_si512(u, quiet16),
                                         _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q), u, bias);
        }
        _mm512_storeu_si512((void *)(h + i), _mm512_permutex2var_epi16(r[0], tops, r[1]));
    }
#  endif
    const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(f + i);
        __m256i u = _mm256_castps_si256(x), top = _mm256_srli_epi32(u, 16);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(
            _mm256_add_epi32(u, bias), _mm256_and_si256(top, one)), 16);
        __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(top, quiet), nan);
        _mm_storeu_si128((__m128i *)(h + i), _mm_packus_epi32(_mm256_castsi256_si128(r),
                                                                _mm256_extracti128_si256(r, 1)));
    }
#endif
    for (; i < n; i++) h[i] = fa_narrow_bf16(f[i]);
}
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic pop
#endif

/* ---- the blocked 16-bit loops prefetch the block FA_HPF blocks ahead of the one they
 * compute (elements i to min(i + FA_HBLK, n) of each stream given; NULL: none), so that
 * memory is read while the float32 math runs: a block's loops touch their inputs only
 * at its start, which leaves the hardware prefetchers idle during the math ---- */
#define FA_HPF 4
FA_INLINE void fa_prefetch_blk(const fa_half_t *in1, const fa_half_t *in2, fa_half_t *out1,
                               fa_half_t *out2, ptrdiff_t i, ptrdiff_t n) {
#if defined(__GNUC__) || defined(__clang__)
    ptrdiff_t end = i + FA_HBLK < n ? i + FA_HBLK : n;
    for (; i < end; i += 64 / sizeof(fa_half_t)) {
        __builtin_prefetch(in1 + i, 0);
        if (in2) __builtin_prefetch(in2 + i, 0);
        __builtin_prefetch(out1 + i, 1);
        if (out2) __builtin_prefetch(out2 + i, 1);
    }
#else
    (void)in1; (void)in2; (void)out1; (void)out2; (void)i; (void)n;
#endif
}

#endif
