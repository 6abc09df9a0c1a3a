/* fa_gated_impl.h: the segment loops of fa_gated.h, written once (included with T, the
 * type computed in, S(name) and C(name) its math, ST the arrays' element type, LD and NR
 * widening an element to T and rounding a T to ST (the identity but for the 16-bit types),
 * SFX the suffix of the segment functions and CSFX that of the kernels computed with:
 * T's, or h32 for the 16-bit types). The pointers of a segment do not overlap, except an
 * output that is exactly an input (in place), which an elementwise loop computes
 * correctly either way. */

#ifndef FA_GATED_HALF    /* T's helpers, once per T (the 16-bit passes reuse float's) */
/* g a d with the product g a carried exactly (a two-product): one rounding less than
 * (g a) d, so the gate's gradient keeps within the bound of f' plus half an ulp */
FA_INLINE T S(times3)(T g, T a, T d) {
    T e, p = S(two_prod)(g, a, &e);
    e = S(abs)(p) < S(inf)() ? e : 0;          /* g a overflows (or is inf, NaN): p d */
    return FA_FMA(p, d, e * d);
}
#endif

/* (two steps, so that SFX is expanded before the pasting) */
#define FA_SEG__(name, s) fa_##name##_seg_##s
#define FA_SEG_(name, s) FA_SEG__(name, s)
#define FA_SEG(name) FA_SEG_(name, SFX)
/* a segment function: the body (its loop, after the macro) takes restrict-qualified
 * parameters, which compilers trust (restrict locals they ignore, and would then check
 * every output against every input at run time, past their limit with six arrays); the
 * fa_seg_t function around it casts. o3 is a T array (the gated units) or prelu's
 * float64 accumulator(s), acc. */
#define FA_SEG_HEAD_(name, O3, ACC)                                                       \
    FA_INLINE void FA_SEG(name##_body)(const ST *FA_R g, const ST *FA_R a, const ST *FA_R b, \
                                       ST *FA_R o1, ST *FA_R o2, ST *FA_R o3,             \
                                       double *FA_R acc, ptrdiff_t n);                    \
    static void FA_SEG(name)(const char *g, const char *a, const char *b, char *o1,       \
                             char *o2, char *o3, ptrdiff_t n) {                           \
        FA_SEG(name##_body)((const ST *)g, (const ST *)a, (const ST *)b, (ST *)o1,        \
                            (ST *)o2, O3, ACC, n);                                        \
    }                                                                                     \
    FA_INLINE void FA_SEG(name##_body)(const ST *FA_R g, const ST *FA_R a, const ST *FA_R b, \
                                       ST *FA_R o1, ST *FA_R o2, ST *FA_R o3,             \
                                       double *FA_R acc, ptrdiff_t n) {                   \
        ptrdiff_t i; (void)g; (void)a; (void)b; (void)o1; (void)o2; (void)o3; (void)acc;
#define FA_SEG_HEAD(name) FA_SEG_HEAD_(name, (ST *)o3, NULL)
#define FA_SEG_HEAD_ACC(name) FA_SEG_HEAD_(name, NULL, (double *)o3)

/* ---- gated units: y = a f(b), da = f(b), db = a f'(b) (times g) ---- */
#define FA_GATED__(G, K, beta, s)                                                        \
    FA_SEG_HEAD(G##_fwd)                                                                  \
        for (i = 0; i < n; i++) {                                                         \
            T f, d; fa_##K##_##s(LD(b[i]), beta, 0, 0, 0, 0, &f, &d);                      \
            o1[i] = NR(LD(a[i]) * f); } }                                                 \
    FA_SEG_HEAD(G##_grad)                                                                 \
        for (i = 0; i < n; i++) {                                                         \
            T f, d; fa_##K##_##s(LD(b[i]), beta, 0, 0, 0, 0, &f, &d);                      \
            o1[i] = NR(f); o2[i] = NR(LD(a[i]) * d); } }                                  \
    FA_SEG_HEAD(G##_bwd)                                                                  \
        for (i = 0; i < n; i++) {                                                         \
            T f, d; fa_##K##_##s(LD(b[i]), beta, 0, 0, 0, 0, &f, &d);                      \
            o1[i] = NR(LD(g[i]) * f); o2[i] = NR(S(times3)(LD(g[i]), LD(a[i]), d)); } }   \
    FA_SEG_HEAD(G##_fb)                                                                   \
        for (i = 0; i < n; i++) {                                                         \
            T f, d; fa_##K##_##s(LD(b[i]), beta, 0, 0, 0, 0, &f, &d);                      \
            o1[i] = NR(LD(a[i]) * f); o2[i] = NR(f); o3[i] = NR(LD(a[i]) * d); } }        \
    FA_SEG_HEAD(G##_fbg)                                                                  \
        for (i = 0; i < n; i++) {                                                         \
            T f, d; fa_##K##_##s(LD(b[i]), beta, 0, 0, 0, 0, &f, &d);                      \
            o1[i] = NR(LD(a[i]) * f); o2[i] = NR(LD(g[i]) * f);                           \
            o3[i] = NR(S(times3)(LD(g[i]), LD(a[i]), d)); } }
#define FA_GATED_(G, K, beta, s) FA_GATED__(G, K, beta, s)
#define FA_GATED(G, K, beta) FA_GATED_(G, K, beta, CSFX)

/* the gated kernels of fastact/_activations.py's GATED_KERNELS: name, f, f's parameter */
FA_GATED(glu, sigmoid, 0)
FA_GATED(swiglu, silu, 1)
FA_GATED(geglu, gelu, 0)
FA_GATED(geglu_tanh, gelu_tanh, 0)
FA_GATED(reglu, relu, 0)

/* ---- prelu: leaky_relu with the weight as the slope; the weight's gradient
 * sum(g x where x <= 0) (PyTorch's: NaN x included), each term and the sum in float64,
 * in an order fixed by the segments (fastact._runner makes them independent of the
 * thread count) ---- */
/* g x where x <= 0, else 0, in float64; every operand loaded and computed, then selected
 * (a load under the condition became masked loads, which GCC 12 at AVX2 got wrong) */
#ifndef FA_GATED_HALF
FA_INLINE double S(prelu_term)(T g, T x) {
    double t = (double)g * (double)x;
    return x > 0 ? 0.0 : t;
}
#endif
/* one weight for the segment: the terms in eight interleaved partial sums (a fixed order
 * that keeps eight additions in flight), added to *acc; G(k): grad_output's element, or
 * 1 for the entries without it */
#define FA_PRELU_SUM8(G)                                                                  \
    {   double p[8] = {0, 0, 0, 0, 0, 0, 0, 0}; ptrdiff_t j, n8 = n - n % 8;              \
        for (i = 0; i < n8; i += 8)                                                       \
            for (j = 0; j < 8; j++) p[j] += S(prelu_term)(G(i + j), LD(a[i + j]));        \
        for (i = n8; i < n; i++) p[i - n8] += S(prelu_term)(G(i), LD(a[i]));              \
        *acc += ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])); }
