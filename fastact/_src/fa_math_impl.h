/* fa_math_impl.h: the math of fa_math.h, written once for a floating type T.
 * Included by fa_math.h with T (the type), U/I (unsigned/signed integers of T's width),
 * S(name) (the suffixed function name) and C(name) (the type's constants) defined.
 * Error bounds are in ulp of the result, measured by tests/test_accuracy.py. */

typedef union { T f; U u; } S(bits_t);

FA_INLINE U S(to_bits)(T x) { S(bits_t) b; b.f = x; return b.u; }
FA_INLINE T S(from_bits)(U u) { S(bits_t) b; b.u = u; return b.f; }
FA_INLINE T S(inf)(void) { return S(from_bits)(C(INF_BITS)); }
#if defined(__GNUC__) || defined(__clang__)
/* the builtins vectorize as float operations (bit operations on the integer view get
 * merged into integer selects, which SSE2 cannot do for 64-bit lanes) */
FA_INLINE T S(abs)(T x) { return _Generic(x, float: __builtin_fabsf, default: __builtin_fabs)(x); }
FA_INLINE T S(copysign)(T mag, T sgn) {
    return _Generic(mag, float: __builtin_copysignf, default: __builtin_copysign)(mag, sgn);
}
FA_INLINE T S(sqrt)(T x) { return _Generic(x, float: __builtin_sqrtf, default: __builtin_sqrt)(x); }
#else
FA_INLINE T S(sqrt)(T x) { return sizeof(T) == 4 ? (T)sqrtf((float)x) : (T)sqrt((double)x); }
FA_INLINE T S(abs)(T x) { return S(from_bits)(S(to_bits)(x) & ~C(SIGN)); }
/* |mag| with the sign of sgn */
FA_INLINE T S(copysign)(T mag, T sgn) {
    return S(from_bits)((S(to_bits)(mag) & ~C(SIGN)) | (S(to_bits)(sgn) & C(SIGN)));
}
#endif
/* x limited to [-m, m]; NaN stays NaN. On |x|, then the sign: one compare, where a
 * two-sided clamp takes four mask instructions and is slower. */
FA_INLINE T S(limit)(T x, T m) {
    T a = S(abs)(x);
    return S(copysign)(a > m ? m : a, x);
}
/* x limited to [-m, m] for a number x (m > 0); a NaN x gives +-m, so the caller makes
 * the results of a NaN x NaN at the end. The minimum is taken on the bits of |x| as
 * integers, one instruction, where GCC spreads limit's float select over everything its
 * result feeds (at AVX2, a blend and a constant per use: gelu_tanh's backward had 17
 * blends, 8 with this). double needs a 64-bit compare: without one (SSE2) the float
 * select. silu and mish, whose selects GCC keeps, gained nothing and lost the NaN step. */
FA_INLINE T S(limit_num)(T x, T m) {
    T a = S(abs)(x);
    I ab = (I)S(to_bits)(a), mb = (I)S(to_bits)(m);
    T lim = sizeof(T) == 4 || FA_HAVE_CMP64 ? S(from_bits)((U)(ab < mb ? ab : mb))
                                            : (a > m ? m : a);
    return S(copysign)(lim, x);
}

/* max(a, m) for a >= 0 or NaN (which stays), m > 0: the lower clamp that keeps an
 * argument's powers and products normal (a subnormal costs a microcode assist per
 * vector). On the bits, as limit_num: a select against the constant m, GCC spreads over
 * everything the result feeds, computed on a too, subnormals included. double without
 * a 64-bit compare (SSE2): the select. */
FA_INLINE T S(at_least)(T a, T m) {
    U ab = S(to_bits)(a), mb = S(to_bits)(m);                     /* (any NaN above m) */
    return sizeof(T) == 4 || FA_HAVE_CMP64 ? S(from_bits)(ab > mb ? ab : mb)
                                           : (a < m ? m : a);
}

