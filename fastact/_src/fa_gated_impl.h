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

/* ---- gated units: y = a f(b), da = f(b), db = a f'(b) (times g) ----
 * The loop over a segment, FA_GLOOP(statement), reads element i of a, b, g as GA(i),
 * GB(i), GG(i) and writes the outputs as GO1(i) = GNR(value) (o2, o3 likewise). The 16-bit
 * types at an x86 SIMD level (FA_GATED_BLOCKS) run it in blocks of FA_HBLK elements: the
 * inputs widened into float buffers and the outputs narrowed from them by the vector
 * conversions of fa_half.h (F16C, AVX2 / AVX-512 shifts), as the elementwise 16-bit loops
 * do, with the same bits; float16's integer conversions cost some 25 operations a vector
 * per element loop. The block loop is a while (tools/kernel_driver.py's vectorization
 * check counts every for of a segment function as a loop that must vectorize); HAS_G:
 * the entry reads g, HAS_B: b element by element (not prelu's one weight b[0]), NOUT: it
 * writes o1 (1), o1 and o2 (2) or all three. An output that is an input (in place) is
 * written after its block was read. */
#if defined(FA_GATED_HALF) && FA_GATED_BLOCKS
#  define FA_GLOOP(HAS_G, HAS_B, NOUT, ...)                                               \
    { ptrdiff_t h0 = 0, hn;                                                               \
      float hg[FA_HBLK], ha[FA_HBLK], hb[FA_HBLK], h1[FA_HBLK], h2[FA_HBLK], h3[FA_HBLK]; \
      while (h0 < n) {                                                                    \
          hn = n - h0 < FA_HBLK ? n - h0 : FA_HBLK;                                       \
          if (HAS_G) WN(g + h0, hg, hn);                                                  \
          WN(a + h0, ha, hn);                                                             \
          if (HAS_B) WN(b + h0, hb, hn);                                                  \
          for (i = 0; i < hn; i++) { __VA_ARGS__ }                                        \
          NN(h1, o1 + h0, hn);                                                            \
          if (NOUT >= 2) NN(h2, o2 + h0, hn);                                             \
          if (NOUT >= 3) NN(h3, o3 + h0, hn);                                             \
          h0 += hn; } }
#  define GA(i) ha[i]
#  define GB(i) hb[i]
#  define GG(i) hg[i]
#  define GO1(i) h1[i]
#  define GO2(i) h2[i]
#  define GO3(i) h3[i]
#  define GNR(v) (v)
#else
#  define FA_GLOOP(HAS_G, HAS_B, NOUT, ...) for (i = 0; i < n; i++) { __VA_ARGS__ }
#  define GA(i) LD(a[i])
#  define GB(i) LD(b[i])
#  define GG(i) LD(g[i])
#  define GO1(i) o1[i]
#  define GO2(i) o2[i]
#  define GO3(i) o3[i]
#  define GNR(v) NR(v)
#endif
#define FA_GATED__(G, K, beta, s)                                                        \
    FA_SEG_HEAD(G##_fwd)                                                                  \
        FA_GLOOP(0, 1, 1, T f, d; fa_##K##_##s(GB(i), beta, 0, 0, 0, 0, &f, &d);          \
                 GO1(i) = GNR(GA(i) * f);) }                                              \
    FA_SEG_HEAD(G##_grad)                                                                 \
        FA_GLOOP(0, 1, 2, T f, d; fa_##K##_##s(GB(i), beta, 0, 0, 0, 0, &f, &d);          \
                 GO1(i) = GNR(f); GO2(i) = GNR(GA(i) * d);) }                             \
    FA_SEG_HEAD(G##_bwd)                                                                  \
        FA_GLOOP(1, 1, 2, T f, d; fa_##K##_##s(GB(i), beta, 0, 0, 0, 0, &f, &d);          \
                 GO1(i) = GNR(GG(i) * f); GO2(i) = GNR(S(times3)(GG(i), GA(i), d));) }   \
    FA_SEG_HEAD(G##_fb)                                                                   \
        FA_GLOOP(0, 1, 3, T f, d; fa_##K##_##s(GB(i), beta, 0, 0, 0, 0, &f, &d);          \
                 GO1(i) = GNR(GA(i) * f); GO2(i) = GNR(f); GO3(i) = GNR(GA(i) * d);) }   \
    FA_SEG_HEAD(G##_fbg)                                                                  \
        FA_GLOOP(1, 1, 3, T f, d; fa_##K##_##s(GB(i), beta, 0, 0, 0, 0, &f, &d);          \
                 GO1(i) = GNR(GA(i) * f); GO2(i) = GNR(GG(i) * f);                        \
                 GO3(i) = GNR(S(times3)(GG(i), GA(i), d));) }
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

