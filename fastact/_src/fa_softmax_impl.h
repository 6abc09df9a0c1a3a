/* fa_softmax_impl.h: the softmax family's kernels of fa_softmax.h, written once for type
 * T (included with T, U, S(name), C(name) and FA_SMX_F32 defined; SM(name) names this
 * file's functions). v = sign * x (sign -1: softmin); m the max of v; e = e^(v - m)
 * with v - m = d + de exactly (two-sum), so that no ulp of a large argument is lost.
 * float32 data is computed in float64 after the exponential; float64 data in
 * double-word where a result could cancel. The write constants (smx_consts) are, by op:
 *   fwd   softmax: k1 + k2 = 1/S         log_softmax: k1 = L = log(S)
 *   bwdy  softmax: k1 + k2 = sum(g y)    log_softmax: k1 = sum(g) (float64: and k3, the
 *         count of y > 709)
 *   bwdx, fb: k1 + k2 = 1/S; softmax: k3 = sum(g y); log_softmax: k3 = sum(g), k4 = L
 * with S = count(v == m) + rest, rest = sum(e over v < m), and L = log1p(rest) where the
 * max is unique (log_softmax at the max is -log1p(rest), exact where it is tiny); softmax
 * sums the max's e (1) with the rest (count 0: a compare and two adds fewer). float32
 * data's constants are float64 values (k2 = 0), its lanes' sums added in float64.
 * FA_SMX_H16 (float16 and bfloat16 data, computed in float and rounded once to 16 bits,
 * fa_softmax.h): float32's passes with v - m rounded to float (no two-sum) and e summed in
 * float lanes 16 terms at a time (a row's: smx_tile_sums16; a column's: smx_cols_sums),
 * whose errors the rounding to 16 bits hides. */
#if FA_SMX_H16
typedef float SM(acc_t);                /* a lane's running sum of e 2^64: 16 terms at most */
#else
typedef double SM(acc_t);
#endif

/* v - m = d + *de exactly where |d| < 2^14; beyond, e^d is 0 and de, which may be huge
 * or NaN there (an intermediate of the two-sum overflowing), is dropped */
FA_INLINE T SM(smx_diff)(T v, T m, T *de) {
    T e, d = S(two_sum)(v, -m, &e);
    *de = S(abs)(d) < (T)16384 ? e : 0;
    return d;
}

/* e^(v - m) 2^64, the exponential's argument exact: v - m = d + de (two-sum), de dropped
 * where the exponential's clamp takes d (below EXP_MIN_TAIL e is 0 or the smallest
 * subnormal number; the clamp's compare serves both, and a NaN de where v - m
 * overflows is dropped with it) */
FA_INLINE T SM(smx_e)(T v, T m) {
#if FA_SMX_H16
    return S(exp2k)(v - m, FA_TAIL);         /* (relative error |v - m| 2^-24: 2^-17 at most
                                             * where e^(v - m) is above 2^-149; exp_dw's
                                             * bits without its add of a zero dx) */
#else
    T de, d = S(two_sum)(v, -m, &de);
    return S(exp_dw)(d, d < C(EXP_MIN_TAIL) ? 0 : de, FA_TAIL);   /* the clamp's compare */
#endif
}

/* t added to a sum: float64 (float32 data: float64 terms, 2^29 times finer), or the
 * double-word (hi, lo) (float64 data) */
FA_INLINE void SM(smx_acc)(double *hi, double *lo, double t) {
#if FA_SMX_F32
    *hi += t; (void)lo;
#else
    double e, s = fa_two_sum_f64(*hi, t, &e);
    *hi = s; *lo += e;
#endif
}

/* g y added to a sum: the float64 product (float32 data), or a two-product (float64) */
FA_INLINE void SM(smx_acc_prod)(double *hi, double *lo, T g, double y) {
#if FA_SMX_F32
    *hi += (double)g * (double)y; (void)lo;
#else
    double pe, p = fa_two_prod_f64(g, y, &pe);
    pe = S(abs)(p) < S(inf)() ? pe : 0;
    SM(smx_acc)(hi, lo, p);
    *lo += pe;
#endif
}

/* the sums of a tile of rows x w elements (row stride rs), element (k, j) into column
 * (lane) j, with column j's max m[j]: see fa_softmax_api.h (fa_smx_stats); e into ev.
 * hi + lo is the sum of e 2^64 (the caller scales it back), cnt an integer count */
