/* fa_activations_impl.h: each activation's value and derivative, written once for type T.
 * Included by fa_activations.h with T, S(name), C(name) and SFX defined.
 *
 * Conventions. Conditions are PyTorch's, so that values at the kinks and -0.0 match it;
 * at +-inf the result is the mathematical limit; a NaN input gives a NaN value and
 * derivative (also where PyTorch's scalar code gives 0 or 1: the third arm of the nested
 * selects), except for linear, whose derivative does not depend on x. Branches are
 * selects, and every value is computed before the selects that choose between them (an
 * expensive arm inside a ?: is control flow that GCC may not if-convert). Results that
 * multiply a possibly subnormal e^x by a large factor use es = e^x * 2^64 and scale
 * back last (FA_TAIL), or apply the factor before the powers of two (ldexp2), so they
 * stay accurate while normal. */

#ifndef FA_DEFINE
#  define FA_DEFINE_(K, T, s) FA_ENTRIES(K, T, s)
#  define FA_DEFINE(K) FA_DEFINE_(K, T, SFX) FA_HALF_DEFINE(K)
#  define FA_DEFINE_Y_(K, T, s) FA_ENTRIES_Y(K, T, s)
#  define FA_DEFINE_Y(K) FA_DEFINE_Y_(K, T, SFX) FA_HALF_DEFINE_Y(K)
/* a kernel with its own fa_K_h32 (the 16-bit types' math; defined in the float pass) */
#  define FA_DEFINE_OWN_H32(K) FA_DEFINE_(K, T, SFX) FA_HALF_ENTRIES(K)
/* ... whose backward also has its own fa_K_g (g folded into f''s last rounding) */
#  define FA_DEFINE_G_(K, T, s) FA_ENTRIES_G(K, T, s)
#  define FA_DEFINE_G_OWN_H32(K) FA_DEFINE_G_(K, T, SFX) FA_HALF_ENTRIES(K)
#endif

#define TAIL_INV C(TAIL_INV)

#if FA_T_F32
/* The 16-bit types' e^x (fa_K_h32 of sigmoid and logsigmoid) for x <= 0: within 1e-5
 * relative while normal (a 16-bit result needs 2^-12), flushed below 2^-126 as S(exp).
 * One FMA reduces (s = 2x - 2k ln2, 2x exact, ln2 rounded to float: 6e-6 relative at k =
 * -127) and EXP16(s) = e^(s/2) has degree 4: 12 instructions to S(exp)'s 16. */
FA_INLINE T fa_exp16_h32(T x) {
    x = x < C(EXP_MIN) ? C(EXP_MIN) : x;
    T kt = FA_FMA(x, C(LOG2E), C(MAGIC)), kf = kt - C(MAGIC);
    U k = S(to_bits)(kt) - C(MAGIC_BITS);
    return FA_F32_EXP16(FA_FMA(kf, (T)-1.38629436f, 2 * x)) * S(pow2)(k);      /* -2 ln2 */
}
#endif

/* ---- sigmoid: 1 / (1 + e^-x); f' = e / (1 + e)^2 with e = e^-|x| (the 16-bit types:
 * e from fa_exp16_h32) ---- */
FA_INLINE void S(sigmoid_e)(T x, T e, T *y, T *d) {
    *y = (x >= 0 ? 1 : e) / (1 + e);
    *d = e / S(sq1p)(e);
}
FA_INLINE void S(sigmoid)(T x, FA_P0(T), T *y, T *d) { S(sigmoid_e)(x, S(exp)(-S(abs)(x)), y, d); }
#if FA_T_F32
FA_INLINE void fa_sigmoid_h32(T x, FA_P0(T), T *y, T *d) {
    S(sigmoid_e)(x, fa_exp16_h32(-S(abs)(x)), y, d);
}
#endif
FA_INLINE T S(sigmoid_dy)(T y, FA_P0(T)) { return y * (1 - y); }
FA_DEFINE_OWN_H32(sigmoid)
FA_DEFINE_Y(sigmoid)

/* ---- tanh ---- */
FA_INLINE void S(tanh)(T x, FA_P0(T), T *y, T *d) { T q; *y = S(tanh_d)(x, d, &q); }
FA_INLINE T S(tanh_dy)(T y, FA_P0(T)) { return (1 - y) * (1 + y); }
FA_DEFINE(tanh)
FA_DEFINE_Y(tanh)

/* ---- linear: the identity ---- */
FA_INLINE void S(linear)(T x, FA_P0(T), T *y, T *d) { *y = x; *d = 1; }
FA_INLINE T S(linear_dy)(T y, FA_P0(T)) { return 1; }
FA_DEFINE(linear)
FA_DEFINE_Y(linear)

/* ---- relu: relu(-0.0) = -0.0; relu'(0) = 0 ---- */
FA_INLINE void S(relu)(T x, FA_P0(T), T *y, T *d) {
    *y = x < 0 ? 0 : x;
    *d = x > 0 ? (T)1 : (x <= 0 ? (T)0 : x);
}
FA_INLINE T S(relu_dy)(T y, FA_P0(T)) { return y > 0 ? (T)1 : (y <= 0 ? (T)0 : y); }
FA_DEFINE(relu)
FA_DEFINE_Y(relu)

/* ---- leaky_relu(negative_slope); f'(0) = negative_slope ---- */
FA_INLINE void S(leaky_relu)(T x, FA_P1(T, negative_slope), T *y, T *d) {
    /* f(-inf) is the limit, not -inf * 0; a function of negative_slope alone, so that the
     * loop has one compare per element (clang turned negative_slope == 0 && x == -inf
     * into a mask-packing sequence) */
    T lim = negative_slope == 0 ? -(T)0 : -S(inf)() * negative_slope;
    T neg = x == -S(inf)() ? lim : x * negative_slope;
    *y = x > 0 ? x : neg;
    *d = x > 0 ? 1 : (x <= 0 ? negative_slope : x);
}
FA_INLINE T S(leaky_relu_dy)(T y, FA_P1(T, negative_slope)) {
    return y > 0 ? 1 : (y <= 0 ? negative_slope : y);
}
FA_DEFINE(leaky_relu)
FA_DEFINE_Y(leaky_relu)

