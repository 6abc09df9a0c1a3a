/* fa_softmax_api.h: the softmax family's kernels as seen from fastact._runner: one table
 * of function pointers per dtype, filled by each _kernels_<level> module (fa_softmax.h).
 *
 * A call's data is (outer, n, inner) in memory, the reduction along n. Rows (inner == 1)
 * are reduced in blocks of FA_SMX_BLOCK elements, each block in FA_SMX_LANES interleaved
 * partial sums (lane l takes elements l, l + LANES, ...), the lanes added in order, then
 * the blocks in order: the same order whoever computes a block, so a row's result does
 * not depend on the thread count. Columns (inner > 1) are reduced one column per lane,
 * in order along n. Sums are carried in float64 (float32 data) or as double-word
 * float64 pairs (float64 data).
 *
 * The functions handle rows whose max (of sign * x) is finite; a row holding a NaN or
 * whose max is +-inf is reported (return value / flags) and left to the caller. */
#ifndef FA_SOFTMAX_API_H
#define FA_SOFTMAX_API_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FA_SMX_LANES 16
#define FA_SMX_BLOCK 32768       /* elements per block of a row (a multiple of LANES) */
#define FA_SMX_GROUP 16          /* rows whose write constants are computed together */
#define FA_SMX_HROW 4096         /* the longest 16-bit row computed in float buffers on the
                                  * stack (4 of them, 64 KiB) */
#define FA_SMX_HBATCH 1024       /* of which the elements of shorter rows widened at once
                                  * (the four in L1) */
#define FA_SMX_HLONG 262144      /* the longest 16-bit row whose write reads e computed in
                                  * heap buffers (16 bytes per element: 4 MiB) */
#define FA_SMX_HCOLS 131072      /* the elements of a 16-bit tile's columns widened whole
                                  * into each of 4 heap buffers */
#define FA_SMX_HCOLS_MIN 32      /* in sub-tiles of at least this many columns */
#define FA_SMX_HSHORT 64         /* the longest 16-bit row computed as a tile's column
                                  * (fa_softmax.h) */
#define FA_SMX_HODD 128          /* and the longest 16-bit row, not a multiple of 16
                                  * elements, computed so */
#define FA_SMX_SHORT 32          /* the longest float32 / float64 row computed so */

/* the ops (fastact._activations.SOFTMAX_OPS) */
enum { FA_SMX_FWD, FA_SMX_BWDY, FA_SMX_BWDX, FA_SMX_FB };

/* a row's statistics: its max m; the sum of e^(v - m) over the elements v < m (hi + lo)
 * and the count of v == m (float64 log_softmax's backward from y: of y past 709); the
 * second sum (hi2 + lo2): sum(g y) for softmax's backward from y, sum(g e^(v - m)) from
 * x, sum(g) for log_softmax's */
typedef struct { double m, hi, lo, cnt, hi2, lo2; } fa_smx_stats;
/* the constants of a row's write: m and k1..k4 (see fa_softmax_impl.h) */
typedef struct { double m, k1, k2, k3, k4; } fa_smx_consts;

typedef struct {
    /* count consecutive whole rows of n elements (serial); flags[k] = 1 where row k is
     * special (NaN, max +-inf: nothing written), else 0 */
    void (*rows)(int log, int op, double sign, const char *x, const char *g, char *o1,
                 char *o2, ptrdiff_t n, ptrdiff_t count, unsigned char *flags);
    /* the write constants of a row from its statistics */
    void (*consts)(int log, int op, const fa_smx_stats *s, fa_smx_consts *c);
    /* max of sign * x over n elements (NaN if any is NaN) */
    double (*max)(const char *x, ptrdiff_t n, double sign);
    /* the sums of one block of a row into *s (s->m set), e stored into o1 for the write */
    void (*sums)(int log, int op, double sign, const char *x, const char *g, char *o1,
                 ptrdiff_t n, fa_smx_stats *s);
    /* the write of one block of a row with the row's constants */
    void (*write)(int log, int op, double sign, const char *x, const char *g, char *o1,
                  char *o2, ptrdiff_t n, const fa_smx_consts *c);
    /* a tile of w columns (w <= FA_SMX_TILE) of n rows, row stride rs elements: all
     * passes; special columns get flags[j] = 1 (their outputs are left unspecified) */
    void (*cols)(int log, int op, double sign, const char *x, const char *g, char *o1,
                 char *o2, ptrdiff_t n, ptrdiff_t w, ptrdiff_t rs, unsigned char *flags);
} fa_smx_ops;

#define FA_SMX_TILE 1024         /* the most columns of a tile */

/* whether float32's and float64's sums pass stores e 2^64 in the first output for the
 * write pass (so that terms and results below the smallest normal number are rounded,
 * not flushed): all ops but log_softmax's forward and the backwards from y */
static inline int fa_smx_keeps_e(int lg, int op) {
    return op != FA_SMX_BWDY && !(op == FA_SMX_FWD && lg);
}

/* whether rows of n elements are computed as the columns of a tile (fa_softmax.h): those
 * of up to most elements (FA_SMX_HSHORT or FA_SMX_SHORT), but for the backward from y
 * (no exponential; the rows' float32 result) */
