/* fa_softmax.h: the softmax family's kernels (fa_softmax_api.h says what they compute
 * and in which order), written once in fa_softmax_impl.h for float and double over
 * fa_math.h's exp, and for float16/bfloat16 data (computed in float); each
 * _kernels_<level> module exports FA_SMX_OPS. */
#ifndef FA_SOFTMAX_H
#define FA_SOFTMAX_H

#include <math.h>
#include "fa_activations.h"
#include "fa_softmax_api.h"

#if defined(_MSC_VER)
#  define FA_SR __restrict
#else
#  define FA_SR __restrict__
#endif

/* float and double: stored as computed; SM names the functions by type */
#define SM(name) S(name)
#define ST T
#define LD(v) (v)
#define NR(v) (v)
#define FA_SMX_HALF 0

#define T float
#define U uint32_t
#define I int32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define FA_SMX_F32 1
#include "fa_softmax_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C
#undef FA_SMX_F32

#define T double
#define U uint64_t
#define I int64_t
#define S(name) fa_##name##_f64
#define C(name) FA_F64_##name
#define FA_SMX_F32 0
#include "fa_softmax_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C
#undef FA_SMX_F32
#undef SM
#undef ST
#undef LD
#undef NR
#undef FA_SMX_HALF

/* float16 and bfloat16: 16-bit data (fa_half.h), computed as float's */
#define T float
#define U uint32_t
#define I int32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define FA_SMX_F32 1
#define FA_SMX_HALF 1
#define ST fa_half_t
#define SM(name) fa_##name##_f16
#define LD(v) fa_widen_f16(v)
#define NR(v) fa_narrow_f16(v)
#include "fa_softmax_impl.h"
#undef SM
#undef LD
#undef NR
#define SM(name) fa_##name##_bf16
#define LD(v) fa_widen_bf16(v)
#define NR(v) fa_narrow_bf16(v)
#include "fa_softmax_impl.h"
#undef T
#undef U
#undef I
#undef S
#undef C
#undef FA_SMX_F32
#undef FA_SMX_HALF
#undef ST
#undef SM
#undef LD
#undef NR

/* float16 and bfloat16 rows of up to FA_SMX_HROW elements: widened into float buffers
 * once (F16C's or the shifts' vector conversions), computed as float32 rows, which keep
 * e between their passes, and narrowed. Longer rows take the element-wise passes above;
 * both compute each value in float the same way and round it once: the same bits.
 * (tools/check_vectorization.py defines FA_SMX_CHECK: its copies of the passes are
 * renamed, and these functions hold no loop of their own.) */
#ifndef FA_SMX_CHECK
static int fa_smx_row16(int bf, int lg, int op, double sign, const char *x, const char *g,
                        char *o1, char *o2, ptrdiff_t n) {
    float xb[FA_SMX_HROW], gb[FA_SMX_HROW], ob1[FA_SMX_HROW], ob2[FA_SMX_HROW];
    if (n > FA_SMX_HROW)
        return (bf ? fa_smx_row_bf16 : fa_smx_row_f16)(lg, op, sign, x, g, o1, o2, n);
    (bf ? fa_widen_bf16_n : fa_widen_f16_n)((const fa_half_t *)x, xb, n);
    if (g) (bf ? fa_widen_bf16_n : fa_widen_f16_n)((const fa_half_t *)g, gb, n);
    if (fa_smx_row_f32(lg, op, sign, (const char *)xb, g ? (const char *)gb : NULL,
                       (char *)ob1, op == FA_SMX_FB ? (char *)ob2 : NULL, n))
        return 1;
    (bf ? fa_narrow_bf16_n : fa_narrow_f16_n)(ob1, (fa_half_t *)o1, n);
    if (op == FA_SMX_FB) (bf ? fa_narrow_bf16_n : fa_narrow_f16_n)(ob2, (fa_half_t *)o2, n);
    return 0;
}
static int fa_smx_row16_f16(int lg, int op, double sign, const char *x, const char *g,
                            char *o1, char *o2, ptrdiff_t n) {
    return fa_smx_row16(0, lg, op, sign, x, g, o1, o2, n);
}
static int fa_smx_row16_bf16(int lg, int op, double sign, const char *x, const char *g,
                             char *o1, char *o2, ptrdiff_t n) {
    return fa_smx_row16(1, lg, op, sign, x, g, o1, o2, n);
}
#endif

/* the tables fastact._runner calls, by dtype (fastact._activations.C_TYPES) */
#define FA_SMX_ENTRY(row, s) {row, fa_smx_consts_##s, fa_smx_max_##s, fa_smx_sums_##s,      \
                              fa_smx_write_##s, fa_smx_cols_##s}
static const fa_smx_ops FA_SMX_OPS[4] = {
    FA_SMX_ENTRY(fa_smx_row_f32, f32), FA_SMX_ENTRY(fa_smx_row_f64, f64),
    FA_SMX_ENTRY(fa_smx_row16_f16, f16), FA_SMX_ENTRY(fa_smx_row16_bf16, bf16),
};

#endif