/* ---- elu family: x > 0: scale x; else alpha expm1(x / div); f' on x <= 0:
 * alpha_div e^(x / div).
 * elu: (alpha, 1, 1, 1, alpha); selu: (alpha*scale, scale, 1, 1, alpha*scale);
 * celu: (alpha, 1, alpha, 1/alpha, 1).
 * div = 1 (elu, selu) runs its own loop (Kernel.common): there the exponent is x <= 0.
 * celu's x / alpha has either sign and any size: it is carried as q + ql, e^(q + ql)
 * is taken over the whole range (exp_split), expm1 as alpha e^q where the 1 no longer
 * counts, and where |q| is too small to hold its own digits (subnormal) the value is
 * x alpha / div. Factors are applied to e^q in ldexp2's steps (no early overflow or
 * underflow for any alpha); f' = alpha_div e^x <= |alpha_div| on x <= 0, but m alpha_div
 * (m up to sqrt 2) overflowed for |alpha| > max / sqrt2: m is halved first, and the 2
 * goes into the powers of two (2^(k + 1) split for elu, 2^k2 doubled exactly for celu,
 * whose k may reach the top): doubling the result last had rounded a normal f' near
 * the smallest normal number as a subnormal first (5 ulp for selu's backward). ---- */
#define ELU_TINY ((T)(sizeof(T) == 4 ? 0x1p-90 : 0x1p-900))
#define ELU_DIV_MAX ((T)(sizeof(T) == 4 ? 0x1p60 : 0x1p800))
#define ELU_UP ((T)(sizeof(T) == 4 ? 0x1p64 : 0x1p128))
FA_INLINE void S(elu)(T x, FA_P5(T, alpha, scale, div, inv_div, alpha_div), T *y, T *d) {
    U k1, k2;
    if (FA_KNOWN(div == 1)) {
        U k;
        T m, neg = alpha * S(expm1_split)(x, &m, &k);         /* y: x itself at +-0 */
        S(split_k)(k + 1, &k1, &k2);                          /* (m / 2) 2^(k + 1) */
        T dneg = S(ldexp2)(((T)0.5 * m) * alpha_div, k1, k2);
        *y = x < 0 ? neg : x * scale;
        *d = x > 0 ? scale : dneg;                                    /* NaN: e^NaN */
        return;
    }
    /* x near the subnormal range: q div's rounding error is not representable, so the
     * residual is taken from x and div scaled up (x / div the same); a subnormal alpha
     * is scaled up before m alpha rounds, the power of two after */
    T up = S(abs)(div) < ELU_DIV_MAX ? ELU_UP : 1, sx = S(abs)(x) < ELU_TINY ? up : 1;
    T sa = S(abs)(alpha) < ELU_TINY ? ELU_UP : 1;
    T q = x / div, xs = x * sx, ds = div * sx, pl, ph = S(two_prod)(q, ds, &pl);
    T ql = S(abs)(q) < 1024 ? ((xs - ph) - pl) / ds : 0;
    T m = S(exp_split)(q, ql, &k1, &k2);                     /* e^(x / alpha) */
    T qc = q > C(EXPM1_BIG) ? C(EXPM1_BIG) : q;
    T em1 = FA_FMA(ql, S(ldexp2)(m, k1, k2), S(expm1)(qc));
    T big = ((m * (alpha * sa)) * S(pow2)(k1)) * (S(pow2)(k2) * (1 / sa));   /* ldexp2 */
    T dneg = ((((T)0.5 * m) * alpha_div) * S(pow2)(k1)) * (S(pow2)(k2) * 2);
    T neg = q > C(EXPM1_BIG) ? big : (S(abs)(q) < C(TINY_Q) ? x * (alpha / div) : alpha * em1);
    *y = x < 0 ? neg : x * scale;
    *d = x > 0 ? scale : dneg;
}
FA_INLINE T S(elu_dy)(T y, FA_P5(T, alpha, scale, div, inv_div, alpha_div)) {
    return y <= 0 ? (y + alpha) * inv_div : (y > 0 ? scale : y);
}
FA_DEFINE(elu)
FA_DEFINE_Y(elu)
#undef ELU_TINY
#undef ELU_DIV_MAX
#undef ELU_UP

/* ---- gelu, exact: x Phi(x); f' = Phi(x) + x phi(x). Near 0 (|x| <= 1/sqrt2) through
 * erf's series; beyond through Phi(-a) = e^(-a^2/2) R(a) (a = |x|, a^2 carried exactly
 * into the exponential), so that the lower tail keeps its digits. |x| past CLAMP: Phi(-a)
 * underflows. float32 and float64 compute R differently (below). ---- */
#define GELU_CLAMP ((T)(sizeof(T) == 4 ? 15.5 : 39.0))
#define GELU_SMALL ((T)0.70710678118654752440)
#define GELU_TINY ((T)0x1p-40)
/* the |x| <= 1/sqrt2 arm, from es = e^(-x^2/2) 2^64: y = x/2 + x/2 erf(x / sqrt2) in one
 * rounding, with x's sign (a tiny x < 0 rounds to -0.0: x/2 is -0.0, and -0.0 plus the
 * product's +0.0 is +0.0); f' = Phi(x) + x phi(x) */
