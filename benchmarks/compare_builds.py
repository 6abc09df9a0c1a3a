"""Two builds of fastact side by side: the same benchmark run by each, interleaved.

    python benchmarks/compare_builds.py GCC_TREE CLANG_TREE [--level avx2] [--threads 2]

Each TREE is a source tree built in place (`python setup.py build_ext --inplace`, e.g.
once with the default compiler and once with CC=clang). A worker process per tree
imports that tree's fastact at the given SIMD level and times every activation's forward
and backward (float32 and float64, --n elements, `out=` preallocated, the backward from
x) when asked; the two workers are asked in turn, --rounds times, so that both see the
same machine (with a pause between them: LLVM's libomp keeps its idle threads spinning
for 200 ms after a parallel call, which would slow the other worker down). Prints a Markdown table of times and the ratio B/A, and the worst ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import json, os, sys, time
import numpy as np
import fastact
from fastact.bench import CASES
level, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fastact.set_simd_level(level)
fastact.set_num_threads(threads)
rng = np.random.default_rng(0)
data = {dt: ((rng.standard_normal(n) * 3).astype(dt), rng.uniform(-1, 1, n).astype(dt))
        for dt in ("float32", "float64")}
fns = {}
for label, name, params in CASES:
    f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
    for dt, (x, g) in data.items():
        out = np.empty_like(x)
        fns[(label, "fwd", dt)] = (lambda f=f, x=x, out=out, p=params: f(x, **p, out=out))
        fns[(label, "bwd", dt)] = (lambda b=b, x=x, g=g, out=out, p=params: b(g, x, **p, out=out))
print(json.dumps({"file": fastact.__file__, "compiler": fastact._config.config()["compiler"]}), flush=True)
for line in sys.stdin:
    times = {}
    for key, fn in fns.items():
        fn()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        times["|".join(key)] = best
    print(json.dumps(times), flush=True)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--level", default="avx2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    workers = []
    for tree in (args.tree_a, args.tree_b):
        env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
        p = subprocess.Popen([sys.executable, "-c", WORKER, args.level, str(args.threads),
                              str(args.n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env, cwd=os.path.abspath(tree))
        info = json.loads(p.stdout.readline())
        workers.append(p)
        print(f"{tree}: {info['compiler']} ({info['file']})", file=sys.stderr)
    samples = [[], []]
    for r in range(args.rounds):
        for i in (r % 2, 1 - r % 2):
            time.sleep(0.3)     # LLVM libomp's idle threads spin for 200 ms after a call
            workers[i].stdin.write("go\n")
            workers[i].stdin.flush()
            samples[i].append(json.loads(workers[i].stdout.readline()))
    for p in workers:
        p.stdin.close()
        p.wait()
    import numpy as np
    keys = list(samples[0][0])
    med = [{k: float(np.median([s[k] for s in samples[i]])) for k in keys} for i in (0, 1)]
    print(f"| activation | dir | dtype | A (ms) | B (ms) | B / A |\n|---|---|---|---:|---:|---:|")
    ratios = []
    for k in keys:
        ratio = med[1][k] / med[0][k]
        ratios.append((ratio, k))
        label, direction, dtype = k.split("|")
        print(f"| {label} | {direction} | {dtype} | {med[0][k] * 1e3:.3f} | "
              f"{med[1][k] * 1e3:.3f} | {ratio:.2f} |")
    r = np.array([x for x, _ in ratios])
    worst = max(ratios)
    print(f"\ngeometric mean B / A: {np.exp(np.log(r).mean()):.3f}; worst {worst[0]:.2f} "
          f"({worst[1].replace('|', ' ')}); {int((r > 1.2).sum())} of {len(r)} above 1.2")


if __name__ == "__main__":
    main()
