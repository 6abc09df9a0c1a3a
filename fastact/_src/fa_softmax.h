/* fa_softmax.h: the softmax family's kernels (fa_softmax_api.h says what they compute
 * and in which order), written once in fa_softmax_impl.h for float and double over
 * fa_math.h's exp; float16/bfloat16 data runs float's passes over widened pieces (below).
 * Each _kernels_<level> module exports FA_SMX_OPS. */
#ifndef FA_SOFTMAX_H
#define FA_SOFTMAX_H

#include <math.h>
#include <stdlib.h>
#include "fa_activations.h"
#include "fa_softmax_api.h"

#if defined(_MSC_VER)
#  define FA_SR __restrict
#else
#  define FA_SR __restrict__
#endif

/* count whole rows of n elements of sz bytes with one dtype's passes, in groups of
 * FA_SMX_GROUP: each row's max and sums (over its blocks, in order; e kept in o1 where
 * the sums pass keeps it), the group's constants together, then each row's write; a
 * row whose max is NaN or infinite is flagged and not written. Inlined with constant
 * passes: their calls are direct. (Inlining the passes too, into one function per
 * (lg, op), left GCC's loops scalar: 6x slower.) */
FA_INLINE void fa_smx_rows_with(
    double (*max)(const char *, ptrdiff_t, double),
    void (*sums)(int, int, double, const char *, const char *, char *, ptrdiff_t,
                 fa_smx_stats *),
    void (*group_consts)(int, int, ptrdiff_t, double (*)[FA_SMX_GROUP],
                         double (*)[FA_SMX_GROUP]),
    void (*write)(int, int, double, const char *, const char *, char *, char *, ptrdiff_t,
                  const fa_smx_consts *),
    ptrdiff_t sz, int lg, int op, double sign, const char *x, const char *g, char *o1,
    char *o2, ptrdiff_t n, ptrdiff_t count, unsigned char *flags) {
    double st[6][FA_SMX_GROUP], k[5][FA_SMX_GROUP];
    fa_smx_stats s, bs;
    fa_smx_consts c;
    ptrdiff_t k0, i, b, r, off;
    for (k0 = 0; k0 < count; k0 += FA_SMX_GROUP) {
        r = count - k0 < FA_SMX_GROUP ? count - k0 : FA_SMX_GROUP;
        for (i = 0; i < r; i++) {
            s.m = s.hi = s.lo = s.cnt = s.hi2 = s.lo2 = 0;
            off = (k0 + i) * n * sz;
            flags[k0 + i] = 0;
            if (op != FA_SMX_BWDY) {
                s.m = max(x + off, n, sign);
                flags[k0 + i] = !(fabs(s.m) < HUGE_VAL);
                s.m = flags[k0 + i] ? 0 : s.m;
            }
            for (b = 0; b < n && !flags[k0 + i]; b += FA_SMX_BLOCK) {
                bs.m = s.m;
                sums(lg, op, sign, x + off + b * sz, g ? g + off + b * sz : g,
                     o1 + off + b * sz, n - b < FA_SMX_BLOCK ? n - b : FA_SMX_BLOCK, &bs);
                fa_smx_add(&s, &bs);
            }
            st[0][i] = s.m; st[1][i] = s.hi; st[2][i] = s.lo; st[3][i] = s.cnt;
            st[4][i] = s.hi2; st[5][i] = s.lo2;
        }
        group_consts(lg, op, r, st, k);
        for (i = 0; i < r; i++) {
            if (flags[k0 + i]) continue;
            off = (k0 + i) * n * sz;
            c.m = k[0][i]; c.k1 = k[1][i]; c.k2 = k[2][i]; c.k3 = k[3][i]; c.k4 = k[4][i];
            write(lg, op, sign, x + off, g ? g + off : g, o1 + off, o2 ? o2 + off : o2, n, &c);
        }
    }
}

/* SM names fa_softmax_impl.h's functions, S those of T's math: by type */
#define SM(name) S(name)

#define T float
#define U uint32_t
#define I int32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define FA_SMX_F32 1
#define FA_SMX_H16 0
#include "fa_softmax_impl.h"
#ifndef FA_SMX_CHECK
/* float's passes for 16-bit rows (fa_smx_*_h32, FA_SMX_H16 in fa_softmax_impl.h; the
 * 16-bit code below): float32's types and math under their own names */
#undef SM
#undef FA_SMX_H16
#define SM(name) fa_##name##_h32
#define FA_SMX_H16 1
#include "fa_softmax_impl.h"
#undef SM
#define SM(name) S(name)
#endif
#undef T
#undef U
#undef I
#undef S
#undef C
#undef FA_SMX_F32
#undef FA_SMX_H16