FA_INLINE void S(gelu_small)(T x, T a, T es, T *y, T *d) {
    T e = S(erf_small)(a * (T)0.70710678118654752440), er = x < 0 ? -e : e, hx = (T)0.5 * x;
    *y = S(copysign)(FA_FMA(hx, er, hx), x);
    *d = FA_FMA(x, es * C(INV_SQRT_2PI_HI) * TAIL_INV, FA_FMA((T)0.5, er, (T)0.5));
}
#if FA_T_F32
/* float32, one formula for every x: Phi(-a) = e^(-a^2/2) F(t) t / a and Phi(-a) - a phi(a)
 * = e^(-a^2/2) (a - r0) E(t), with t = a / (a + K) and F, E polynomials in t - TC (fitted
 * on a in [0, 15.5], tools/fit_coeffs.py); r0 = 0.7518 is the root of f' at x = -r0, and
 * a - r0 is exact near it, so f' keeps its relative accuracy where it crosses 0. a^2 is
 * carried exactly into e^(-a^2/2) (its rounding would cost 5e-6 relative at a = 13), and
 * e^(-a^2/2), F t, (a - r0) E and E's last step keep their last rounding as a low part,
 * so that y = max(x, -0) - a Phi(-a) and f' = (x > 0) - sgn(x) (Phi(-a) - a phi(a)) are
 * within 3.0 and 2.6 ulp (3.8 and 3.2 without FMA; every float32 input checked) in two
 * thirds of the instructions of carrying every factor double-word: t's rounding and the
 * polynomials' are what is left (docs/performance.md). Below 2^-40, y is x / 2 (x^2 / 2.5
 * is below a quarter ulp of it). */
FA_INLINE void S(gelu_core)(T x, T g, int fold, T *y, T *d) {
    /* a = min(|x|, CLAMP) on the bits (NaN too: y keeps it through x, f' at the end), one
     * instruction, where a select would be spread over everything a feeds; past CLAMP
     * e^(-a^2/2) 2^64 is so small that y and f' round to their limits */
    U ab = S(to_bits)(S(abs)(x)), cb = S(to_bits)(GELU_CLAMP);
    /* and a >= GELU_TINY, below which y = x / 2 and f' = 1/2 once rounded: a^2's low
     * part would be subnormal (a microcode assist per vector) */
    T a = S(at_least)(S(from_bits)(ab < cb ? ab : cb), GELU_TINY), pe, p = S(two_prod)(a, a, &pe);
    /* -a^2/2 = k ln2 + r: s = -2r = (a^2 + 2k ln2_HI) + the rest, the sum exact
     * (Sterbenz) and k ln2_HI too (few bits) */
    T kt = FA_FMA(p, (T)-0.5 * C(LOG2E), C(MAGIC)), kf = kt - C(MAGIC);
    U k = S(to_bits)(kt) - C(MAGIC_BITS);
    T s = (p + kf * (2 * C(LN2_HI))) + FA_FMA(kf, 2 * C(LN2_LO), pe);     /* one rounding */
    T rest = C(EXPH_REST)(s), e = FA_FMA(s, rest, 1), sc = S(pow2)(k + FA_TAIL);
    T es = e * sc, el = FA_FMA(s, rest, 1 - e) * sc;      /* e^(-a^2/2) 2^64 = es + el */
    T t = a / (a + (T)FA_GELU_K), u = t - (T)FA_GELU_TC;
    T ml, m = S(two_prod)(C(GELU)(u), t, &ml);                  /* a e^(a^2/2) Phi(-a) */
    /* (a - r0) E: a - ROOT_HI exact for a >= 0.376 (fit_coeffs.HI_BITS_F32), and E's last
     * Horner step kept double-word (ev + evl; E ~ -1/2, so E0 - ev is exact) */
    T er = C(GELUD_REST)(u), ev = FA_FMA(u, er, C(GELUD_C0));
    T evl = FA_FMA(u, er, C(GELUD_C0) - ev), ra = (a - C(GELU_ROOT_HI)) - C(GELU_ROOT_LO);
    T ql, q = S(two_prod)(ra, ev, &ql);
    ql = FA_FMA(ra, evl, ql);
    T hs = FA_FMA(es, m, FA_FMA(es, ml, el * m));               /* a Phi(-a) 2^64 */
    T rx = x < 0 ? -(T)0 : x;                          /* max(x, -0), +-0 kept, NaN stays */
    T yv = FA_FMA(-hs, TAIL_INV, rx);
    T ec = FA_FMA(es, ql, el * q), dv;      /* (Phi(-a) - a phi(a)) 2^64 = es q + ec */
    if (!fold) {
        T eb = FA_FMA(es, q, ec);
        dv = x < 0 ? eb * TAIL_INV : FA_FMA(-eb, TAIL_INV, 1);
    } else {
        /* g f'(x) with g in f''s last rounding: g times a rounded f' would round twice,
         * up to 1 ulp more where f''s significand is small and the product's large.
         * x < 0: g (eh + eo), eh + eo = es q + ec to ~2^-40, its 2^64 taken off g first
         * (as eh's would leave it subnormal), or last where g is tiny (its own would);
         * x >= 0: g - g E, E <= 1/2. A zero, infinite or NaN g (the sum's sign of zero,
         * inf - inf) takes g times f' rounded, as IEEE multiplication gives them. */
        T ehl, eh = S(two_prod)(es, q, &ehl), eo = ehl + ec;
        int big = S(abs)(g) > (T)8.67361738e-19;                                /* 2^-60 */
        T gs = big ? g * TAIL_INV : g, bneg = FA_FMA(gs, eh, gs * eo) * (big ? 1 : TAIL_INV);
        T bpos = FA_FMA(-g, (eh + eo) * TAIL_INV, g);
        T bv = x < 0 ? bneg : bpos, dr = x < 0 ? eh * TAIL_INV : 1;   /* f' >= 1/2 for x >= 0 */
        dv = S(abs)(bv) > 0 ? bv : g * dr;
    }
    dv = x == x ? dv : x;
    *y = S(abs)(x) < GELU_TINY ? (T)0.5 * x : yv;
    *d = dv;
}
FA_INLINE void S(gelu)(T x, FA_P0(T), T *y, T *d) { S(gelu_core)(x, 1, 0, y, d); }
/* backward g f'(x): with FMA, f' is within about 1 unit roundoff of its value before its
 * rounding, and g times the rounded f' within 3.6 ulp for the worst g (a significand of
 * g f' near 2); without FMA, within about 1.5, which the two roundings would take past 4
 * ulp: g is folded in (2.9 ulp; docs/performance.md) */
