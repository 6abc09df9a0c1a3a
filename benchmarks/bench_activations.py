"""asv benchmarks: every activation x entry point x dtype x size, for fastact and, in the
same suite, PyTorch (CPU, same threads) and the idiomatic NumPy expression (the
implementations of fastact.bench). Run: asv run --python=same --quick (see docs/packaging.md).
FASTACT_ASV_SMOKE=1 keeps only the 1K size (the softmax family: 64x1000), float32 (and
HalfPrecision's 16-bit dtypes) and a few activations (CI's smoke pass)."""
import os
import tracemalloc

import numpy as np

import fastact
from fastact import _bench_gated, _bench_half, _bench_softmax, bench

CASES = {label: (name, params) for label, name, params in bench.CASES}
ENTRIES = ["forward", "grad", "backward", "forward_backward"]
SMOKE = bool(os.environ.get("FASTACT_ASV_SMOKE"))
# the smoke pass checks that every benchmark runs, not every activation (the test suite
# does that): one activation per kind of kernel keeps it to a few minutes
SMOKE_LABELS = ["relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "softplus", "elu"]
LABELS = [label for label, _, _ in bench.CASES if not SMOKE or label in SMOKE_LABELS]
SIZES = [1 << 10] if SMOKE else [1 << 10, 1 << 16, 1 << 22]
DTYPES = ["float32"] if SMOKE else ["float32", "float64"]


def _call(library, label, entry, x, g):
    """A zero-argument callable computing entry with library; None when not offered."""
    name, params = CASES[label]
    out, out2 = np.empty_like(x), np.empty_like(x)
    if library == "fastact":
        f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
        return {"forward": lambda: f("")(x, **params, out=out),
                "grad": lambda: f("_grad")(x, **params, out=out),
                "backward": lambda: f("_backward")(g, x, **params, out=out),
                "forward_backward": lambda: f("_forward_backward")(x, **params, out=out, grad_out=out2),
                }[entry]
    if library == "numpy":
        peer = bench.numpy_impl(label, params)
        if peer is None:
            return None
        fwd, bwd = peer
        ones = np.ones_like(x)
        return {"forward": lambda: fwd(x), "grad": lambda: bwd(ones, x),
                "backward": lambda: bwd(g, x), "forward_backward": lambda: (fwd(x), bwd(g, x))}[entry]
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(fastact.get_num_threads())
    peer = bench.torch_impl(label, params)
    if peer is None:
        return None
    fwd, bwd = peer
    t, tg, to = torch.from_numpy(x), torch.from_numpy(g), torch.empty_like(torch.from_numpy(x))
    ones = torch.ones_like(t)
    y = fwd(t, torch.empty_like(t)).clone()
    return {"forward": lambda: fwd(t, to), "grad": lambda: bwd(ones, t, y, to),
            "backward": lambda: bwd(tg, t, y, to),
            "forward_backward": lambda: (fwd(t, to), bwd(tg, t, y, to))}[entry]


def _data(dtype, n):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(n) * 3).astype(dtype), rng.uniform(-1, 1, n).astype(dtype)


class Activations:
    """Time per call; compare libraries with asv compare or the web report."""
    params = (LABELS, ENTRIES, DTYPES, SIZES, ["fastact", "torch", "numpy"])
    param_names = ["activation", "entry", "dtype", "n", "library"]
    timeout = 300

    def setup(self, activation, entry, dtype, n, library):
        x, g = _data(dtype, n)
        self.fn = _call(library, activation, entry, x, g)
        if self.fn is None:
            raise NotImplementedError(f"{library}: not installed, or no counterpart of {activation}")
        self.fn()       # warm up: thread pools, first touch of the outputs (--quick times one call)

    def time_call(self, *args):
        self.fn()


class Memory:
    """Peak memory of a 4M-element call with preallocated outputs (fastact: its inputs and
    outputs only, NumPy: plus its temporaries), and the temporaries themselves in units
    of one array (fastact: 0)."""
    params = (["sigmoid", "gelu", "silu", "mish", "relu"], ENTRIES, ["fastact", "numpy"])
    param_names = ["activation", "entry", "library"]

    def setup(self, activation, entry, library):
        self.x, g = _data("float32", 1 << 20 if os.environ.get("FASTACT_ASV_SMOKE") else 1 << 22)
        self.fn = _call(library, activation, entry, self.x, g)
        self.fn()

    def peakmem_call(self, *args):
        self.fn()

    def track_temporaries(self, *args):
        self.fn()
        tracemalloc.start()
        try:
            self.fn()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak / self.x.nbytes
    track_temporaries.unit = "arrays"


class CallOverhead:
    """A 16-element call with out=: the per-call cost of the Python layer."""
    params = (["fastact", "torch", "numpy"],)
    param_names = ["library"]

    def setup(self, library):
        x = np.ones(16, np.float32)
        o = np.empty_like(x)
        if library == "fastact":
            self.fn = lambda: fastact.tanh(x, out=o)
        elif library == "numpy":
            self.fn = lambda: np.tanh(x, out=o)
        else:
            import torch
            t, to = torch.from_numpy(x), torch.from_numpy(o)
            self.fn = lambda: torch.tanh(t, out=to)
        self.fn()

    def time_tanh_16(self, library):
        self.fn()


