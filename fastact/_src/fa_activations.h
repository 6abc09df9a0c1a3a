/* fa_activations.h: every activation's math, for float (_f32) and double (_f64).
 *
 * Each kernel K is one function fa_K_<t>(x, P, &y, &d) computing y = f(x) and d = f'(x)
 * together (written once in fa_activations_impl.h); the entry points below call it and
 * keep what they need, and the compiler drops the rest. Kernels whose derivative can be
 * written in the forward's output also define fa_K_dy_<t>(y, P). P is five scalar
 * parameters p0..p4 (the Python layer fills them, see fastact/_activations.py).
 */
#ifndef FA_ACTIVATIONS_H
#define FA_ACTIVATIONS_H

#include "fa_math.h"
#include "fa_half.h"

/* Every entry point takes five parameter slots p0..p4; a kernel's own function names
 * the ones it uses (Kernel.params in fastact/_activations.py, in order) with FA_Pn. */
#define FA_P(T) T p0, T p1, T p2, T p3, T p4
#define FA_A p0, p1, p2, p3, p4
#define FA_P0(T) T unused_p0, T unused_p1, T unused_p2, T unused_p3, T unused_p4
#define FA_P1(T, a) T a, T unused_p1, T unused_p2, T unused_p3, T unused_p4
#define FA_P2(T, a, b) T a, T b, T unused_p2, T unused_p3, T unused_p4
#define FA_P3(T, a, b, c) T a, T b, T c, T unused_p3, T unused_p4
#define FA_P4(T, a, b, c, e) T a, T b, T c, T e, T unused_p4
#define FA_P5(T, a, b, c, e, f) T a, T b, T c, T e, T f

/* The entry points of kernel K for type T (suffix s): forward, derivative, backward
 * g * f'(x), forward + derivative, forward + backward. The backward ones call fa_K_g_<s>
 * (y and g * f'(x)): g times the rounded f' (FA_ENTRIES), or the kernel's own, where that
 * would round twice past the bound (FA_ENTRIES_G: g folded into f''s last rounding). */
#define FA_ENTRIES(K, T, s)                                                               \
    FA_INLINE void fa_##K##_g_##s(T g, T x, FA_P(T), T *yo, T *gd) {                     \
        T y, d; fa_##K##_##s(x, FA_A, &y, &d); *yo = y; *gd = g * d; }                   \
    FA_ENTRIES_G(K, T, s)
#define FA_ENTRIES_G(K, T, s)                                                             \
    FA_INLINE T fa_##K##_fwd_##s(T x, FA_P(T)) {                                          \
        T y, d; fa_##K##_##s(x, FA_A, &y, &d); return y; }                               \
    FA_INLINE T fa_##K##_grad_##s(T x, FA_P(T)) {                                         \
        T y, d; fa_##K##_##s(x, FA_A, &y, &d); return d; }                               \
    FA_INLINE T fa_##K##_bwd_##s(T g, T x, FA_P(T)) {                                     \
        T y, gd; fa_##K##_g_##s(g, x, FA_A, &y, &gd); return gd; }                       \
    FA_INLINE void fa_##K##_fb_##s(T x, FA_P(T), T *yo, T *dout) {                       \
        T y, d; fa_##K##_##s(x, FA_A, &y, &d); *yo = y; *dout = d; }                     \
    FA_INLINE void fa_##K##_fbg_##s(T g, T x, FA_P(T), T *yo, T *gout) {                 \
        T y, gd; fa_##K##_g_##s(g, x, FA_A, &y, &gd); *yo = y; *gout = gd; }

/* backward from the forward's output: g * f'(x) written in y */
#define FA_ENTRIES_Y(K, T, s)                                                             \
    FA_INLINE T fa_##K##_bwdy_##s(T g, T y, FA_P(T)) { return g * fa_##K##_dy_##s(y, FA_A); }

/* The 16-bit entry points of kernel K for storage type s (f16, bf16): the inputs widened
 * to float, the 16-bit types' float32 math fa_K_h32, the results rounded once to s
 * (fa_half.h). fa_K_h32 is the float32 kernel itself, except where a kernel defines a
 * shorter one exact enough for 16-bit results (gelu, sigmoid, logsigmoid:
 * FA_DEFINE_OWN_H32). */
