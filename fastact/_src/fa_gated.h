/* fa_gated.h: the gated units (y = a f(gate)) and prelu, as segment loops.
 *
 * A segment is a run of n consecutive elements of every array of a call; fastact._runner
 * walks a call's rows in segments (threads split the whole work) and calls the segment
 * function of the SIMD level in use through the tables below. Every segment function has
 * the one signature fa_seg_t: inputs g (grad_output), a, b; outputs o1, o2, o3; unused
 * ones are NULL. The element math is fa_activations.h's, written once.
 *
 *   gated, b the gate:  fwd (a, b -> y)   grad (a, b -> da, db)   bwd (g, a, b -> da, db)
 *                       fb (a, b -> y, da, db)   fbg (g, a, b -> y, da, db)
 *   prelu, a = x, b the weight (one value per segment: "s", or one per element: "v");
 *   the entries ending in w also add grad_output * x where x <= 0 (the weight's
 *   gradient) to the float64 accumulator(s) o3: fwd (y)  grad (d)  bwd (g -> d)
 *   fb (y, d)  fbg (g -> y, d)  bwdw (g -> d, acc)  fbw (y, d, acc)  fbgw (g -> y, d, acc)
 */
#ifndef FA_GATED_H
#define FA_GATED_H

#include <stddef.h>
#include "fa_activations.h"

#if defined(_MSC_VER)
#  define FA_R __restrict
#else
#  define FA_R __restrict__
#endif

/* float and double: stored as computed */
#define ST T
#define LD(v) (v)
#define NR(v) (v)
#define CSFX SFX

typedef void (*fa_seg_t)(const char *g, const char *a, const char *b, char *o1, char *o2,
                         char *o3, ptrdiff_t n);

#define T float
#define U uint32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define SFX f32
#include "fa_gated_impl.h"
#undef T
#undef U
#undef S
#undef C
#undef SFX

#define T double
#define U uint64_t
#define S(name) fa_##name##_f64
#define C(name) FA_F64_##name
#define SFX f64
#include "fa_gated_impl.h"
#undef T
#undef U
#undef S
#undef C
#undef SFX
#undef ST
#undef LD
#undef NR
#undef CSFX

/* float16 and bfloat16: stored as 16 bits (fa_half.h), computed with the 16-bit types'
 * float32 kernels (fa_K_h32: float's, but where a kernel has its own: gelu, sigmoid) */
#define FA_GATED_HALF
#define T float
#define U uint32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define ST fa_half_t
#define CSFX h32
#define LD(v) fa_widen_f16(v)
#define NR(v) fa_narrow_f16(v)
#define WN fa_widen_f16_n           /* n at a time, for the blocks of the gated units */
#define NN fa_narrow_f16_n
#define FA_GATED_BLOCKS FA_F16C
#define SFX f16
#include "fa_gated_impl.h"
#undef LD
#undef NR
#undef WN
#undef NN
#undef FA_GATED_BLOCKS
#undef SFX
#define LD(v) fa_widen_bf16(v)
#define NR(v) fa_narrow_bf16(v)
#define WN fa_widen_bf16_n
#define NN fa_narrow_bf16_n
#define FA_GATED_BLOCKS FA_BF16_SIMD
#define SFX bf16
#include "fa_gated_impl.h"
#undef WN
#undef NN
#undef FA_GATED_BLOCKS
#undef T
#undef U
#undef S
#undef C
#undef ST
#undef LD
#undef NR
#undef SFX
#undef CSFX
#undef FA_GATED_HALF

#endif
