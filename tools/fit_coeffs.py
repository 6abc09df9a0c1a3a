"""Fit the polynomial cores of fastact's vector math: fastact/_src/fa_coeffs.h for the
kernels, fastact/_coeffs.py (float64 only) for the NumPy backend.

Each core is a smooth, non-vanishing function g on an interval, approximated by a
polynomial p of the smallest degree whose relative error (measured in mpmath on a dense
grid, after rounding the coefficients to the target type) stays under a budget of the
type's epsilon. p comes from Chebyshev interpolation (near-minimax) done in 60 digits.

    python tools/fit_coeffs.py            # rewrite both files
    python tools/fit_coeffs.py --check    # exit 1 if either is out of date
"""
import argparse
import pathlib
import sys

import mpmath as mp

mp.mp.dps = 60
ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ROOT / "fastact" / "_src" / "fa_coeffs.h"
PYMODULE = ROOT / "fastact" / "_coeffs.py"

# Shepherd & Laframboise (1981): (1 + 2z) erfcx(z) is smooth in y = (z - K)/(z + K).
ERFC_K = mp.mpf("3.75")


# gelu float32 (fa_activations_impl.h): a R(a) = a e^(a^2/2) Phi(-a) is F(t) t with
# t = a / (a + K) and F smooth; F is fitted in u = t - TC on a in [0, 15.5].
GELU_K, GELU_TC = mp.mpf(3), mp.mpf(26) / 64


def _z_of_y(y):
    return ERFC_K * (1 + y) / (1 - y)


def _erfcx(z):
    return mp.exp(z * z) * mp.erfc(z)


def _tanh_core(w):  # tanh(x) = x + x^3 * P(x^2)
    if w == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(w)
    return (mp.tanh(x) - x) / (x * w)


def _atanh_core(w):  # log1p(u) = 2s + s^3 Q(s^2), s = u / (2 + u)
    if w == 0:
        return mp.mpf(2) / 3
    s = mp.sqrt(w)
    return 2 * (mp.atanh(s) - s) / (s * w)


def _exp_core(r):  # e^r = 1 + r + r^2 P(r)
    if r == 0:
        return mp.mpf(1) / 2
    return (mp.exp(r) - 1 - r) / (r * r)


def _erf_core(w):  # erf(z) = z E(z^2)
    if w == 0:
        return 2 / mp.sqrt(mp.pi)
    z = mp.sqrt(w)
    return mp.erf(z) / z


def _erfc_core(y):
    z = _z_of_y(y)
    return (1 + 2 * z) * _erfcx(z)


def _gelu_core(u):
    t = u + GELU_TC
    a = GELU_K * t / (1 - t)
    return _erfcx(a / mp.sqrt(2)) / 2 * (a + GELU_K)


def _gelu_u(a):
    return a / (a + GELU_K) - GELU_TC


# gelu's float32 math for the 16-bit types: Phi(-a) - a phi(a) = e^(-a^2/2) (a - r0) E(t),
# r0 the root of gelu' (x = -r0), so that f' keeps its relative accuracy near it
GELU_ROOT = mp.findroot(lambda a: _erfcx(a / mp.sqrt(2)) / 2 - a / mp.sqrt(2 * mp.pi),
                        mp.mpf("0.75"))


GELU16_T = (0, mp.mpf("15.5") / (mp.mpf("15.5") + GELU_K))     # t over a in [0, 15.5]


def _gelu16_core(t):   # F again, in t itself (2e-5 needs no shift for its coefficients)
    return _gelu_core(t - GELU_TC)


def _gelu16d_core(t):
    a = GELU_K * t / (1 - t)
    return (_erfcx(a / mp.sqrt(2)) / 2 - a / mp.sqrt(2 * mp.pi)) / (a - GELU_ROOT)


def _gelud_core(u):    # E in u = t - TC, for float32's own f'
    return _gelu16d_core(u + GELU_TC)