FA_INLINE void SM(smx_tile_sums)(int lg, int op, T sign, const T *FA_SR x, const T *FA_SR g,
                                T *FA_SR ev, ptrdiff_t rows, ptrdiff_t w, ptrdiff_t rs, const T *FA_SR m,
                                SM(acc_t) *FA_SR hi, double *FA_SR lo, int32_t *FA_SR cnt,
                                double *FA_SR hi2, double *FA_SR lo2) {
    ptrdiff_t k, j;
    if (op == FA_SMX_BWDY) {
        for (k = 0; k < rows; k++)
            for (j = 0; j < w; j++) {
                if (lg) {
                    SM(smx_acc)(&hi2[j], &lo2[j], g[k * rs + j]);
                    if (!FA_SMX_F32)            /* float64: the y past EXP_MAX (smx_bwdy_log) */
                        cnt[j] += x[k * rs + j] > C(EXP_MAX);
                } else {
                    SM(smx_acc_prod)(&hi2[j], &lo2[j], g[k * rs + j], x[k * rs + j]);
                }
            }
        return;
    }
    for (k = 0; k < rows; k++)
        for (j = 0; j < w; j++) {
            T v = sign * x[k * rs + j], es = SM(smx_e)(v, m[j]);
            int top = lg && v == m[j];        /* (softmax: the max's e, 2^64, summed) */
            if (fa_smx_keeps_e(lg, op)) ev[k * rs + j] = es;      /* for the write */
#if FA_SMX_H16
            /* es, or +0 at the max: its bits masked (a select here became a branch, a
             * product by 1 - top a blend, a conversion and a product) */
            hi[j] += S(from_bits)(S(to_bits)(es) & ((U)top - 1));
#else
            SM(smx_acc)(&hi[j], &lo[j], (double)(top ? 0 : es));
#endif
            cnt[j] += top;
            if (op != FA_SMX_FWD) {
                if (lg) SM(smx_acc)(&hi2[j], &lo2[j], g[k * rs + j]);
                else SM(smx_acc_prod)(&hi2[j], &lo2[j], g[k * rs + j], (double)es * 0x1p-64);
            }
        }
}

/* the (log, op) combinations as constants, so that each gets its own loop */
#define FA_SMX_SWITCH(CALL)                                                               \
    switch (op * 2 + (lg != 0)) {                                                        \
    case 0: CALL(0, FA_SMX_FWD); break;  case 1: CALL(1, FA_SMX_FWD); break;              \
    case 2: CALL(0, FA_SMX_BWDY); break; case 3: CALL(1, FA_SMX_BWDY); break;             \
    case 4: CALL(0, FA_SMX_BWDX); break; case 5: CALL(1, FA_SMX_BWDX); break;             \
    default: CALL(0, FA_SMX_FB); break;  case 7: CALL(1, FA_SMX_FB); break; }

/* (float32 data) whether smx_bwdy_f32 serves a kf: finite (softmax); 2^-100 <= |kf| <= 2^100
 * (log_softmax: kf m and its first power of two neither underflow nor overflow where the
 * result could be seen; a k of 0, whose 0 e^y would be NaN for y past 176, and the rest
 * take smx_bwdy_log_f64) */
FA_INLINE int SM(smx_bwdy_ok)(int lg, T kf) {
    T a = S(abs)(kf);
    return lg ? a >= (T)0x1p-100 && a <= (T)0x1p100 : a < S(inf)();
}

/* log_softmax's float64 write for float32 data (a k outside smx_bwdy_ok's range), and
 * float64 data's past EXP_MAX (smx_bwdy_log): g - k e^y
 * for any y, e^y = m 2^a 2^b (exp_split: past float64's range too), (k (m 2^a)) 2^b so
 * that a tiny k's product stays normal where it matters; a k of 0 gives g, NaN for y
 * +inf or NaN, as the exact value */
FA_INLINE T SM(smx_bwdy_log_f64)(double y, double g, double k) {
    uint64_t a, b;
    double m = fa_exp_split_f64(y, 0, &a, &b);
    double p = (k * (m * fa_pow2_f64(a))) * fa_pow2_f64(b), z = k * (y <= 0 ? 1 : y);
    return (T)(g - (k == 0 ? z : p));
}

#if FA_SMX_F32
/* the backward from y in float32 for float32 data, with k (sum(g y), or log_softmax's
 * sum(g)) rounded once to kf: softmax y (g - kf); log_softmax g - kf e^y, e^y = m 2^a 2^b
 * (exp_split: any y, the product rounded once even where it is subnormal or overflows) */
FA_INLINE T SM(smx_bwdy_f32)(int lg, T sign, T y, T g, T kf) {
    U a, b;
    T m = lg ? S(exp_split)(y, 0, &a, &b) : 0;
    return lg ? g - S(ldexp2)(kf * m, a, b) : sign * y * (g - kf);
}

/* a tile's columns' k (k1) rounded to floats into kf; whether smx_bwdy_f32 serves every
 * one, so that it serves the whole tile (a select per element between the two writes
 * cost the tile 12%) */
FA_INLINE int SM(smx_bwdy_kf)(int lg, ptrdiff_t w, const double *k1, T *kf) {
    int ok = 1;
    for (ptrdiff_t j = 0; j < w; j++) {
        kf[j] = (T)k1[j];
        ok &= SM(smx_bwdy_ok)(lg, kf[j]);
    }
    return ok;
}
#else
/* (float64 data) log_softmax's backward from y, g - k e^y: the one-rounding FMA with the
 * exponential up to EXP_MAX (709); past it (no log_softmax's output, but a user's y may
 * be +inf) smx_bwdy_log_f64, where big: in a row (a tile) whose sums pass counted such
 * a y (a select in every row cost 6-17%); each element's bits those of its own choice */