/* one weight per element: each accumulator gets its element's term */
#define FA_PRELU_SUMV(G)                                                                  \
    {   for (i = 0; i < n; i++) acc[i] += S(prelu_term)(G(i), LD(a[i])); }
#define FA_G(k) LD(g[k])
#define FA_ONE(k) ((T)1)
#define FA_PRELU_SUM_s(G) FA_PRELU_SUM8(G)
#define FA_PRELU_SUM_v(G) FA_PRELU_SUMV(G)

#define FA_PRELU__(m, W, s)                                                               \
    FA_SEG_HEAD(prelu_##m##_fwd)                                                          \
        for (i = 0; i < n; i++) o1[i] = fa_leaky_relu_fwd_##s(a[i], W, 0, 0, 0, 0); }     \
    FA_SEG_HEAD(prelu_##m##_grad)                                                         \
        for (i = 0; i < n; i++) o1[i] = fa_leaky_relu_grad_##s(a[i], W, 0, 0, 0, 0); }    \
    FA_SEG_HEAD(prelu_##m##_bwd)                                                          \
        for (i = 0; i < n; i++) o1[i] = fa_leaky_relu_bwd_##s(g[i], a[i], W, 0, 0, 0, 0); } \
    FA_SEG_HEAD(prelu_##m##_fb)                                                           \
        for (i = 0; i < n; i++) fa_leaky_relu_fb_##s(a[i], W, 0, 0, 0, 0, &o1[i], &o2[i]); } \
    FA_SEG_HEAD(prelu_##m##_fbg)                                                          \
        for (i = 0; i < n; i++)                                                           \
            fa_leaky_relu_fbg_##s(g[i], a[i], W, 0, 0, 0, 0, &o1[i], &o2[i]); }           \
    FA_SEG_HEAD_ACC(prelu_##m##_bwdw)                                                     \
        for (i = 0; i < n; i++) o1[i] = fa_leaky_relu_bwd_##s(g[i], a[i], W, 0, 0, 0, 0); \
        FA_PRELU_SUM_##m(FA_G) }                                                          \
    FA_SEG_HEAD_ACC(prelu_##m##_fbw)                                                      \
        for (i = 0; i < n; i++) fa_leaky_relu_fb_##s(a[i], W, 0, 0, 0, 0, &o1[i], &o2[i]); \
        FA_PRELU_SUM_##m(FA_ONE) }                                                        \
    FA_SEG_HEAD_ACC(prelu_##m##_fbgw)                                                     \
        for (i = 0; i < n; i++)                                                           \
            fa_leaky_relu_fbg_##s(g[i], a[i], W, 0, 0, 0, 0, &o1[i], &o2[i]);             \
        FA_PRELU_SUM_##m(FA_G) }
#define FA_PRELU_(m, W, s) FA_PRELU__(m, W, s)
#define FA_PRELU(m, W) FA_PRELU_(m, W, SFX)

FA_PRELU(s, LD(b[0]))  /* prelu_s_*: one weight, b[0], for the whole segment */
FA_PRELU(v, LD(b[i]))  /* prelu_v_*: b[i] for element i */
