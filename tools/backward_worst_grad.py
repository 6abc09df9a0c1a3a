"""The backward g f'(x) of every case of tests/cases.py with the worst grad_output for
each x: g chosen so that g f'(x) has a significand near 2, where an error of f' relative
to its own value counts up to twice in ulps of the product, plus the product's rounding.
Random x over [-20, 20] and 2^-30..2^8 of both signs, mpmath references
(tests/reference.py), both dtypes, one SIMD level; prints the worst error per case.

    python tools/backward_worst_grad.py --level avx2 -n 40000 [case ...]
"""
import argparse
import multiprocessing
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))


def _xs(dtype, n, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    a = rng.uniform(-20.0, 20.0, n * 3 // 4)
    b = np.sign(rng.uniform(-1, 1, n // 4)) * 2.0 ** rng.uniform(-30, 8, n // 4)
    return np.unique(np.concatenate([a, b]).astype(dtype))


def _job(args):
    index, dtype_name, n = args
    import numpy as np
    import cases
    import reference
    name, params = cases.CASES[index]
    dtype = np.dtype(dtype_name).type
    xs = _xs(dtype, n, index)
    _, _, d_hi, d_lo = reference.reference(name, xs, params, dtype)
    g = reference.worst_grad_output(d_hi, dtype)
    got = cases.call("backward", name, xs, params, grad_output=g)
    hi, lo = reference.dd_mul(g, d_hi, d_lo)
    err = reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=cases.crossing(name, params),
                              scale=g)
    big = float(np.finfo(dtype).max)
    err = np.where((np.abs(d_hi) >= big) | (np.abs(hi) >= big), 0.0, err)   # overflow
    worst = int(np.argmax(err))
    return cases.case_id(cases.CASES[index]), dtype_name, float(err[worst]), float(xs[worst])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", help="FASTACT_SIMD level (default: the best this CPU runs)")
    ap.add_argument("-n", type=int, default=40000, help="points per case and dtype")
    ap.add_argument("cases", nargs="*", help="case ids (default: all)")
    args = ap.parse_args()
    if args.level:
        os.environ["FASTACT_SIMD"] = args.level
    import cases
    jobs = [(i, d, args.n) for i, c in enumerate(cases.CASES) for d in ("float32", "float64")
            if not args.cases or cases.case_id(c) in args.cases]
    with multiprocessing.Pool() as pool:
        rows = sorted(pool.imap_unordered(_job, jobs), key=lambda r: -r[2])
    for cid, dtype, err, x in rows:
        print(f"{cid:45s} {dtype:8s} {err:6.2f} ulp at x = {x!r}" + ("  > 4" if err > 4 else ""))


if __name__ == "__main__":
    main()