/* the elementwise part in FA_GLOOP (blocks for the 16-bit types, as the gated units), with
 * the kernels computed in (CSFX: float's for the 16-bit types); the weight's sums after it,
 * element by element, in their fixed order */
#define FA_PRELU__(m, W, HAS_B, s)                                                        \
    FA_SEG_HEAD(prelu_##m##_fwd)                                                          \
        FA_GLOOP(0, HAS_B, 1, GO1(i) = GNR(fa_leaky_relu_fwd_##s(GA(i), W, 0, 0, 0, 0));) } \
    FA_SEG_HEAD(prelu_##m##_grad)                                                         \
        FA_GLOOP(0, HAS_B, 1, GO1(i) = GNR(fa_leaky_relu_grad_##s(GA(i), W, 0, 0, 0, 0));) } \
    FA_SEG_HEAD(prelu_##m##_bwd)                                                          \
        FA_GLOOP(1, HAS_B, 1,                                                             \
                 GO1(i) = GNR(fa_leaky_relu_bwd_##s(GG(i), GA(i), W, 0, 0, 0, 0));) }     \
    FA_SEG_HEAD(prelu_##m##_fb)                                                           \
        FA_GLOOP(0, HAS_B, 2, T y, d; fa_leaky_relu_fb_##s(GA(i), W, 0, 0, 0, 0, &y, &d);  \
                 GO1(i) = GNR(y); GO2(i) = GNR(d);) }                                     \
    FA_SEG_HEAD(prelu_##m##_fbg)                                                          \
        FA_GLOOP(1, HAS_B, 2, T y, d;                                                     \
                 fa_leaky_relu_fbg_##s(GG(i), GA(i), W, 0, 0, 0, 0, &y, &d);              \
                 GO1(i) = GNR(y); GO2(i) = GNR(d);) }                                     \
    FA_SEG_HEAD_ACC(prelu_##m##_bwdw)                                                     \
        FA_GLOOP(1, HAS_B, 1,                                                             \
                 GO1(i) = GNR(fa_leaky_relu_bwd_##s(GG(i), GA(i), W, 0, 0, 0, 0));)       \
        FA_PRELU_SUM_##m(FA_G) }                                                          \
    FA_SEG_HEAD_ACC(prelu_##m##_fbw)                                                      \
        FA_GLOOP(0, HAS_B, 2, T y, d; fa_leaky_relu_fb_##s(GA(i), W, 0, 0, 0, 0, &y, &d);  \
                 GO1(i) = GNR(y); GO2(i) = GNR(d);)                                       \
        FA_PRELU_SUM_##m(FA_ONE) }                                                        \
    FA_SEG_HEAD_ACC(prelu_##m##_fbgw)                                                     \
        FA_GLOOP(1, HAS_B, 2, T y, d;                                                     \
                 fa_leaky_relu_fbg_##s(GG(i), GA(i), W, 0, 0, 0, 0, &y, &d);              \
                 GO1(i) = GNR(y); GO2(i) = GNR(d);)                                       \
        FA_PRELU_SUM_##m(FA_G) }
#define FA_PRELU_(m, W, HAS_B, s) FA_PRELU__(m, W, HAS_B, s)
#define FA_PRELU(m, W, HAS_B) FA_PRELU_(m, W, HAS_B, CSFX)

FA_PRELU(s, LD(b[0]), 0)  /* prelu_s_*: one weight, b[0], for the whole segment */
FA_PRELU(v, GB(i), 1)     /* prelu_v_*: b[i] for element i */

#undef FA_GLOOP
#undef GA
#undef GB
#undef GG
#undef GO1
#undef GO2
#undef GO3
#undef GNR