#define T double
#define U uint64_t
#define I int64_t
#define S(name) fa_##name##_f64
#define C(name) FA_F64_##name
#define FA_SMX_F32 0
#define FA_SMX_H16 0
#include "fa_softmax_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C
#undef FA_SMX_F32
#undef FA_SMX_H16
#undef SM

/* ---- float16 and bfloat16 rows: float's passes over float buffers ----
 * Rows of up to FA_SMX_HSHORT elements (FA_SMX_HODD where a partial vector ends them;
 * but for the backward from y) are widened and
 * transposed into the columns of a tile (fa_smx_rows16_tiled). Rows of up to
 * FA_SMX_HROW elements are widened into float buffers on the stack (F16C's
 * or the shifts' vector conversions), as many whole rows at once as the buffers hold,
 * computed by the float passes for 16-bit rows (fa_smx_*_h32: float32's with v - m
 * rounded to float and e summed in float lanes 16 rows at a time, FA_SMX_H16 in
 * fa_softmax_impl.h), which keep e between their passes, and narrowed; rows of up to
 * FA_SMX_HLONG elements whose write reads e (fa_smx_keeps_e) likewise, one at a time in
 * buffers from the heap. Other rows' passes (fa_smx_rows_with's, and those of the blocks
 * of a row split over threads) widen pieces of FA_SMX_HROW elements for each pass: the
 * max of the pieces' maxima; a block's sums, the pieces' sums added in order (fa_smx_add,
 * as the h32 sums add a whole row's pieces: the same bits either way); the write, each
 * piece's e computed again (fa_smx_e_h32) where the write reads it.
 * A tile of columns is widened whole in sub-tiles or a few rows at a time in each of
 * its passes, and computed by the h32 tile (its e summed in float lanes 16 rows at a
 * time counted from the columns' first row: the same bits either way). Each value is
 * rounded once to 16 bits. (They replaced
 * element-wise 16-bit instances of fa_softmax_impl.h: 0.33-0.73 of their time.
 * tools/check_vectorization.py checks float32's and float64's loops, and defines
 * FA_SMX_CHECK: its copies of the passes are renamed; the h32 instance is left out.) */
#ifndef FA_SMX_CHECK
#if FA_SMX_TILE > FA_SMX_HROW
#  error "a tile's row must fit the 16-bit buffers (fa_smx_cols16)"
#endif
#if defined(__clang__)
#  define FA_SMX_NOINLINE __attribute__((noinline))
#elif defined(__GNUC__)
#  define FA_SMX_NOINLINE __attribute__((noipa))
#elif defined(_MSC_VER)
#  define FA_SMX_NOINLINE __declspec(noinline)
#else
#  define FA_SMX_NOINLINE
#endif
#define FA_SMX_WIDEN(bf, h, f, n) do { if (bf) fa_widen_bf16_n((const fa_half_t *)(h), f, n); \
                                       else fa_widen_f16_n((const fa_half_t *)(h), f, n); } while (0)
#define FA_SMX_NARROW(bf, f, h, n) do { if (bf) fa_narrow_bf16_n(f, (fa_half_t *)(h), n);     \
                                        else fa_narrow_f16_n(f, (fa_half_t *)(h), n); } while (0)
#define FA_SMX_PIECE(b, n) ((n) - (b) < FA_SMX_HROW ? (n) - (b) : FA_SMX_HROW)


static FA_SMX_NOINLINE double fa_smx_max16(int bf, const char *x, ptrdiff_t n, double sign) {
    float xb[FA_SMX_HROW];
    double m = -HUGE_VAL, t;
    for (ptrdiff_t b = 0; b < n; b += FA_SMX_HROW) {
        FA_SMX_WIDEN(bf, x + 2 * b, xb, FA_SMX_PIECE(b, n));
        t = fa_smx_max_f32((const char *)xb, FA_SMX_PIECE(b, n), sign);
        m = t > m || t != t ? t : m;                    /* a NaN stays */
    }
    return m;
}