FA_INLINE void S(gelu_g)(T g, T x, FA_P0(T), T *y, T *gd) {
#if FA_HAVE_FMA
    T d;
    S(gelu_core)(x, 1, 0, y, &d);
    *gd = g * d;
#else
    S(gelu_core)(x, g, 1, y, gd);
#endif
}
#else
/* float64: R(a) = erfcx(z) / 2 with z = a / sqrt2, from Shepherd and Laframboise's
 * e^(z^2) erfc(z) (1 + 2z) and a double-word division by 2 (1 + 2z) */
FA_INLINE void S(gelu)(T x, FA_P0(T), T *y, T *d) {
    T a = S(abs)(x), pe;
    a = a > GELU_CLAMP ? GELU_CLAMP : a;                        /* NaN stays */
    T p = S(two_prod)(a, a, &pe);
    T es = S(exp_dw)(-(T)0.5 * p, -(T)0.5 * pe, FA_TAIL);      /* e^(-x^2/2) 2^64 */
    T y_small, d_small;
    S(gelu_small)(x, a, es, &y_small, &d_small);
    /* |x| > 1/sqrt2: r = erfc(a/sqrt2) e^(a^2/2) / 2 */
    T z = a * (T)0.70710678118654752440, sl, s = S(erfcx_1p2z)(z, &sl);
    T ql, q = S(two_prod)(a, C(SQRT2_HI), &ql), dl, dh = S(two_sum)(1, q, &dl);
    dl = 2 * (dl + ql + a * C(SQRT2_LO));
    dh = 2 * dh;                                                 /* 2 (1 + sqrt2 a) = dh + dl */
    T rdh = 1 / dh, r = S(div_dw)(s, sl, dh, dl, rdh), hs = es * r;   /* Phi(-a) 2^64 */
    T cl, c = S(two_prod)(a, C(INV_SQRT_2PI_HI), &cl);
    T b = (r - c) - (cl + a * C(INV_SQRT_2PI_LO));              /* (Phi(-a) - a phi) / e^.. */
    T y_big = x < 0 ? -(a * hs) * TAIL_INV : x - a * (hs * TAIL_INV);   /* a: inf - inf 0 */
    T d_big = x < 0 ? (es * b) * TAIL_INV : 1 - (es * TAIL_INV) * b;
    *y = a <= GELU_SMALL ? y_small : y_big;
    *d = a <= GELU_SMALL ? d_small : d_big;
}
#endif
#if FA_T_F32
/* The 16-bit types' gelu (fa_gelu_h32, fa_activations.h): 33 instructions per vector to
 * the float32 kernel's 85, within about 2e-5 relative (the 16-bit result is one rounding of
 * it, within 1 ulp: float16's half ulp is 2^-12 = 2.4e-4 relative). With t = a / (a + K):
 * a Phi(-a) = e^(-a^2/2) F(t) t, F of degree 5 (GELU16), and Phi(-a) - a phi(a) =
 * e^(-a^2/2) (a - r0) E(t), r0 = 0.7518 the root of f' at x = -r0 (GELU16D, degree 5):
 * a - r0 is exact near it, so f' keeps its relative accuracy where it crosses 0 (a
 * float16 input 1.6e-4 from the root gives f' = 7e-5, which the difference of the two
 * terms would leave with 1e-3 relative). a^2 is rounded once: its error moves
 * e^(-a^2/2) by 5e-6 relative at a = 13, where bfloat16 results end. The polynomials are
 * in Horner's form: the loop is bound by its instruction count. */
FA_INLINE void fa_gelu_h32(T x, FA_P0(T), T *y, T *d) {
    T a = S(abs)(x);
    /* e^(-a^2/2) 2^64 = e^(s/2) 2^(k + 64), s = -a^2 - 2k ln2 in one step (ln2 rounded
     * to float: 3e-7 relative at k = -173) and EXP16 one polynomial in s; no clamp
     * (-a^2/2 >= -120.2 where the result is used; NaN stays NaN) */
    T p = a * a;
    T kt = FA_FMA(p, (T)-0.5 * C(LOG2E), C(MAGIC)), kf = kt - C(MAGIC);
    U k = S(to_bits)(kt) - C(MAGIC_BITS);
    T es = FA_F32_EXP16(FA_FMA(kf, (T)-1.38629436f, -p)) * S(pow2)(k + FA_TAIL);   /* -2 ln2 */
    T t = a / (a + (T)FA_GELU_K);
    T m = FA_F32_GELU16(t) * t;                                 /* a e^(a^2/2) Phi(-a) */
    T dq = ((a - C(GELU_ROOT_HI)) - C(GELU_ROOT_LO)) * FA_F32_GELU16D(t);
    T hs = es * m, eb = es * dq;           /* a Phi(-a) 2^64, (Phi(-a) - a phi(a)) 2^64 */
    /* max(x, -0) but x for +-0, so that -0 - 0 keeps gelu(+-0) = +-0; the limits past CLAMP */
    T rx = x >= 0 ? x : -(T)0, step = x > 0 ? 1 : -(T)0;
    T yv = FA_FMA(-hs, TAIL_INV, rx);
    T dv = x < 0 ? eb * TAIL_INV : FA_FMA(-eb, TAIL_INV, 1);
    *y = a > GELU_CLAMP ? rx : yv;
    *d = a > GELU_CLAMP ? step : dv;
}
FA_DEFINE_G_OWN_H32(gelu)
#else
FA_DEFINE(gelu)
#endif

/* ---- gelu, tanh approximation: x sigma(v), v = 2u = A x + B x^3 carried as v + vl;
 * NaN x: NaN results at the end (limit_num) ----*/
