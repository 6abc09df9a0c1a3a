"""``python -m fastact bench --half``: fastact's float16 and bfloat16 against its float32,
and against PyTorch's bfloat16 and float16 CPU kernels, side by side in one run.

Every case (activation x direction x size) times five sides in the same interleaved
rounds (fastact.bench.time_interleaved), every one with its output preallocated, on the
same data (x drawn in float32, rounded to each dtype):

- fastact float32, bfloat16 (``ml_dtypes.bfloat16``), float16: ``f(x, out=o)``, or the
  backward ``f_backward(g, x, out=o)``; from y (``y=``) where PyTorch's peer takes y,
  as the elementwise bench does (fastact.bench.from_y)
- torch bfloat16, float16: the activation table's PyTorch peer (``out=`` /
  ``grad_input=`` variants), on tensors sharing the NumPy arrays' memory

The report gives, per case, fastact's 16-bit time over its float32 time (a memory-bound
kernel moves half the bytes in 16 bits: 0.5 is the floor) and fastact's time over
PyTorch's in each 16-bit dtype (below 1: fastact faster). Without ml_dtypes the bfloat16
sides are left out, without PyTorch the torch sides, each with a note.
"""
import math
import sys

import numpy as np

import fastact
from . import bench
from ._arrays import is_bfloat16

DTYPES = ("float32", "bfloat16", "float16")
HALF = ("bfloat16", "float16")
SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
SIDES = tuple(f"fastact_{d}" for d in DTYPES) + tuple(f"torch_{d}" for d in HALF)
DEFAULT_SIZES = ("256K", "16M")
# the issue's targets: at 16M, a memory-bound activation in bfloat16 within this
# fraction of its float32 time; no 16-bit case slower than PyTorch
TARGET_BF16_OVER_F32 = 0.6
TARGET_N = 16 << 20
_PARAMS = {label: (name, params) for label, name, params in bench.CASES}


def default_labels():
    """The activations with a PyTorch peer, in the table's order."""
    return [label for label in bench.LABELS if label in bench._TORCH_PEERS]


def bfloat16():
    """ml_dtypes' bfloat16 as a NumPy dtype; None when ml_dtypes is not installed."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def dtypes_available():
    """{name: NumPy dtype} of the dtypes this process can time."""
    bf16 = bfloat16()
    return {d: (bf16 if d == "bfloat16" else np.dtype(d)) for d in DTYPES
            if d != "bfloat16" or bf16 is not None}


def data(n, dtypes, seed=0):
    """{dtype name: (x, g)}: the same draw in float32 (x ~ 3 N(0, 1), g ~ U(-1, 1)),
    rounded to each dtype."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n, dtype=np.float32) * 3)
    g = rng.uniform(-1, 1, n).astype(np.float32)
    return {name: (x.astype(dt), g.astype(dt)) for name, dt in dtypes.items()}


def to_torch(a):
    """A tensor sharing a's memory (bfloat16 through its 16-bit pattern: PyTorch does
    not read ml_dtypes' dtype)."""
    import torch
    if is_bfloat16(a.dtype):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def fastact_fn(label, direction, x, g):
    """fastact's call on x (and g) with a preallocated output."""
    name, params = _PARAMS[label]
    ff, fb = bench.fastact_impl(name, params, label)
    out = np.empty_like(x)
    if direction == "forward":
        return lambda: ff(x, out)
    y = ff(x, np.empty_like(x))
    return lambda: fb(g, x, y, out)


def torch_fn(label, direction, x, g):
    """PyTorch's peer on the same data (the table's expression, out= preallocated);
    None where PyTorch has no counterpart."""
    import torch
    peer = bench.torch_impl(label, _PARAMS[label][1])
    if peer is None:
        return None
    tf, tb = peer
    t, tg = to_torch(x), to_torch(g)
    to = torch.empty_like(t)
    if direction == "forward":
        return lambda: tf(t, to)
    ty = tf(t, torch.empty_like(t)).clone()
    return lambda: tb(tg, t, ty, to)


def case_fns(label, direction, arrays, use_torch=True, notes=None):
    """{side: zero-argument call} for one case; arrays: data()'s. A PyTorch side that
    raises (no kernel for the dtype) is left out, with a note."""
    fns = {f"fastact_{d}": fastact_fn(label, direction, *arrays[d]) for d in DTYPES
           if d in arrays}
    if use_torch:
        for d in HALF:
            if d not in arrays:
                continue
            try:
                fn = torch_fn(label, direction, *arrays[d])
                if fn is not None:
                    fn()
            except Exception as exc:            # noqa: BLE001 -- reported, not fatal
                if notes is not None:
                    first = (str(exc).strip().splitlines() or [""])[0][:120]
                    notes.append(f"torch {d} {label} {direction}: not timed "
                                 f"({type(exc).__name__}: {first})")
                fn = None
            if fn is not None:
                fns[f"torch_{d}"] = fn
    return fns