class MLPTrainingStep:
    """One training step (forward, loss, backward) of an MLP with torch.nn's activations
    and with fastact.torch's (fastact.bench.mlp_models)."""
    params = (["gelu", "silu", "tanh", "relu"], ["torch", "fastact"])
    param_names = ["activation", "library"]
    timeout = 300

    def setup(self, activation, library):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(fastact.get_num_threads())
        shape = {"batch": 64, "width": 32} if os.environ.get("FASTACT_ASV_SMOKE") else {}
        self.step = bench.mlp_models(activation, **shape)[library]
        self.step()

    def time_step(self, *args):
        self.step()


class GatedUnits:
    """The gated units and prelu (fastact._bench_gated's cases): forward, and forward +
    backward in one call, against eager PyTorch with autograd and NumPy (torch.compile is
    in python -m fastact bench: its compile time does not fit asv's per-process setup)."""
    params = (_bench_gated.LABELS, list(_bench_gated.DIRECTIONS), DTYPES,
              [1 << 12] if SMOKE else [1 << 18, 1 << 24], ["fastact", "torch", "numpy"])
    param_names = ["activation", "direction", "dtype", "n", "library"]
    timeout = 300

    def setup(self, label, direction, dtype, n, library):
        if library == "torch":
            try:
                import torch
            except ImportError:
                raise NotImplementedError("torch is not installed")
            torch.set_num_threads(fastact.get_num_threads())
        if library == "numpy" and n > 1 << 18:
            raise NotImplementedError("NumPy is timed up to 256K")
        name, params = next((c[1], c[2]) for c in _bench_gated.CASES if c[0] == label)
        width = _bench_gated.CHANNELS if name == "prelu" else _bench_gated.WIDTH
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((n // width, width)) * 3).astype(dtype)
        w = rng.uniform(0, 0.5, width).astype(dtype) if name == "prelu" else None
        g = rng.uniform(-1, 1, (n // width, width if name == "prelu" else width // 2)).astype(dtype)
        fns = _bench_gated._case_fns(label, name, params, direction, x, w, g, (library,), True)
        self.fn = fns.get(library)
        self.fn()

    def time_call(self, *args):
        self.fn()


class SoftmaxFamily:
    """softmax, log_softmax and softmin (fastact._bench_softmax's shapes): the forward and
    the forward + backward in one call, with out=, along the last axis of x (rows, n) and
    along axis 0 of the same data as (n, rows). PyTorch, torch.compile, NumPy and SciPy
    are in python -m fastact bench --softmax."""
    shapes = [(64, 1000)] if SMOKE else list(_bench_softmax.SHAPES)
    params = (list(_bench_softmax.FUNCTIONS), DTYPES,
              [f"{_bench_softmax.shape_label(s)} axis={a}" for s in shapes
               for a in _bench_softmax.AXES])
    param_names = ["function", "dtype", "shape_axis"]
    timeout = 300

    def setup(self, function, dtype, shape_axis):
        label, _, axis = shape_axis.partition(" axis=")
        (rows, n), axis = _bench_softmax.parse_shapes(label)[0], int(axis)
        rng = np.random.default_rng(0)
        x, g = _bench_softmax._data(rng, dtype, rows * n)
        shape = (rows, n) if axis == -1 else (n, rows)
        self.x, self.g = x.reshape(shape), g.reshape(shape)
        self.y, self.gx = np.empty_like(self.x), np.empty_like(self.x)
        self.axis = axis
        self.f = getattr(fastact, function)
        self.fb = getattr(fastact, function + "_forward_backward")
        self.time_forward()                 # warm up: first touch of the outputs
        self.time_forward_backward()

    def time_forward(self, *args):
        self.f(self.x, self.axis, out=self.y)

    def time_forward_backward(self, *args):
        self.fb(self.x, self.axis, self.g, out=self.y, grad_out=self.gx)


class HalfPrecision:
    """float16 and bfloat16 (ml_dtypes) against float32, fastact and PyTorch's CPU kernels
    (fastact._bench_half's sides: out= preallocated, the backward from y where PyTorch's
    takes y). The whole table is python -m fastact bench --half."""
    params = (["relu", "gelu"] if SMOKE else ["relu", "hardtanh", "gelu", "sigmoid", "silu"],
              ["float32", "float16", "bfloat16"], [1 << 10] if SMOKE else [1 << 18, 1 << 24],
              ["fastact", "torch"])
    param_names = ["activation", "dtype", "n", "library"]
    timeout = 300

    def setup(self, activation, dtype, n, library):
        dtypes = _bench_half.dtypes_available()
        if dtype not in dtypes:
            raise NotImplementedError(f"{dtype} needs ml_dtypes (not installed)")
        if library == "torch":
            try:
                import torch
            except ImportError:
                raise NotImplementedError("torch is not installed")
            torch.set_num_threads(fastact.get_num_threads())
        x, g = _bench_half.data(n, {dtype: dtypes[dtype]})[dtype]
        make = _bench_half.fastact_fn if library == "fastact" else _bench_half.torch_fn
        self.forward = make(activation, "forward", x, g)
        self.backward = make(activation, "backward", x, g)
        self.forward()          # warm up: thread pools, first touch of the outputs
        self.backward()

    def time_forward(self, *args):
        self.forward()

    def time_backward(self, *args):
        self.backward()