static FA_SMX_NOINLINE void fa_smx_sums16(int bf, int lg, int op, double sign, const char *x,
                                          const char *g, char *ev, ptrdiff_t n,
                                          fa_smx_stats *s) {
    float xb[FA_SMX_HROW], gb[FA_SMX_HROW], eb[FA_SMX_HROW];
    fa_smx_stats sum = {s->m, 0, 0, 0, 0, 0}, piece;
    (void)ev;                                       /* e is not kept in 16 bits */
    for (ptrdiff_t b = 0; b < n; b += FA_SMX_HROW) {
        FA_SMX_WIDEN(bf, x + 2 * b, xb, FA_SMX_PIECE(b, n));
        if (g) FA_SMX_WIDEN(bf, g + 2 * b, gb, FA_SMX_PIECE(b, n));
        piece.m = s->m;
        fa_smx_sums_h32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                        (char *)eb, FA_SMX_PIECE(b, n), &piece);
        fa_smx_add(&sum, &piece);
    }
    *s = sum;
}

static FA_SMX_NOINLINE void fa_smx_write16(int bf, int lg, int op, double sign, const char *x,
                                           const char *g, char *o1, char *o2, ptrdiff_t n,
                                           const fa_smx_consts *c) {
    float xb[FA_SMX_HROW], gb[FA_SMX_HROW], ob1[FA_SMX_HROW], ob2[FA_SMX_HROW];
    for (ptrdiff_t b = 0; b < n; b += FA_SMX_HROW) {
        ptrdiff_t len = FA_SMX_PIECE(b, n);
        FA_SMX_WIDEN(bf, x + 2 * b, xb, len);
        if (g) FA_SMX_WIDEN(bf, g + 2 * b, gb, len);
        if (fa_smx_keeps_e(lg, op))                 /* e into ob1, for float32's write */
            for (ptrdiff_t i = 0; i < len; i++)
                ob1[i] = fa_smx_e_h32((float)sign * xb[i], (float)c->m);
        fa_smx_write_h32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                         (char *)ob1, (char *)ob2, len, c);
        FA_SMX_NARROW(bf, ob1, o1 + 2 * b, len);
        if (op == FA_SMX_FB) FA_SMX_NARROW(bf, ob2, o2 + 2 * b, len);
    }
}

/* whole rows of n <= cap elements: as many as the float buffers (cap elements each)
 * hold widened at once, computed by float32's rows, narrowed (a flagged row is not
 * written) */
static void fa_smx_rows16_in(int lg, int op, double sign, const char *x, const char *g,
                             char *o1, char *o2, ptrdiff_t n, ptrdiff_t count,
                             unsigned char *flags, int bf, float *xb, float *gb, float *ob1,
                             float *ob2, ptrdiff_t cap) {
    ptrdiff_t per = cap / n, k0, r, i, j;
    for (k0 = 0; k0 < count; k0 += per) {
        r = count - k0 < per ? count - k0 : per;
        FA_SMX_WIDEN(bf, x + 2 * k0 * n, xb, r * n);
        if (g) FA_SMX_WIDEN(bf, g + 2 * k0 * n, gb, r * n);
        fa_smx_rows_h32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                        (char *)ob1, op == FA_SMX_FB ? (char *)ob2 : NULL, n, r, flags + k0);
        for (i = 0; i < r; i = j + 1) {           /* each run of unflagged rows at once */
            for (j = i; j < r && !flags[k0 + j]; j++) {}
            FA_SMX_NARROW(bf, ob1 + i * n, o1 + 2 * (k0 + i) * n, (j - i) * n);
            if (op == FA_SMX_FB)
                FA_SMX_NARROW(bf, ob2 + i * n, o2 + 2 * (k0 + i) * n, (j - i) * n);
        }
    }
}

/* ---- the short rows' tiles transposed, an exact copy: t[c * ts + k] = f[k * fs + c]
 * for the r x n matrix f (row stride fs) into the n x r matrix t (row stride ts). On
 * x86-64 in blocks of 8 x 8 floats and 4 x 4 doubles (AVX: unpacks, shuffles and
 * 128-bit lane permutes) or 4 x 4 and 2 x 2 (SSE2), the edges element by element, as
 * every element elsewhere: the element loop, whose strided reads GCC makes gathers or
 * scalar loads, took 3-4x as long (a tile of 4096 floats 1.1-1.2 us, the blocks 0.3) ---- */
