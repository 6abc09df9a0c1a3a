"""``python -m fastact bench``, the gated part: the gated units and prelu against PyTorch
eager, ``torch.compile`` of the same PyTorch expression (Inductor fuses it, forward and
backward) and the NumPy expression, for the forward and the fused forward + backward
(grad_output given: y and the input's gradient in one call; autograd on the PyTorch
sides). n is the input's size: a gated unit's x is (n / 2048, 2048), split along the
last dim; prelu's x is (n / 512, 512) with one weight per channel. Timed interleaved,
medians, as the elementwise part (fastact.bench)."""
import math
import sys

import numpy as np

import fastact
from . import bench
from ._activations import GATED_BY_NAME

WIDTH = 2048            # x's last dim for the gated units
CHANNELS = 512          # prelu's channels
CASES = [("glu", "glu", {}), ("swiglu", "swiglu", {}), ("geglu", "geglu", {}),
         ("geglu_tanh", "geglu", {"approximate": "tanh"}), ("reglu", "reglu", {}),
         ("prelu", "prelu", {})]
LABELS = [c[0] for c in CASES]
DIRECTIONS = ("forward", "forward_backward")
PEERS = ("torch", "compile", "numpy")


def _numpy_peer(name, params):
    """(forward(x), forward_backward(x, g)) with NumPy expressions."""
    if name == "prelu":
        def fwd(x, w):
            return np.where(x > 0, x, w * x)

        def fb(x, w, g):
            return fwd(x, w), g * np.where(x > 0, 1, w), np.where(x > 0, 0, g * x).sum(axis=0)
        return fwd, fb
    spec = GATED_BY_NAME[name]
    if "erf" not in bench.NUMPY_SCOPE:
        bench.NUMPY_SCOPE["erf"] = bench._erf()
    scope = {**bench.NUMPY_SCOPE, **dict(spec.params), **params}
    f, fp = (eval(compile(f"lambda gate: {e}", f"<numpy peer of {name}>", "eval"), scope)
             for e in spec.numpy)

    def fwd(x):
        a, gate = np.split(x, 2, axis=-1)
        return a * f(gate)

    def fb(x, g):
        a, gate = np.split(x, 2, axis=-1)
        fv = f(gate)
        return a * fv, np.concatenate([g * fv, g * a * fp(gate)], axis=-1)
    return fwd, fb


def _torch_expression(name, params):
    import torch.nn.functional as F
    if name == "prelu":
        return F.prelu
    spec = GATED_BY_NAME[name]
    import torch
    expr = eval(compile(f"lambda a, gate: {spec.torch}", f"<torch peer of {name}>", "eval"),
                {"torch": torch, "F": F, **dict(spec.params), **params})
    if spec.torch_module == "GLU":
        return lambda x: F.glu(x, -1)
    return lambda x: expr(*x.chunk(2, -1))


_COMPILED = {}


def _compiled(label, name, params):
    """torch.compile of the expression, one per case label (recompiled by PyTorch for new
    shapes and dtypes, as a user's model would be)."""
    if label not in _COMPILED:
        _COMPILED[label] = torch_compile(_torch_expression(name, params))
    return _COMPILED[label]


def torch_compile(fn):
    """torch.compile(fn) as the benchmarks use it (the gated and --step parts)."""
    import torch
    import torch._dynamo.config as dynamo
    import torch._inductor.config as inductor
    # every case (shape, dtype, grad mode) is its own graph: above PyTorch's recompile
    # limits (8 per code object, shared by these lambdas) it would run eagerly instead
    for limit in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                  "accumulated_cache_size_limit"):
        if hasattr(dynamo, limit):
            setattr(dynamo, limit, max(getattr(dynamo, limit), 4096))
    # compile in this process: a pool of compile workers would compete with the
    # timings for the cores
    inductor.compile_threads = 1
    return torch.compile(fn, dynamic=False)


def _torch_fns(fn, direction, x, w, g):
    """PyTorch's side: fn's forward (no autograd), or forward + autograd backward."""
    import torch
    xt = torch.from_numpy(x).requires_grad_(direction != "forward")
    gt = torch.from_numpy(g)
    wt = None if w is None else torch.from_numpy(w).requires_grad_(direction != "forward")
    args = (xt,) if w is None else (xt, wt)
    if direction == "forward":
        def forward():
            with torch.no_grad():
                return fn(*args)
        return forward

    def forward_backward():
        xt.grad = None
        if wt is not None:
            wt.grad = None
        y = fn(*args)
        y.backward(gt)
        return y, xt.grad
    return forward_backward


def _case_fns(label, name, params, direction, x, w, g, peers, numpy_ok):
    f = getattr(fastact, name)
    fb = getattr(fastact, name + "_forward_backward")
    y = np.empty(g.shape, x.dtype)
    gx = np.empty_like(x)
    if name == "prelu":
        gw = np.empty_like(w)
        fns = {"fastact": (lambda: f(x, w, out=y)) if direction == "forward" else
               (lambda: fb(x, w, grad_output=g, out=y, grad_out=(gx, gw)))}
    else:
        fns = {"fastact": (lambda: f(x, **params, out=y)) if direction == "forward" else
               (lambda: fb(x, **params, grad_output=g, out=y, grad_out=gx))}
    if "torch" in peers:
        fns["torch"] = _torch_fns(_torch_expression(name, params), direction, x, w, g)
    if "compile" in peers:
        fns["compile"] = _torch_fns(_compiled(label, name, params), direction, x, w, g)
    if "numpy" in peers and numpy_ok:
        nf, nfb = _numpy_peer(name, params)
        extra = () if w is None else (w,)
        fns["numpy"] = (lambda: nf(x, *extra)) if direction == "forward" else \
            (lambda: nfb(x, *extra, g))
    return fns