def _torch_or_none(use_torch):
    if not use_torch:
        return None
    try:
        import torch
        return torch
    except ImportError:
        return None


def run(labels=None, sizes=DEFAULT_SIZES, directions=("forward", "backward"), threads=None,
        repeat=5, use_torch=True, progress=sys.stderr, notes=None):
    """Measure every case; a list of dicts (seconds per call, medians), one key per side
    timed (SIDES). notes (a list) receives what was left out and why."""
    notes = [] if notes is None else notes
    dtypes = dtypes_available()
    if "bfloat16" not in dtypes:
        notes.append("ml_dtypes is not installed: the bfloat16 columns are skipped "
                     "(pip install ml_dtypes)")
    torch = _torch_or_none(use_torch)
    if use_torch and torch is None:
        notes.append("PyTorch is not installed: the torch columns are skipped")
    threads = threads or fastact.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    labels = default_labels() if labels is None else list(labels)
    sizes = [bench.parse_size(s) if isinstance(s, str) else s for s in sizes]
    plan = [(label, d, n) for n in sizes for label in labels for d in directions]
    results = []
    arrays, arrays_n = None, None
    with fastact.threads(threads):
        for i, (label, direction, n) in enumerate(plan):
            if progress:
                bench._progress(i, len(plan), f"half {label} {direction} "
                                f"{bench._size_label(n)}", progress)
            if arrays_n != n:                   # one draw per size, shared by the cases
                arrays = None
                arrays, arrays_n = data(n, dtypes), n
            fns = case_fns(label, direction, arrays, torch is not None, notes)
            times = bench.time_interleaved(fns, repeat)
            del fns
            results.append({"activation": label, "direction": direction, "n": n,
                            "threads": threads, "from_y": direction == "backward"
                            and bench.from_y(label), **times})
        if progress:
            bench._progress(len(plan), len(plan), "done", progress)
            progress.write("\n")
    return results


# ---- ratios and summary ----

RATIOS = {          # name: (numerator side, denominator side), all time ratios
    "bf16/f32": ("fastact_bfloat16", "fastact_float32"),
    "f16/f32": ("fastact_float16", "fastact_float32"),
    "bf16/torch": ("fastact_bfloat16", "torch_bfloat16"),
    "f16/torch": ("fastact_float16", "torch_float16"),
}


def ratio(r, name):
    """A RATIOS entry of a result; None where a side was not timed."""
    a, b = RATIOS[name]
    return r[a] / r[b] if r.get(a) and r.get(b) else None


def _geomean(values):
    values = [v for v in values if v]
    return float(math.exp(np.mean(np.log(values)))) if values else None


def _case(r, **extra):
    return {"activation": r["activation"], "direction": r["direction"], "n": r["n"], **extra}


def memory_bound(results, n=None):
    """The memory-bound cases (fastact.bench.MEMORY_BOUND: a kernel of the least work
    per element) at n (default: the largest size run) with their bfloat16/float32."""
    n = max(r["n"] for r in results) if n is None else n
    return [_case(r, ratio=ratio(r, "bf16/f32")) for r in results
            if r["activation"] in bench.MEMORY_BOUND and r["n"] == n
            and ratio(r, "bf16/f32") is not None]


def summary(results):
    """Geometric means (overall and per size) of each ratio, the worst fastact/torch
    case, the 16-bit cases slower than PyTorch, the memory-bound bfloat16/float32 at the
    largest size and the targets."""
    out = {"geomean": {}, "geomean_by_size": {}}
    sizes = sorted({r["n"] for r in results})
    for name in RATIOS:
        gm = _geomean([ratio(r, name) for r in results])
        if gm is not None:
            out["geomean"][name] = gm
            out["geomean_by_size"][name] = {
                bench._size_label(n): _geomean([ratio(r, name) for r in results if r["n"] == n])
                for n in sizes}
    vs_torch = [_case(r, dtype=d, ratio=ratio(r, f"{SHORT[d]}/torch"))
                for r in results for d in HALF if ratio(r, f"{SHORT[d]}/torch") is not None]
    if vs_torch:
        out["cases_vs_torch"] = len(vs_torch)
        out["worst_vs_torch"] = max(vs_torch, key=lambda c: c["ratio"])
        out["slower_than_torch"] = sorted((c for c in vs_torch if c["ratio"] > 1),
                                          key=lambda c: -c["ratio"])
        out["slower_than_torch_count"] = len(out["slower_than_torch"])
        out["by_dtype"] = {d: {"cases": len(cs), "slower_than_torch": sum(c["ratio"] > 1 for c in cs),
                               "worst_vs_torch": max(cs, key=lambda c: c["ratio"])}
                           for d in HALF for cs in [[c for c in vs_torch if c["dtype"] == d]] if cs}
        out["target_none_slower_than_torch"] = not out["slower_than_torch"]
    if results and any(ratio(r, "bf16/f32") for r in results):
        big = max(r["n"] for r in results)
        bound = memory_bound(results, big)
        out["memory_bound"] = {
            "n": big, "cases": bound,
            "above_target": [c for c in bound if c["ratio"] > TARGET_BF16_OVER_F32],
            "target": TARGET_BF16_OVER_F32}
        if big == TARGET_N and bound:
            out["target_memory_bound_bf16_at_16M"] = all(
                c["ratio"] <= TARGET_BF16_OVER_F32 for c in bound)
    return out