#if defined(__AVX__) && (defined(__x86_64__) || defined(_M_X64))
#  include <immintrin.h>
#  define FA_TR_f32 8
#  define FA_TR_f64 4
FA_INLINE void fa_tr_block_f32(const float *f, ptrdiff_t fs, float *t, ptrdiff_t ts) {
    __m256 a[8], b[8], c[8];
    int j;
    for (j = 0; j < 8; j++) a[j] = _mm256_loadu_ps(f + j * fs);
    for (j = 0; j < 8; j += 2) {                  /* pairs of rows interleaved */
        b[j] = _mm256_unpacklo_ps(a[j], a[j + 1]);
        b[j + 1] = _mm256_unpackhi_ps(a[j], a[j + 1]);
    }
    for (j = 0; j < 8; j += 4) {                  /* 4 x 4 blocks in each 128-bit lane */
        c[j] = _mm256_shuffle_ps(b[j], b[j + 2], 0x44);
        c[j + 1] = _mm256_shuffle_ps(b[j], b[j + 2], 0xEE);
        c[j + 2] = _mm256_shuffle_ps(b[j + 1], b[j + 3], 0x44);
        c[j + 3] = _mm256_shuffle_ps(b[j + 1], b[j + 3], 0xEE);
    }
    for (j = 0; j < 4; j++) {                     /* the lanes of rows 0-3 and 4-7 joined */
        _mm256_storeu_ps(t + j * ts, _mm256_permute2f128_ps(c[j], c[j + 4], 0x20));
        _mm256_storeu_ps(t + (j + 4) * ts, _mm256_permute2f128_ps(c[j], c[j + 4], 0x31));
    }
}
FA_INLINE void fa_tr_block_f64(const double *f, ptrdiff_t fs, double *t, ptrdiff_t ts) {
    __m256d a0 = _mm256_loadu_pd(f), a1 = _mm256_loadu_pd(f + fs),
            a2 = _mm256_loadu_pd(f + 2 * fs), a3 = _mm256_loadu_pd(f + 3 * fs);
    __m256d b0 = _mm256_unpacklo_pd(a0, a1), b1 = _mm256_unpackhi_pd(a0, a1),
            b2 = _mm256_unpacklo_pd(a2, a3), b3 = _mm256_unpackhi_pd(a2, a3);
    _mm256_storeu_pd(t, _mm256_permute2f128_pd(b0, b2, 0x20));
    _mm256_storeu_pd(t + ts, _mm256_permute2f128_pd(b1, b3, 0x20));
    _mm256_storeu_pd(t + 2 * ts, _mm256_permute2f128_pd(b0, b2, 0x31));
    _mm256_storeu_pd(t + 3 * ts, _mm256_permute2f128_pd(b1, b3, 0x31));
}
#elif defined(__x86_64__) || defined(_M_X64)
#  include <emmintrin.h>
#  define FA_TR_f32 4
#  define FA_TR_f64 2
FA_INLINE void fa_tr_block_f32(const float *f, ptrdiff_t fs, float *t, ptrdiff_t ts) {
    __m128 a0 = _mm_loadu_ps(f), a1 = _mm_loadu_ps(f + fs), a2 = _mm_loadu_ps(f + 2 * fs),
           a3 = _mm_loadu_ps(f + 3 * fs);
    __m128 b0 = _mm_unpacklo_ps(a0, a1), b1 = _mm_unpackhi_ps(a0, a1),
           b2 = _mm_unpacklo_ps(a2, a3), b3 = _mm_unpackhi_ps(a2, a3);
    _mm_storeu_ps(t, _mm_movelh_ps(b0, b2));
    _mm_storeu_ps(t + ts, _mm_movehl_ps(b2, b0));
    _mm_storeu_ps(t + 2 * ts, _mm_movelh_ps(b1, b3));
    _mm_storeu_ps(t + 3 * ts, _mm_movehl_ps(b3, b1));
}
FA_INLINE void fa_tr_block_f64(const double *f, ptrdiff_t fs, double *t, ptrdiff_t ts) {
    __m128d a0 = _mm_loadu_pd(f), a1 = _mm_loadu_pd(f + fs);
    _mm_storeu_pd(t, _mm_unpacklo_pd(a0, a1));
    _mm_storeu_pd(t + ts, _mm_unpackhi_pd(a0, a1));
}
#else
#  define FA_TR_f32 1
#  define FA_TR_f64 1
#  define FA_TR_ONE(s, T)                                                                  \
FA_INLINE void fa_tr_block_##s(const T *f, ptrdiff_t fs, T *t, ptrdiff_t ts) {             \
    (void)fs, (void)ts;                                                                   \
    *t = *f;                                                                              \
}
FA_TR_ONE(f32, float)
FA_TR_ONE(f64, double)
#endif

