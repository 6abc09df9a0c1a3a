"""``python -m fastact bench``: fastact against PyTorch and NumPy, side by side.

Every case (activation x direction x dtype x size) times fastact (``out=`` preallocated),
PyTorch on the CPU (same thread count; its ``out=`` / ``grad_input=`` variants where it has
them) and the idiomatic NumPy expression; the backward of sigmoid, tanh and relu is taken
from y on both sides, as PyTorch's autograd does. The copy of the same array on the same
threads (fastact.linear with out=) is the memory roofline, timed with them: each round
runs all of them in turn, and the report gives medians. The implementations here are
also what the asv suite in benchmarks/ times.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

import fastact
from fastact import _bench_softmax
from fastact._activations import ACTIVATIONS_BY_NAME, KERNELS

# (label, fastact name, params); default parameters, gelu in both forms
CASES = [(n, n, {"threshold": 0.25, "value": -1.0} if n == "threshold" else {})
         for n in fastact.ACTIVATIONS] + [("gelu_tanh", "gelu", {"approximate": "tanh"})]
_BY_LABEL = {label: name for label, name, _ in CASES}
# memory-bound: the kernels of the least work per element (timed against the copy)
MEMORY_BOUND = {label for label, name, params in CASES
                if KERNELS[fastact.get(name, **params)._kernel].cost == 1}


def _erf():
    try:
        from scipy.special import erf
        return erf
    except ImportError:                       # NumPy has no erf
        return np.frompyfunc(math.erf, 1, 1)


# the names the table's peer expressions use
NUMPY_SCOPE = {"np": np, "sig": lambda x: 1 / (1 + np.exp(-x)), "SQRT2": math.sqrt(2.0),
               "SQRT_2PI": math.sqrt(2 * math.pi), "GELU_C": math.sqrt(2 / math.pi),
               "SELU_ALPHA": 1.6732632423543772848170429916717,
               "SELU_SCALE": 1.0507009873554804934193349852946}


def _torch_scope():
    import torch
    import torch.nn.functional as F
    memo = {}

    def saved(fn, t):
        """fn(t) computed once, as autograd saves it from the forward."""
        key = (fn, id(t))
        if key not in memo:
            memo[key] = fn(t)
        return memo[key]
    return {**NUMPY_SCOPE, "torch": torch, "F": F, "A": torch.ops.aten, "saved": saved}


def _peer(label, params, library, scope, args):
    """The table's (forward, backward) expressions of a peer library as functions of
    args, with the parameters in scope; None where the table names no such peer."""
    act = ACTIVATIONS_BY_NAME[_BY_LABEL[label]]
    if library not in act.peers:
        return None
    scope = {**scope, **act.with_defaults(params)}
    return tuple(eval(compile(f"lambda {a}: {expr}", f"<{library} peer of {label}>", "eval"),
                      scope) for a, expr in zip(args, act.peers[library]))


def numpy_impl(label, params):
    """(forward(x), backward(g, x)): the idiomatic NumPy expressions (the table's);
    None where it names none."""
    if "erf" not in NUMPY_SCOPE:
        NUMPY_SCOPE["erf"] = _erf()
    return _peer(label, params, "numpy", NUMPY_SCOPE, ("x", "g, x"))


def torch_impl(label, params):
    """(forward(t, out), backward(g, t, y, out)) with PyTorch's CPU kernels (the table's
    expressions: the out= and grad_input= variants where they exist); None where PyTorch
    has no counterpart."""
    return _peer(label, params, "torch", _torch_scope(), ("x, o", "g, x, y, o"))


def from_y(label):
    """Whether PyTorch's backward peer takes y (fastact's is then timed from y too)."""
    act = ACTIVATIONS_BY_NAME[_BY_LABEL[label]]
    return "torch" in act.peers and "y" in compile(act.peers["torch"][1], "", "eval").co_names


def fastact_impl(name, params, label=None):
    """(forward(x, out), backward(g, x, y, out))."""
    f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
    if from_y(label or name):
        return (lambda x, o: f(x, **params, out=o)), (lambda g, x, y, o: b(g, y=y, **params, out=o))
    return (lambda x, o: f(x, **params, out=o)), (lambda g, x, y, o: b(g, x, **params, out=o))


def _loops(fn, target):
    """Calls per sample so that a sample takes about `target` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(10000, int(target / max(dt, 1e-7))))