FA_INLINE T SM(smx_bwdy_log)(int big, T y, T g, T k) {
    return big && y > C(EXP_MAX) ? SM(smx_bwdy_log_f64)(y, g, k) : FA_FMA(-S(exp)(y), k, g);
}

#endif

/* (float32 data) the constant of y in smx_elem, rounded once: log_softmax's L (k1 of the
 * forward, k4 of forward_backward), softmax's 1/S 2^-64 (k1); a tile's columns convert
 * theirs and m once, not each element (the conversions were a fifth of a write) */
FA_INLINE T SM(smx_yk)(int lg, int op, double k1, double k4) {
    return FA_SMX_F32 ? (T)(lg ? (op == FA_SMX_FWD ? k1 : k4) : k1 * 0x1p-64) : 0;
}

/* one element's outputs (y in *o1 and grad_x in *o2 for fb; else the op's one output in
 * *o1) with the constants m, k1..k4, and (float32 data) mf = m and yk = smx_yk rounded;
 * ev: the e the sums pass stored (fa_smx_keeps_e) */
FA_INLINE void SM(smx_elem)(int lg, int op, T sign, T xv, T gv, T ev, double m, double k1,
                           double k2, double k3, double k4, T mf, T yk, T *o1, T *o2) {
    T *dx = op == FA_SMX_FB ? o2 : o1;
#if FA_SMX_F32
    (void)k2;
    if (op == FA_SMX_BWDY) {
        /* in float32 (smx_bwdy_f32), k = sum(g y) or sum(g) rounded once: softmax one
         * rounding each for the difference and the product, within 3u (y |g| + y sum |g y|);
         * log_softmax within 1.7u e^y |k| (e^y 0.7 ulp, k and the product half an ulp
         * each) and half an ulp of the result; inside the bound, and 16 lanes where the
         * float64 write has 8. A k outside smx_bwdy_ok's range keeps the float64 write */
        double yv = xv, gd = gv;
        T kf = (T)k1;
        if (SM(smx_bwdy_ok)(lg, kf)) *dx = SM(smx_bwdy_f32)(lg, sign, xv, gv, kf);
        else *dx = lg ? SM(smx_bwdy_log_f64)(yv, gd, k1) : (T)((double)sign * yv * (gd - k1));
        return;
    }
    /* log_softmax: (v - m) - L in float32: v - m <= 0 and L >= 0, so both roundings (and
     * L's) are within half an ulp of y's binade or below it: < 1.5 ulp */
    double p = (double)ev * 0x1p-64 * k1, gd = gv;
    T dm = sign * xv - mf;
    (void)m;
    if (op == FA_SMX_FWD) {
        /* softmax: e 2^64 times (1/S) 2^-64 in float32 (one rounding more, < 2 ulp) */
        *o1 = lg ? dm - yk : ev * yk;
        return;
    }
    if (lg) {
        *dx = (T)(gd - p * k3);
        if (op == FA_SMX_FB) *o1 = dm - yk;
    } else {
        *dx = (T)((double)sign * p * (gd - k3));
        if (op == FA_SMX_FB) *o1 = ev * yk;                       /* the forward's y */
    }
#else
    (void)mf; (void)yk;
    if (op == FA_SMX_BWDY) {
        if (lg) {
            *dx = SM(smx_bwdy_log)(1, xv, gv, k1);      /* (rows and tiles: their own loops) */
        } else {
            T tl, th = S(two_sum)(gv, -k1, &tl);
            tl = S(abs)(th) < S(inf)() ? tl : 0;
            *dx = sign * xv * (th + (tl - k2));
        }
        return;
    }
    T v = sign * xv, de, d = SM(smx_diff)(v, m, &de), p = FA_FMA(ev, k1, ev * k2) * 0x1p-64;
    if (op == FA_SMX_FWD) {
        *o1 = lg ? (d - k1) + de : p;
        return;
    }
    if (lg) {
        *dx = FA_FMA(-p, k3, gv);
        if (op == FA_SMX_FB) *o1 = (d - k4) + de;
    } else {
        *dx = sign * p * (gv - k3);
        if (op == FA_SMX_FB) *o1 = p;
    }
#endif
}

/* the max of each column of a tile (rows x w, row stride rs) into m[j], and NaN into
 * nn[j] where the column holds one: two plain selects, which vectorize at every level
 * (a select on (v > a) | (v != v) became branches; an integer max of keys ordered as
 * the floats needs 64-bit vector compares, which SSE2 lacks) */
FA_INLINE void SM(smx_tile_max)(const T *FA_SR x, ptrdiff_t rows, ptrdiff_t w, ptrdiff_t rs,
                               T sign, T *FA_SR m, T *FA_SR nn) {
    ptrdiff_t k, j;
    for (k = 0; k < rows; k++)
        for (j = 0; j < w; j++) {
            T v = sign * x[k * rs + j];
            m[j] = v > m[j] ? v : m[j];
            nn[j] = v == v ? nn[j] : v;
        }
}
/* the rows' use: not inlined, so that the lane count stays a run-time value (with the
 * constant GCC unrolled the lanes and left them scalar) */