static inline int fa_smx_tiled(ptrdiff_t n, int op, ptrdiff_t most) {
    return n <= most && op != FA_SMX_BWDY;
}

/* the same for 16-bit rows: those of up to FA_SMX_HSHORT elements, and those of up to
 * FA_SMX_HODD that end in a partial vector (rows of 65-127 elements: all ops 0.4-0.95 of
 * the rows' time; a multiple of 16 there fills the rows' vectors, and the tiles took
 * forward_backward 1.04-1.2x as long) */
static inline int fa_smx_tiled16(ptrdiff_t n, int op) {
    return fa_smx_tiled(n, op, n % FA_SMX_LANES ? FA_SMX_HODD : FA_SMX_HSHORT);
}

/* the rows of such a tile of at most cap elements: a multiple of FA_SMX_LANES (the widest
 * vector's float lanes; where not, every column's pass had a masked tail: 16-bit rows of 65-112
 * took up to 1.9x as long) */
static inline ptrdiff_t fa_smx_tile_rows(ptrdiff_t cap, ptrdiff_t n) {
    ptrdiff_t per = cap / n < FA_SMX_TILE ? cap / n : FA_SMX_TILE;
    return per > FA_SMX_LANES ? per - per % FA_SMX_LANES : per;
}

/* the FA_SMX_LANES lanes of a float32 row's sums added pairwise (lane j + h into lane j,
 * h = 8, 4, 2, 1), as the float64 data's two-sums add them; whole, so that they stay in
 * registers */
#if FA_SMX_LANES != 16
#error "fa_smx_pairwise adds 16 lanes"
#endif
#if defined(__GNUC__)
/* as vectors (GCC's vector extensions: the element loops below went through memory, a
 * scalar add at a time); the same adds in the same order */
#define FA_SMX_PAIRWISE(name, type)                                                       \
static inline double name(const type *v) {                                               \
    typedef type v8 __attribute__((vector_size(8 * sizeof(type))));                       \
    typedef type v4 __attribute__((vector_size(4 * sizeof(type))));                       \
    typedef type v2 __attribute__((vector_size(2 * sizeof(type))));                       \
    v8 lo, hi, a;                                                                         \
    memcpy(&lo, v, sizeof lo); memcpy(&hi, v + 8, sizeof hi);                             \
    a = lo + hi;                                                                          \
    v4 b = (v4){a[0], a[1], a[2], a[3]} + (v4){a[4], a[5], a[6], a[7]};                   \
    v2 c = (v2){b[0], b[1]} + (v2){b[2], b[3]};                                           \
    return (double)(c[0] + c[1]);                                                         \
}
#else
#define FA_SMX_PAIRWISE(name, type)                                                       \
static inline double name(const type *v) {                                                \
    type a[8], b[4];                                                                      \
    for (int j = 0; j < 8; j++) a[j] = v[j] + v[j + 8];                                   \
    for (int j = 0; j < 4; j++) b[j] = a[j] + a[j + 4];                                   \
    return (double)((b[0] + b[2]) + (b[1] + b[3]));                                       \
}
#endif
FA_SMX_PAIRWISE(fa_smx_pairwise, double)
FA_SMX_PAIRWISE(fa_smx_pairwise_count, int32_t)

/* hi[j] += hf[j] for the FA_SMX_LANES float lanes hf (16-bit rows' sums of e): as
 * vectors where the compiler has GCC's vector extensions (its own code for the loop
 * took each lane out and added it alone, a fifth of a short row's sums) */
#if defined(__GNUC__) && FA_SMX_LANES == 16
typedef float fa_smx_f8 __attribute__((vector_size(32)));
typedef double fa_smx_d8 __attribute__((vector_size(64)));
static inline void fa_smx_add_lanes(double *hi, const float *hf) {
    fa_smx_f8 f0, f1;
    fa_smx_d8 d0, d1;
    memcpy(&f0, hf, sizeof f0); memcpy(&f1, hf + 8, sizeof f1);
    memcpy(&d0, hi, sizeof d0); memcpy(&d1, hi + 8, sizeof d1);
    d0 += __builtin_convertvector(f0, fa_smx_d8);
    d1 += __builtin_convertvector(f1, fa_smx_d8);
    memcpy(hi, &d0, sizeof d0); memcpy(hi + 8, &d1, sizeof d1);
}
#else
static inline void fa_smx_add_lanes(double *hi, const float *hf) {
    for (int j = 0; j < FA_SMX_LANES; j++) hi[j] += hf[j];
}
#endif

/* add a block's sums to a row's running ones, in order */
static inline void fa_smx_add(fa_smx_stats *row, const fa_smx_stats *blk) {
    double s = row->hi + blk->hi, bb = s - row->hi;
    row->lo += ((row->hi - (s - bb)) + (blk->hi - bb)) + blk->lo;
    row->hi = s;
    s = row->hi2 + blk->hi2; bb = s - row->hi2;
    row->lo2 += ((row->hi2 - (s - bb)) + (blk->hi2 - bb)) + blk->lo2;
    row->hi2 = s;
    row->cnt += blk->cnt;
}

#endif