#define FA_SMX_TRANSPOSE(s, T)                                                            \
FA_INLINE void fa_smx_transpose_##s(const T *FA_SR f, ptrdiff_t fs, T *FA_SR t,          \
                                    ptrdiff_t ts, ptrdiff_t r, ptrdiff_t n) {             \
    ptrdiff_t nb = n - n % FA_TR_##s, rb = r - r % FA_TR_##s, k, c;                       \
    for (k = 0; k < rb; k += FA_TR_##s)                                                   \
        for (c = 0; c < nb; c += FA_TR_##s)                                               \
            fa_tr_block_##s(f + k * fs + c, fs, t + c * ts + k, ts);                      \
    for (c = nb; c < n; c++)                                                              \
        for (k = 0; k < r; k++) t[c * ts + k] = f[k * fs + c];                            \
    for (c = 0; c < nb; c++)                                                              \
        for (k = rb; k < r; k++) t[c * ts + k] = f[k * fs + c];                           \
}
FA_SMX_TRANSPOSE(f32, float)
FA_SMX_TRANSPOSE(f64, double)

/* short rows (fa_smx_tiled16) as the columns of tiles of about cap / n: widened,
 * transposed, computed by the h32 tile (its per-column work vectorized across the rows,
 * where a short row's own reductions and calls cost more than its elements), transposed
 * back and narrowed. Each row's bits are those of its column, whatever the tile */
static void fa_smx_rows16_tiled(int lg, int op, double sign, const char *x, const char *g,
                                char *o1, char *o2, ptrdiff_t n, ptrdiff_t count,
                                unsigned char *flags, int bf, float *xb, float *gb,
                                float *ob1, float *ob2, ptrdiff_t cap) {
    ptrdiff_t per = fa_smx_tile_rows(cap, n), k0, r, i, j;
    for (k0 = 0; k0 < count; k0 += per) {
        r = count - k0 < per ? count - k0 : per;
        FA_SMX_WIDEN(bf, x + 2 * k0 * n, ob1, r * n);         /* (ob1, ob2: scratch) */
        fa_smx_transpose_f32(ob1, n, xb, r, r, n);
        if (g) {
            FA_SMX_WIDEN(bf, g + 2 * k0 * n, ob2, r * n);
            fa_smx_transpose_f32(ob2, n, gb, r, r, n);
        }
        fa_smx_cols_h32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                        (char *)ob1, (char *)ob2, n, r, r, flags + k0);
        fa_smx_transpose_f32(ob1, r, xb, n, n, r);            /* (xb, gb: scratch) */
        if (op == FA_SMX_FB) fa_smx_transpose_f32(ob2, r, gb, n, n, r);
        for (i = 0; i < r; i = j + 1) {           /* each run of unflagged rows at once */
            for (j = i; j < r && !flags[k0 + j]; j++) {}
            FA_SMX_NARROW(bf, xb + i * n, o1 + 2 * (k0 + i) * n, (j - i) * n);
            if (op == FA_SMX_FB)
                FA_SMX_NARROW(bf, gb + i * n, o2 + 2 * (k0 + i) * n, (j - i) * n);
        }
    }
}

/* rows of up to FA_SMX_HROW elements, in buffers on the stack */
static FA_SMX_NOINLINE void fa_smx_rows16_short(int lg, int op, double sign, const char *x,
                                                const char *g, char *o1, char *o2,
                                                ptrdiff_t n, ptrdiff_t count,
                                                unsigned char *flags, int bf) {
    float xb[FA_SMX_HROW], gb[FA_SMX_HROW], ob1[FA_SMX_HROW], ob2[FA_SMX_HROW];
    if (fa_smx_tiled16(n, op))
        fa_smx_rows16_tiled(lg, op, sign, x, g, o1, o2, n, count, flags, bf, xb, gb, ob1,
                            ob2, FA_SMX_HROW);
    else
        fa_smx_rows16_in(lg, op, sign, x, g, o1, o2, n, count, flags, bf, xb, gb, ob1, ob2,
                         n < FA_SMX_HBATCH ? FA_SMX_HBATCH : n);
}

/* rows of up to FA_SMX_HLONG elements (eight blocks) whose write reads e: one at a time
 * in heap buffers of a row each, so that e is kept between the passes as for float32 rows
 * (16n bytes, 4 MiB at most, of which the forward touches half), where the passes by
 * pieces compute it twice (rows of 40000-262144: 0.63-0.80 of their time; the other ops
 * run by pieces: 0.93 of this one's time, their pieces staying in L1). 0 if the
 * buffers could not be had (then the caller runs the passes by pieces: the same
 * values, e computed again) */
static FA_SMX_NOINLINE int fa_smx_rows16_long(int lg, int op, double sign, const char *x,
                                              const char *g, char *o1, char *o2,
                                              ptrdiff_t n, ptrdiff_t count,
                                              unsigned char *flags, int bf) {
    float *b = (float *)malloc(4 * (size_t)n * sizeof(float));
    if (!b) return 0;
    fa_smx_rows16_in(lg, op, sign, x, g, o1, o2, n, count, flags, bf, b, b + n, b + 2 * n,
                     b + 3 * n, n);
    free(b);
    return 1;
}

/* rows k0..k0+r of a tile (w columns, row stride rs elements) widened into f (row
 * stride w) */
FA_INLINE void fa_smx_widen_rows(int bf, const char *h, float *f, ptrdiff_t r, ptrdiff_t w,
                                 ptrdiff_t rs) {
    for (ptrdiff_t k = 0; k < r; k++) FA_SMX_WIDEN(bf, h + 2 * k * rs, f + k * w, w);
}

/* a tile of w columns of n rows: fa_softmax_impl.h's smx_cols_body with the h32 passes,
 * the 16-bit data widened FA_SMX_HROW / w rows at a time in each pass (the columns' sums
 * in the same order and groups, fa_smx_cols_sums_h32: the same bits) */
FA_INLINE void fa_smx_cols16_body(int bf, int lg, int op, float sign, const char *x,
                                  const char *g, char *o1, char *o2, ptrdiff_t n,
                                  ptrdiff_t w, ptrdiff_t rs, unsigned char *flags) {
    float m[FA_SMX_TILE], nn[FA_SMX_TILE];
    float xb[FA_SMX_HROW], gb[FA_SMX_HROW], ob1[FA_SMX_HROW], ob2[FA_SMX_HROW], hf[FA_SMX_TILE];
    int32_t cnt[FA_SMX_TILE];
    double hi[FA_SMX_TILE], lo[FA_SMX_TILE], hi2[FA_SMX_TILE], lo2[FA_SMX_TILE],
        k[5][FA_SMX_TILE];
    ptrdiff_t at, i, j, r, step = FA_SMX_HROW / w;
    fa_smx_cols_start_f32(w, m, nn, hi, lo, cnt, hi2, lo2, flags);
    if (op != FA_SMX_BWDY) {
        for (at = 0; at < n; at += step) {
            r = n - at < step ? n - at : step;
            fa_smx_widen_rows(bf, x + 2 * at * rs, xb, r, w, rs);
            fa_smx_tile_max_f32(xb, r, w, w, sign, m, nn);
        }
        fa_smx_cols_flag_f32(w, m, nn, flags);
    }
    for (at = 0; at < n; at += step) {
        r = n - at < step ? n - at : step;
        fa_smx_widen_rows(bf, x + 2 * at * rs, xb, r, w, rs);
        if (g) fa_smx_widen_rows(bf, g + 2 * at * rs, gb, r, w, rs);
        fa_smx_cols_sums_h32(lg, op, sign, xb, gb, ob1, at, r, n, w, w, m, hf, hi, lo, cnt, hi2,
                             lo2);
    }
    fa_smx_cols_consts_f32(lg, op, w, m, hi, lo, cnt, hi2, lo2, k);
    float mf[FA_SMX_TILE], yk[FA_SMX_TILE];
    fa_smx_cols_yk_f32(lg, op, w, k, mf, yk);
    float kf[FA_SMX_TILE];              /* the backward from y: float32's tile's */
    int f32 = op == FA_SMX_BWDY && fa_smx_bwdy_kf_f32(lg, w, k[1], kf);
    for (at = 0; at < n; at += step) {
        r = n - at < step ? n - at : step;
        fa_smx_widen_rows(bf, x + 2 * at * rs, xb, r, w, rs);
        if (g) fa_smx_widen_rows(bf, g + 2 * at * rs, gb, r, w, rs);
        if (f32)
            for (i = 0; i < r; i++)
                for (j = 0; j < w; j++)
                    ob1[i * w + j] = fa_smx_bwdy_f32_f32(lg, sign, xb[i * w + j],
                                                         gb[i * w + j], kf[j]);
        else
            for (i = 0; i < r; i++)
                for (j = 0; j < w; j++) {
                    float xv = xb[i * w + j];
                    float ev = fa_smx_keeps_e(lg, op) ? fa_smx_e_h32(sign * xv, mf[j])
                                                      : 0;
                    fa_smx_elem_f32(lg, op, sign, xv, op == FA_SMX_FWD ? 0 : gb[i * w + j], ev,
                                    k[0][j], k[1][j], k[2][j], k[3][j], k[4][j], mf[j],
                                    yk[j], &ob1[i * w + j], &ob2[i * w + j]);
                }
        for (i = 0; i < r; i++) {
            FA_SMX_NARROW(bf, ob1 + i * w, o1 + 2 * (at + i) * rs, w);
            if (op == FA_SMX_FB) FA_SMX_NARROW(bf, ob2 + i * w, o2 + 2 * (at + i) * rs, w);
        }
    }
}
/* a tile of w columns of n rows in sub-tiles of ws columns (a multiple of 16, ws n <=
 * FA_SMX_HCOLS) widened whole into heap buffers, computed by the h32 tile (columns are
 * independent: the same bits as fa_smx_cols16_body) and narrowed, so that e is kept
 * between the passes as for float32 tiles. 0 if n is too long for FA_SMX_HCOLS_MIN
 * columns (or for w, if fewer), or the buffers could not be had */
static FA_SMX_NOINLINE int fa_smx_cols16_whole(int bf, int lg, int op, double sign,
                                               const char *x, const char *g, char *o1,
                                               char *o2, ptrdiff_t n, ptrdiff_t w,
                                               ptrdiff_t rs, unsigned char *flags) {
    ptrdiff_t ws = FA_SMX_HCOLS / n, j0, wj, k;
    float *b;
    ws = ws >= w ? w : ws / 16 * 16;
    if (ws < w && ws < FA_SMX_HCOLS_MIN) return 0;
    b = (float *)malloc(4 * (size_t)(n * ws) * sizeof(float));
    if (!b) return 0;
    float *xb = b, *gb = b + n * ws, *ob1 = b + 2 * n * ws, *ob2 = b + 3 * n * ws;
    for (j0 = 0; j0 < w; j0 += ws) {
        wj = w - j0 < ws ? w - j0 : ws;
        fa_smx_widen_rows(bf, x + 2 * j0, xb, n, wj, rs);
        if (g) fa_smx_widen_rows(bf, g + 2 * j0, gb, n, wj, rs);
        fa_smx_cols_h32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                        (char *)ob1, (char *)ob2, n, wj, wj, flags + j0);
        for (k = 0; k < n; k++) {
            FA_SMX_NARROW(bf, ob1 + k * wj, o1 + 2 * (k * rs + j0), wj);
            if (op == FA_SMX_FB) FA_SMX_NARROW(bf, ob2 + k * wj, o2 + 2 * (k * rs + j0), wj);
        }
    }
    free(b);
    return 1;
}