# name -> (function, interval per dtype, error budget in unit roundoffs). The budget is
# what the core may add to its users: EXP enters exp/expm1 scaled by |r| <= 0.35, ATANH
# enters log1p scaled by s^2/2 <= 0.06, TANH is tanhshrink's whole value near 0 and ERFC
# is erfcx itself; rounding the leading coefficient alone costs up to 0.5.
CORES = {
    "EXP": (_exp_core, {"f32": (-0.3467, 0.3467), "f64": (-0.3467, 0.3467)}, 1.0),
    "TANH": (_tanh_core, {"f32": (0, 1), "f64": (0, 1)}, 0.6),
    "ATANH": (_atanh_core, {"f32": (0, mp.mpf(1) / 9), "f64": (0, mp.mpf(1) / 9)}, 2.0),
    "ERF": (_erf_core, {"f32": (0, 0.25), "f64": (0, 0.25)}, 1.0),
    # z up to 11 (f32) and 27.6 (f64): past these gelu and its derivative underflow.
    "ERFC": (_erfc_core, {"f32": (-1, (11.0 - 3.75) / (11.0 + 3.75)),
                          "f64": (-1, (27.6 - 3.75) / (27.6 + 3.75))}, 1.0),
    # float32 only (float64 keeps the ERFC path): F and E enter y and f' as they are
    "GELU": (_gelu_core, {"f32": (_gelu_u(mp.mpf("0")), _gelu_u(mp.mpf("15.5")))}, 0.5),
    "GELUD": (_gelud_core, {"f32": (_gelu_u(mp.mpf("0")), _gelu_u(mp.mpf("15.5")))}, 0.7),
    # and their exponential: e^(-s/2) for s = -2r, |r| <= ln2/2, as one polynomial
    "EXPH": (lambda s: mp.exp(-s / 2), {"f32": (-0.6934, 0.6934)}, 0.5),
    # the 16-bit types' gelu: F again, under 2^-15, and E, under 2^-18 (the float32 result
    # may be off by float16's half ulp, 2^-12 relative, before its rounding is past 1 ulp)
    "GELU16": (_gelu16_core, {"f32": GELU16_T}, 512),
    "GELU16D": (_gelu16d_core, {"f32": GELU16_T}, 64),
    # and its exponential: e^(s/2) for s = 2r, |r| <= ln2/2, as one polynomial
    "EXP16": (lambda s: mp.exp(s / 2), {"f32": (-0.6934, 0.6934)}, 64),
}
# Leading steps kept in Horner's form before the Estrin part, for cores whose variable is
# not small (ERFC's y reaches -1): the last steps carry most of the rounding error.
HORNER_HEAD = {"ERFC": 2}
# Cores kept in Horner's form at any degree: gelu's loops are bound by their
# instruction count, not by the latency Estrin's scheme shortens (Horner's has no
# products of powers, and no register copies for them)
HORNER_ONLY = {"GELU", "GELUD", "EXPH", "GELU16", "GELU16D", "EXP16"}
EPS = {"f32": mp.mpf(2) ** -24, "f64": mp.mpf(2) ** -53}   # unit roundoff


def _round(v, dtype):
    """Round an mpf to the nearest float32/float64 value (returned as mpf)."""
    prec = 24 if dtype == "f32" else 53
    with mp.workprec(prec):
        return +v


def chebyshev_fit(f, a, b, degree):
    """Monomial coefficients (mpf, low to high) of the Chebyshev interpolant of f on [a, b]."""
    a, b = mp.mpf(a), mp.mpf(b)
    n = degree + 1
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [f((b - a) / 2 * t + (a + b) / 2) for t in nodes]
    cheb = [2 * mp.fsum(v * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k, v in enumerate(vals)) / n
            for j in range(n)]
    cheb[0] /= 2
    # sum_j cheb_j T_j(t) with t = (2x - a - b)/(b - a), expanded into powers of x
    t_poly = [[mp.mpf(1)], [-(a + b) / (b - a), 2 / (b - a)]]   # T_0, T_1 as polys in x
    for j in range(2, n):
        prev, prev2 = t_poly[-1], t_poly[-2]
        nxt = [mp.mpf(0)] * (j + 1)
        for i, c in enumerate(prev):   # 2 t T_{j-1}
            nxt[i] += 2 * t_poly[1][0] * c
            nxt[i + 1] += 2 * t_poly[1][1] * c
        for i, c in enumerate(prev2):
            nxt[i] -= c
        t_poly.append(nxt)
    coeffs = [mp.mpf(0)] * n
    for j, c in enumerate(cheb):
        for i, tc in enumerate(t_poly[j]):
            coeffs[i] += c * tc
    return coeffs


def max_rel_error(f, coeffs, a, b, points=3000):
    worst = mp.mpf(0)
    for k in range(points + 1):
        x = mp.mpf(a) + (mp.mpf(b) - mp.mpf(a)) * k / points
        p = mp.mpf(0)
        for c in reversed(coeffs):
            p = p * x + c
        fx = f(x)
        worst = max(worst, abs(p - fx) / abs(fx))
    return worst


def fit(name, dtype):
    f, intervals, budget = CORES[name]
    a, b = intervals[dtype]
    for degree in range(2, 40):
        coeffs = [_round(c, dtype) for c in chebyshev_fit(f, a, b, degree)]
        err = max_rel_error(f, coeffs, a, b, points=400)
        if err < budget * EPS[dtype]:
            err = max_rel_error(f, coeffs, a, b)
            if err < budget * EPS[dtype]:
                return coeffs, err
    raise RuntimeError(f"{name} {dtype}: no degree under 40 meets the budget")


# Constants needed to more than working precision: name -> exact value (split hi + lo).
GELU_A = 2 * mp.sqrt(2 / mp.pi)                      # gelu 'tanh': 2u = A x + B x^3
CONSTANTS = {"GELU_A": GELU_A, "GELU_B": GELU_A * mp.mpf("0.044715"), "SQRT2": mp.sqrt(2),
             "INV_SQRT_2PI": 1 / mp.sqrt(2 * mp.pi), "GELU_ROOT": GELU_ROOT}


