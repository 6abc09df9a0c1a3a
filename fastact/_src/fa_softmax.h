/* fa_softmax.h: the softmax family's kernels (fa_softmax_api.h says what they compute
 * and in which order), written once in fa_softmax_impl.h for float and double over
 * fa_math.h's exp; each _kernels_<level> module exports FA_SMX_OPS_F32/F64. */
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

/* the tables fastact._runner calls, [0] float32, [1] float64 */
static const fa_smx_ops FA_SMX_OPS[2] = {
    {fa_smx_row_f32, fa_smx_consts_f32, fa_smx_max_f32, fa_smx_sums_f32, fa_smx_write_f32,
     fa_smx_cols_f32},
    {fa_smx_row_f64, fa_smx_consts_f64, fa_smx_max_f64, fa_smx_sums_f64, fa_smx_write_f64,
     fa_smx_cols_f64},
};

#endif
