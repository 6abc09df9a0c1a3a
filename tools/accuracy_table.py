"""The accuracy table of docs/accuracy.md: worst-case error in ulp of fastact and PyTorch (CPU) on
the same sweep (tests/reference.py: every binade from the smallest normal to the overflow
edge, both signs, the tails and the kinks), against mpmath, per activation and dtype.

    python tools/accuracy_table.py [--density 10] > table.md
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))


def _fmt(err):
    if not np.isfinite(err):
        return "NaN"
    return f"{err:.2f}" if err < 1e4 else f"{err:.0e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=int, default=10, help="sweep density (tests use 1)")
    args = ap.parse_args()
    os.environ["FASTACT_ACCURACY_DENSITY"] = str(args.density)
    import reference  # noqa: E402  (reads the density)
    import cases  # noqa: E402
    from cases import kinks  # noqa: E402
    from helpers import torch_values  # noqa: E402

    import fastact
    rows = []
    names = [(n, {"threshold": 0.5, "value": -2.0} if n == "threshold" else {})
             for n in fastact.ACTIVATIONS] + [("gelu", {"approximate": "tanh"})]
    for name, params in names:
        row = [name + ("(tanh)" if params.get("approximate") else "")]
        for dtype in (np.float32, np.float64):
            xs = reference.sweep(dtype, kinks(name, params))
            y_hi, y_lo, d_hi, d_lo = reference.reference(name, xs, params, dtype)
            crossing = cases.crossing(name, params)
            ours = (getattr(fastact, name)(xs, **params), getattr(fastact, name + "_grad")(xs, **params))
            with np.errstate(all="ignore"):
                theirs = torch_values(name, xs, params, dtype)
            for (got, hi, lo, cross) in ((ours[0], y_hi, y_lo, None), (ours[1], d_hi, d_lo, crossing)):
                row.append(_fmt(reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=cross).max()))
            for (got, hi, lo, cross) in ((theirs[0], y_hi, y_lo, None), (theirs[1], d_hi, d_lo, crossing)):
                row.append(_fmt(reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=cross).max()))
        rows.append(row)
        print(f"{row[0]} done", file=sys.stderr)
    print("| activation | f32 fastact f | f32 fastact f' | f32 torch f | f32 torch f' "
          "| f64 fastact f | f64 fastact f' | f64 torch f | f64 torch f' |")
    print("|---|" + "---:|" * 8)
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