#if defined(__clang__)
__attribute__((noinline))
#elif defined(__GNUC__)
__attribute__((noipa))
#endif
static void SM(smx_tile_max_rt)(const T *x, ptrdiff_t rows, ptrdiff_t w, ptrdiff_t rs, T sign,
                               T *m, T *nn) {
    SM(smx_tile_max)(x, rows, w, rs, sign, m, nn);
}

/* max of sign * x over n elements; NaN if any element is NaN. float (FA_SMX_F32): the
 * integer maxima of keys ordered as the floats (-0 below +0) and of |v|'s bits (a NaN's
 * above inf's), reductions the compilers vectorize and keep in registers (a short row's
 * max took 4.5x as long through the 16 lanes' tile in memory below). double: the tile
 * (SSE2 has no 64-bit integer compare). */
static double SM(smx_max)(const char *xc, ptrdiff_t n, double sign_) {
    const T *x = (const T *)xc;
    T sign = (T)sign_;
    ptrdiff_t j;
#if FA_SMX_F32
    int32_t km = INT32_MIN, am = 0;
    for (j = 0; j < n; j++) {
        int32_t u = (int32_t)S(to_bits)(sign * x[j]);
        int32_t k = u ^ ((u >> 31) & 0x7FFFFFFF), a = u & 0x7FFFFFFF;
        km = k > km ? k : km;
        am = a > am ? a : am;
    }
    if (am > 0x7F800000) return (double)S(from_bits)(0x7FC00000u);
    return (double)S(from_bits)((uint32_t)(km ^ ((km >> 31) & 0x7FFFFFFF)));
#else
    T mm[FA_SMX_LANES], nn[FA_SMX_LANES];
    ptrdiff_t rows = n / FA_SMX_LANES;
    for (j = 0; j < FA_SMX_LANES; j++) mm[j] = -S(inf)(), nn[j] = 0;
    SM(smx_tile_max_rt)(x, rows, FA_SMX_LANES, FA_SMX_LANES, sign, mm, nn);
    SM(smx_tile_max_rt)(x + rows * FA_SMX_LANES, 1, n % FA_SMX_LANES, 0, sign, mm, nn);
    T r = mm[0], q = nn[0];
    for (j = 1; j < FA_SMX_LANES; j++) {
        r = mm[j] > r ? mm[j] : r;
        q = q + nn[j];
    }
    return (double)(q == q ? r : q);
#endif
}

#if !FA_SMX_F32
/* (float64 data) smx_tile_sums of log_softmax's backward from y over rows x w (row
 * stride w), not inlined, so that w stays a run-time value: with the 16 lanes a constant
 * GCC unrolled them, then left the rows' two-sums scalar (45% of the backward's time;
 * softmax's, with the constant, vectorizes, and was 5-30% slower this way) */
#if defined(__clang__)
__attribute__((noinline))
#elif defined(__GNUC__)
__attribute__((noipa))
#endif
static void SM(smx_bwdy_log_sums_rt)(const T *x, const T *g, ptrdiff_t rows, ptrdiff_t w,
                                     int32_t *cnt, double *hi2, double *lo2) {
    SM(smx_tile_sums)(1, FA_SMX_BWDY, 1, x, g, NULL, rows, w, w, NULL, NULL, NULL, cnt, hi2,
                     lo2);
}
#endif

#if FA_SMX_H16
/* (16-bit rows) smx_tile_sums of rows x LANES elements with e summed in float lanes 16
 * rows at a time (at most 15 roundings: within 2^-20 relative), each added to the
 * float64 lanes hi */
FA_INLINE void SM(smx_tile_sums16)(int lg, int op, T sign, const T *FA_SR x,
                                  const T *FA_SR g, T *FA_SR ev, ptrdiff_t rows, ptrdiff_t w,
                                  const T *FA_SR m, double *FA_SR hi, double *FA_SR lo,
                                  int32_t *FA_SR cnt, double *FA_SR hi2, double *FA_SR lo2) {
    for (ptrdiff_t k = 0; k < rows; k += 16) {
        float hf[FA_SMX_LANES];
        ptrdiff_t j, r = rows - k < 16 ? rows - k : 16;
        for (j = 0; j < FA_SMX_LANES; j++) hf[j] = 0;
        SM(smx_tile_sums)(lg, op, sign, x + k * w, g ? g + k * w : g, ev ? ev + k * w : ev, r,
                         w, w, m, hf, lo, cnt, hi2, lo2);
        fa_smx_add_lanes(hi, hf);
    }
}
#endif

/* a block's sums in LANES lanes (element i in lane i % LANES), the lanes then added
 * pairwise (lane j + h into lane j, h = LANES/2, ..., 1) into *s; e stored into ev
 * (FA_SMX_H16: of a piece of up to FA_SMX_HROW elements, smx_block_sums below) */
