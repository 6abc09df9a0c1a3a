"""Every kernel x entry point x dtype on a sweep of specials, the gated units' segment
loops, and the softmax family (every function and entry, rows and columns with special
ones, a row of more than one block), and a few float16 and bfloat16 computations
(compute_half), run in this process or, as a script, in a process emulating another CPU
(tests/test_cpu_models.py):

    qemu-x86_64 -cpu Haswell python tests/cpu_probe.py OUT.npz [LEVEL]

imports fastact, records the SIMD level it chose and what asking for a level this CPU
lacks does (never a signal), and saves every result (bits) to OUT.npz. Imports only
NumPy and fastact (and ml_dtypes, where installed, for bfloat16): emulated, every import
costs seconds.
"""
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
with warnings.catch_warnings(record=True) as IMPORT_WARNINGS:
    warnings.simplefilter("always")
    import fastact  # noqa: E402
from cases import CASES, case_id, kinks  # noqa: E402


def sweep(dtype, points=()):
    """+-0, +-inf, NaN, subnormals, the normal edge, one value per binade over the whole
    range (both signs), the tails, and each kink with its neighbours."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    rng = np.random.default_rng(5)
    sub = [info.smallest_subnormal, info.smallest_subnormal * 3, info.tiny / 2,
           info.tiny - info.smallest_subnormal, info.tiny, info.max]
    mags = np.ldexp(rng.uniform(1, 2, info.maxexp - info.minexp),
                    np.arange(info.minexp, info.maxexp))
    tail = 110.0 if dtype == np.float32 else 800.0
    xs = [np.array([0.0, np.inf, np.nan]), np.array(sub, np.float64), mags,
          np.linspace(0, tail, 301), np.linspace(0, 10, 301)]
    xs = np.concatenate(xs).astype(dtype)
    xs = np.concatenate([xs, -xs])
    near = []
    for k in points:
        k = dtype.type(k)
        near += [k, np.nextafter(k, dtype.type(-np.inf)), np.nextafter(k, dtype.type(np.inf))]
    return np.concatenate([xs, np.array(near, dtype)])


def compute():
    """{'case|entry|dtype': result} for every case, entry point and dtype."""
    results = {}
    with np.errstate(all="ignore"):
        for dtype in (np.float32, np.float64):
            for case in CASES:
                name, params = case
                x = sweep(dtype, kinks(name, params))
                g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 3.0e5], dtype), x.size)
                key = f"{case_id(case)}|{{}}|{np.dtype(dtype).name}"
                f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
                results[key.format("forward")] = f("")(x, **params)
                results[key.format("grad")] = f("_grad")(x, **params)
                results[key.format("backward")] = f("_backward")(g, x, **params)
                try:
                    results[key.format("backward_y")] = f("_backward")(g, y=x, **params)
                except TypeError:                      # no y-form for these parameters
                    pass
                y, d = f("_forward_backward")(x, **params)
                results[key.format("fb_y")], results[key.format("fb_d")] = y, d
                y, d = f("_forward_backward")(x, grad_output=g, **params)
                results[key.format("fbg_y")], results[key.format("fbg_g")] = y, d
            results.update(compute_gated(dtype))
            results.update(compute_softmax(dtype))
        results.update(compute_half())
    return results


def half_types():
    """{name: NumPy type} of the 16-bit types fastact computes: float16, and bfloat16 where
    ml_dtypes (its NumPy type) is installed."""
    types = {"float16": np.float16}
    try:
        import ml_dtypes
    except ImportError:
        return types
    types["bfloat16"] = ml_dtypes.bfloat16
    return types


def half_key(key):
    """The 16-bit type name of a result key of compute_half, or None."""
    name = key.rsplit("|", 1)[-1]
    return name if key.startswith("half:") else None


def half_widen(bits, name):
    """The values of 16-bit bit patterns (uint16) of type name in float32, exactly (no
    ml_dtypes needed)."""
    bits = np.asarray(bits, np.uint16)
    if name == "float16":
        with np.errstate(invalid="ignore"):
            return bits.view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def half_order(bits):
    """The ordered integer of 16-bit bit patterns (sign and magnitude): 0 for both zeros,
    +-1 for the smallest subnormals, ..., so that a difference of 1 is one ulp."""
    b = np.asarray(bits, np.uint16).astype(np.int64)
    return np.where(b & 0x8000, -(b & 0x7FFF), b & 0x7FFF)


# +-0, the smallest subnormals, the largest finite numbers, +-inf and NaNs of float16 and
# of bfloat16 (their bit patterns)
HALF_SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00,
                 0x7E00, 0xFE01, 0x7C01, 0x007F, 0x0080, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0,
                 0x7F81]


def compute_half():
    """float16 and bfloat16 (half_types): gelu, silu, sigmoid and tanh forward, gelu's and
    silu's backward and gelu's forward_backward on every 13th bit pattern and the special
    ones (HALF_SPECIALS), swiglu on them as the gate, prelu with one weight, and
    softmax/log_softmax of softmax_rows (rows, the same values as columns, and a row
    longer than the float buffers of short 16-bit rows: its pieces) forward and backward; results as their bits (uint16), keys 'half:...|type'."""
    results = {}
    with np.errstate(all="ignore"):
        for tname, t in half_types().items():
            x = np.concatenate([np.arange(0, 65536, 13), HALF_SPECIALS]).astype(np.uint16).view(t)
            g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 3.0, 1e-3, -2.0], np.float32)
                          .astype(t), x.size)
            a = np.resize(np.array([1.0, -2.5, 0.0, 0.5, 100.0, -1e-3], np.float32)
                          .astype(t), x.size)
            out = {}
            for name in ("gelu", "silu", "sigmoid", "tanh"):
                out[f"{name}|forward"] = getattr(fastact, name)(x)
            for name in ("gelu", "silu"):
                out[f"{name}|backward"] = getattr(fastact, name + "_backward")(g, x)
            out["gelu|fb_y"], out["gelu|fb_d"] = fastact.gelu_forward_backward(x)
            out["swiglu|forward"] = fastact.swiglu(a, x)
            for i, v in enumerate(fastact.swiglu_forward_backward(a, x, grad_output=g)):
                out[f"swiglu|fbg{i}"] = v
            xr = x[:x.size // 8 * 8].reshape(-1, 8)
            for i, v in enumerate(fastact.prelu_forward_backward(
                    xr, np.array(0.25, t), grad_output=np.resize(g, xr.shape))):
                out[f"prelu|fbg{i}"] = np.asarray(v)
            xs = softmax_rows(np.float32).astype(t)
            long_x = np.resize(xs[7:], (1, 2 * softmax_constant("FA_SMX_HROW") + 41))
            for layout, v, axis in (("rows", xs, -1), ("cols", np.ascontiguousarray(xs.T), 0),
                                    ("long", long_x, -1)):
                gs = np.resize(g, v.shape)
                for name in ("softmax", "log_softmax"):
                    out[f"{name}|{layout}|forward"] = getattr(fastact, name)(v, axis=axis)
                    out[f"{name}|{layout}|backward_x"] = getattr(fastact, name + "_backward")(
                        gs, v, axis=axis)
            for key, v in out.items():      # (prelu's weight gradient too is 16-bit)
                v = np.ascontiguousarray(v)
                assert v.dtype == np.dtype(t), (key, v.dtype)
                # as bits: an npz file keeps no ml_dtypes type
                results[f"half:{key}|{tname}"] = v.view(np.uint16)
    return results


GATED_CASES = [("glu", {}), ("swiglu", {}), ("geglu", {}), ("geglu", {"approximate": "tanh"}),
               ("reglu", {})]


def compute_gated(dtype):
    """The gated units' segment loops (two-array form: gate over the sweep, a over specials)
    and prelu's (one weight, and one per channel, with the weight's gradient)."""
    results = {}
    gate = sweep(dtype)
    a = np.resize(np.array([1.0, -2.5, 0.0, -0.0, np.inf, 1e-30, 3e30, np.nan], dtype), gate.size)
    g = np.resize(np.array([1.5, -0.75, 0.0, 3.0e5, -1e-20], dtype), gate.size)
    name_dt = np.dtype(dtype).name
    for name, params in GATED_CASES:
        key = f"{name}{params.get('approximate', '')}|{{}}|{name_dt}"
        f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
        results[key.format("forward")] = f("")(a, gate, **params)
        for entry, r in (("grad", f("_grad")(a, gate, **params)),
                         ("backward", f("_backward")(g, a, gate, **params)),
                         ("fb", f("_forward_backward")(a, gate, **params)),
                         ("fbg", f("_forward_backward")(a, gate, grad_output=g, **params))):
            for i, v in enumerate(r):
                results[key.format(f"{entry}{i}")] = v
    x = gate[: gate.size // 6 * 6]
    for label, xs, w in (("one", x, dtype(0.25)), ("channels", x.reshape(-1, 6),
                                                   np.array([0.1, -2, 0, 3, 1e-3, -1e-30], dtype))):
        gx = np.resize(g, xs.shape)
        results[f"prelu_{label}|forward|{name_dt}"] = fastact.prelu(xs, w)
        for i, v in enumerate(fastact.prelu_forward_backward(xs, w, grad_output=gx)):
            results[f"prelu_{label}|fbg{i}|{name_dt}"] = np.asarray(v)
    return results


SOFTMAX_FUNCS = ("softmax", "log_softmax", "softmin")


def softmax_constant(name="FA_SMX_BLOCK"):
    """A number of fastact's fa_softmax_api.h (the package holds it): FA_SMX_BLOCK, the
    elements of a block of a row, which the kernels sum block by block; FA_SMX_HROW, the
    longest 16-bit row computed in float buffers."""
    import re
    path = os.path.join(os.path.dirname(fastact.__file__), "_src", "fa_softmax_api.h")
    with open(path) as f:
        return int(re.search(r"#define %s\s+(\d+)" % name, f.read()).group(1))


def softmax_rows(dtype, rows=24, n=37):
    """rows x n: row 0 ordinary, 1 with -inf entries and a tie at the max, 2 of every
    magnitude (differences beyond the exponential's range, subnormals, +-0), 3 within a
    few ulps of each other, 4 with a NaN, 5 with +inf, 6 all -inf (4-6: the rows the
    kernels leave to fastact's NumPy rules), the rest ordinary with -inf entries."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
    k = np.arange(n)
    x[1, k % 3 == 1] = -np.inf
    x[1, n // 2] = x[1].max()
    x[2] = np.ldexp(rng.uniform(1, 2, n), rng.integers(info.minexp - 20, info.maxexp - 1, n)) \
        * rng.choice([-1.0, 1.0], n)
    x[2, ::7] = np.resize(np.array([0.0, -0.0, info.smallest_subnormal, info.max], dtype),
                          len(x[2, ::7]))
    x[3] = np.array(1000.0, dtype) + (k % 5) * np.spacing(dtype(1000.0))
    x[4, n // 3] = np.nan
    x[5, n // 2] = np.inf
    x[6] = -np.inf
    x[7:, k % 11 == 5] = -np.inf
    return x


def compute_softmax(dtype):
    """The softmax family: each function forward, backward from x and from y (its own
    forward's), forward_backward with grad_output, along the last axis (rows) and axis 0
    (the same values as columns: tiles of columns), and along one row of two blocks and
    41 elements (forward, and the backward from x)."""
    results = {}
    name_dt = np.dtype(dtype).name
    x = softmax_rows(dtype)
    long_x = np.resize(x[7:], (1, 2 * softmax_constant() + 41))
    cases = (("rows", x, -1), ("cols", np.ascontiguousarray(x.T), 0), ("long", long_x, -1))
    for layout, xs, axis in cases:
        g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 3.0e5, 1e-30, -2.0], dtype), xs.shape)
        for name in SOFTMAX_FUNCS:
            key = f"{name}|{{}}|{layout}|{name_dt}"
            f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
            y = results[key.format("forward")] = f("")(xs, axis=axis)
            results[key.format("backward_x")] = f("_backward")(g, xs, axis=axis)
            if layout == "long":
                continue
            results[key.format("backward_y")] = f("_backward")(g, y=y, axis=axis)
            y2, gx = f("_forward_backward")(xs, axis=axis, grad_output=g)
            results[key.format("fbg_y")], results[key.format("fbg_g")] = y2, gx
    return results


def probe():
    """What this CPU gets: the level chosen, the answers to asking for more, and the main
    job (python -m fastact bench's loop, tiny, without PyTorch) and info running."""
    import contextlib
    import io
    from fastact import bench
    results = bench.run(sizes=[256], repeat=1, use_torch=False, progress=None)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        fastact.show_config()
    info = {"simd_level": fastact.simd_level(),
            "cpu_levels": ",".join(fastact._backend.cpu_levels()),
            "bench_cases": len([r for r in results if r["fastact"] > 0 and r["numpy"] > 0]),
            "show_config": text.getvalue()}
    try:
        fastact.set_simd_level("avx512")
        info["set_avx512"] = "ok"
    except ValueError as exc:
        info["set_avx512"] = "ValueError: " + str(exc)
    return info


def main(path, level=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if level:
            fastact.set_simd_level(level)
        info = probe()
    info["warnings"] = " | ".join(str(w.message) for w in IMPORT_WARNINGS + caught)
    if level:
        fastact.set_simd_level(level)
    info = {f"info:{k}": np.array(v) for k, v in info.items()}
    np.savez(path, **info, **compute())


if __name__ == "__main__":
    main(*sys.argv[1:])