#define FA_ENTRIES_H(K, s)                                                                \
    FA_INLINE fa_half_t fa_##K##_fwd_##s(fa_half_t x, FA_P(float)) {                      \
        float y, d; fa_##K##_h32(fa_widen_##s(x), FA_A, &y, &d); return fa_narrow_##s(y); } \
    FA_INLINE fa_half_t fa_##K##_grad_##s(fa_half_t x, FA_P(float)) {                     \
        float y, d; fa_##K##_h32(fa_widen_##s(x), FA_A, &y, &d); return fa_narrow_##s(d); } \
    FA_INLINE fa_half_t fa_##K##_bwd_##s(fa_half_t g, fa_half_t x, FA_P(float)) {         \
        float y, d; fa_##K##_h32(fa_widen_##s(x), FA_A, &y, &d);                         \
        return fa_narrow_##s(fa_widen_##s(g) * d); }                                     \
    FA_INLINE void fa_##K##_fb_##s(fa_half_t x, FA_P(float), fa_half_t *yo, fa_half_t *dout) { \
        float y, d; fa_##K##_h32(fa_widen_##s(x), FA_A, &y, &d);                         \
        *yo = fa_narrow_##s(y); *dout = fa_narrow_##s(d); }                              \
    FA_INLINE void fa_##K##_fbg_##s(fa_half_t g, fa_half_t x, FA_P(float), fa_half_t *yo,  \
                                    fa_half_t *gout) {                                    \
        float y, d; fa_##K##_h32(fa_widen_##s(x), FA_A, &y, &d);                         \
        *yo = fa_narrow_##s(y); *gout = fa_narrow_##s(fa_widen_##s(g) * d); }
#define FA_ENTRIES_HY(K, s)                                                               \
    FA_INLINE fa_half_t fa_##K##_bwdy_##s(fa_half_t g, fa_half_t y, FA_P(float)) {        \
        return fa_narrow_##s(fa_widen_##s(g) * fa_##K##_dy_h32(fa_widen_##s(y), FA_A)); }

/* the float pass also defines the 16-bit entry points: fa_K_h32 (the float32 kernel
 * unless K has its own), its float entry points (suffix h32: the loops over widened
 * blocks call these) and the 16-bit ones; the double pass nothing more */
#define FA_H32_IS_F32(K)                                                                  \
    FA_INLINE void fa_##K##_h32(float x, FA_P(float), float *y, float *d) {               \
        fa_##K##_f32(x, FA_A, y, d); }
#define FA_HALF_ENTRIES(K) FA_ENTRIES(K, float, h32) FA_ENTRIES_H(K, f16) FA_ENTRIES_H(K, bf16)
#define FA_HALF_DEFINE(K) FA_H32_IS_F32(K) FA_HALF_ENTRIES(K)
#define FA_HALF_DEFINE_Y(K)                                                               \
    FA_INLINE float fa_##K##_dy_h32(float y, FA_P(float)) { return fa_##K##_dy_f32(y, FA_A); } \
    FA_ENTRIES_Y(K, float, h32) FA_ENTRIES_HY(K, f16) FA_ENTRIES_HY(K, bf16)
#define T float
#define FA_T_F32 1
#define U uint32_t
#define S(name) fa_##name##_f32
#define C(name) FA_F32_##name
#define SFX f32
#include "fa_activations_impl.h"
#undef T
#undef FA_T_F32
#undef U
#undef S
#undef C
#undef SFX
#undef FA_HALF_DEFINE
#undef FA_HALF_DEFINE_Y
#undef FA_HALF_ENTRIES
#define FA_HALF_DEFINE(K)
#define FA_HALF_DEFINE_Y(K)
#define FA_HALF_ENTRIES(K)

#define T double
#define FA_T_F32 0
#define U uint64_t
#define S(name) fa_##name##_f64
#define C(name) FA_F64_##name
#define SFX f64
#include "fa_activations_impl.h"
#undef T
#undef FA_T_F32
#undef U
#undef S
#undef C
#undef SFX

#endif
