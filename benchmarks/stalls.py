"""Calls on shared cores: the median and the 99th percentile of a call's time, alone and
with a competing busy process (a Python `while True: pass`) on the same cores, for
fastact (its own thread pool: chunks taken by whichever thread runs) and PyTorch (GNU
OpenMP, a static split), each in a fresh process, on every thread the machine has. For
fastact also the stalls its pool saw so far in the process (fa_pool.h: after one, the
next calls run on the caller alone for a while), counted up over the cases.

    python benchmarks/stalls.py [--calls 2000] [--rounds 2]
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

SIDES = {"fastact": ({}, "fastact"), "torch": ({}, "torch")}
CASES = (("tanh", 262144), ("tanh", 16 * 1024 * 1024), ("gelu", 16384))


def child(lib, calls):
    """Runs in the fresh process: times every case, prints one line per case."""
    threads = os.cpu_count()
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    else:
        import fastact
        import fastact._runner
        fastact.set_num_threads(threads)
    for name, n in CASES:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        o = np.empty_like(x)
        if lib == "torch":
            tx, to = torch.from_numpy(x), torch.from_numpy(o)
            f = {"tanh": lambda: torch.tanh(tx, out=to),
                 "gelu": lambda: torch._C._nn.gelu(tx, out=to)}[name]
        else:
            f = (lambda g: lambda: g(x, out=o))(getattr(fastact, name))
        count = max(20, min(calls, int(calls * 262144 / n)))
        for _ in range(10):
            f()
        ts = np.empty(count)
        for i in range(count):
            t0 = time.perf_counter()
            f()
            ts[i] = time.perf_counter() - t0
        stalls = fastact._runner.pool_backoff()[0] if lib == "fastact" else 0
        print(name, n, np.median(ts), np.percentile(ts, 99), ts.mean(), stalls, flush=True)


def run(side, load, calls):
    env, lib = SIDES[side]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load else None
    try:
        time.sleep(0.3)
        out = subprocess.run([sys.executable, __file__, "--child", lib, "--calls", str(calls)],
                             env={**os.environ, **env}, capture_output=True, text=True,
                             check=True).stdout
    finally:
        if busy:
            busy.kill()
            busy.wait()
    return {(name, int(n)): tuple(map(float, rest))
            for name, n, *rest in (line.split() for line in out.splitlines())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child")
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.calls)
    print(f"{os.cpu_count()} threads; per call: median, 99th percentile (p99/median), mean; "
          f"{args.rounds} rounds, each side and load in its own fresh process")
    for r in range(args.rounds):
        for load in (False, True):
            for side in SIDES:
                res = run(side, load, args.calls)
                cells = []
                for (name, n), (med, p99, mean, stalls) in res.items():
                    cells.append(f"{name} {n // 1024}K: {med * 1e6:.0f} us, {p99 * 1e6:.0f} us "
                                 f"({p99 / med:.1f}x), {mean * 1e6:.0f} us"
                                 + (f", {stalls:.0f} stalls" if side == "fastact" else ""))
                print(f"round {r + 1} {'busy' if load else 'idle'} {side:8s} | "
                      + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