static FA_SMX_NOINLINE void fa_smx_cols16(int bf, int lg, int op, double sign, const char *x,
                                          const char *g, char *o1, char *o2, ptrdiff_t n,
                                          ptrdiff_t w, ptrdiff_t rs, unsigned char *flags) {
    if (fa_smx_keeps_e(lg, op) && fa_smx_cols16_whole(bf, lg, op, sign, x, g, o1, o2, n, w,
                                                       rs, flags))
        return;
#define FA_SMX_CALL(L, O) fa_smx_cols16_body(bf, L, O, (float)sign, x, g, o1, o2, n, w, rs,   \
                                             flags)
    FA_SMX_SWITCH(FA_SMX_CALL)
#undef FA_SMX_CALL
}

/* the table's signatures, by type */
#define FA_SMX_16(s, bf)                                                                  \
static double fa_smx_max16_##s(const char *x, ptrdiff_t n, double sign) {                 \
    return fa_smx_max16(bf, x, n, sign);                                                  \
}                                                                                         \
static void fa_smx_sums16_##s(int lg, int op, double sign, const char *x, const char *g,  \
                              char *ev, ptrdiff_t n, fa_smx_stats *s) {                   \
    fa_smx_sums16(bf, lg, op, sign, x, g, ev, n, s);                                      \
}                                                                                         \
static void fa_smx_write16_##s(int lg, int op, double sign, const char *x, const char *g, \
                               char *o1, char *o2, ptrdiff_t n, const fa_smx_consts *c) { \
    fa_smx_write16(bf, lg, op, sign, x, g, o1, o2, n, c);                                 \
}                                                                                         \
static void fa_smx_cols16_##s(int lg, int op, double sign, const char *x, const char *g,  \
                              char *o1, char *o2, ptrdiff_t n, ptrdiff_t w, ptrdiff_t rs, \
                              unsigned char *flags) {                                     \
    fa_smx_cols16(bf, lg, op, sign, x, g, o1, o2, n, w, rs, flags);                       \
}                                                                                         \
/* whole rows: short ones widened several at once, longer ones whole or by pieces */    \
static void fa_smx_rows16_##s(int lg, int op, double sign, const char *x, const char *g,  \
                              char *o1, char *o2, ptrdiff_t n, ptrdiff_t count,           \
                              unsigned char *flags) {                                     \
    if (n <= FA_SMX_HROW)                                                                 \
        fa_smx_rows16_short(lg, op, sign, x, g, o1, o2, n, count, flags, bf);             \
    else if (n > FA_SMX_HLONG || !fa_smx_keeps_e(lg, op) ||                               \
             !fa_smx_rows16_long(lg, op, sign, x, g, o1, o2, n, count, flags, bf))        \
        fa_smx_rows_with(fa_smx_max16_##s, fa_smx_sums16_##s, fa_smx_group_consts_h32,   \
                         fa_smx_write16_##s, 2, lg, op, sign, x, g, o1, o2, n, count,     \
                         flags);                                                          \
}
FA_SMX_16(f16, 0)
FA_SMX_16(bf16, 1)
#endif

