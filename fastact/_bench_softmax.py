"""``python -m fastact bench --softmax``, the softmax part: softmax and log_softmax (and
softmin on request) along the last axis and along axis 0, forward and fused forward +
backward, against eager PyTorch, ``torch.compile``, NumPy and SciPy.

A shape (rows, n) is rows rows of length n: along the last axis x is (rows, n) and
axis=-1; along axis 0 x is the same data as (n, rows) and axis=0 (the reduction over a
non-contiguous axis). The peers' forward expressions are SOFTMAX_TABLE's (PyTorch's,
NumPy's, SciPy's); their forward + backward is what a user of each would run:

- fastact: ``NAME(x, axis, out=y)``; ``NAME_forward_backward(x, axis, g, out=y,
  grad_out=gx)``
- torch: the expression with ``out=`` where PyTorch has it; forward + backward is
  ``y = f(x); y.backward(g)`` with autograd (the backward from y, as fastact's)
- compile: ``torch.compile`` of the expression, and of a function returning
  ``(y, torch.autograd.grad(y, x, g))`` (Inductor compiles both into one graph)
- numpy: the expression; its backward is the formula from y (backward_expression)
- scipy: the expression (scipy.special), NumPy's backward from y
- copy: ``np.copyto(out, x)``, the memory-bound floor of a forward

Every case times its sides in turn, rounds interleaved, and reports medians
(time_sides: the big arrays get fewer rounds, within a time budget per side).
"""
import ast
import gc
import math
import sys
import time

import numpy as np

import fastact
from . import bench
from ._activations import SOFTMAX_BY_NAME, SOFTMAX_FUNCS

FUNCTIONS = SOFTMAX_FUNCS                       # softmax, log_softmax, softmin
DEFAULT_FUNCTIONS = ("softmax", "log_softmax")
SHAPES = ((4096, 32000), (65536, 128), (16, 1000000))
DEFAULT_SHAPES = ",".join(f"{r}x{n}" for r, n in SHAPES)
AXES = (-1, 0)
MODES = ("forward", "forward_backward")
PEERS = ("torch", "compile", "numpy", "scipy")
# sides that allocate their results on every call: no one-time cost on the first call
# but the first touch of memory, which every call pays (their warm-up is timed too)
ALLOCATING = ("numpy", "scipy", "torch:forward_backward")

BUDGET = 1.0        # seconds of samples per side and case, at least one sample
TARGET = 0.002      # seconds per sample: short calls are looped
SLOW = 0.2          # an allocating side's warm-up of this long counts as a sample


# ---- the peers' expressions ----

def backward_expression(spec):
    """NumPy's grad_x from y and g along axis for a function of the table: d/dx of
    softmax(sign * x) is sign * y * (g - sum(g * y)); of log_softmax(sign * x),
    sign * (g - exp(y) * sum(g))."""
    if spec.log:
        pos, neg = "g", "np.exp(y) * g.sum(axis, keepdims=True)"
        return f"{pos} - {neg}" if spec.sign > 0 else f"{neg} - {pos}"
    s = "(g * y).sum(axis, keepdims=True)"
    return f"y * (g - {s})" if spec.sign > 0 else f"y * ({s} - g)"


def _lambda(args, expr, scope, what):
    return eval(compile(f"lambda {args}: {expr}", f"<{what}>", "eval"), scope)


def _with_numpy_backward(name, fwd):
    """(fwd, forward_backward(x, axis, g)): fwd, then NumPy's backward from its y."""
    bwd = _lambda("g, y, axis", backward_expression(SOFTMAX_BY_NAME[name]), {"np": np},
                  f"numpy backward of {name}")

    def fb(x, axis, g):
        y = fwd(x, axis)
        return y, bwd(g, y, axis)
    return fwd, fb


def numpy_impl(name):
    """(forward(x, axis), forward_backward(x, axis, g)) with NumPy's expressions."""
    return _with_numpy_backward(name, _lambda("x, axis", SOFTMAX_BY_NAME[name].numpy,
                                              {"np": np}, f"numpy peer of {name}"))


def scipy_impl(name):
    """(forward, forward_backward) with SciPy's expression and NumPy's backward from y;
    None without SciPy."""
    try:
        import scipy.special
    except ImportError:
        return None
    return _with_numpy_backward(name, _lambda("x, axis", SOFTMAX_BY_NAME[name].scipy,
                                              {"np": np, "scipy": scipy},
                                              f"scipy peer of {name}"))


def _torch_scope():
    import torch
    import torch.nn.functional as F
    return {"torch": torch, "F": F}


def _with_out(expr):
    """The expression's outermost call with out=o added."""
    tree = ast.parse(expr, mode="eval")
    tree.body.keywords.append(ast.keyword("out", ast.Name("o", ast.Load())))
    return ast.unparse(ast.fix_missing_locations(tree))


