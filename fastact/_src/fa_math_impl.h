/* fa_math_impl.h: the math of fa_math.h, written once for a floating type T.
 * Included by fa_math.h with T (the type), U/I (unsigned/signed integers of T's width),
 * S(name) (the suffixed function name) and C(name) (the type's constants) defined.
 * Error bounds are in ulp of the result, measured by tests/test_accuracy.py. */

typedef union { T f; U u; } S(bits_t);

FA_INLINE U S(to_bits)(T x) { S(bits_t) b; b.f = x; return b.u; }
FA_INLINE T S(from_bits)(U u) { S(bits_t) b; b.u = u; return b.f; }
FA_INLINE T S(inf)(void) { return S(from_bits)(C(INF_BITS)); }
FA_INLINE T S(abs)(T x) { return S(from_bits)(S(to_bits)(x) & ~C(SIGN)); }
/* |mag| with the sign of sgn */
FA_INLINE T S(copysign)(T mag, T sgn) {
    return S(from_bits)((S(to_bits)(mag) & ~C(SIGN)) | (S(to_bits)(sgn) & C(SIGN)));
}
/* x limited to [lo, hi]; NaN stays NaN. */
FA_INLINE T S(clamp)(T x, T lo, T hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* v * 2^n for an integer n (two's complement in U), |n| < 2 * bias: two exact power-of-two
 * factors, so that the result rounds once, also into the subnormal range. */
FA_INLINE T S(ldexp)(T v, U n) {
    U n1 = ((n + C(LDEXP_OFF)) >> 1) - (C(LDEXP_OFF) >> 1);   /* floor(n / 2) */
    U n2 = n - n1;
    T s1 = S(from_bits)((n1 + C(BIAS)) << C(MANT));
    T s2 = S(from_bits)((n2 + C(BIAS)) << C(MANT));
    return (v * s1) * s2;
}

/* x + dx = k ln2 + r with |r| <= 0.347 (Cody-Waite; dx is a small correction carried
 * with x): returns r, stores k. The rounding to an integer adds and subtracts
 * 1.5 * 2^MANT, whose low bits then hold k. */
FA_INLINE T S(exp_reduce)(T x, T dx, U *k) {
    T t = x * C(LOG2E) + C(MAGIC);
    T kf = t - C(MAGIC);
    *k = S(to_bits)(t) - C(MAGIC_BITS);
    return (x - kf * C(LN2_HI)) - (kf * C(LN2_LO) - dx);
}

/* e^r - 1 and e^r for |r| <= 0.347: r + r^2 P(r), and 1 + r (1 + r P(r)) rounded once */
FA_INLINE T S(expm1_core)(T r) { return FA_FMA(r, r * C(EXP)(r), r); }
FA_INLINE T S(exp_core)(T r) { return FA_FMA(r, FA_FMA(r, C(EXP)(r), 1), 1); }

/* e^(x + dx) * 2^tail, for a small correction dx and tail 0 or FA_TAIL; 0 below EXP_MIN,
 * inf above EXP_MAX, NaN for NaN. <0.7 ulp */
FA_INLINE T S(exp_dw)(T x, T dx, U tail) {
    U k;
    T r = S(exp_reduce)(S(clamp)(x, C(EXP_MIN), C(EXP_MAX)), dx, &k);
    return S(ldexp)(S(exp_core)(r), k + tail);
}

FA_INLINE T S(exp2k)(T x, U tail) { return S(exp_dw)(x, 0, tail); }
FA_INLINE T S(exp)(T x) { return S(exp_dw)(x, 0, 0); }

/* e^x - 1, keeping -0.0 and tiny x exact. <2 ulp */
FA_INLINE T S(expm1)(T x) {
    U k;
    T r = S(exp_reduce)(S(clamp)(x, C(EXPM1_MIN), C(EXP_MAX)), 0, &k);
    T q = S(expm1_core)(r);
    T s = S(ldexp)(1, k);                                  /* 2^k, inf when e^x overflows */
    T res = (I)k > 20 ? s * (q + 1) - 1 : s * q + (s - 1);
    return x == 0 ? x : res;
}

/* (1 + e)^2 with one rounding where FMA is available */
FA_INLINE T S(sq1p)(T e) { return FA_FMA(e, 2 + e, 1); }

/* tanh(x), and 1 - tanh(x)^2 in *d: a polynomial below |x| = 1, else through
 * u = e^-2|x| (which also keeps the derivative's tail). <2 ulp */
FA_INLINE T S(tanh_d)(T x, T *d) {
    T a = S(abs)(x), w = x * x;
    T small = S(copysign)(x + x * (w * C(TANH)(w)), x);       /* odd: keeps -0.0 */
    T us = S(exp2k)(-2 * a, FA_TAIL), u = us * C(TAIL_INV);   /* u 2^64: tail stays normal */
    T big = S(copysign)(1 - 2 * u / (1 + u), x);
    *d = a < (T)0.5 ? (1 - small) * (1 + small) : (4 * us / S(sq1p)(u)) * C(TAIL_INV);
    return a < 1 ? small : big;
}

/* x - tanh(x) for |x| < 1, without cancellation */
FA_INLINE T S(tanhshrink_core)(T x) { T w = x * x; return -(x * (w * C(TANH)(w))); }

/* log(1 + u) for u in [0, 1] as 2 atanh(u / (2 + u)). <1.5 ulp */
FA_INLINE T S(log1p01)(T u) {
    T s = u / (2 + u), w = s * s;
    return 2 * s + s * (w * C(ATANH)(w));
}

/* e^(z^2) erfc(z) (1 + 2z) for z >= 0, in Shepherd & Laframboise's variable, as
 * hi + *lo (the last Horner step's rounding kept). <0.5 ulp */
FA_INLINE T S(erfcx_1p2z)(T z, T *lo) {
    T y = (z - (T)FA_ERFC_K) / (z + (T)FA_ERFC_K), rest = C(ERFC_REST)(y);
    T hi = FA_FMA(y, rest, C(ERFC_C0));
    *lo = FA_FMA(y, rest, C(ERFC_C0) - hi);
    return hi;
}

/* erf(z) for |z| <= 0.5 */
FA_INLINE T S(erf_small)(T z) { return z * C(ERF)(z * z); }

/* a * b = p + *err exactly (FMA, else Dekker's product) */
FA_INLINE T S(two_prod)(T a, T b, T *err) {
    T p = a * b;
#if FA_HAVE_FMA
    *err = FA_FMA(a, b, -p);
#else
    T c = C(SPLIT) * a, ah = c - (c - a), al = a - ah;
    c = C(SPLIT) * b;
    T bh = c - (c - b), bl = b - bh;
    *err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
    return p;
}

/* a * b / c with one rounding (up to ~2^-2p): exact products, the remainder of the
 * division by c taken with FMA or Dekker's product */
FA_INLINE T S(mul_div)(T a, T b, T c) {
    T pl, p = S(two_prod)(a, b, &pl);
    T q = p / c, rl, r = S(two_prod)(q, c, &rl);
    return q == 0 ? q : q + (((p - r) - rl) + pl) / c;          /* keep the sign of 0 */
}

/* (nh + nl) / (dh + dl) for double-word operands, rounded once (up to ~2^-2p) */
FA_INLINE T S(div_dw)(T nh, T nl, T dh, T dl) {
    T q = nh / dh, rl, r = S(two_prod)(q, dh, &rl);
    return q == 0 ? q : q + ((((nh - r) - rl) + nl) - q * dl) / dh;
}

/* a + b = s + *err exactly (Knuth's two-sum) */
FA_INLINE T S(two_sum)(T a, T b, T *err) {
    T s = a + b, bb = s - a;
    *err = (a - (s - bb)) + (b - bb);
    return s;
}