# Constants whose float32 HI part is rounded to fewer bits: gelu's root r0 = 0.7518 to a
# multiple of 2^-23, so that a - ROOT_HI is exact for every float32 a >= 0.376 (Sterbenz
# up to 1.5, and past it a's own ulp is a multiple of 2^-23), not only near r0.
HI_BITS_F32 = {"GELU_ROOT": 23}


def render_constants():
    lines = []
    for name, value in CONSTANTS.items():
        for dtype in ("f32", "f64"):
            hi = _round(value, dtype)
            if dtype == "f32" and name in HI_BITS_F32:
                with mp.workprec(HI_BITS_F32[name]):
                    hi = +value
            lo = _round(value - hi, dtype)
            suffix, digits = ("f", 9) if dtype == "f32" else ("", 17)
            for part, v in (("HI", hi), ("LO", lo)):
                lines.append(f"#define FA_{dtype.upper()}_{name}_{part} "
                             f"{mp.nstr(v, digits, min_fixed=0, max_fixed=0)}{suffix}")
    return lines + [""]


def horner(lit):
    """C expression of sum lit[i] x^i in Horner's scheme (fewest operations)."""
    rest = lit[-1]
    for c in reversed(lit[:-1]):
        rest = f"FA_FMA(x, {rest}, {c})"
    return rest


def estrin(lit):
    """C expression of sum lit[i] x^i in Estrin's scheme: pairs c0 + x c1, then pairs of
    those with x^2, x^4, ...; log2 of Horner's dependency chain, which the out-of-order
    core could not hide (the float64 exp's chain of 11 FMAs bounded sigmoid); one
    multiplication per power more, so short polynomials stay in Horner's form."""
    terms, power = list(lit), "(x)"
    while len(terms) > 1:
        terms = [f"FA_FMA({power}, {terms[i + 1]}, {terms[i]})" if i + 1 < len(terms)
                 else terms[i] for i in range(0, len(terms), 2)]
        power = f"({power} * {power})"
    return terms[0]


def render():
    """(C header, Python module) texts."""
    py = ['"""Generated by tools/fit_coeffs.py; do not edit. The float64 polynomial cores of',
          'fa_coeffs.h (coefficients low to high) for the NumPy backend."""', "",
          f"ERFC_K = {mp.nstr(ERFC_K, 6)}"]
    for name, value in CONSTANTS.items():
        hi = _round(value, "f64")
        py.append(f"{name}_HI, {name}_LO = {float(hi)!r}, {float(_round(value - hi, 'f64'))!r}")
    lines = [
        "/* Generated by tools/fit_coeffs.py; do not edit. Polynomial cores of fa_math.h:",
        " * FA_<DTYPE>_<CORE>(x) = C0 + x REST(x), REST in Horner's (short) or Estrin's (long)",
        " * scheme, coefficients rounded to the type, with the measured max relative error of",
        " * the rounded polynomial against mpmath. */",
        "#ifndef FA_COEFFS_H", "#define FA_COEFFS_H", "",
        f"#define FA_ERFC_K {mp.nstr(ERFC_K, 6)}",
        f"#define FA_GELU_K {mp.nstr(GELU_K, 6)}",
        f"#define FA_GELU_TC {mp.nstr(GELU_TC, 8)}", "",
    ] + render_constants()
    for name in CORES:
        for dtype in CORES[name][1]:
            coeffs, err = fit(name, dtype)
            a, b = CORES[name][1][dtype]
            suffix = "f" if dtype == "f32" else ""
            lit = [mp.nstr(c, 9 if dtype == "f32" else 17, min_fixed=0, max_fixed=0) + suffix
                   for c in coeffs]
            head = 1 + HORNER_HEAD.get(name, 0)
            rest = (horner(lit[1:head] + [estrin(lit[head:])])
                    if len(lit) > 6 and name not in HORNER_ONLY else horner(lit[1:]))
            lines.append(f"/* {name} {dtype}: degree {len(coeffs) - 1} on "
                         f"[{mp.nstr(a, 6)}, {mp.nstr(b, 6)}], max rel. error "
                         f"{mp.nstr(err, 3)} */")
            if dtype == "f64":
                py.append(f"{name} = ({', '.join(repr(float(c)) for c in coeffs)})")
            macro = f"FA_{dtype.upper()}_{name}"
            lines.append(f"#define {macro}_C0 {lit[0]}")
            lines.append(f"#define {macro}_REST(x) ({rest})")
            lines.append(f"#define {macro}(x) FA_FMA(x, {macro}_REST(x), {macro}_C0)")
            lines.append("")
            print(f"{name:6s} {dtype}: degree {len(coeffs) - 1:2d}, rel err {mp.nstr(err, 3)}",
                  file=sys.stderr)
    lines.append("#endif")
    return "\n".join(lines) + "\n", "\n".join(py) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the header is out of date")
    args = ap.parse_args()
    header, module = render()
    if args.check:
        sys.exit(0 if (HEADER.read_text(), PYMODULE.read_text()) == (header, module) else 1)
    HEADER.write_text(header)
    PYMODULE.write_text(module)


if __name__ == "__main__":
    main()