# ---- the reports ----

def _r(q, width=9):
    return f"{q:{width}.2f}" if q is not None else f"{'-':>{width}s}"


def _case_text(c, dtype=True):
    text = f"{c['activation']} {bench._SHORT[c['direction']]} {bench._size_label(c['n'])}"
    return f"{text} {c['dtype']}" if dtype and "dtype" in c else text


def _by_size(gms):
    return ", ".join(f"{k}: {v:.3f}" for k, v in gms.items() if v is not None)


def summary_lines(results, bold=lambda s: s):
    """The summary in sentences (table and markdown share them)."""
    s = summary(results)
    lines = []
    for name, what in (("bf16/f32", "fastact bfloat16/float32"),
                       ("f16/f32", "fastact float16/float32"),
                       ("bf16/torch", "fastact/torch bfloat16"),
                       ("f16/torch", "fastact/torch float16")):
        if name in s["geomean"]:
            lines.append(f"{what} time, geometric mean: {bold(format(s['geomean'][name], '.3f'))}"
                         f" ({_by_size(s['geomean_by_size'][name])})")
    if "worst_vs_torch" in s:
        w = s["worst_vs_torch"]
        by = s["by_dtype"]
        lines.append(f"Worst fastact/torch: {bold(format(w['ratio'], '.2f'))} "
                     f"({_case_text(w)}); per dtype: " + ", ".join(
                         f"{d} {b['worst_vs_torch']['ratio']:.2f} "
                         f"({_case_text(b['worst_vs_torch'], dtype=False)})"
                         for d, b in by.items()))
        slower = s["slower_than_torch"]
        lines.append(f"16-bit cases slower than PyTorch: {bold(str(len(slower)))} of "
                     f"{s['cases_vs_torch']} (" + ", ".join(
                         f"{d}: {b['slower_than_torch']} of {b['cases']}" for d, b in by.items())
                     + ")" + (": " + ", ".join(
                         f"{_case_text(c)} {c['ratio']:.2f}" for c in slower) if slower else ""))
    mb = s.get("memory_bound")
    if mb and mb["cases"]:
        ratios = [c["ratio"] for c in mb["cases"]]
        lines.append(f"Memory-bound activations, bfloat16/float32 at {bench._size_label(mb['n'])}: "
                     + ", ".join(f"{c['activation']} {bench._SHORT[c['direction']]} "
                                 f"{c['ratio']:.2f}" for c in mb["cases"])
                     + f" (range {min(ratios):.2f}-{max(ratios):.2f}; "
                       f"{len(mb['above_target'])} above {mb['target']})")
    if "target_memory_bound_bf16_at_16M" in s:
        met = s["target_memory_bound_bf16_at_16M"]
        lines.append(f"Target, memory-bound bfloat16 within {TARGET_BF16_OVER_F32}x of float32 "
                     f"at 16M: {bold('met' if met else 'not met')}"
                     + ("" if met else f" ({len(mb['above_target'])} of {len(mb['cases'])} "
                                       f"cases above)"))
    if "target_none_slower_than_torch" in s:
        met = s["target_none_slower_than_torch"]
        lines.append(f"Target, no 16-bit case slower than PyTorch: "
                     f"{bold('met' if met else 'not met')}"
                     + ("" if met else f" ({s['slower_than_torch_count']} cases)"))
    return lines


def _legend(results):
    y = sorted({r["activation"] for r in results if r.get("from_y")})
    return ("Times are medians per call, every side with out= preallocated, on the same data. "
            "bf16/f32, f16/f32: fastact's 16-bit time over its float32 time (half the bytes: "
            "0.5 is the floor of a memory-bound kernel); bf16/torch, f16/torch: fastact's "
            "time over PyTorch's in that dtype (below 1: fastact faster); '-': not timed."
            + (f" Backward from y on both sides: {', '.join(y)}." if y else ""))


