"""``python -m fastact bench --step``: a training step's activation against the compilers.

Each side computes y = f(x) and dx = g * f'(x) in one call and allocates both outputs:
fastact's ``<name>_forward_backward(x, grad_output=g)``, eager PyTorch (autograd),
``torch.compile`` of ``torch.func.vjp`` of the same PyTorch function (forward and
backward in one graph: Inductor's fused C++ with OpenMP) and ``jax.jit`` of ``jax.vjp``
of the jax.nn function (when jax is installed: ``pip install jax``; float64 with
``jax_enable_x64``). Every peer's y and dx are checked against fastact's before the
timing (a peer that computes something else is reported, not timed). Timed
interleaved, medians, as the elementwise part (fastact.bench)."""
import importlib.util
import math
import os
import sys

import numpy as np

import fastact
from . import bench

# label -> (fastact name, fastact params, PyTorch expression, jax expression)
CASES = {
    "gelu": ("gelu", {}, "F.gelu(x)", "jax.nn.gelu(x, approximate=False)"),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}, "F.gelu(x, approximate='tanh')",
                  "jax.nn.gelu(x, approximate=True)"),
    "silu": ("silu", {}, "F.silu(x)", "jax.nn.silu(x)"),
    "mish": ("mish", {}, "F.mish(x)", "jax.nn.mish(x)"),
    "elu": ("elu", {}, "F.elu(x)", "jax.nn.elu(x)"),
    "softplus": ("softplus", {}, "F.softplus(x)", "jax.nn.softplus(x)"),
    "sigmoid": ("sigmoid", {}, "torch.sigmoid(x)", "jax.nn.sigmoid(x)"),
    "tanh": ("tanh", {}, "torch.tanh(x)", "jnp.tanh(x)"),
    "leaky_relu": ("leaky_relu", {}, "F.leaky_relu(x)", "jax.nn.leaky_relu(x, 0.01)"),
}
LABELS = list(CASES)
PEERS = ("torch", "compile", "jax")
# a peer's y and dx within this of fastact's (relative to the largest |value|): the
# same function, whatever each side's rounding
AGREE = {"float32": 1e-3, "float64": 1e-9}


def have_jax():
    """Whether jax is installed (without importing it: its threads stay out of the
    process until it is timed)."""
    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):       # a None entry in sys.modules: "not there"
        return False


def _torch_function(label):
    import torch
    import torch.nn.functional as F
    return eval(compile(f"lambda x: {CASES[label][2]}", f"<torch {label}>", "eval"),
                {"torch": torch, "F": F})


def _torch_eager(label, x, g):
    import torch
    f = _torch_function(label)
    xt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

    def step():
        xt.grad = None
        y = f(xt)
        y.backward(gt)
        return y.detach(), xt.grad
    return step


_COMPILED = {}


def _torch_compiled(label, x, g):
    """torch.compile of vjp(f): the forward and backward in one graph (one per label,
    recompiled for each shape and dtype, as a user's model would be)."""
    import torch
    from ._bench_gated import torch_compile
    if label not in _COMPILED:
        f = _torch_function(label)

        def step(x, g):
            y, vjp = torch.func.vjp(f, x)
            return y, vjp(g)[0]
        _COMPILED[label] = torch_compile(step)
    fn, xt, gt = _COMPILED[label], torch.from_numpy(x), torch.from_numpy(g)
    return lambda: fn(xt, gt)


_JITTED = {}


def _jax_jitted(label, x, g):
    import jax
    jax.config.update("jax_enable_x64", True)      # float64 stays float64
    import jax.numpy as jnp
    if label not in _JITTED:
        f = eval(compile(f"lambda x: {CASES[label][3]}", f"<jax {label}>", "eval"),
                 {"jax": jax, "jnp": jnp})

        def step(x, g):
            y, vjp = jax.vjp(f, x)
            return y, vjp(g)[0]
        _JITTED[label] = jax.jit(step)
    fn, xj, gj = _JITTED[label], jnp.asarray(x), jnp.asarray(g)
    return lambda: jax.block_until_ready(fn(xj, gj))


def _fastact(label, x, g):
    name, params, _, _ = CASES[label]
    fb = getattr(fastact, name + "_forward_backward")
    return lambda: fb(x, **params, grad_output=g)


def _disagreement(ref, got):
    """max |got - ref| / max |ref| over y and dx (inf for a NaN where ref has none)."""
    worst = 0.0
    for r, v in zip(ref, got):
        v = np.asarray(v, dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        if np.isnan(v).any() and not np.isnan(r).any():
            return math.inf
        scale = max(float(np.max(np.abs(r))), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.nanmax(np.abs(v - r))) / scale)
    return worst