def run(labels=None, sizes=("256K", "16M"), dtypes=("float32", "float64"),
        directions=DIRECTIONS, peers=PEERS, threads=None, repeat=5, numpy_max="256K",
        progress=sys.stderr):
    """Measure every case; a list of dicts (seconds per call, medians)."""
    if any(p in peers for p in ("torch", "compile")):
        import torch
        threads = threads or fastact.get_num_threads()
        torch.set_num_threads(threads)
    threads = threads or fastact.get_num_threads()
    sizes = [bench.parse_size(s) if isinstance(s, str) else s for s in sizes]
    numpy_max = bench.parse_size(numpy_max) if isinstance(numpy_max, str) else numpy_max
    cases = [c for c in CASES if labels is None or c[0] in labels]
    plan = [(c, d, dt, n) for n in sizes for dt in dtypes for c in cases for d in directions]
    rng = np.random.default_rng(0)
    results = []
    with fastact.threads(threads):
        for i, ((label, name, params), direction, dtype, n) in enumerate(plan):
            if progress:
                bench._progress(i, len(plan), f"{label} {direction} {dtype} "
                                f"{bench._size_label(n)}", progress)
            width = CHANNELS if name == "prelu" else WIDTH
            rows = max(1, n // width)
            x = (rng.standard_normal((rows, width)) * 3).astype(dtype)
            w = rng.uniform(0, 0.5, CHANNELS).astype(dtype) if name == "prelu" else None
            g = rng.uniform(-1, 1, (rows, width if name == "prelu" else width // 2)).astype(dtype)
            fns = _case_fns(label, name, params, direction, x, w, g, peers, n <= numpy_max)
            times = bench.time_interleaved(fns, repeat)
            results.append({"activation": label, "direction": direction, "dtype": dtype,
                            "n": x.size, "threads": threads, **times})
        if progress:
            bench._progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


def _geomean(results, peer):
    ratios = [r["fastact"] / r[peer] for r in results if r.get(peer)]
    return (float(math.exp(np.mean(np.log(ratios)))), sum(q > 1 for q in ratios), len(ratios)) \
        if ratios else None


def summary(results):
    return {peer: _geomean(results, peer) for peer in PEERS if _geomean(results, peer)}


def table(results):
    head = (f"{'activation':12s} {'direction':17s} {'dtype':7s} {'n':>5s} {'fastact':>10s} "
            f"{'torch':>10s} {'compile':>10s} {'numpy':>10s} {'vs torch':>9s} "
            f"{'vs compile':>10s} {'vs numpy':>9s}")
    lines = ["Gated units and prelu: forward, and forward + backward in one call",
             head, "-" * len(head)]
    for r in results:
        t, c, npy = r.get("torch"), r.get("compile"), r.get("numpy")
        lines.append(
            f"{r['activation']:12s} {r['direction']:17s} {r['dtype']:7s} "
            f"{bench._size_label(r['n']):>5s} {bench._fmt_time(r['fastact']):>10s} "
            f"{bench._fmt_time(t):>10s} {bench._fmt_time(c):>10s} {bench._fmt_time(npy):>10s} "
            f"{bench._speedup(t, r['fastact'])} {bench._speedup(c, r['fastact']):>10s} "
            f"{bench._speedup(npy, r['fastact'])}")
    lines.append("\n'vs X' is X's time / fastact's (above 1: fastact faster). torch: eager "
                 "PyTorch with autograd; compile: torch.compile of the same expression "
                 "(Inductor); n: the input's elements.")
    for peer, (gm, slower, cases) in summary(results).items():
        lines.append(f"fastact/{peer} time, geometric mean over {cases} cases: {gm:.3f} "
                     f"({slower} slower)")
    return "\n".join(lines)


def markdown(results):
    """The gated table of docs/performance.md: other's time / fastact's per case."""
    present = [p for p in PEERS if any(r.get(p) for r in results)]
    lines = ["| activation | direction | dtype | n | fastact | "
             + " | ".join(f"vs {p}" for p in present) + " |",
             "|---|---|---|---:|---:|" + "---:|" * len(present)]
    for r in results:
        cells = [f"{r[p] / r['fastact']:.2f}" if r.get(p) else "-" for p in present]
        lines.append(f"| {r['activation']} | {r['direction']} | {r['dtype'][5:]}-bit | "
                     f"{bench._size_label(r['n'])} | {bench._fmt_time(r['fastact'])} | "
                     + " | ".join(cells) + " |")
    for peer, (gm, slower, cases) in summary(results).items():
        lines.append(f"\nfastact/{peer} time, geometric mean over {cases} cases: **{gm:.3f}** "
                     f"({slower} slower).")
    return "\n".join(lines)