def time_interleaved(fns, repeat=7, target=0.002):
    """Median seconds per call of each function, timing them in turn, `repeat` rounds."""
    for fn in fns.values():
        fn()                                                  # warm up
    loops = {k: _loops(fn, target) for k, fn in fns.items()}
    samples = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeat):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            fn, n = fns[k], loops[k]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: float(np.median(v)) for k, v in samples.items()}


def parse_size(text):
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def _size_label(n):
    for unit, s in (("M", 1 << 20), ("K", 1 << 10)):
        if n % s == 0:
            return f"{n // s}{unit}"
    return str(n)


def _progress(i, total, text, stream):
    width = 30
    done = int(width * i / total)
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{total} {text:40s}")
    stream.flush()


def run(activations=None, sizes=("4K", "256K", "4M"), dtypes=("float32", "float64"),
        directions=("forward", "backward"), threads=None, repeat=5, numpy_max="256K",
        use_torch=True, progress=sys.stderr):
    """Measure every case; returns a list of dicts (times in seconds)."""
    try:
        import torch
    except ImportError:
        torch = None
    if not use_torch:
        torch = None
    threads = threads or fastact.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    cases = [c for c in CASES if activations is None or c[0] in activations]
    sizes = [parse_size(s) if isinstance(s, str) else s for s in sizes]
    numpy_max = parse_size(numpy_max) if isinstance(numpy_max, str) else numpy_max
    plan = [(c, d, dt, n) for n in sizes for dt in dtypes for c in cases for d in directions]
    results = []
    rng = np.random.default_rng(0)
    with fastact.threads(threads):
        for i, ((label, name, params), direction, dtype, n) in enumerate(plan):
            if progress:
                _progress(i, len(plan), f"{label} {direction} {dtype} {_size_label(n)}", progress)
            x = (rng.standard_normal(n) * 3).astype(dtype)
            g = rng.uniform(-1, 1, n).astype(dtype)
            out = np.empty_like(x)
            copy_out = np.empty_like(x)
            ff, fb = fastact_impl(name, params, label)
            numpy_peer = numpy_impl(label, params)
            y = ff(x, np.empty_like(x)) if direction == "backward" else None
            fns = {"fastact": (lambda: ff(x, out)) if direction == "forward" else (lambda: fb(g, x, y, out)),
                   # the roofline, timed in the same rounds: this VM's bandwidth drifts
                   "copy": lambda: fastact.linear(x, out=copy_out)}
            if n <= numpy_max and numpy_peer:
                nf, nb = numpy_peer
                fns["numpy"] = (lambda: nf(x)) if direction == "forward" else (lambda: nb(g, x))
            torch_peer = torch_impl(label, params) if torch is not None else None
            if torch_peer:
                tf, tb = torch_peer
                t, tg, to = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(np.empty_like(x))
                ty = tf(t, torch.empty_like(t)).clone() if direction == "backward" else None
                fns["torch"] = (lambda: tf(t, to)) if direction == "forward" else (lambda: tb(tg, t, ty, to))
            times = time_interleaved(fns, repeat)
            results.append({"activation": label, "direction": direction, "dtype": dtype, "n": n,
                            "threads": threads, **times})
        if progress:
            _progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


MAX_THREADS = 256          # fa_pool.h's FA_POOL_MAX workers and the caller
MLP_SHAPE = {"batch": 2048, "width": 512, "depth": 3}


def mlp_models(name, dtype="float32", **shape):
    """{'torch': step, 'fastact': step}: zero-argument training steps (forward, MSE loss,
    backward) of the same MLP, ``depth`` hidden Linear(width, width) + activation layers,
    with torch.nn's activation modules and with fastact.torch's."""
    import torch
    import torch.nn.functional as F

    from . import torch as fat
    from ._activations import ACTIVATIONS_BY_NAME

    shape = {**MLP_SHAPE, **shape}
    batch, width, depth = shape["batch"], shape["width"], shape["depth"]
    cls = ACTIVATIONS_BY_NAME[name].cls_name
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(batch, 8, dtype=tdtype, generator=gen)
    target = torch.randn(batch, 1, dtype=tdtype, generator=gen)
    steps = {}
    for who, module in (("torch", getattr(torch.nn, cls)), ("fastact", getattr(fat, cls))):
        torch.manual_seed(0)
        layers = []
        for k in range(depth):
            layers += [torch.nn.Linear(8 if k == 0 else width, width), module()]
        model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1)).to(tdtype)

        def step(model=model):
            model.zero_grad(set_to_none=True)
            F.mse_loss(model(data), target).backward()
        steps[who] = step
    return steps