def run(labels=None, sizes=("256K", "4M"), dtypes=("float32", "float64"), peers=PEERS,
        threads=None, repeat=5, progress=sys.stderr, notes=None):
    """Measure every case; a list of dicts (seconds per call, medians). A peer whose
    results disagree with fastact's is left out of its case, with a line in `notes`."""
    threads = threads or fastact.get_num_threads()
    if any(p in peers for p in ("torch", "compile")):
        import torch
        torch.set_num_threads(threads)
    sizes = [bench.parse_size(s) if isinstance(s, str) else s for s in sizes]
    plan = [(label, dt, n) for n in sizes for dt in dtypes for label in (labels or LABELS)]
    makers = {"torch": _torch_eager, "compile": _torch_compiled, "jax": _jax_jitted}
    rng = np.random.default_rng(0)
    results = []
    with fastact.threads(threads):
        for i, (label, dtype, n) in enumerate(plan):
            if progress:
                bench._progress(i, len(plan), f"step {label} {dtype} {bench._size_label(n)}",
                                progress)
            x = (rng.standard_normal(n) * 3).astype(dtype)
            g = rng.uniform(-1, 1, n).astype(dtype)
            fns = {"fastact": _fastact(label, x, g)}
            ref = fns["fastact"]()
            for peer in peers:
                try:
                    fn = makers[peer](label, x, g)
                    off = _disagreement(ref, fn())
                except Exception as e:          # e.g. a compiler Inductor cannot run
                    if notes is not None:
                        notes.append(f"{peer} {label} {dtype} {bench._size_label(n)}: not "
                                     f"timed, it failed: {type(e).__name__}: {e}"[:300])
                    continue
                if off <= AGREE[dtype]:
                    fns[peer] = fn
                elif notes is not None:
                    notes.append(f"{peer} {label} {dtype} {bench._size_label(n)}: not timed, "
                                 f"y or dx differs from fastact's by {off:.2g} of the largest "
                                 f"value")
            times = bench.time_interleaved(fns, repeat)
            results.append({"activation": label, "dtype": dtype, "n": n, "threads": threads,
                            **times})
        if progress:
            bench._progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


def summary(results):
    """peer -> (geometric mean of fastact/peer, cases slower, cases above 0.9, worst, cases)."""
    out = {}
    for peer in PEERS:
        ratios = [r["fastact"] / r[peer] for r in results if r.get(peer)]
        if ratios:
            out[peer] = (float(math.exp(np.mean(np.log(ratios)))), sum(q > 1 for q in ratios),
                         sum(q > 0.9 for q in ratios), max(ratios), len(ratios))
    return out


def _summary_lines(results, bold=False):
    b = "**" if bold else ""
    return [f"fastact/{peer} time, geometric mean over {cases} cases: {b}{gm:.3f}{b} "
            f"({slower} slower, {above} above 0.9; worst {worst:.2f})"
            for peer, (gm, slower, above, worst, cases) in summary(results).items()]


def table(results, notes=()):
    present = [p for p in PEERS if any(r.get(p) for r in results)]
    head = (f"{'activation':12s} {'dtype':7s} {'n':>5s} {'fastact':>10s} "
            + " ".join(f"{p:>10s}" for p in present) + " "
            + " ".join(f"{'vs ' + p:>10s}" for p in present))
    lines = ["Training step: y = f(x) and dx = g f'(x) in one call, every side allocating",
             head, "-" * len(head)]
    for r in results:
        lines.append(f"{r['activation']:12s} {r['dtype']:7s} {bench._size_label(r['n']):>5s} "
                     f"{bench._fmt_time(r['fastact']):>10s} "
                     + " ".join(f"{bench._fmt_time(r.get(p)):>10s}" for p in present) + " "
                     + " ".join(f"{bench._speedup(r.get(p), r['fastact']):>10s}"
                                for p in present))
    lines.append("\n'vs X' is X's time / fastact's (above 1: fastact faster). torch: eager "
                 "PyTorch with autograd; compile: torch.compile of torch.func.vjp (one graph); "
                 "jax: jax.jit of jax.vjp.")
    lines += _summary_lines(results) + list(notes)
    return "\n".join(lines)


def markdown(results, notes=()):
    """The training-step table of docs/performance.md: peer's time / fastact's per case."""
    present = [p for p in PEERS if any(r.get(p) for r in results)]
    lines = ["| activation | dtype | n | fastact | " + " | ".join(f"vs {p}" for p in present)
             + " |", "|---|---|---:|---:|" + "---:|" * len(present)]
    for r in results:
        cells = [f"{r[p] / r['fastact']:.2f}" if r.get(p) else "-" for p in present]
        lines.append(f"| {r['activation']} | {r['dtype'][5:]}-bit | "
                     f"{bench._size_label(r['n'])} | {bench._fmt_time(r['fastact'])} | "
                     + " | ".join(cells) + " |")
    lines += [""] + _summary_lines(results, bold=True) + list(notes)
    return "\n".join(lines)


def plot(results, path):
    """One panel per (dtype, n): each peer's time / fastact's, per activation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [p for p in PEERS if any(r.get(p) for r in results)]
    groups = sorted({(r["dtype"], r["n"]) for r in results})
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 3.2 * len(groups)), squeeze=False)
    colors = {"torch": "tab:red", "compile": "tab:orange", "jax": "tab:green"}
    for ax, (dtype, n) in zip(axes[:, 0], groups):
        rows = [r for r in results if (r["dtype"], r["n"]) == (dtype, n)]
        bench.ratio_bars(ax, rows, present, colors, [r["activation"] for r in rows])
        ax.set_title(f"training step (y and g f'(x)), {dtype}, n = {bench._size_label(n)}: "
                     "above 1: fastact faster")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_path(path):
    stem, ext = os.path.splitext(path)
    return f"{stem}-step{ext}"