_TORCH = {}


def torch_impl(name):
    """(forward(x, dim, o), expression(x, dim)): PyTorch's expression, the forward with
    out=o where PyTorch takes it (else o is ignored and the result allocated)."""
    if name not in _TORCH:
        import torch
        spec, scope = SOFTMAX_BY_NAME[name], _torch_scope()
        expr = _lambda("x, dim", spec.torch, scope, f"torch peer of {name}")
        fwd = _lambda("x, dim, o", _with_out(spec.torch), scope, f"torch peer of {name}")
        try:
            t = torch.zeros(2, 3)
            fwd(t, -1, torch.empty_like(t))
        except (TypeError, RuntimeError):
            fwd = lambda x, dim, o: expr(x, dim)  # noqa: E731
        _TORCH[name] = fwd, expr
    return _TORCH[name]


_COMPILED = {}


def compiled_impl(name):
    """(forward(x, dim), forward_backward(x, dim, g)): torch.compile of PyTorch's
    expression and of the function returning (y, grad_x) by torch.autograd.grad."""
    if name not in _COMPILED:
        import torch
        import torch._dynamo.config as dynamo
        import torch._inductor.config as inductor
        # every case (function, mode, shape, dtype, dim) is its own graph: above PyTorch's
        # recompile limits it would run eagerly instead
        for limit in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                      "accumulated_cache_size_limit"):
            if hasattr(dynamo, limit):
                setattr(dynamo, limit, max(getattr(dynamo, limit), 4096))
        # torch.autograd.grad in the graph (else Dynamo breaks the graph there)
        if hasattr(dynamo, "trace_autograd_ops"):
            dynamo.trace_autograd_ops = True
        # compile in this process: a pool of compile workers would compete with the
        # timings for the cores
        inductor.compile_threads = 1
        expr = torch_impl(name)[1]

        def forward_backward(x, dim, g):
            y = expr(x, dim)
            (gx,) = torch.autograd.grad(y, x, g)
            return y.detach(), gx
        _COMPILED[name] = (torch.compile(expr, dynamic=False),
                           torch.compile(forward_backward, dynamic=False))
    return _COMPILED[name]


# ---- one case ----

def case_fns(name, mode, x, axis, g, peers, y, gx):
    """{side: zero-argument callable} for one case; each returns its result (y, or
    (y, grad_x)), except the copy. y and gx are the preallocated outputs (the copy and
    PyTorch's out= write into y too)."""
    f = getattr(fastact, name)
    fb = getattr(fastact, name + "_forward_backward")
    fns = {"fastact": (lambda: f(x, axis, out=y)) if mode == "forward" else
           (lambda: fb(x, axis, g, out=y, grad_out=gx)),
           "copy": lambda: np.copyto(y, x)}
    if "torch" in peers or "compile" in peers:
        import torch
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        xg = torch.from_numpy(x).requires_grad_()
        gt = None if g is None else torch.from_numpy(g)
    if "torch" in peers:
        tf, expr = torch_impl(name)
        if mode == "forward":
            def eager():
                with torch.no_grad():
                    return tf(xt, axis, yt)
        else:
            def eager():
                xg.grad = None
                yv = expr(xg, axis)
                yv.backward(gt)
                return yv.detach(), xg.grad
        fns["torch"] = eager
    if "compile" in peers:
        try:
            cf, cfb = compiled_impl(name)
        except Exception as exc:            # raised again by the side: time_sides notes it
            def compiled(exc=exc):
                raise exc
        else:
            if mode == "forward":
                def compiled():
                    with torch.no_grad():
                        return cf(xt, axis)
            else:
                def compiled():
                    return cfb(xg, axis, gt)
        fns["compile"] = compiled
    for peer, impl in (("numpy", numpy_impl), ("scipy", scipy_impl)):
        if peer in peers and (fns_of_peer := impl(name)):
            pf, pfb = fns_of_peer
            fns[peer] = (lambda pf=pf: pf(x, axis)) if mode == "forward" else \
                (lambda pfb=pfb: pfb(x, axis, g))
    return fns


def _timed(fn, loops=1):
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops


def time_sides(fns, repeat=5, allocating=(), budget=BUDGET, target=TARGET, slow=SLOW,
               fragile=(), failed=None):
    """Median seconds per call of each side, timed in turn, up to `repeat` interleaved
    rounds. Each side is called once first (its warm-up: compiling, first touch of
    preallocated outputs); an allocating side's warm-up of `slow` seconds or more counts
    as a sample (its memory is new on every call). Calls shorter than `target` are looped;
    a side gets as many samples as fit in `budget` seconds, at least one. A side in
    `fragile` that raises on its first call is left out (failed[side] = the exception)."""
    samples = {k: [] for k in fns}
    loops, rounds = {}, {}
    for k in list(fns):
        try:
            t = _timed(fns[k])
        except Exception as exc:
            if k not in fragile:
                raise
            if failed is not None:
                failed[k] = exc
            del fns[k], samples[k]
            continue
        if not (k in allocating and t >= slow):
            t = _timed(fns[k])              # after the warm-up's one-time costs
        loops[k] = max(1, min(10000, int(target / max(t, 1e-7))))
        if loops[k] == 1:
            samples[k].append(t)
        rounds[k] = max(1, min(repeat, int(budget / max(t * loops[k], 1e-9))))
    keys = list(fns)
    for r in range(repeat):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            if len(samples[k]) < rounds[k]:
                samples[k].append(_timed(fns[k], loops[k]))
    return {k: float(np.median(v)) for k, v in samples.items()}


# ---- the run ----

def parse_shapes(text):
    """'4096x32000,16x1M' -> [(4096, 32000), (16, 1048576)] (K, M as in --sizes)."""
    shapes = []
    for part in text.split(","):
        if not part.strip():
            continue
        dims = part.strip().lower().split("x")
        if len(dims) != 2 or not all(d.strip() for d in dims):
            raise ValueError(part)
        shapes.append(tuple(bench.parse_size(d) for d in dims))
    if not shapes or min(min(s) for s in shapes) < 1:
        raise ValueError(text)
    return shapes


def shape_label(shape):
    return "x".join(str(d) for d in shape)


def _data(rng, dtype, size):
    x = rng.standard_normal(size, dtype=np.dtype(dtype))
    x *= 3
    g = rng.random(size, dtype=np.dtype(dtype))
    g *= 2
    g -= 1
    return x, g


def _plan(functions, shapes, dtypes, axes, modes):
    return [(s, dt, ax, f, m) for s in shapes for dt in dtypes for ax in axes
            for f in functions for m in modes]


def run(functions=DEFAULT_FUNCTIONS, shapes=SHAPES, dtypes=("float32", "float64"),
        axes=AXES, modes=MODES, peers=("torch", "compile", "numpy"), threads=None,
        repeat=5, progress=sys.stderr, notes=None):
    """Measure every case; a list of dicts (seconds per call, medians). notes (a list)
    receives what was left out and why (torch.compile failing, SciPy missing)."""
    notes = [] if notes is None else notes
    peers = list(peers)
    threads = threads or fastact.get_num_threads()
    if "torch" in peers or "compile" in peers:
        import torch
        torch.set_num_threads(threads)
    if "scipy" in peers and scipy_impl(functions[0]) is None:
        notes.append("SciPy is not installed: the scipy column is left out")
        peers.remove("scipy")
    shapes = [parse_shapes(s)[0] if isinstance(s, str) else tuple(s) for s in shapes]
    plan = _plan(functions, shapes, dtypes, axes, modes)
    rng = np.random.default_rng(0)
    results = []
    current = None
    with fastact.threads(threads):
        for i, ((rows, n), dtype, axis, name, mode) in enumerate(plan):
            xshape = (rows, n) if axis == -1 else (n, rows)
            if progress:
                bench._progress(i, len(plan), f"{name} {mode} {dtype} "
                                f"{shape_label(xshape)} axis={axis}", progress)
            if current != ((rows, n), dtype):
                current = arrays = None        # free the last shape's arrays first
                gc.collect()
                current = ((rows, n), dtype)
                arrays = _data(rng, dtype, rows * n) + (np.empty(rows * n, dtype),
                                                        np.empty(rows * n, dtype))
            x, g, y, gx = (a.reshape(xshape) for a in arrays)
            fns = case_fns(name, mode, x, axis, g if mode == "forward_backward" else None,
                           peers, y, gx)
            failed = {}
            allocating = [k for k in fns if k in ALLOCATING or f"{k}:{mode}" in ALLOCATING]
            times = time_sides(fns, repeat, allocating, fragile=("compile",), failed=failed)
            if "compile" in failed:
                exc = failed["compile"]
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                notes.append(f"torch.compile failed ({type(exc).__name__}: {first}); the "
                             f"compile column is left out from {name} {mode} {dtype} "
                             f"{shape_label(xshape)} axis={axis} on")
                peers.remove("compile")
            del fns, x, g, y, gx
            results.append({"function": name, "mode": mode, "dtype": dtype,
                            "shape": list(xshape), "axis": axis, "rows": rows, "n": n,
                            "threads": threads, **times})
        arrays = None
        gc.collect()
        if progress:
            bench._progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


# ---- reports ----

def _present(results):
    return [p for p in PEERS if any(r.get(p) for r in results)]