def mlp_step(activations=("gelu", "silu", "tanh"), dtypes=("float32",), threads=None,
             repeat=7, progress=sys.stderr, **shape):
    """Time mlp_models' training steps, interleaved; a list of dicts (seconds)."""
    import torch

    shape = {**MLP_SHAPE, **shape}
    threads = threads or fastact.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    plan = [(a, d) for d in dtypes for a in activations]
    with fastact.threads(threads):
        for i, (name, dtype) in enumerate(plan):
            if progress:
                _progress(i, len(plan), f"MLP step {name} {dtype}", progress)
            times = time_interleaved(mlp_models(name, dtype, **shape), repeat, target=0.05)
            results.append({"activation": name, "dtype": dtype, "threads": threads, **shape,
                            **times})
        if progress:
            _progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


def mlp_table(results):
    if not results:
        return ""
    r0 = results[0]
    lines = [f"Training step of an MLP ({r0['depth']} hidden layers of {r0['width']}, batch "
             f"{r0['batch']}): torch.nn activations vs fastact.torch",
             f"{'activation':12s} {'dtype':7s} {'torch':>10s} {'fastact':>10s} {'speed-up':>9s}"]
    for r in results:
        lines.append(f"{r['activation']:12s} {r['dtype']:7s} {_fmt_time(r['torch']):>10s} "
                     f"{_fmt_time(r['fastact']):>10s} {r['torch'] / r['fastact']:8.2f}x")
    return "\n".join(lines)


def _fmt_time(s):
    if s is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def summary(results):
    """Geometric mean of fastact/torch, count slower than torch, and the NumPy speed-ups."""
    ratios = [r["fastact"] / r["torch"] for r in results if r.get("torch")]
    out = {}
    if ratios:
        out["geomean_fastact_over_torch"] = float(np.exp(np.mean(np.log(ratios))))
        out["slower_than_torch"] = int(sum(x > 1 for x in ratios))
        out["cases"] = len(ratios)
    np_ratio = [r["numpy"] / r["fastact"] for r in results if r.get("numpy")]
    if np_ratio:
        out["geomean_numpy_over_fastact"] = float(np.exp(np.mean(np.log(np_ratio))))
    return out


def _speedup(other, ours):
    return f"{other / ours:8.2f}x" if other else f"{'-':>9s}"


def table(results):
    head = (f"{'activation':12s} {'dir':8s} {'dtype':7s} {'n':>5s} {'fastact':>10s} "
            f"{'torch':>10s} {'numpy':>10s} {'vs torch':>9s} {'vs numpy':>9s} {'copy':>10s}")
    lines = [head, "-" * len(head)]
    for r in results:
        t, npy = r.get("torch"), r.get("numpy")
        lines.append(
            f"{r['activation']:12s} {r['direction']:8s} {r['dtype']:7s} {_size_label(r['n']):>5s} "
            f"{_fmt_time(r['fastact']):>10s} {_fmt_time(t):>10s} {_fmt_time(npy):>10s} "
            f"{_speedup(t, r['fastact'])} {_speedup(npy, r['fastact'])} "
            f"{_fmt_time(r['copy']):>10s}")
    lines.append("\nTimes are medians per call. 'vs torch' and 'vs numpy' are the other's time "
                 "/ fastact's (above 1: fastact faster); '-': not timed (NumPy only up to "
                 "--numpy-max, PyTorch when installed). 'copy' is the memory roofline: a copy "
                 "of the same array on the same threads, timed in the same rounds.")
    missing = sorted({r["activation"] for r in results if r["activation"] not in _TORCH_PEERS})
    if missing:
        lines.append(f"No PyTorch counterpart (not timed against torch): {', '.join(missing)}.")
    s = summary(results)
    if "geomean_fastact_over_torch" in s:
        lines.append(f"\nfastact/torch time, geometric mean over {s['cases']} cases: "
                     f"{s['geomean_fastact_over_torch']:.3f} ({s['slower_than_torch']} slower "
                     f"than torch)")
    if "geomean_numpy_over_fastact" in s:
        lines.append(f"fastact speed-up over NumPy, geometric mean: {s['geomean_numpy_over_fastact']:.1f}x")
    return "\n".join(lines)


