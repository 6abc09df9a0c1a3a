"""The cost of a call on a small array: every activation's forward, derivative, backward
and forward_backward on 16 elements with out=, against the NumPy ufunc call it replaces
where there is one (np.tanh for tanh, np.exp for exponential, np.maximum(x, 0) for relu,
np.copyto for linear) and against np.tanh(x, out=o), the price of one ufunc call, for
all. Timed side by side in interleaved rounds (medians of the rounds' best).

    python benchmarks/small_calls.py [--dtype float32] [--n 16] [--rounds 15]
"""
import argparse
import statistics
import timeit

import numpy as np

import fastact

# the one NumPy ufunc call an activation's forward replaces, where there is one
UFUNCS = {
    "tanh": "np.tanh(x, out=o)",
    "exponential": "np.exp(x, out=o)",
    "relu": "np.maximum(x, 0, out=o)",
    "linear": "np.copyto(o, x)",
}


def calls(name):
    """label -> the statement timed, for each entry point of activation name (the
    statements as a user writes them: no wrapper around either side)."""
    p = {"threshold": "0.5, -1.0, "}.get(name, "")
    return {"forward": f"fastact.{name}(x, {p}out=o)",
            "grad": f"fastact.{name}_grad(x, {p}out=o)",
            "backward": f"fastact.{name}_backward(x, x, {p}out=o)",
            "forward_backward": f"fastact.{name}_forward_backward(x, {p}out=o, grad_out=o2)"}


def rounds_of(stmts, rounds, number, scope):
    """label -> per-call time (seconds, best of 3) in each of the interleaved rounds."""
    times = {label: [] for label in stmts}
    for _ in range(rounds):
        for label, stmt in stmts.items():
            times[label].append(min(timeit.repeat(stmt, number=number, repeat=3,
                                                  globals=scope)) / number)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--number", type=int, default=2000)
    args = ap.parse_args(argv)
    x = np.linspace(-3, 3, args.n).astype(args.dtype)
    o, o2 = np.empty_like(x), np.empty_like(x)
    print(f"{args.n} elements of {args.dtype}, out= everywhere; medians over {args.rounds} "
          f"interleaved rounds, in ns; the ratios are fastact / np.tanh(x, out=o) within each "
          f"round (a shared machine's speed changes between rounds), below 1: cheaper than "
          f"one ufunc call")
    print(f"{'activation':16s}{'forward':>9s}{'grad':>9s}{'backward':>9s}{'fwd_bwd':>9s}"
          f"{'own ufunc':>11s}{'np.tanh':>9s}{'fwd ratio':>11s}{'bwd ratio':>11s}")
    fwd_ratios, bwd_ratios = [], []
    for name in fastact.ACTIVATIONS:
        stmts = calls(name)
        stmts["np.tanh"] = "np.tanh(x, out=o)"
        if name in UFUNCS:
            stmts["ufunc"] = UFUNCS[name]
        t = rounds_of(stmts, args.rounds, args.number,
                      {"np": np, "fastact": fastact, "x": x, "o": o, "o2": o2})
        med = {label: statistics.median(v) for label, v in t.items()}
        fwd = statistics.median(a / b for a, b in zip(t["forward"], t["np.tanh"]))
        bwd = statistics.median(a / b for a, b in zip(t["backward"], t["np.tanh"]))
        fwd_ratios.append((fwd, name))
        bwd_ratios.append((bwd, name))
        own = f"{med['ufunc'] * 1e9:11.0f}" if "ufunc" in med else f"{'-':>11s}"
        print(f"{name:16s}" + "".join(f"{med[k] * 1e9:9.0f}" for k in
                                      ("forward", "grad", "backward", "forward_backward"))
              + own + f"{med['np.tanh'] * 1e9:9.0f}{fwd:11.2f}{bwd:11.2f}")
    for label, ratios in (("forward", fwd_ratios), ("backward", bwd_ratios)):
        worst = max(ratios)
        print(f"{label} / np.tanh: worst {worst[0]:.2f} ({worst[1]}), median "
              f"{statistics.median(r for r, _ in ratios):.2f}, above 1: "
              f"{sum(r > 1 for r, _ in ratios)} of {len(ratios)}")

if __name__ == "__main__":
    main()