def table(results, notes=()):
    threads = results[0]["threads"] if results else fastact.get_num_threads()
    head = (f"{'activation':12s} {'dir':3s} {'n':>5s} {'f32':>9s} {'bf16':>9s} {'f16':>9s} "
            f"{'torch bf16':>10s} {'torch f16':>10s} {'bf16/f32':>9s} {'f16/f32':>9s} "
            f"{'bf16/torch':>10s} {'f16/torch':>10s}")
    lines = [f"Half precision: fastact float32, bfloat16, float16 and PyTorch's bfloat16, "
             f"float16 CPU kernels ({threads} threads)", head, "-" * len(head)]
    f = bench._fmt_time
    for r in results:
        lines.append(
            f"{r['activation']:12s} {bench._SHORT[r['direction']]:3s} "
            f"{bench._size_label(r['n']):>5s} {f(r.get('fastact_float32')):>9s} "
            f"{f(r.get('fastact_bfloat16')):>9s} {f(r.get('fastact_float16')):>9s} "
            f"{f(r.get('torch_bfloat16')):>10s} {f(r.get('torch_float16')):>10s} "
            f"{_r(ratio(r, 'bf16/f32'))} {_r(ratio(r, 'f16/f32'))} "
            f"{_r(ratio(r, 'bf16/torch'), 10)} {_r(ratio(r, 'f16/torch'), 10)}")
    lines += ["", _legend(results), *dict.fromkeys(notes), "", *summary_lines(results)]
    return "\n".join(lines)


def markdown(results, notes=()):
    """The half-precision table (benchmarks/results/bench_half.md): times in each dtype
    and the ratios, then the summary."""
    f = bench._fmt_time
    lines = ["| activation | dir | n | f32 | bf16 | f16 | torch bf16 | torch f16 | bf16/f32 "
             "| f16/f32 | bf16/torch | f16/torch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        cells = [r["activation"], bench._SHORT[r["direction"]], bench._size_label(r["n"])]
        cells += [f(r.get(side)) for side in SIDES]
        cells += [f"{q:.2f}" if q is not None else "-" for q in (ratio(r, n) for n in RATIOS)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _legend(results)]
    lines += [f"\n{note}" for note in dict.fromkeys(notes)]
    lines += [f"\n- {line}" if i == 0 else f"- {line}"
              for i, line in enumerate(summary_lines(results, bold=lambda s: f"**{s}**"))]
    return "\n".join(lines)


def plot(results, path):
    """Per size and direction, each activation's four ratios (log scale), with lines at
    1 and at the bfloat16/float32 target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = sorted({(r["n"], r["direction"]) for r in results})
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 3.2 * len(groups)), squeeze=False)
    colors = ("tab:blue", "tab:cyan", "tab:red", "tab:orange")
    for ax, (n, direction) in zip(axes[:, 0], groups):
        rows = [r for r in results if (r["n"], r["direction"]) == (n, direction)]
        pos = np.arange(len(rows))
        for k, (name, color) in enumerate(zip(RATIOS, colors)):
            vals = [ratio(r, name) or 0 for r in rows]
            ax.bar(pos + (k - 1.5) * 0.2, vals, 0.2, label=name, color=color)
        ax.axhline(1, color="black", lw=0.8)
        ax.axhline(TARGET_BF16_OVER_F32, color="gray", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(pos, [r["activation"] for r in rows], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{direction}, n = {bench._size_label(n)}: time ratios (below 1: the "
                     f"numerator faster)")
        ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run_cli(args):
    """``python -m fastact bench --half`` as parsed by fastact.bench.add_arguments (its
    checks of --plot, --threads and --repeat done)."""
    labels = default_labels() if args.activations is None else args.activations
    if not labels:
        print("python -m fastact bench: error: --half: --activations none leaves nothing "
              "to time", file=sys.stderr)
        return 2
    notes = []
    results = run(labels, args.half_sizes, args.directions, args.threads, args.repeat,
                  not args.no_torch, None if args.quiet else sys.stderr, notes)
    for note in notes:
        if not note.startswith("torch "):   # the per-case ones: in the table
            print(note, file=sys.stderr)
    print(table(results, notes))
    if args.json:
        import json

        from ._config import config
        with open(args.json, "w") as fh:
            json.dump({"config": config(), "summary": summary(results), "notes": notes,
                       "half": [{**r, "ratios": {n: ratio(r, n) for n in RATIOS}}
                                for r in results]}, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(results, notes) + "\n")
    if args.plot:
        plot(results, args.plot)
        print(f"chart written to {args.plot}")
    return 0