/* a * b = p + *err exactly (FMA, else Dekker's product) */
FA_INLINE T S(two_prod)(T a, T b, T *err) {
    T p = a * b;
#if FA_HAVE_FMA
    *err = FA_FMA(a, b, -p);
#else
    if (sizeof(T) == 4) {
        /* float: each operand split on its bits, 12 significant bits each (the low 12
         * cleared; the rest exact), so that the four partial products are exact and
         * nothing is scaled. Veltkamp's split below, vectorized, had GCC compute the
         * scaled operands' products in every lane: (a 2^-64)^2 is subnormal for |a| < 2,
         * and each such product took a microcode assist (60x slower at SSE2) */
        T ah = S(from_bits)(S(to_bits)(a) & (U)0xFFFFF000u), al = a - ah;
        T bh = S(from_bits)(S(to_bits)(b) & (U)0xFFFFF000u), bl = b - bh;
        *err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
        return p;
    }
    /* double: Veltkamp's split; operands beyond SPLIT_MAX are scaled by 2^-64 for it
     * (which would overflow) and the error scaled back */
    int big_a = S(abs)(a) > C(SPLIT_MAX), big_b = S(abs)(b) > C(SPLIT_MAX);
    a = a * (big_a ? C(TAIL_INV) : 1);
    b = b * (big_b ? C(TAIL_INV) : 1);
    T c = C(SPLIT) * a, ah = c - (c - a), al = a - ah;
    c = C(SPLIT) * b;
    T bh = c - (c - b), bl = b - bh;
    *err = ((((ah * bh - a * b) + ah * bl + al * bh) + al * bl) * (big_a ? C(TAIL) : 1))
           * (big_b ? C(TAIL) : 1);
#endif
    return p;
}

/* a + b = s + *err exactly (Knuth's two-sum) */
FA_INLINE T S(two_sum)(T a, T b, T *err) {
    T s = a + b, bb = s - a;
    *err = (a - (s - bb)) + (b - bb);
    return s;
}

/* a * b + c: FMA's one rounding, else nearly (float: in double, the product exact;
 * double: Dekker's product and Knuth's sum, within ~2^-2p), for the steps where an
 * unfused product's or sum's rounding would count in full */
FA_INLINE T S(fma_acc)(T a, T b, T c) {
#if FA_HAVE_FMA
    return FA_FMA(a, b, c);
#else
    if (sizeof(T) == 4)
        return (T)((double)a * (double)b + (double)c);
    T pl, p = S(two_prod)(a, b, &pl), sl, s = S(two_sum)(p, c, &sl);
    return s + (sl + pl);
#endif
}

/* (a * b + c) / d with one rounding (up to ~2^-2p), given rd within a few ulp of 1 / d
 * (finite, nonzero; d normal: the callers' are 1 / d rounded, or its square, within 6
 * ulp): the product exact, the quotient s rd corrected with the exact remainder, which
 * leaves about the square of rd's relative error. No division: s / d gave the same bits
 * (gelu-tanh's and mish's f' and g f' on 1.6M inputs of each type, with the specials,
 * at every level) and cost 3-10% of their backward (a division holds one port for
 * about 10 cycles at AVX-512 on Intel). Keeps the sign of a zero result; c = -0.0 adds
 * nothing (+0.0 would turn -0 into +0). */
FA_INLINE T S(mul_div)(T a, T b, T c, T d, T rd) {
    T pl, p = S(two_prod)(a, b, &pl), sl, s = S(two_sum)(p, c, &sl);
    T q = s * rd, rl, r = S(two_prod)(q, d, &rl);
    return q == 0 ? q : q + ((((s - r) - rl) + (sl + pl)) * rd);
}

/* (nh + nl) / (dh + dl) for double-word operands, rounded once (up to ~2^-2p), given
 * rdh ~ 1 / dh */
FA_INLINE T S(div_dw)(T nh, T nl, T dh, T dl, T rdh) {
    T q = nh * rdh, rl, r = S(two_prod)(q, dh, &rl);
    return q == 0 ? q : q + ((((nh - r) - rl) + nl) - q * dl) * rdh;
}


/* 2^n for an integer n (two's complement in U) with 0 <= n + bias <= 2 * bias + 1:
 * built from its bits; n = -bias gives 0 and n = bias + 1 gives inf. */
FA_INLINE T S(pow2)(U n) { return S(from_bits)((n + C(BIAS)) << C(MANT)); }

/* The exponentials below are for arguments up to EXP_MAX (every caller passes x <= 0,
 * or uses the result only in a branch a select discards); above it the result is
 * unspecified. Only the lower end is clamped, at a point where 2^(k + tail) is exactly
 * zero, so underflow flushes to 0 without a select: the two-sided clamp cost a third of
 * sigmoid's time in mask instructions. NaN stays NaN, -inf gives 0. */