#define GELU_T_CLAMP ((T)(sizeof(T) == 4 ? 12.0 : 23.0))
FA_INLINE void S(gelu_tanh)(T x, FA_P0(T), T *y, T *d) {
    T xc = S(limit_num)(x, GELU_T_CLAMP);
    T pe, p = S(two_prod)(xc, xc, &pe);
    T bpe, bp = S(two_prod)(C(GELU_B_HI), p, &bpe);
    T te, t = S(two_sum)(C(GELU_A_HI), bp, &te);
    T tl = te + bpe + C(GELU_B_HI) * pe + C(GELU_B_LO) * p + C(GELU_A_LO);
    T ve, v = S(two_prod)(xc, t, &ve);
    T vl = ve + xc * tl;
    T es = S(exp_dw)(-S(abs)(v), v >= 0 ? -vl : vl, FA_TAIL);  /* e^-|v| 2^64 */
    /* e held at 2^-84 and up (below, 1 + e and x e / (1 + e) in f' round as with the
     * true e): e^-|v| is subnormal from |x| = 9.7 on, a microcode assist per vector */
    T e = S(at_least)(es, (T)0x1p-20) * TAIL_INV, den = 1 + e, den2 = S(sq1p)(e), rd2 = 1 / den2;
    T t3l, t3 = S(two_prod)(3, t, &t3l), dvs, dv = S(two_sum)(t3, -2 * C(GELU_A_HI), &dvs);
    T dvl = dvs + t3l + 3 * tl - 2 * C(GELU_A_LO);               /* v' = 3t - 2A = dv + dvl */
    T xdl, xd = S(two_prod)(xc, dv, &xdl), nl, n = S(two_sum)(den, xd, &nl);
    T num = n + (nl + xdl + xc * dvl);                           /* 1 + e + x v' */
    /* the numerators chosen first, then one division each */
    /* (x 2^64 or x e^-|v| 2^64) / den 2^-64: a select of the two scalings, GCC would
     * compute x e^-|v| 2^-64, subnormal past x = 10.2, for x > 0 too */
    T yv = (v >= 0 ? xc * C(TAIL) : xc * es) / den * TAIL_INV;
    yv = x > GELU_T_CLAMP ? x : yv;
    T dr = S(mul_div)(v >= 0 ? xc * e : es, v >= 0 ? dv : num, v >= 0 ? den : -(T)0, den2, rd2)
           * (v >= 0 ? 1 : TAIL_INV);
    *y = x == x ? yv : x;
    *d = x == x ? dr : x;
}
FA_DEFINE(gelu_tanh)

/* ---- silu and swish(beta) (silu: beta = 1, its own loop): x sigma(z), z = beta x;
 * f' = sigma(z) (1 + z (1 - sigma(z))), with e = e^-|z|: (1 + e + z e) / (1 + e)^2 for
 * z >= 0, e (1 + z + e) / (1 + e)^2 below; the numerator of each branch chosen first,
 * then one division. For beta != 1, z is carried exactly as z + zl (e^z and the
 * cancellation of 1 + z + e near f' = 0 would amplify its rounding), and e^-|z| is taken
 * over the whole range as m 2^k (x and z need not be small together). A backward g f'
 * rounds f' twice, so f' must be within ~2.5 unit roundoffs before its last rounding
 * (docs/accuracy.md): below 0, 1 + z is exact (z <= -1/2) or nearly, e (1 + z) + e e is
 * rounded once (fma_acc: one FMA, or nearly so without FMA), (1 + e)^2 is rounded once
 * (sq1p_exact), and in float64 e's own last rounding is kept (SILU_EXP_LO). ---- */
#define SWISH_XMAX ((T)(sizeof(T) == 4 ? 0x1.fffffep127 : 0x1.fffffffffffffp1023))  /* max */
#define SILU_EXP_LO (sizeof(T) == 8)
FA_INLINE void S(silu)(T x, FA_P1(T, beta), T *y, T *d) {
    if (FA_KNOWN(beta == 1)) {
        T esl, es = S(exp_dw_hl)(-S(abs)(x), -(T)0, FA_TAIL, C(EXP_MIN_TAIL), &esl);
        T e = es * TAIL_INV, den = 1 + e, den2 = S(sq1p_exact)(e), nes = -es;
        T xc = S(limit)(x, -C(EXP_MIN_TAIL)), scale = x >= 0 ? 1 : -TAIL_INV, h = 1 + xc;
        /* x < 0 through -es and the scale -2^-64: where es = 0 (x = -inf), -es h + -es e
         * is +0 and f' is -0, its limit (es h + es e would be +0 and stay +0) */
        T low = SILU_EXP_LO ? FA_FMA(-esl, h, nes * e) : nes * e;
        *y = (x >= 0 ? x : xc * nes) / den * scale;
        *d = (x >= 0 ? FA_FMA(e, h, 1) : S(fma_acc)(nes, h, low)) / den2 * scale;
        return;
    }
    U k1, k2;
    T zl, z = S(two_prod)(x, beta, &zl);
    z = beta == 0 ? (x != x ? x : 0) : z;                          /* beta = 0: x / 2 */
    zl = S(abs)(z) < 1024 && beta != 0 ? zl : 0;
    T ml, m = S(exp_split_hl)(-S(abs)(z), z >= 0 ? -zl : zl, &k1, &k2, &ml); /* e^-|z| */
    T e = S(ldexp2)(m, k1, k2), den = 1 + e, den2 = S(sq1p_exact)(e);
    T zc = S(limit)(z, -C(EXP_MIN_TAIL));
    T xc = S(limit)(x, SWISH_XMAX);             /* +-inf e^-inf: +-0; finite x kept */
    /* z < 0: x e / (1 + e) with x scaled by 2^k1 <= 1/2 first (|x| may be huge when
     * beta is tiny), and f' as m (...) scaled last (e may be subnormal, f' not) */
    T yneg = ((xc * S(pow2)(k1)) * (m / den)) * S(pow2)(k2);
    T h = 1 + zc, low = SILU_EXP_LO ? FA_FMA(ml, h, m * (zl + e)) : m * (zl + e);
    T dneg = S(ldexp2)(S(fma_acc)(m, h, low) / den2, k1, k2);
    *y = z >= 0 ? x / den : yneg;
    *d = z >= 0 ? FA_FMA(e, h, 1) / den2 : dneg;
}
FA_DEFINE(silu)