_SHORT = {"forward": "fwd", "backward": "bwd"}
_TORCH_PEERS = {label for label, name, _ in CASES if "torch" in ACTIVATIONS_BY_NAME[name].peers}


def markdown(results, mlp=()):
    """The tables of docs/performance.md (benchmarks/results/bench.md): speed-up of
    fastact over torch (torch time / fastact time) per activation, direction, dtype and
    size, NumPy's at the sizes it ran, the summary."""
    cols = sorted({(r["dtype"], r["n"]) for r in results})
    rows = {}
    for r in results:
        rows.setdefault((r["activation"], r["direction"]), {})[(r["dtype"], r["n"])] = r
    head = ["activation", "dir"] + [f"{d[5:]}-bit {_size_label(n)}" for d, n in cols]
    np_cols = [c for c in cols if any(r.get("numpy") for r in results
                                       if (r["dtype"], r["n"]) == c)]
    head += [f"vs NumPy {d[5:]}-bit {_size_label(n)}" for d, n in np_cols]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for (act, direction), by in rows.items():
        cells = [act, _SHORT[direction]]
        for c in cols:
            r = by.get(c)
            cells.append(f"{r['torch'] / r['fastact']:.2f}" if r and r.get("torch") else "-")
        for c in np_cols:
            r = by.get(c)
            cells.append(f"{r['numpy'] / r['fastact']:.1f}" if r and r.get("numpy") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    s = summary(results)
    if "geomean_fastact_over_torch" in s:
        lines.append(f"\nGeometric mean of fastact time / torch time over {s['cases']} cases: "
                     f"**{s['geomean_fastact_over_torch']:.3f}**; slower than torch in "
                     f"{s['slower_than_torch']}.")
    big = max(r["n"] for r in results)
    bound = [r for r in results if r["activation"] in MEMORY_BOUND and r["n"] == big]
    if bound:
        lines.append(f"\nMemory-bound cases at n = {_size_label(big)}, fastact time / roofline "
                     f"(a copy of the array on the same {_threads_label(bound)}; 1.5 copies "
                     f"for a backward, which "
                     f"reads two arrays): " + ", ".join(
                         f"{r['activation']} {_SHORT[r['direction']]} {r['dtype'][5:]}-bit "
                         f"{r['fastact'] / (r['copy'] * (1.5 if r['direction'] == 'backward' else 1)):.2f}"
                         for r in bound) + ".")
    if mlp:
        lines += ["", "| MLP training step | dtype | torch | fastact | speed-up |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {r['activation']} | {r['dtype']} | {_fmt_time(r['torch'])} | "
                  f"{_fmt_time(r['fastact'])} | {r['torch'] / r['fastact']:.2f} |" for r in mlp]
    return "\n".join(lines)


def _threads_label(results):
    """'N threads' of the runs in results (their common thread count)."""
    counts = sorted({r.get("threads", 1) for r in results})
    return "/".join(map(str, counts)) + (" thread" if counts == [1] else " threads")


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = sorted({(r["dtype"], r["n"], r["direction"]) for r in results})
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 3.2 * len(groups)), squeeze=False)
    for ax, (dtype, n, direction) in zip(axes[:, 0], groups):
        rows = [r for r in results if (r["dtype"], r["n"], r["direction"]) == (dtype, n, direction)]
        labels = [r["activation"] for r in rows]
        pos = np.arange(len(rows))
        for k, (who, color) in enumerate((("torch", "tab:red"), ("numpy", "tab:blue"))):
            vals = [r[who] / r["fastact"] if r.get(who) else 0 for r in rows]
            ax.bar(pos + (k - 0.5) * 0.4, vals, 0.4, label=f"{who} time / fastact time", color=color)
        ax.axhline(1, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(pos, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{direction}, {dtype}, n = {_size_label(n)}: speed-up of fastact (above 1: fastact faster)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def ratio_bars(ax, rows, peers, colors, labels, rotation=30, fontsize=8):
    """One chart panel: each peer's time / fastact's per row, grouped bars on a log scale
    with the line at 1 (the gated, softmax and --step charts)."""
    pos = np.arange(len(rows))
    width = 0.8 / max(1, len(peers))
    for k, who in enumerate(peers):
        vals = [r[who] / r["fastact"] if r.get(who) else 0 for r in rows]
        ax.bar(pos + (k - (len(peers) - 1) / 2) * width, vals, width,
               label=f"{who} time / fastact time", color=colors[who])
    ax.axhline(1, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(pos, labels, rotation=rotation, ha="right", fontsize=fontsize)
    ax.legend(fontsize=8)


def _have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def _choices(kind, text, known):
    """Comma-separated names, each one of known (argparse error otherwise)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {kind} {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
            f"{', '.join(known)}")
    return names


def _sizes(text):
    try:
        sizes = [parse_size(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid sizes {text!r}: comma-separated element counts such as 4K,256K,16M")
    return sizes


def _shapes(text):
    try:
        return _bench_softmax.parse_shapes(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid shapes {text!r}: comma-separated ROWSxN such as 4096x32000,16x1M")


LABELS = [c[0] for c in CASES]


def add_arguments(ap):
    """The bench command's options (python -m fastact bench --help)."""
    ap.add_argument("--activations", metavar="NAMES",
                    type=lambda t: [] if t == "none" else _choices("activation", t, LABELS),
                    help="comma-separated elementwise activations (default: all; gelu_tanh "
                         "is gelu with approximate='tanh'; 'none': only the gated and "
                         "softmax parts)")
    ap.add_argument("--sizes", default="4K,256K,4M", type=_sizes,
                    help="comma-separated element counts, K = 1024, M = 1024^2 "
                         "(default: %(default)s)")
    ap.add_argument("--dtypes", default="float32,float64",
                    type=lambda t: _choices("dtype", t, ["float32", "float64"]),
                    help="comma-separated: float32, float64 (default: %(default)s)")
    ap.add_argument("--directions", default="forward,backward",
                    type=lambda t: _choices("direction", t, ["forward", "backward"]),
                    help="comma-separated: forward (f(x)), backward (grad_output * f'(x)) "
                         "(default: %(default)s)")
    ap.add_argument("--threads", type=int, help="threads for fastact and PyTorch, 1 to "
                                                f"{MAX_THREADS} (default: "
                                                "fastact.get_num_threads())")
    ap.add_argument("--repeat", type=int, default=5,
                    help="interleaved timing rounds per case; the report gives medians "
                         "(the softmax part's big arrays: fewer, within about a second "
                         "per side and case) (default: %(default)s)")
    ap.add_argument("--numpy-max", default="256K", type=lambda t: _sizes(t)[0],
                    help="largest size timed with NumPy, whose expressions are slow, in "
                         "the elementwise and gated parts (the softmax part times NumPy and "
                         "SciPy at every shape, in fewer rounds) (default: %(default)s)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--mlp", default="gelu,silu,tanh",
                    help="activations of the MLP training-step comparison (needs PyTorch); "
                         "'none' to skip (default: %(default)s)")
    ap.add_argument("--gated", default="all",
                    help="comma-separated gated units and prelu to time (glu, swiglu, geglu, "
                         "geglu_tanh, reglu, prelu), 'all' or 'none' (default: %(default)s)")
    ap.add_argument("--gated-sizes", default="256K,16M", type=_sizes,
                    help="input sizes of the gated part (default: %(default)s)")
    ap.add_argument("--softmax", nargs="?", const="softmax,log_softmax", default="none",
                    metavar="FUNCS",
                    help="time the softmax family too: comma-separated softmax, "
                         "log_softmax, softmin, or 'all'; --softmax alone: "
                         "softmax,log_softmax (default: %(default)s)")
    ap.add_argument("--softmax-shapes", metavar="SHAPES",
                    default=_bench_softmax.DEFAULT_SHAPES, type=_shapes,
                    help="comma-separated ROWSxN of the softmax part: rows of length N, "
                         "reduced along the last axis of x (ROWS, N) and along axis 0 of "
                         "x (N, ROWS) (default: %(default)s)")
    ap.add_argument("--peers", default=None,
                    type=lambda t: _choices("peer", t, ["torch", "compile", "numpy", "scipy",
                                                        "jax"]),
                    help="what the gated, softmax and --step parts are timed against: torch "
                         "(eager, autograd), compile (torch.compile of the same "
                         "expression), numpy, scipy (scipy.special; softmax part only), jax "
                         "(jax.jit; --step only, needs jax) (default: torch,compile,numpy; "
                         "for --step torch,compile and jax where installed)")
    ap.add_argument("--step", action="store_true",
                    help="also time a training step's activation, y = f(x) and g f'(x) in one "
                         "call with every side allocating, for gelu, gelu_tanh, silu, mish, "
                         "elu, softplus, sigmoid, tanh and leaky_relu, against --peers "
                         "(torch.compile and jax.jit of the forward and its vjp in one graph)")
    ap.add_argument("--step-sizes", default="256K,4M", type=_sizes,
                    help="element counts of the --step part (default: %(default)s)")
    ap.add_argument("--half", action="store_true",
                    help="the half-precision report instead of the other parts: fastact "
                         "float32, bfloat16 (needs ml_dtypes) and float16 against each other "
                         "and against PyTorch's bfloat16 and float16 CPU kernels, per "
                         "activation (default: those with a PyTorch counterpart), direction "
                         "and --half-sizes")
    ap.add_argument("--half-sizes", default="256K,16M", type=_sizes,
                    help="element counts of the --half report (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="also save a chart (needs matplotlib)")
    ap.add_argument("--markdown", metavar="FILE.md", help="also write the tables of docs/performance.md "
                         "(kept in benchmarks/results/bench.md)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def run_cli(args):
    """Run the benchmark as parsed by add_arguments; checks what it needs first."""
    def fail(message):
        print(f"python -m fastact bench: error: {message}", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return fail("--plot needs matplotlib (pip install matplotlib)")
        from matplotlib.figure import Figure
        formats = Figure().canvas.get_supported_filetypes()      # before the run
        ext = os.path.splitext(args.plot)[1].lower().lstrip(".")
        if ext not in formats:
            return fail(f"--plot: the file's extension must be one of matplotlib's formats "
                        f"({', '.join('.' + f for f in sorted(formats))}), got {args.plot!r}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        return fail(f"--threads must be an integer from 1 to {MAX_THREADS} (the most threads "
                    f"fastact's pool runs), got {args.threads}")
    if args.repeat < 1:
        return fail("--repeat must be a positive integer")
    for option, path in (("--plot", args.plot), ("--json", args.json),
                         ("--markdown", args.markdown)):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):          # before the run, not after it
            return fail(f"{option}: no directory {folder}")
    unheld = [v for v in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
              if not os.environ.get(v)]
    if os.environ.get("ATEN_CPU_CAPABILITY") and unheld:
        # PyTorch computes tanh, exp, erf, log1p... on contiguous arrays through MKL, and
        # the exact gelu and its backward through oneDNN; each picks its own level (MKL's
        # AVX-512 tanh took a fifth of its AVX2 one's time, oneDNN's gelu 0.37 of its AVX2)
        print("note: ATEN_CPU_CAPABILITY holds PyTorch's own kernels only; set "
              f"{' and '.join(unheld)} too (MKL: AVX2, AVX512 for tanh, exp, erf, ...; "
              "oneDNN: AVX2, AVX512_CORE for gelu)", file=sys.stderr)
    if args.half:
        from . import _bench_half
        return _bench_half.run_cli(args)
    mlp = [] if args.mlp == "none" else [m.strip() for m in args.mlp.split(",") if m.strip()]
    from ._activations import ACTIVATIONS_BY_NAME
    unknown = [m for m in mlp if m not in ACTIVATIONS_BY_NAME]
    if unknown:
        return fail(f"--mlp: unknown activation(s) {', '.join(unknown)}")
    from ._bench_gated import LABELS as GATED_LABELS
    gated = [] if args.gated == "none" else (
        GATED_LABELS if args.gated == "all" else [g.strip() for g in args.gated.split(",")])
    if set(gated) - set(GATED_LABELS):
        return fail(f"--gated: unknown {', '.join(sorted(set(gated) - set(GATED_LABELS)))}; "
                    f"choose from {', '.join(GATED_LABELS)}, all, none")
    known = list(_bench_softmax.FUNCTIONS)
    funcs = {"none": [], "all": known}.get(
        args.softmax, [f.strip() for f in args.softmax.split(",") if f.strip()])
    if set(funcs) - set(known):
        return fail(f"--softmax: unknown {', '.join(sorted(set(funcs) - set(known)))}; "
                    f"choose from {', '.join(known)}, all, none")
    if funcs and _bench_softmax.available():
        return fail(_bench_softmax.available())
    use_torch = not args.no_torch and _have_torch()
    if not use_torch and not args.no_torch:
        print("PyTorch is not installed: timing fastact and NumPy only", file=sys.stderr)
    from . import _bench_step
    step_peers = [p for p in (args.peers or ["torch", "compile", "jax"])
                  if p in _bench_step.PEERS and (use_torch or p == "jax")]
    if args.peers is None and not _bench_step.have_jax():
        step_peers = [p for p in step_peers if p != "jax"]
    if args.step and "jax" in step_peers and not _bench_step.have_jax():
        return fail("--peers jax needs jax (pip install jax)")
    if args.peers is None:
        args.peers = ["torch", "compile", "numpy"]
    progress = None if args.quiet else sys.stderr
    results = []
    if args.activations != []:
        results = run(args.activations, args.sizes, args.dtypes, args.directions,
                      args.threads, args.repeat, args.numpy_max, use_torch, progress)
        print(table(results))
    mlp_results = []
    if mlp and use_torch:
        mlp_results = mlp_step(mlp, threads=args.threads, repeat=args.repeat, progress=progress)
        print("\n" + mlp_table(mlp_results))
    gated_results = []
    if gated:
        from . import _bench_gated
        peers = [p for p in args.peers if p in _bench_gated.PEERS and (use_torch or p == "numpy")]
        gated_results = _bench_gated.run(gated, args.gated_sizes, args.dtypes,
                                         threads=args.threads, repeat=args.repeat,
                                         peers=peers, numpy_max=args.numpy_max,
                                         progress=progress)
        print("\n" + _bench_gated.table(gated_results))
    softmax_results, softmax_notes = [], []
    if funcs:
        peers = [p for p in args.peers if p != "jax" and (use_torch or p not in ("torch", "compile"))]
        softmax_results = _bench_softmax.run(funcs, args.softmax_shapes, args.dtypes,
                                             peers=peers, threads=args.threads,
                                             repeat=args.repeat, progress=progress,
                                             notes=softmax_notes)
        print("\n" + _bench_softmax.table(softmax_results, softmax_notes))
    step_results, step_notes = [], []
    if args.step:
        step_results = _bench_step.run(None, args.step_sizes, args.dtypes, peers=step_peers,
                                       threads=args.threads, repeat=args.repeat,
                                       progress=progress, notes=step_notes)
        print("\n" + _bench_step.table(step_results, step_notes))
    if args.json:
        from ._config import config
        with open(args.json, "w") as f:
            json.dump({"config": config(), "summary": summary(results), "results": results,
                       "mlp_step": mlp_results, "gated": gated_results,
                       "softmax": softmax_results, "step": step_results}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            if results:
                f.write(markdown(results, mlp_results) + "\n")
            if gated_results:
                from . import _bench_gated
                f.write("\n" + _bench_gated.markdown(gated_results) + "\n")
            if softmax_results:
                f.write("\n" + _bench_softmax.markdown(softmax_results, softmax_notes) + "\n")
            if step_results:
                f.write("\n" + _bench_step.markdown(step_results, step_notes) + "\n")
    if args.plot and results:
        plot(results, args.plot)
        print(f"chart written to {args.plot}")
    if args.plot and softmax_results:
        # beside the elementwise chart (name-softmax.png), or at the path without one
        stem, ext = os.path.splitext(args.plot)
        path = f"{stem}-softmax{ext}" if results else args.plot
        _bench_softmax.plot(softmax_results, path)
        print(f"chart written to {path}")
    if args.plot and step_results:
        path = _bench_step.plot_path(args.plot) if results or softmax_results else args.plot
        _bench_step.plot(step_results, path)
        print(f"chart written to {path}")
    return 0


def main(argv=None):
    """python -m fastact bench [options]"""
    from .__main__ import main as cli
    return cli(["bench"] + list(sys.argv[1:] if argv is None else argv))