/* ---- short float32 and float64 rows as the columns of a tile ----
 * Rows of up to FA_SMX_SHORT elements (but for the backward from y) transposed into the
 * columns of tiles of about cap / n rows on the stack, computed by the tile's passes and
 * transposed back, as the 16-bit short rows (fa_smx_rows16_tiled); other rows are
 * fa_softmax_impl.h's. A flagged row is not written. */
#ifndef FA_SMX_CHECK
#define FA_SMX_SHORT_ROWS(s, T, cap)                                                      \
static void fa_smx_rows_short_##s(int lg, int op, double sign, const char *x,             \
                                  const char *g, char *o1, char *o2, ptrdiff_t n,         \
                                  ptrdiff_t count, unsigned char *flags) {                \
    T xb[cap], gb[cap], ob1[cap], ob2[cap];                                               \
    const T *xs = (const T *)x, *gs = (const T *)g;                                       \
    T *y1 = (T *)o1, *y2 = (T *)o2;                                                       \
    ptrdiff_t per = fa_smx_tile_rows(cap, n), k0, r, i, j;                                \
    if (!fa_smx_tiled(n, op, FA_SMX_SHORT)) {                                             \
        fa_smx_rows_##s(lg, op, sign, x, g, o1, o2, n, count, flags);                     \
        return;                                                                           \
    }                                                                                     \
    for (k0 = 0; k0 < count; k0 += per) {                                                 \
        r = count - k0 < per ? count - k0 : per;                                          \
        fa_smx_transpose_##s(xs + k0 * n, n, xb, r, r, n);                                \
        if (g) fa_smx_transpose_##s(gs + k0 * n, n, gb, r, r, n);                         \
        fa_smx_cols_##s(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,      \
                        (char *)ob1, (char *)ob2, n, r, r, flags + k0);                   \
        for (i = 0; i < r; i = j + 1) {       /* each run of unflagged rows at once */    \
            for (j = i; j < r && !flags[k0 + j]; j++) {}                                  \
            fa_smx_transpose_##s(ob1 + i, r, y1 + (k0 + i) * n, n, n, j - i);             \
            if (op == FA_SMX_FB)                                                          \
                fa_smx_transpose_##s(ob2 + i, r, y2 + (k0 + i) * n, n, n, j - i);         \
        }                                                                                 \
    }                                                                                     \
}
FA_SMX_SHORT_ROWS(f32, float, FA_SMX_HROW)
FA_SMX_SHORT_ROWS(f64, double, FA_SMX_HROW / 2)
#define FA_SMX_ROWS(s) fa_smx_rows_short_##s
#else
#define FA_SMX_ROWS(s) fa_smx_rows_##s
#endif

/* the tables fastact._runner calls, by dtype (fastact._activations.C_TYPES) */
#define FA_SMX_ENTRY(s) {FA_SMX_ROWS(s), fa_smx_consts_##s, fa_smx_max_##s, fa_smx_sums_##s, \
                         fa_smx_write_##s, fa_smx_cols_##s}
#define FA_SMX_ENTRY16(s) {fa_smx_rows16_##s, fa_smx_consts_h32, fa_smx_max16_##s,              \
                           fa_smx_sums16_##s, fa_smx_write16_##s, fa_smx_cols16_##s}
static const fa_smx_ops FA_SMX_OPS[4] = {
    FA_SMX_ENTRY(f32), FA_SMX_ENTRY(f64), FA_SMX_ENTRY16(f16), FA_SMX_ENTRY16(bf16),
};

#endif