/* max(x, lo) = k ln2 + r with |r| <= 0.347 (Cody-Waite): returns r, stores k. The
 * rounding to an integer adds and subtracts 1.5 * 2^MANT, whose low bits then hold k. */
FA_INLINE T S(exp_reduce)(T x, T lo, U *k) {
    x = x < lo ? lo : x;
    T t = FA_FMA(x, C(LOG2E), C(MAGIC)), kf = t - C(MAGIC);
    *k = S(to_bits)(t) - C(MAGIC_BITS);
    T r = FA_FMA(-kf, C(LN2_HI), x);                   /* exact: k LN2_HI has few bits */
    return FA_FMA(-kf, C(LN2_LO), r);
}

/* e^r - 1 and e^r for |r| <= 0.347: r + r^2 P(r), and 1 + r (1 + r P(r)) rounded once */
FA_INLINE T S(expm1_core)(T r) { return FA_FMA(r, r * C(EXP)(r), r); }
/* exp_core with its last rounding kept: e^r = hi + *l (1 - hi: exact, Sterbenz) */
FA_INLINE T S(exp_core_hl)(T r, T *l) {
    T q = FA_FMA(r, C(EXP)(r), 1), hi = FA_FMA(r, q, 1);
    *l = FA_FMA(r, q, 1 - hi);
    return hi;
}
FA_INLINE T S(exp_core)(T r) { T l; return S(exp_core_hl)(r, &l); }

/* e^(x + dx) * 2^tail = hi + *lo, for a small correction dx and tail 0 or FA_TAIL: the
 * last step's rounding kept in *lo (|error| ~0.35 ulp before it). Below the smallest
 * normal number the result is rounded or flushed. x is clamped below at lo (the
 * EXP_MIN of the tail, or -inf where the caller's x stays above it: no instruction). */
FA_INLINE T S(exp_dw_hl)(T x, T dx, U tail, T lo, T *l) {
    U k;
    T r = S(exp_reduce)(x, lo, &k) + dx;
    T el, e = S(exp_core_hl)(r, &el), sc = S(pow2)(k + tail);
    *l = el * sc;
    return e * sc;
}

/* exp_dw_hl's hi alone (the compiler drops *l's instructions). <0.7 ulp */
FA_INLINE T S(exp_dw)(T x, T dx, U tail) {
    T l;
    return S(exp_dw_hl)(x, dx, tail, tail ? C(EXP_MIN_TAIL) : C(EXP_MIN), &l);
}

/* e^x * 2^tail: exp_dw without dx (adding a zero is an instruction: -0 + 0 is +0) */
FA_INLINE T S(exp2k)(T x, U tail) {
    U k;
    T r = S(exp_reduce)(x, tail ? C(EXP_MIN_TAIL) : C(EXP_MIN), &k);
    return S(exp_core)(r) * S(pow2)(k + tail);
}
FA_INLINE T S(exp)(T x) { return S(exp2k)(x, 0); }

/* c e^(x + dx) for x of either sign and any size, a small correction dx and any
 * factor c, in two steps: m = e^r (returned) with k1, k2 stored, then ldexp2(c m, k1, k2)
 * = c m 2^k1 2^k2 with k1 = floor(k / 2), k2 = k - k1. Neither power of two overflows or
 * is subnormal where c e^x is a normal number (the last product rounds a subnormal
 * result once); the clamps give 0 (2^k1 = 0) for x below LO and inf above HI. A result
 * within a factor 2 of the smallest normal number may still flush when |c| is within a
 * factor 2 of the largest finite number. NaN stays NaN. <0.7 ulp before c */