/* ---- softplus(beta, threshold): linear where beta x > threshold, else
 * log1p(e^(beta x)) / beta = (max(z, 0) + log1p(e^-|z|)) / beta, z = beta x exact ---- */
#define SOFTPLUS_LIN ((T)(sizeof(T) == 4 ? -20.0 : -40.0))  /* log1p(e^z) = e^z below */
FA_INLINE void S(softplus)(T x, FA_P2(T, beta, threshold), T *y, T *d) {
    if (FA_KNOWN(beta == 1)) {       /* beta = 1 (the default) in its own loop: z = x */
        T e = S(exp)(-S(abs)(x)), l = S(log1p01)(e);
        *y = x > threshold ? x : (x >= 0 ? x + l : l);
        *d = x > threshold ? 1 : (x >= 0 ? 1 : e) / (1 + e);
        return;
    }
    U k1, k2;
    T zl, z = S(two_prod)(x, beta, &zl);
    zl = S(abs)(z) < 1024 ? zl : 0;
    T m = S(exp_split)(-S(abs)(z), z >= 0 ? -zl : zl, &k1, &k2);   /* e^-|z| */
    T e = S(ldexp2)(m, k1, k2), l = S(log1p01)(e);
    T num = z >= 0 ? z + (zl + l) : l;
    /* the tail e^z / beta with 1 / beta applied before the powers of two: any beta
     * (z = -inf: 0 / beta, the limit; 1 / beta overflows for a subnormal beta, whose
     * tail only z = -inf reaches) */
    /* z = +inf from a finite x (beta x overflows; a threshold of inf or past it): x;
     * z = 0 beta = NaN (beta = +-inf): NaN, as PyTorch and the NumPy backend */
    T tail = z > -S(inf)() ? S(ldexp2)(m * (1 / beta), k1, k2) : 0 / beta;
    T lin = z == z ? x : z;
    T sp = z < SOFTPLUS_LIN ? tail : (z < S(inf)() ? num / beta : lin);
    *y = z > threshold ? x : sp;
    *d = z > threshold ? 1 : (z >= 0 ? 1 : e) / (1 + e);
}
FA_DEFINE(softplus)

/* ---- mish: x tanh(softplus(x)). With e = e^-|x|, tanh(softplus(x)) is
 * (1 + 2e) / D+ for x >= 0, D+ = 1 + 2e + 2e^2, and e (e + 2) / D- below, D- = e^2 + 2e + 2;
 * f' for x < 0 is e B / D-^2 with B = 4 (1 + x) + e (6 + 4x + e (4 + e)), expanded so that
 * the cancellation near the zero of f' is exact. A backward g f' counts f''s error up to
 * twice: their Horner steps are rounded once also without FMA (fma_acc; unfused, 4.25 ulp
 * in float64, 4.24 in float32). ---- */
FA_INLINE void S(mish)(T x, FA_P0(T), T *y, T *d) {
    T es = S(exp2k)(-S(abs)(x), FA_TAIL), e = es * TAIL_INV;
    T xc = S(limit)(x, -C(EXP_MIN_TAIL));
    T num = FA_FMA(2, e, 1), dp = FA_FMA(2 * e, e, num);         /* x >= 0 */
    T dn = FA_FMA(e, e + 2, 2);                                  /* x < 0 */
    T dn2 = S(fma_acc)(e, S(fma_acc)(e, S(fma_acc)(e, e + 4, 8), 8), 4);     /* D-^2 */
    T bn = S(fma_acc)(e, S(fma_acc)(e, e + 4, S(fma_acc)(4, xc, 6)), 4 * (1 + xc));
    T t = num / dp, rn = 1 / dn;                                 /* tanh(softplus(x)), x >= 0 */
    T yn = S(mul_div)(xc * es, e + 2, -(T)0, dn, rn) * TAIL_INV;
    T dpos = t + 4 * xc * e * e * (1 + e) / (dp * dp);
    T dneg = S(mul_div)(es, bn, -(T)0, dn2, rn * rn) * TAIL_INV;
    *y = x >= 0 ? x * t : yn;
    *d = x >= 0 ? dpos : dneg;
}
FA_DEFINE(mish)

/* ---- hardtanh(min_val, max_val) (relu6: 0, 6); f' = 0 at both bounds.
 * y in the (b > a ? b : a) pattern, which compiles to max/min instructions (NaN kept, it
 * is the second operand); the nested selects took 2.7x longer in mask instructions ---- */
FA_INLINE void S(hardtanh)(T x, FA_P2(T, min_val, max_val), T *y, T *d) {
    T t = min_val > x ? min_val : x;
    *y = max_val < t ? max_val : t;
    /* nested selects, not ||: SSE2 */
    *d = x <= min_val ? 0 : (x >= max_val ? (T)0 : (x < max_val ? (T)1 : x));
}
FA_INLINE T S(hardtanh_dy)(T y, FA_P2(T, min_val, max_val)) {
    return y <= min_val ? 0 : (y >= max_val ? (T)0 : (y < max_val ? (T)1 : y));
}
FA_DEFINE(hardtanh)
FA_DEFINE_Y(hardtanh)

/* ---- hardsigmoid and sparse_sigmoid: (clip(x, lo, hi) - lo) / width, width = hi - lo,
 * f' = slope = 1 / width inside, 0 at both ends and outside; NaN gives NaN. Hardsigmoid is
 * (-3, 3, 6, 1/6), jax's sparse_sigmoid (-1, 1, 2, 1/2). As parameters, the clip
 * compiles to max/min as in hardtanh; with the literals GCC merged the two selects into
 * a mask sequence 4x slower. f' = x > lo ? (x < hi ? slope : 0) : (x <= lo ? 0 : x), the
 * inner select first: nested the other way, GCC's SLP left the float16 chunk loop of the
 * AVX2 backward as scalar compares and branches (30x relu's time) ---- */