FA_INLINE void SM(smx_sums_body)(int lg, int op, T sign, const T *x, const T *g, T *ev,
                                ptrdiff_t n, fa_smx_stats *s) {
    T m[FA_SMX_LANES];
    int32_t cnt[FA_SMX_LANES];
    double hi[FA_SMX_LANES], lo[FA_SMX_LANES], hi2[FA_SMX_LANES], lo2[FA_SMX_LANES];
    ptrdiff_t j, h, rows = n / FA_SMX_LANES, tail = n % FA_SMX_LANES, r = rows * FA_SMX_LANES;
    for (j = 0; j < FA_SMX_LANES; j++) {
        m[j] = (T)s->m;
        hi[j] = lo[j] = cnt[j] = hi2[j] = lo2[j] = 0;
    }
#if !FA_SMX_F32
    if (op == FA_SMX_BWDY && lg) {
        SM(smx_bwdy_log_sums_rt)(x, g, rows, FA_SMX_LANES, cnt, hi2, lo2);
        SM(smx_bwdy_log_sums_rt)(x + r, g + r, 1, tail, cnt, hi2, lo2);
    } else
#endif
#if FA_SMX_H16
    SM(smx_tile_sums16)(lg, op, sign, x, g, ev, rows, FA_SMX_LANES, m, hi, lo, cnt, hi2, lo2);
    SM(smx_tile_sums16)(lg, op, sign, x + r, g ? g + r : g, ev ? ev + r : ev, tail != 0, tail,
                       m, hi, lo, cnt, hi2, lo2);
#else
    {
        SM(smx_tile_sums)(lg, op, sign, x, g, ev, rows, FA_SMX_LANES, FA_SMX_LANES, m, hi, lo,
                         cnt, hi2, lo2);
        if (tail)
            SM(smx_tile_sums)(lg, op, sign, x + r, g ? g + r : g, ev ? ev + r : ev, 1, tail, 0,
                             m, hi, lo, cnt, hi2, lo2);
    }
#endif
#if FA_SMX_F32
    /* float32 data: plain float64 adds (the sums stay within 2^-44 relative, far below
     * float32's rounding), in registers (a two-sum's latency per level, and the lanes'
     * round trips through memory, cost short rows) */
    (void)h;
    s->hi = fa_smx_pairwise(hi) * 0x1p-64; s->lo = 0;
    s->cnt = fa_smx_pairwise_count(cnt);
    s->hi2 = fa_smx_pairwise(hi2); s->lo2 = 0;
#else
    for (h = FA_SMX_LANES / 2; h >= 1; h /= 2)
        for (j = 0; j < h; j++) {
            double e, t;
            if (op != FA_SMX_BWDY || lg)      /* (log_softmax's backward from y's too) */
                cnt[j] += cnt[j + h];
            if (op != FA_SMX_BWDY) {          /* (the sums an op has no use for are 0) */
                t = fa_two_sum_f64(hi[j], hi[j + h], &e);
                hi[j] = t; lo[j] += lo[j + h] + e;
            }
            if (op != FA_SMX_FWD) {
                t = fa_two_sum_f64(hi2[j], hi2[j + h], &e);
                hi2[j] = t; lo2[j] += lo2[j + h] + e;
            }
        }
    s->hi = hi[0] * 0x1p-64; s->lo = lo[0] * 0x1p-64; s->cnt = (double)cnt[0];
    s->hi2 = hi2[0]; s->lo2 = lo2[0];
#endif
}

/* a block's sums into *s (s->m set); FA_SMX_H16: by pieces of FA_SMX_HROW elements, each
 * added to the block's in order (fa_smx_add), as fa_softmax.h's 16-bit passes by pieces
 * add them: the same sums whichever path a row takes */
FA_INLINE void SM(smx_block_sums)(int lg, int op, T sign, const T *x, const T *g, T *ev,
                                 ptrdiff_t n, fa_smx_stats *s) {
#if FA_SMX_H16
    fa_smx_stats sum = {s->m, 0, 0, 0, 0, 0}, piece;
    for (ptrdiff_t b = 0; b < n; b += FA_SMX_HROW) {
        piece.m = s->m;
        SM(smx_sums_body)(lg, op, sign, x + b, g ? g + b : g, ev ? ev + b : ev,
                          n - b < FA_SMX_HROW ? n - b : FA_SMX_HROW, &piece);
        fa_smx_add(&sum, &piece);
    }
    *s = sum;
#else
    SM(smx_sums_body)(lg, op, sign, x, g, ev, n, s);
#endif
}
static void SM(smx_sums)(int lg, int op, double sign, const char *x, const char *g, char *ev,
                        ptrdiff_t n, fa_smx_stats *s) {
#define FA_SMX_CALL(L, O) SM(smx_block_sums)(L, O, (T)sign, (const T *)x, (const T *)g,  \
                                            (T *)ev, n, s)
    FA_SMX_SWITCH(FA_SMX_CALL)
#undef FA_SMX_CALL
}