def summary(results):
    """{peer: (geometric mean of fastact/peer, cases slower than the peer, cases)}."""
    out = {}
    for peer in _present(results):
        ratios = [r["fastact"] / r[peer] for r in results if r.get(peer)]
        out[peer] = (float(math.exp(np.mean(np.log(ratios)))), int(sum(q > 1 for q in ratios)),
                     len(ratios))
    return out


def _ratio(q):
    return f"{q:.2f}" if q < 100 else f"{q:.0f}"


def table(results, notes=()):
    present = _present(results)
    head = (f"{'function':12s} {'mode':17s} {'dtype':7s} {'x shape':>12s} {'axis':>4s} "
            f"{'fastact':>10s} {'copy':>10s} {'/copy':>6s} "
            + " ".join(f"{p:>10s}" for p in present) + " "
            + " ".join(f"{'vs ' + p:>10s}" for p in present)).rstrip()
    lines = ["Softmax family: forward, and forward + backward in one call", head,
             "-" * len(head)]
    for r in results:
        lines.append(
            (f"{r['function']:12s} {r['mode']:17s} {r['dtype']:7s} "
             f"{shape_label(r['shape']):>12s} {r['axis']:>4d} "
             f"{bench._fmt_time(r['fastact']):>10s} {bench._fmt_time(r['copy']):>10s} "
             f"{_ratio(r['fastact'] / r['copy']):>6s} "
             + " ".join(f"{bench._fmt_time(r.get(p)):>10s}" for p in present) + " "
             + " ".join(f"{bench._speedup(r.get(p), r['fastact']):>10s}" for p in present)
             ).rstrip())
    lines.append("\nTimes are medians per call. 'vs X' is X's time / fastact's (above 1: "
                 "fastact faster); '-': not timed. copy: np.copyto of x into a preallocated "
                 "array, the memory-bound floor of a forward (a forward + backward reads and "
                 "writes two arrays: about two copies); /copy: fastact's time / the copy's. "
                 "torch: eager PyTorch (out= where it takes it; forward + backward with "
                 "autograd); compile: torch.compile of the same expression, and of y with "
                 "torch.autograd.grad; numpy, scipy: their softmax, the backward from y "
                 "in NumPy. axis=0: x is (n, rows), reduced over its non-contiguous axis.")
    lines += list(dict.fromkeys(notes))
    for peer, (gm, slower, cases) in summary(results).items():
        lines.append(f"fastact/{peer} time, geometric mean over {cases} cases: {gm:.3f} "
                     f"({slower} slower)")
    return "\n".join(lines)


def markdown(results, notes=()):
    """The softmax table for docs/performance.md: other's time / fastact's per case."""
    present = _present(results)
    lines = ["| function | mode | dtype | x shape | axis | fastact | /copy | "
             + " | ".join(f"vs {p}" for p in present) + " |",
             "|---|---|---|---|---:|---:|---:|" + "---:|" * len(present)]
    for r in results:
        cells = [f"{r[p] / r['fastact']:.2f}" if r.get(p) else "-" for p in present]
        lines.append(f"| {r['function']} | {r['mode']} | {r['dtype'][5:]}-bit | "
                     f"{shape_label(r['shape'])} | {r['axis']} | "
                     f"{bench._fmt_time(r['fastact'])} | {_ratio(r['fastact'] / r['copy'])} | "
                     + " | ".join(cells) + " |")
    for note in dict.fromkeys(notes):
        lines.append(f"\n{note}.")
    for peer, (gm, slower, cases) in summary(results).items():
        lines.append(f"\nfastact/{peer} time, geometric mean over {cases} cases: **{gm:.3f}** "
                     f"({slower} slower).")
    return "\n".join(lines)


def plot(results, path):
    """Bars of each peer's time / fastact's per case, one panel per mode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = _present(results) + ["copy"]
    modes = [m for m in MODES if any(r["mode"] == m for r in results)]
    fig, axes = plt.subplots(len(modes), 1, figsize=(12, 4 * len(modes)), squeeze=False)
    colors = {"torch": "tab:red", "compile": "tab:orange", "numpy": "tab:blue",
              "scipy": "tab:green", "copy": "tab:gray"}
    for ax, mode in zip(axes[:, 0], modes):
        rows = [r for r in results if r["mode"] == mode]
        bench.ratio_bars(ax, rows, present, colors,
                         [f"{r['function']} {r['dtype'][5:]} {shape_label(r['shape'])} "
                          f"ax{r['axis']}" for r in rows], rotation=45, fontsize=7)
        ax.set_title(f"softmax family, {mode}: speed-up of fastact (above 1: fastact faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def available():
    """None when the active backend computes the family, else why not."""
    try:
        fastact.softmax(np.zeros((1, 2), np.float32))
    except Exception as exc:
        return (f"fastact.softmax fails with the {fastact.backend()} backend "
                f"({type(exc).__name__}: {exc}); FASTACT_BACKEND=numpy selects the NumPy "
                f"backend")
    return None