FA_INLINE void S(hardsigmoid)(T x, FA_P4(T, lo, hi, width, slope), T *y, T *d) {
    T t = lo > x ? lo : x, inside = x < hi ? slope : 0;
    *y = ((hi < t ? hi : t) - lo) / width;
    *d = x > lo ? inside : (x <= lo ? 0 : x);
}
FA_DEFINE(hardsigmoid)

/* ---- hardswish: x relu6(x + 3) / 6 on x limited to [-3, 3] (so -inf gives -0.0, not
 * -inf * 0), and x itself from 3 on; f' = 0 at -3, 1 at 3, (2x + 3) / 6 between. Clamps
 * rather than selects where they serve: clang's cost model refused the float64 SSE2
 * loop with three nested selects. x is clamped, not x + 3 (GCC split xc * min(xc + 3, 6)
 * / 6 over the min's two arms), and on |x| (limit): GCC spread a clamp by two selects
 * over the arithmetic, three mask instructions more per vector, which made the loop 1.4x
 * slower in float32 and 1.6x in float16 ---- */
FA_INLINE void S(hardswish)(T x, FA_P0(T), T *y, T *d) {
    T xc = S(limit)(x, 3);                                        /* NaN stays */
    T mid = xc * (xc + 3) / 6;
    *y = x >= 3 ? x : mid;                                        /* exactly x */
    T dmid = (2 * x + 3) / 6;
    *d = x <= -3 ? 0 : (x >= 3 ? 1 : dmid);
}
FA_DEFINE(hardswish)

/* ---- softsign: x / (1 + |x|), as |x| / (1 + |x|) with the sign, |x| limited to 2^60
 * (where the quotient is 1 already): softsign(+-inf) = +-1 without a select ---- */
FA_INLINE void S(softsign)(T x, FA_P0(T), T *y, T *d) {
    T a = S(abs)(x), ac = a > (T)0x1p60 ? (T)0x1p60 : a;
    *y = S(copysign)(ac / (1 + ac), x);
    *d = 1 / S(sq1p)(a);
}
FA_DEFINE(softsign)

/* ---- logsigmoid: -softplus(-x), with e = e^-|x| (the 16-bit types: fa_exp16_h32) ---- */
FA_INLINE void S(logsigmoid_e)(T x, T e, T *y, T *d) {
    T l = S(log1p01)(e);
    *y = x >= 0 ? -l : x - l;
    *d = (x >= 0 ? e : 1) / (1 + e);
}
FA_INLINE void S(logsigmoid)(T x, FA_P0(T), T *y, T *d) {
    S(logsigmoid_e)(x, S(exp)(-S(abs)(x)), y, d);
}
#if FA_T_F32
FA_INLINE void fa_logsigmoid_h32(T x, FA_P0(T), T *y, T *d) {
    S(logsigmoid_e)(x, fa_exp16_h32(-S(abs)(x)), y, d);
}
#endif
FA_DEFINE_OWN_H32(logsigmoid)

/* ---- tanhshrink: x - tanh(x), a polynomial below |x| = 1, (|x| - 1) + 2u / (1 + u)
 * above (u = e^-2|x|: no cancellation); f' = tanh(x)^2 ---- */
FA_INLINE void S(tanhshrink)(T x, FA_P0(T), T *y, T *d) {
    T a = S(abs)(x), dt, q, t = S(tanh_d)(x, &dt, &q);
    T big = S(copysign)((a - 1) + q, x);                        /* q = 2u / (1 + u) */
    T small = S(tanhshrink_core)(x) + 0;                        /* + 0: -0.0 -> 0.0 */
    *y = a < 1 ? small : big;
    *d = a < 1 ? t * t : 1 - dt;
}
FA_DEFINE(tanhshrink)

/* ---- softshrink(lambd >= 0): x -+ lambd outside [-lambd, lambd], +0.0 inside (as
 * PyTorch's vectorized kernel, -0.0 included; NaN takes the first arm); f' = 0 on
 * [-lambd, lambd]. Conditions on |x| (GCC 12 does not if-convert the three-way selects
 * on x here) ---- */
FA_INLINE void S(softshrink)(T x, FA_P1(T, lambd), T *y, T *d) {
    T a = S(abs)(x);
    *y = a <= lambd ? (T)0 : x - S(copysign)(lambd, x);
    *d = a > lambd ? (T)1 : (a <= lambd ? (T)0 : x);
}
FA_DEFINE(softshrink)

/* ---- hardshrink(lambd of any sign): 0 on [-lambd, lambd], i.e. |x| <= lambd (false for
 * a NaN x, which stays). y is one compare and one masked move: written through f' (y =
 * f' == 0 ? 0 : x), GCC made it four compares and two mask ORs per vector, 1.6x relu's
 * time; f' written with one select in x's compare (|x| > lambd ? 1 : (... ? 0 : x)) made
 * the float16 backward 1.4x slower ---- */
FA_INLINE void S(hardshrink)(T x, FA_P1(T, lambd), T *y, T *d) {
    T a = S(abs)(x), out = a > lambd ? (T)1 : (T)0;
    *y = a <= lambd ? 0 : x;
    *d = x != x ? x : out;
}
FA_DEFINE(hardshrink)

/* ---- threshold(threshold, value): x <= threshold gives value ---- */
FA_INLINE void S(threshold)(T x, FA_P2(T, threshold, value), T *y, T *d) {
    *y = x <= threshold ? value : x;
    *d = x <= threshold ? (T)0 : (x > threshold ? (T)1 : x);
}
FA_DEFINE(threshold)

