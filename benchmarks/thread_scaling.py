"""How fastact's OpenMP kernels scale with threads, next to PyTorch on the same threads.

    python benchmarks/thread_scaling.py [--threads 1,2,4,8,16] [--n 16M]

Prints, per activation and direction, the median time at each thread count and the
speed-up over one thread; float32, out= preallocated on both sides.
"""
import argparse

import numpy as np

import fastact
from fastact import bench


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--n", default="16M")
    ap.add_argument("--activations", default="relu,sigmoid,tanh,gelu,silu,mish")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    n = bench.parse_size(args.n)
    counts = [int(t) for t in args.threads.split(",")]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 3).astype(args.dtype)
    g = rng.uniform(-1, 1, n).astype(args.dtype)
    out = np.empty_like(x)
    print(f"n = {args.n}, {args.dtype}; times in ms (speed-up over 1 thread)")
    print(f"{'case':22s}" + "".join(f"{t:>18d}" for t in counts))
    for label in args.activations.split(","):
        name, params = {c[0]: (c[1], c[2]) for c in bench.CASES}[label]
        ff, fb = bench.fastact_impl(name, params, label)
        y = ff(x, np.empty_like(x))
        rows = {}
        for t in counts:
            fns = {"fastact fwd": lambda: ff(x, out), "fastact bwd": lambda: fb(g, x, y, out)}
            if torch is not None and bench.torch_impl(label, params):
                torch.set_num_threads(t)
                tf, tb = bench.torch_impl(label, params)
                tx, tg, to = torch.from_numpy(x), torch.from_numpy(g), torch.empty_like(torch.from_numpy(x))
                ty = torch.from_numpy(y)
                fns["torch fwd"] = lambda: tf(tx, to)
                fns["torch bwd"] = lambda: tb(tg, tx, ty, to)
            with fastact.threads(t):
                for k, v in bench.time_interleaved(fns, repeat=5, target=0.02).items():
                    rows.setdefault(k, []).append(v)
        for k, times in rows.items():
            print(f"{label + ' ' + k:22s}" + "".join(
                f"{v * 1e3:9.3f} ({times[0] / v:4.1f}x)" for v in times))


if __name__ == "__main__":
    main()