FA_INLINE void S(split_k)(U k, U *k1, U *k2) {
    *k1 = ((k + 4096u) >> 1) - 2048u;           /* floor(k / 2), logical shifts only */
    *k2 = k - *k1;
}
FA_INLINE T S(exp_split_hl)(T x, T dx, U *k1, U *k2, T *l) {
    U k;
    T r = S(exp_reduce)(x > C(EXP_FULL_HI) ? C(EXP_FULL_HI) : x, C(EXP_FULL_LO), &k) + dx;
    S(split_k)(k, k1, k2);
    return S(exp_core_hl)(r, l);
}
/* exp_split_hl's m alone (the compiler drops *l's instructions) */
FA_INLINE T S(exp_split)(T x, T dx, U *k1, U *k2) {
    T l;
    return S(exp_split_hl)(x, dx, k1, k2, &l);
}
FA_INLINE T S(ldexp2)(T m, U k1, U k2) { return (m * S(pow2)(k1)) * S(pow2)(k2); }

/* e^x - 1, keeping -0.0 and tiny x exact. <2 ulp */
FA_INLINE T S(expm1)(T x) {
    U k;
    T r = S(exp_reduce)(x, C(EXPM1_MIN), &k), q = S(expm1_core)(r);
    T s = S(pow2)(k), res = s * q + (s - 1);
    return x == 0 ? x : res;
}

/* expm1(x), and e^x = m 2^k with exp_split's clamps, from one reduction and one
 * polynomial (elu's forward and derivative), for x < 0 (-0 gives +0; above 0 both are
 * unspecified); the same bits as expm1 and exp_split there */
FA_INLINE T S(expm1_split)(T x, T *m, U *k) {
    T r = S(exp_reduce)(x, C(EXP_FULL_LO), k), q = S(expm1_core)(r), s = S(pow2)(*k);
    *m = S(exp_core)(r);
    return x < C(EXPM1_MIN) ? -1 : s * q + (s - 1);       /* expm1's clamp: -1 below */
}

/* (1 + e)^2 with one rounding where FMA is available */
FA_INLINE T S(sq1p)(T e) { return FA_FMA(e, 2 + e, 1); }

/* (1 + e)^2 rounded once, also without FMA (1 + e = d + dl exactly, d^2 exact) */
FA_INLINE T S(sq1p_exact)(T e) {
#if FA_HAVE_FMA
    return S(sq1p)(e);
#else
    T d = 1 + e, dl = e - (d - 1), pl, p = S(two_prod)(d, d, &pl);
    return p + (pl + 2 * d * dl);
#endif
}

/* tanh(x), and 1 - tanh(x)^2 in *d: a polynomial below |x| = 1, else through
 * u = e^-2|x| (which also keeps the derivative's tail); *q = 1 - |tanh x| = 2u / (1 + u)
 * unrounded by the subtraction, for |x| >= 1. <2 ulp. The polynomial's x^2 is held at
 * TANH_A0^2 and up (below, tanh x rounds to x: x TANH_A0^2 / 3 is below a quarter ulp
 * of it), so that its powers are not subnormal (a microcode assist per vector, for
 * |x| < 3e-5). (u held at 2^-60 and up likewise, for |x| past 44: 7x faster there, 8%
 * slower on ordinary data at AVX-512; not kept.) */
#define TANH_A0 ((T)(sizeof(T) == 4 ? 0x1p-13 : 0x1p-28))
FA_INLINE T S(tanh_d)(T x, T *d, T *q) {
    T a = S(abs)(x), w = S(at_least)(a * a, TANH_A0 * TANH_A0);
    T small = a + a * (w * C(TANH)(w));                         /* |tanh x|, |x| < 1 */
    T us = S(exp2k)(-2 * a, FA_TAIL), u = us * C(TAIL_INV);   /* u 2^64: tail stays normal */
    *q = 2 * u / (1 + u);
    *d = a < (T)0.5 ? (1 - small) * (1 + small) : 4 * us / S(sq1p)(u) * C(TAIL_INV);
    /* the sign once, after the select (a select of two bit patterns does not vectorize
     * for double on SSE2); keeps -0.0 */
    return S(copysign)(a < 1 ? small : 1 - *q, x);
}
#undef TANH_A0

/* x - tanh(x) for |x| < 1, without cancellation; the polynomial's argument held at
 * 2^-28 (float) or 2^-56 (double) and up, where its value moves the result by less than
 * a quarter ulp, so that its powers stay normal */
FA_INLINE T S(tanhshrink_core)(T x) {
    T w = x * x, wc = S(at_least)(w, (T)(sizeof(T) == 4 ? 0x1p-28 : 0x1p-56));
    return -(x * (w * C(TANH)(wc)));
}

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