/* ---- squareplus(b > 0): (x + s) / 2, s = sqrt(x^2 + b), and for x < 0
 * h / 2 with h = s - |x| = b / (s + |x|) (no cancellation; s and |x| halved first, as
 * their sum may overflow); f' = (1 + |x| / s) / 2, for x < 0 h / (2 s) = (b / 2) / (x^2
 * + b + |x| s), positive terms summed in one FMA (h2 / s rounded five times: 4.5 ulp at
 * x = -0.079). Under the root and in that sum x and b are scaled by 2^-E and 2^-2E, E the
 * exponent of max(|x|, ~sqrt b) (taken from the bits, within [2 - bias, bias - 1]): exact,
 * so every result is the unscaled formula's, without its overflow (x^2 + b past |x| =
 * 2^64) or its subnormals. (Scaling only the lanes past a threshold, by a select between
 * constant factors, GCC computed every lane with every factor: b 2^-140 is subnormal,
 * a microcode assist per vector for any x.) One root, three divisions; y and f' select
 * on different conditions (x < 0, x >= 0) between values named first: sharing one, or
 * selecting between expressions, clang turned the select into a branch and left the
 * SSE2 loops scalar. ---- */
FA_INLINE void S(squareplus)(T x, FA_P1(T, b), T *y, T *d) {
    T a = S(abs)(x);
    U mant = ((U)1 << C(MANT)) - 1, bias = (U)C(BIAS);
    /* ~sqrt b: b's exponent halved (its bits shifted), as a power of 2 */
    T rb = S(from_bits)(((S(to_bits)(b) >> 1) + (bias << (C(MANT) - 1))) & ~mant);
    T p = a > rb ? a : rb;                              /* (a select of two values) */
    p = S(at_least)(S(limit_num)(p, S(from_bits)((2 * bias - 2) << C(MANT))),
                    S(from_bits)((U)2 << C(MANT)));
    U e = S(to_bits)(p) >> C(MANT);                     /* E + bias, in [2, 2 bias - 2] */
    T down = S(from_bits)((2 * bias - e) << C(MANT)), up = S(from_bits)(e << C(MANT));
    T xs = x * down, bs = (b * down) * down, ss = S(sqrt)(FA_FMA(xs, xs, bs)), s = ss * up;
    T q = a / s;                                                /* |x| / s */
    q = q < 1 ? q : 1;                                          /* inf / inf */
    T h2 = b / ((T)0.5 * s + (T)0.5 * a);                      /* 2 h */
    /* the quotient rounded once where f' is normal: b 2^-2E over the scaled sum where
     * E < 0 (b may be subnormal: scaled up first), else b 2^-E over it, then 2^-E / 2
     * (f' may be subnormal, past x = -2^63 in float32: the last product rounds it) */
    int up1 = p < 1;                          /* E < 0 (a float compare: SSE2 has no 64-bit one) */
    T dn = (up1 ? bs : b * down) / FA_FMA(a * down, ss, FA_FMA(xs, xs, bs))
           * (up1 ? (T)0.5 : (T)0.5 * down);
    T yn = (T)0.25 * h2, yp = (T)0.5 * x + (T)0.5 * s, dp = (T)0.5 + (T)0.5 * q;
    *y = x < 0 ? yn : yp;
    *d = x >= 0 ? dp : dn;
}
FA_DEFINE(squareplus)

/* ---- sparse_plus (jax): 0 for x <= -1, (x + 1)^2 / 4 between, x from 1 on;
 * f' = 0, (x + 1) / 2, 1 (continuous). x + 1 is exact near -1. y from x limited to
 * [-1, 1] (mid is +0.0 at -1), one select fewer: the float16 forward 0.76x the time at
 * AVX-512 ---- */
FA_INLINE void S(sparse_plus)(T x, FA_P0(T), T *y, T *d) {
    T u = x + 1, dmid = (T)0.5 * u, uc = S(limit)(x, 1) + 1, mid = (T)0.25 * (uc * uc);
    *y = x >= 1 ? x : mid;                                      /* NaN: mid */
    *d = x <= -1 ? 0 : (x >= 1 ? 1 : dmid);
}
FA_DEFINE(sparse_plus)

/* ---- exponential (Keras): e^x over the whole range; f' = e^x = y ---- */
FA_INLINE void S(exponential)(T x, FA_P0(T), T *y, T *d) {
    U k1, k2;
    T m = S(exp_split)(x, -(T)0, &k1, &k2), e = S(ldexp2)(m, k1, k2);
    *y = e;
    *d = e;
}
FA_INLINE T S(exponential_dy)(T y, FA_P0(T)) { return y; }
FA_DEFINE(exponential)
FA_DEFINE_Y(exponential)

/* ---- clipped_relu(negative_slope, threshold, max_value), Keras's relu (max_value
 * inf: none): negative_slope (x - threshold) for x <= threshold, else min(x, max_value);
 * f' = negative_slope, then 1, and 0 from max_value on (1 at x = inf when max_value = inf).
 * Where x - threshold overflows for a finite x and threshold it is negative_slope x -
 * negative_slope threshold; f(-inf) is the limit, a function of negative_slope alone (as
 * leaky_relu). ---- */
FA_INLINE void S(clipped_relu)(T x, FA_P3(T, negative_slope, threshold, max_value), T *y, T *d) {
    T inf = S(inf)(), lim = negative_slope == 0 ? -(T)0 : -inf * negative_slope, top_d = max_value == inf ? 1 : 0;
    T dx = x - threshold, far = x * negative_slope - threshold * negative_slope;
    T neg = S(abs)(dx) < inf || S(abs)(threshold) == inf ? dx * negative_slope : far;
    neg = x == -inf ? lim : neg;
    T top = max_value < x ? max_value : x;                                    /* NaN stays */
    *y = x <= threshold ? neg : top;              /* not f''s condition: see squareplus */
    *d = x > threshold ? (x < max_value ? (T)1 : top_d) : (x <= threshold ? negative_slope : x);
}
FA_DEFINE(clipped_relu)

#undef TAIL_INV
#undef GELU_CLAMP
#undef GELU_TINY
#undef GELU_T_CLAMP
#undef SOFTPLUS_LIN
#undef SWISH_XMAX