#if FA_SMX_F32
/* log(cnt + rest), cnt >= 1, in float64 for float32 data (within 2 float64 ulp; inlined,
 * where libm's log1p was a call of about 17 ns per row): log1p(rest) where cnt = 1 and
 * rest <= 1 (rest's digits kept where it is tiny), else k ln2 + log1p(q - 1) with
 * cnt + rest = q 2^k, q in [1, 2) */
FA_INLINE double SM(smx_log_sum)(double cnt, double rest, double sum) {
    if (cnt == 1 && rest <= 1) return fa_log1p01_f64(rest);
    uint64_t b = fa_to_bits_f64(sum);
    double q = fa_from_bits_f64((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    return (double)((int)(b >> 52) - 1023) * 0.69314718055994530942 + fa_log1p01_f64(q - 1);
}
#endif

FA_INLINE void SM(smx_consts_body)(int lg, int op, const fa_smx_stats *s, fa_smx_consts *c) {
    c->m = s->m;
    c->k1 = c->k2 = c->k3 = c->k4 = 0;
    if (op == FA_SMX_BWDY) {
        double t = s->hi2 + s->lo2;
        c->k1 = t;
        c->k2 = s->lo2 - (t - s->hi2);
        c->k3 = s->cnt;                 /* (float64 log_softmax: smx_bwdy_log's count) */
        return;
    }
#if FA_SMX_F32
    /* float32 data: float64 constants, rounded once each (k2 = 0) */
    double rest = s->hi + s->lo, sum = s->cnt + rest, r = 1.0 / sum;
    double lse = lg ? SM(smx_log_sum)(s->cnt, rest, sum) : 0;
    if (op == FA_SMX_FWD) {
        c->k1 = lg ? lse : r;
        return;
    }
    c->k1 = r;
    c->k3 = lg ? s->hi2 + s->lo2 : (s->hi2 + s->lo2) * r;
    c->k4 = lse;
#else
    double e, sh = fa_two_sum_f64(s->cnt, s->hi, &e), sl = e + s->lo, t = sh + sl;
    sl = sl - (t - sh);
    sh = t;
    double pe, rh = 1.0 / sh, p = fa_two_prod_f64(rh, sh, &pe);
    double rl = (((1.0 - p) - pe) - rh * sl) * rh;
    double lse = lg ? (s->cnt == 1 ? log1p(s->hi + s->lo) : log(sh + sl)) : 0;
    if (op == FA_SMX_FWD) {
        if (lg) c->k1 = lse;
        else { c->k1 = rh; c->k2 = rl; }
        return;
    }
    c->k1 = rh;
    c->k2 = rl;
    if (lg) {
        c->k3 = s->hi2 + s->lo2;
        c->k4 = lse;
    } else {
        c->k3 = (s->hi2 + s->lo2) * rh + s->hi2 * rl;
    }
#endif
}

FA_INLINE void SM(smx_write_body)(int lg, int op, T sign, const T *FA_SR x, const T *FA_SR g,
                                 T *FA_SR o1, T *FA_SR o2, ptrdiff_t n, fa_smx_consts c) {
    ptrdiff_t i;
    T dummy;
#if FA_SMX_F32
    T kf = (T)c.k1;                     /* the backward from y: the row's choice */
    if (op == FA_SMX_BWDY && SM(smx_bwdy_ok)(lg, kf)) {
        for (i = 0; i < n; i++) o1[i] = SM(smx_bwdy_f32)(lg, sign, x[i], g[i], kf);
        return;
    }
#else
    if (op == FA_SMX_BWDY && lg) {      /* k3: the count of y past EXP_MAX */
        if (c.k3 != 0)
            for (i = 0; i < n; i++) o1[i] = SM(smx_bwdy_log)(1, x[i], g[i], c.k1);
        else
            for (i = 0; i < n; i++) o1[i] = SM(smx_bwdy_log)(0, x[i], g[i], c.k1);
        return;
    }
#endif
    T mf = (T)c.m, yk = SM(smx_yk)(lg, op, c.k1, c.k4);
    for (i = 0; i < n; i++)
        SM(smx_elem)(lg, op, sign, x[i], op == FA_SMX_FWD ? 0 : g[i],
                    fa_smx_keeps_e(lg, op) ? o1[i] : 0, c.m, c.k1, c.k2, c.k3, c.k4, mf, yk,
                    &o1[i], op == FA_SMX_FB ? &o2[i] : &dummy);
}
static void SM(smx_write)(int lg, int op, double sign, const char *x, const char *g,
                         char *o1, char *o2, ptrdiff_t n, const fa_smx_consts *c) {
#define FA_SMX_CALL(L, O) SM(smx_write_body)(L, O, (T)sign, (const T *)x, (const T *)g,  \
                                            (T *)o1, (T *)o2, n, *c)
    FA_SMX_SWITCH(FA_SMX_CALL)
#undef FA_SMX_CALL
}

/* one row's write constants (a long row split over threads, fastact._runner) */
static void SM(smx_consts)(int lg, int op, const fa_smx_stats *s, fa_smx_consts *c) {
    SM(smx_consts_body)(lg, op, s, c);
}

/* the write constants of r rows of a group from their statistics (st[0..5][i]: m, hi,
 * lo, cnt, hi2, lo2) into k[0..4][i] (m, k1..k4): one loop over the rows, which the
 * compilers vectorize (a short row's log and division, one row at a time, had cost as
 * much as its passes); each row's constants are smx_consts's */
FA_INLINE void SM(smx_group_consts_body)(int lg, int op, ptrdiff_t r,
                                        double (*FA_SR st)[FA_SMX_GROUP],
                                        double (*FA_SR k)[FA_SMX_GROUP]) {
    for (ptrdiff_t i = 0; i < r; i++) {
        fa_smx_stats s = {st[0][i], st[1][i], st[2][i], st[3][i], st[4][i], st[5][i]};
        fa_smx_consts c;
        SM(smx_consts_body)(lg, op, &s, &c);
        k[0][i] = c.m; k[1][i] = c.k1; k[2][i] = c.k2; k[3][i] = c.k3; k[4][i] = c.k4;
    }
}
static void SM(smx_group_consts)(int lg, int op, ptrdiff_t r, double (*st)[FA_SMX_GROUP],
                                double (*k)[FA_SMX_GROUP]) {
#define FA_SMX_CALL(L, O) SM(smx_group_consts_body)(L, O, r, st, k)
    FA_SMX_SWITCH(FA_SMX_CALL)
#undef FA_SMX_CALL
}

/* count whole rows (fa_smx_rows_with, fa_softmax.h) */
static void SM(smx_rows)(int lg, int op, double sign, const char *x, const char *g, char *o1,
                        char *o2, ptrdiff_t n, ptrdiff_t count, unsigned char *flags) {
    fa_smx_rows_with(SM(smx_max), SM(smx_sums), SM(smx_group_consts), SM(smx_write),
                     (ptrdiff_t)sizeof(T), lg, op, sign, x, g, o1, o2, n, count, flags);
}

/* ---- tiles of columns (a reduction over a non-contiguous axis) ---- */

/* a tile's columns (w <= FA_SMX_TILE) before its passes: max -inf (m, and nn the NaN
 * found), sums 0 (fa_smx_tile_sums's), flags 0 */
FA_INLINE void SM(smx_cols_start)(ptrdiff_t w, T *m, T *nn, double *hi, double *lo,
                                 int32_t *cnt, double *hi2, double *lo2,
                                 unsigned char *flags) {
    for (ptrdiff_t j = 0; j < w; j++) {
        m[j] = -S(inf)();
        nn[j] = 0;
        hi[j] = lo[j] = cnt[j] = hi2[j] = lo2[j] = 0;
        flags[j] = 0;
    }
}

/* after the max: the columns holding a NaN or whose max is infinite flagged (their m 0:
 * harmless, the caller rewrites them) */
FA_INLINE void SM(smx_cols_flag)(ptrdiff_t w, T *m, const T *nn, unsigned char *flags) {
    for (ptrdiff_t j = 0; j < w; j++) {
        flags[j] = !(S(abs)(m[j]) < S(inf)()) || nn[j] != nn[j];
        m[j] = flags[j] ? 0 : m[j];
    }
}

/* after the sums: each column's write constants, k[0][j] = m and k[1..4][j] = k1..k4 */
FA_INLINE void SM(smx_cols_consts)(int lg, int op, ptrdiff_t w, const T *m, const double *hi,
                                  const double *lo, const int32_t *cnt, const double *hi2,
                                  const double *lo2, double (*k)[FA_SMX_TILE]) {
    for (ptrdiff_t j = 0; j < w; j++) {
        fa_smx_stats st = {m[j], hi[j] * 0x1p-64, lo[j] * 0x1p-64, (double)cnt[j], hi2[j],
                           lo2[j]};
        fa_smx_consts c;
        SM(smx_consts_body)(lg, op, &st, &c);
        k[0][j] = c.m; k[1][j] = c.k1; k[2][j] = c.k2; k[3][j] = c.k3; k[4][j] = c.k4;
    }
}

/* each column's m and smx_yk in T, for smx_elem */
FA_INLINE void SM(smx_cols_yk)(int lg, int op, ptrdiff_t w, double (*k)[FA_SMX_TILE], T *mf,
                              T *yk) {
    for (ptrdiff_t j = 0; j < w; j++) {
        mf[j] = (T)k[0][j];
        yk[j] = SM(smx_yk)(lg, op, k[1][j], k[4][j]);
    }
}

/* rows at..at + r - 1 of a tile's columns of n rows (x, g and ev from row at) summed
 * into hi (smx_tile_sums); FA_SMX_H16: e summed in the float lanes hf 16 rows at a time,
 * counted from the columns' first row, each group added to hi at its end, so that a
 * tile read whole or a few rows at a time (fa_softmax.h) gives the same sums */
FA_INLINE void SM(smx_cols_sums)(int lg, int op, T sign, const T *FA_SR x, const T *FA_SR g,
                                T *FA_SR ev, ptrdiff_t at, ptrdiff_t r, ptrdiff_t n,
                                ptrdiff_t w, ptrdiff_t rs, const T *FA_SR m,
                                SM(acc_t) *FA_SR hf, double *FA_SR hi, double *FA_SR lo,
                                int32_t *FA_SR cnt, double *FA_SR hi2, double *FA_SR lo2) {
#if FA_SMX_H16
    ptrdiff_t k, end, j, o;
    for (k = at; k < at + r; k = end) {
        end = (k / 16 + 1) * 16 < at + r ? (k / 16 + 1) * 16 : at + r;
        o = (k - at) * rs;
        if (k % 16 == 0)
            for (j = 0; j < w; j++) hf[j] = 0;
        SM(smx_tile_sums)(lg, op, sign, x + o, g ? g + o : g, ev ? ev + o : ev, end - k, w, rs,
                         m, hf, lo, cnt, hi2, lo2);
        if (end % 16 == 0 || end == n)
            for (j = 0; j < w; j++) hi[j] += hf[j];
    }
#else
    (void)at; (void)n; (void)hf;
    SM(smx_tile_sums)(lg, op, sign, x, g, ev, r, w, rs, m, hi, lo, cnt, hi2, lo2);
#endif
}

FA_INLINE void SM(smx_cols_body)(int lg, int op, T sign, const T *FA_SR x, const T *FA_SR g,
                                T *FA_SR o1, T *FA_SR o2, ptrdiff_t n, ptrdiff_t w,
                                ptrdiff_t rs, unsigned char *flags) {
    T m[FA_SMX_TILE], nn[FA_SMX_TILE];
    int32_t cnt[FA_SMX_TILE];
    double hi[FA_SMX_TILE], lo[FA_SMX_TILE], hi2[FA_SMX_TILE], lo2[FA_SMX_TILE],
        k[5][FA_SMX_TILE];
    ptrdiff_t i, j;
    T dummy;
    SM(smx_cols_start)(w, m, nn, hi, lo, cnt, hi2, lo2, flags);
    if (op != FA_SMX_BWDY) {
        SM(smx_tile_max)(x, n, w, rs, sign, m, nn);
        SM(smx_cols_flag)(w, m, nn, flags);
    }
#if FA_SMX_H16
    SM(acc_t) hf[FA_SMX_TILE];
#else
    SM(acc_t) *hf = NULL;
#endif
    SM(smx_cols_sums)(lg, op, sign, x, g, o1, 0, n, n, w, rs, m, hf, hi, lo, cnt, hi2, lo2);
    SM(smx_cols_consts)(lg, op, w, m, hi, lo, cnt, hi2, lo2, k);
    T mf[FA_SMX_TILE], yk[FA_SMX_TILE];
    SM(smx_cols_yk)(lg, op, w, k, mf, yk);
#if FA_SMX_F32
    if (op == FA_SMX_BWDY) {
        T kf[FA_SMX_TILE];
        if (SM(smx_bwdy_kf)(lg, w, k[1], kf)) {
            for (i = 0; i < n; i++)
                for (j = 0; j < w; j++)
                    o1[i * rs + j] = SM(smx_bwdy_f32)(lg, sign, x[i * rs + j], g[i * rs + j],
                                                     kf[j]);
            return;
        }
    }
#else
    if (op == FA_SMX_BWDY && lg) {      /* each column's count of y past EXP_MAX */
        int32_t big = 0;
        for (j = 0; j < w; j++) big |= cnt[j];
        if (big)
            for (i = 0; i < n; i++)
                for (j = 0; j < w; j++)
                    o1[i * rs + j] = SM(smx_bwdy_log)(1, x[i * rs + j], g[i * rs + j], k[1][j]);
        else
            for (i = 0; i < n; i++)
                for (j = 0; j < w; j++)
                    o1[i * rs + j] = SM(smx_bwdy_log)(0, x[i * rs + j], g[i * rs + j], k[1][j]);
        return;
    }
#endif
    for (i = 0; i < n; i++)
        for (j = 0; j < w; j++)
            SM(smx_elem)(lg, op, sign, x[i * rs + j], op == FA_SMX_FWD ? 0 : g[i * rs + j],
                        fa_smx_keeps_e(lg, op) ? o1[i * rs + j] : 0, k[0][j], k[1][j],
                        k[2][j], k[3][j], k[4][j], mf[j], yk[j], &o1[i * rs + j],
                        op == FA_SMX_FB ? &o2[i * rs + j] : &dummy);
}
static void SM(smx_cols)(int lg, int op, double sign, const char *x, const char *g, char *o1,
                        char *o2, ptrdiff_t n, ptrdiff_t w, ptrdiff_t rs, unsigned char *flags) {
#define FA_SMX_CALL(L, O) SM(smx_cols_body)(L, O, (T)sign, (const T *)x, (const T *)g,   \
                                           (T *)o1, (T *)o2, n, w, rs, flags)
    FA_SMX_SWITCH(FA_SMX_CALL)
#undef FA_SMX_CALL
}
