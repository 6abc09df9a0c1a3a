"""softmax, log_softmax and softmin inside PyTorch (fastact.torch) and with dask arrays
(docs/softmax.md, sections "In PyTorch: fastact.torch" and "Dask").

References are independent of fastact's kernels: the exact values and gradients (NumPy in
long double, for docs/softmax.md's bounds), PyTorch itself (torch.nn.functional, torch.nn
modules and their autograd), torch.autograd's gradcheck/gradgradcheck, and, for dask,
fastact's own NumPy-array results (the lazy result must equal them bit for bit). Where
fastact's values differ from PyTorch's by design (rows holding +inf), fastact's NumPy-array
functions are the reference. The NumPy functions themselves are tested in
tests/test_softmax.py.
"""
import copy
import inspect
import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastact  # noqa: E402
import fastact.torch as ft  # noqa: E402
from conftest import using  # noqa: E402
from fastact import _backend, _softmax  # noqa: E402

NAMES = ("softmax", "log_softmax", "softmin")
MODULES = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "softmin": "Softmin"}
TORCH_DTYPES = (torch.float32, torch.float64)


@pytest.fixture(autouse=True)
def _seeded_torch():
    """Every test draws from the same torch global generator state (deterministic data);
    the state from before is restored afterwards."""
    state = torch.get_rng_state()
    torch.manual_seed(20240612)
    yield
    torch.set_rng_state(state)


def tid(dtype):
    return str(dtype).replace("torch.", "")


def ours(name, *args, **kwargs):
    return getattr(ft, name)(*args, **kwargs)


def theirs(name, *args, **kwargs):
    return getattr(F, name)(*args, **kwargs)


SHAPE = (3, 4, 5, 6)        # N, C, H, W


def make(layout, dtype, seed=0, shape=SHAPE, scale=3.0):
    """A tensor of `shape` in a memory layout."""
    gen = torch.Generator().manual_seed(seed)
    n, c, h, w = shape

    def randn(*dims):
        return (torch.randn(dims, generator=gen, dtype=torch.float64) * scale).to(dtype)
    if layout == "contiguous":
        t = randn(n, c, h, w)
    elif layout == "transposed":                            # neither C nor F order
        t = randn(w, c, h, n).transpose(0, 3)
    elif layout == "fortran":                               # F order (all dims reversed)
        t = randn(w, h, c, n).permute(3, 2, 1, 0)
    elif layout == "channels_last":
        t = randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    else:                                                   # a view with gaps
        assert layout == "strided"
        t = randn(n, c, h, 2 * w)[..., ::2]
    assert t.shape == shape
    return t


LAYOUTS = ["contiguous", "transposed", "fortran", "channels_last", "strided"]


WIDE = np.longdouble
# the reference's own relative error: long double (x87, quad) where NumPy has a wider type
# than float64; where it has not (macOS arm64, Windows), more slack for float64 inputs
WIDE_EXTRA = 1 if np.finfo(WIDE).eps < np.finfo(np.float64).eps / 100 else 4


def reference(name, x, dim, g):
    """(y, grad_x) of the exact function at x's values, for grad_output g: NumPy in long
    double (float32 inputs: far beyond their precision), log_softmax's value at the max as
    -log1p(the others' sum) so that small values keep their digits. float64 tensors."""
    sign = -1 if name == "softmin" else 1
    xs = sign * x.detach().double().numpy().astype(WIDE)
    gw = g.detach().double().numpy().astype(WIDE)
    m = xs.max(dim, keepdims=True)
    d = xs - m
    e = np.exp(d)
    top = d == 0
    c = top.sum(dim, keepdims=True)
    rest = np.where(top, 0, e).sum(dim, keepdims=True)
    p = e / (c + rest)
    if name == "log_softmax":
        y = d - np.where(c == 1, np.log1p(rest), np.log(c + rest))
        gx = gw - p * gw.sum(dim, keepdims=True)
    else:
        y = p
        gx = sign * p * (gw - (gw * p).sum(dim, keepdims=True))
    return (torch.from_numpy(y.astype(np.float64)), torch.from_numpy(gx.astype(np.float64)))


def assert_values_within_4_ulp(got, ref):
    """|got - exact| <= 4 ulp(exact) (ulp(v) <= eps |v|)."""
    eps = torch.finfo(got.dtype).eps
    extra = WIDE_EXTRA if got.dtype == torch.float64 else 1
    err = (got.detach().double() - ref).abs()
    allowed = 4 * eps * ref.abs() * extra + 1e-300
    worst = float((err / allowed).max())
    assert worst <= 1, f"the value is {worst:.2f} times 4 ulp from the exact one"


def assert_backward_within_bound(name, got, ref, g, y, dim):
    """docs/softmax.md's bound for the backward from y: 4 ulp plus 4u times the
    first-order effect of the rounding of its inputs (softmax, softmin: y_i sum|g_j y_j|
    + y_i |g_i|; log_softmax: |g_i| + e^y_i sum|g_j|), u = 2^-24 or 2^-53; here against
    the exact gradient at x, so plus the effect of y's own error (4 ulp <= 8u |y|) on it:
    4 eps |ref| + 12 u term."""
    dtype = got.dtype
    u = 2.0 ** -24 if dtype == torch.float32 else 2.0 ** -53
    eps = torch.finfo(dtype).eps
    extra = WIDE_EXTRA if dtype == torch.float64 else 1
    g, y, got = g.double(), y.double(), got.double()
    if name == "log_softmax":
        term = g.abs() + y.exp() * g.abs().sum(dim, keepdim=True)
    else:
        term = y * (g * y).abs().sum(dim, keepdim=True) + y * g.abs()
    err = (got - ref).abs()
    allowed = (4 * eps * ref.abs() + 12 * u * term) * extra + 1e-300
    worst = float((err / allowed).max())
    assert worst <= 1, f"{name}: the backward is {worst:.2f} times its bound"


def value_tolerance(dtype):
    """For comparisons with PyTorch's own results: a few ulp, absolute ones where
    log_softmax is near 0 (PyTorch subtracts the log of the sum)."""
    if dtype == torch.float32:
        return dict(rtol=1e-6, atol=1e-6)
    return dict(rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------------------
# functions: values and gradients against PyTorch

@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_match_torch(name, dtype, layout, dim, backend):
    x = make(layout, dtype).requires_grad_()
    before = x.detach().clone()
    y = ours(name, x, dim)
    assert y.shape == SHAPE and y.dtype == dtype and y.requires_grad
    assert type(y.grad_fn).__name__ == f"{MODULES[name]}FunctionBackward"
    if layout != "strided":                     # dense: the output keeps x's layout
        assert y.stride() == x.stride()
    g = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7), dtype=dtype)
    y.backward(g)
    assert x.grad.shape == SHAPE and x.grad.dtype == dtype
    assert torch.equal(x.detach(), before)                    # the input is not modified
    y_ref, gx_ref = reference(name, x, dim, g)
    assert_values_within_4_ulp(y, y_ref)
    assert_backward_within_bound(name, x.grad, gx_ref, g, y_ref, dim)
    torch.testing.assert_close(y.detach(), theirs(name, x.detach(), dim),   # PyTorch's value
                               **value_tolerance(dtype))


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
@pytest.mark.parametrize("name", NAMES)
def test_grad_output_of_another_layout(name, dtype, backend):
    """A grad_output whose layout is not y's is copied into y's before the kernel."""
    x = make("transposed", dtype).requires_grad_()
    g = make("contiguous", dtype, seed=3)
    y = ours(name, x, 2)
    gx, = torch.autograd.grad(y, x, g)
    gx2, = torch.autograd.grad(ours(name, x, 2), x, g.transpose(0, 3).contiguous()
                               .transpose(0, 3))
    assert torch.equal(gx, gx2)
    y_ref, gx_ref = reference(name, x, 2, g)
    assert_backward_within_bound(name, gx, gx_ref, g, y_ref, 2)


@pytest.mark.parametrize("name", NAMES)
def test_long_rows_and_one_element_rows(name, backend):
    x = (torch.randn(2, 5000, dtype=torch.float64) * 10).requires_grad_()
    g = torch.randn(2, 5000, dtype=torch.float64)
    for dim in (0, 1):
        y = ours(name, x, dim)
        gx, = torch.autograd.grad(y, x, g)
        y_ref, gx_ref = reference(name, x, dim, g)
        assert_values_within_4_ulp(y, y_ref)
        assert_backward_within_bound(name, gx, gx_ref, g, y_ref, dim)
    one = torch.randn(4, 1, dtype=torch.float64)
    assert torch.equal(ours(name, one, 1), theirs(name, one, 1))


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_and_gradgradcheck(name):
    base = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    inputs = [base, base.transpose(0, 2).contiguous().transpose(0, 2),   # F order
              torch.randn(2, 3, 8, dtype=torch.float64)[..., ::2],         # gaps
              base.permute(2, 0, 1)]                                        # transposed
    for i, x in enumerate(inputs):
        x = x.detach().requires_grad_()
        for dim in ((0, 1, 2) if i == 0 else (1,)):
            fn = lambda t, dim=dim: ours(name, t, dim)  # noqa: E731
            assert torch.autograd.gradcheck(fn, (x,), check_forward_ad=i == 0,
                                            check_batched_grad=i == 0)
            assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name", NAMES)
def test_double_backward_and_jvp_match_torch(name):
    """create_graph=True: the second derivatives are PyTorch's; forward-mode AD too."""
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 7, dtype=torch.float64)
    results = []
    for fn in (ours, theirs):
        gx, = torch.autograd.grad(fn(name, x, 1), x, g, create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), x)[0])
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)
    import torch.autograd.forward_ad as fwAD
    tangent = torch.randn(5, 7, dtype=torch.float64)
    jvps = []
    for fn in (ours, theirs):
        with fwAD.dual_level():
            out = fn(name, fwAD.make_dual(x.detach(), tangent), 0)
            jvps.append(fwAD.unpack_dual(out).tangent)
    torch.testing.assert_close(jvps[0], jvps[1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_special_rows_are_fastacts_limits(name, backend):
    """Rows with NaN, +inf and -inf: the values (and the backward from y) of fastact's
    NumPy-array functions; PyTorch gives NaN for the rows holding +inf."""
    inf, nan = float("inf"), float("nan")
    rows = [[1.0, inf, 2.0, inf], [0.5, nan, 1.0, 2.0], [-inf, 0.0, 1.0, -inf],
            [-inf, -inf, -inf, -inf], [3.0, -1.0, 0.0, 2.0], [-inf, inf, 0.0, 1.0]]
    for dtype in TORCH_DTYPES:
        x = torch.tensor(rows, dtype=dtype, requires_grad=True)
        y = ours(name, x, 1)
        xn = x.detach().numpy()
        expected = getattr(fastact, name)(xn, axis=1)
        np.testing.assert_array_equal(y.detach().numpy(), expected)
        g = torch.linspace(-1, 1, x.numel(), dtype=dtype).reshape(x.shape)
        gx, = torch.autograd.grad(y, x, g)
        np.testing.assert_array_equal(
            gx.numpy(), getattr(fastact, name + "_backward")(g.numpy(), y=expected, axis=1))
        finite = [4]                                    # rows PyTorch has the same way
        if name != "softmin":
            finite.append(2)
        torch.testing.assert_close(y[finite].detach(), theirs(name, x.detach(), 1)[finite],
                                   **value_tolerance(dtype))
        assert torch.isnan(theirs(name, x.detach(), 1)[0 if name != "softmin" else 3]).all()


def test_log_softmax_keeps_small_log_probabilities():
    x = torch.tensor([[0.0, -40.0], [0.0, -20.0]], dtype=torch.float64)
    y = ft.log_softmax(x, 1)
    exact = -np.log1p(np.exp(-np.array([40.0, 20.0])))
    np.testing.assert_allclose(y[:, 0].numpy(), exact, rtol=4 * np.finfo(float).eps)
    assert F.log_softmax(x, 1)[0, 0] == 0.0              # PyTorch's: every digit lost


# ---------------------------------------------------------------------------------------
# F.softmax's signature: implicit dim, dtype=, errors

@pytest.mark.parametrize("name", NAMES)
def test_signature_is_torch_functional(name):
    ours_sig = inspect.signature(getattr(ft, name))
    theirs_sig = inspect.signature(getattr(F, name))
    assert [(p.name, p.default, p.kind) for p in ours_sig.parameters.values()] == \
        [(p.name, p.default, p.kind) for p in theirs_sig.parameters.values()]


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("name", NAMES)
def test_implicit_dim_warns_and_picks_torchs_dim(name, ndim):
    x = torch.randn((2, 3, 4, 5)[:ndim], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        y = ours(name, x)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        y_ref = theirs(name, x)
    assert [str(w.message) for w in ours_w] == [str(w.message) for w in theirs_w]
    assert len(ours_w) == 1 and "Implicit dimension choice for " + name in str(ours_w[0].message)
    assert ours_w[0].filename == __file__                 # points at the caller, as torch's
    torch.testing.assert_close(y, y_ref, rtol=1e-14, atol=1e-15)
    if ndim:
        gx, = torch.autograd.grad(y.square().sum(), x)
        gx_ref, = torch.autograd.grad(y_ref.square().sum(), x)
        torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-14)
    # an explicit dim does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours(name, x, 0)


@pytest.mark.parametrize("name", NAMES)
def test_dtype_argument_casts_first(name):
    x16 = torch.randn(4, 6).to(torch.float16).requires_grad_()
    for dtype in TORCH_DTYPES:
        y = ours(name, x16, 1, dtype=dtype)
        y_ref = theirs(name, x16, 1, dtype=dtype)
        assert y.dtype == dtype and type(y.grad_fn).__name__ == f"{MODULES[name]}FunctionBackward"
        torch.testing.assert_close(y, y_ref, **value_tolerance(dtype))
        gx, = torch.autograd.grad(y.sum() + y[:, 0].sum(), x16)
        gx_ref, = torch.autograd.grad(y_ref.sum() + y_ref[:, 0].sum(), x16)
        assert gx.dtype == torch.float16
        torch.testing.assert_close(gx, gx_ref)
    ints = torch.arange(12).reshape(3, 4)
    torch.testing.assert_close(ours(name, ints, 1, dtype=torch.float64),
                               theirs(name, ints, 1, dtype=torch.float64), rtol=1e-15, atol=0)
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(ours(name, x, 0, dtype=torch.float32),
                               theirs(name, x, 0, dtype=torch.float32), rtol=5e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=tid)
@pytest.mark.parametrize("name", NAMES)
def test_half_tensors_are_computed_by_fastact(name, dtype):
    """float16 tensors, and bfloat16 ones with ml_dtypes installed (docs/softmax.md), are
    computed by fastact: its autograd node, the values and the gradient of fastact's NumPy
    functions on the same 16-bit data bit for bit, close to PyTorch's float64 values on
    them. (tests/test_half_integrations.py: accuracy, and bfloat16 without ml_dtypes.)"""
    def numpy_of(t):
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(pytest.importorskip("ml_dtypes").bfloat16)
        return t.numpy()

    x = (torch.randn(4, 6) * 3).to(dtype).requires_grad_()
    y = ours(name, x, -1)
    assert y.dtype == dtype and type(y.grad_fn).__name__ == f"{MODULES[name]}FunctionBackward"
    yn = getattr(fastact, name)(numpy_of(x), axis=-1)
    assert np.array_equal(numpy_of(y).view(np.uint16), yn.view(np.uint16))
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(y.double(), theirs(name, x.detach().double(), -1),
                               rtol=eps, atol=eps)
    g = torch.randn(4, 6).to(dtype)
    gx, = torch.autograd.grad(y, x, g)
    want = getattr(fastact, name + "_backward")(numpy_of(g), y=yn, axis=-1)
    assert gx.dtype == dtype and np.array_equal(numpy_of(gx).view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("make_input", [
    lambda: torch.tensor(1.5, dtype=torch.float64),                    # 0-d
    lambda: torch.empty(0, 6, dtype=torch.float64),                    # empty
    lambda: torch.randn(4, 6, dtype=torch.float64).as_subclass(_Subclass),
    lambda: torch.tensor(1.5, dtype=torch.float16),                    # 0-d float16
], ids=["0-d", "empty", "subclass", "0-d-float16"])
@pytest.mark.parametrize("name", NAMES)
def test_other_tensors_give_torchs_result(name, make_input):
    """Fallback, not error: PyTorch computes them, bit for bit its values and gradients."""
    x = make_input()
    dim = -1
    xr = x.detach().clone().requires_grad_()
    x = x.detach().clone().requires_grad_()
    y, y_ref = ours(name, x, dim), theirs(name, xr, dim)
    assert "FunctionBackward" not in type(y.grad_fn).__name__
    assert torch.equal(y, y_ref)
    if x.numel():
        g = torch.randn(y.shape).to(y.dtype)
        assert torch.equal(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, xr, g)[0])


class _Subclass(torch.Tensor):
    pass


@pytest.mark.parametrize("name", NAMES)
def test_torchs_errors(name):
    ints = torch.arange(6).reshape(2, 3)
    for call in (lambda: theirs(name, ints, 1), lambda: ours(name, ints, 1)):
        with pytest.raises((RuntimeError, NotImplementedError)):
            call()
    x = torch.randn(2, 3)
    for fn in (ours, theirs):
        with pytest.raises(IndexError):
            fn(name, x, 2)


@pytest.mark.parametrize("name", NAMES)
def test_torch_func_transforms_fall_back(name):
    x = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(lambda t: ours(name, t, 0))(x),
                               theirs(name, x, 1), rtol=0, atol=0)
    g = torch.func.grad(lambda t: ours(name, t, 1)[:, 0].sum())(x)
    g_ref = torch.func.grad(lambda t: theirs(name, t, 1)[:, 0].sum())(x)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=0)


def test_no_grad_and_tensors_requiring_no_grad():
    x = make("transposed", torch.float64)
    for name in NAMES:
        y = ours(name, x, 1)                       # x requires no grad
        assert y.grad_fn is None and not y.requires_grad
        torch.testing.assert_close(y, theirs(name, x, 1), **value_tolerance(torch.float64))
        xg = x.clone().requires_grad_()
        with torch.no_grad():
            z = ours(name, xg, 1)
        assert z.grad_fn is None and not z.requires_grad and torch.equal(z, y)
    # only one of two inputs of a graph requires grad
    w = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    out = ft.softmax(x @ w, -1)
    out.sum().backward()
    assert w.grad is not None


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_works_on_the_tensors_memory_without_copying(monkeypatch, backend):
    """fastact's backends work on the input's and the output's memory for contiguous,
    transposed and channels-last tensors (dims permuted to C order), y and grad_output in
    the backward too: the compiled one at the tensors' addresses as (outer, n, inner)
    with n the dim's size (fastact._runner.softmax_at), the NumPy one on C-ordered views
    of them; a view with gaps is copied once."""
    seen = []
    if backend == "compiled":
        real = _backend._runner.softmax_at

        def spy(log, sign, op, kernel, code, x, g, o1, o2, outer, n, inner):
            seen.append([a for a in (x, g, o1, o2) if a])
            sizes.append((outer, n, inner))
            return real(log, sign, op, kernel, code, x, g, o1, o2, outer, n, inner)
        monkeypatch.setattr(_backend._runner, "softmax_at", spy)
    else:
        real = _softmax.compute             # the backends, on (outer, n, inner) views

        def spy(func, op, x, g, outs):
            arrays = [a for a in (x, g, *outs) if a is not None]
            seen.append([a.__array_interface__["data"][0] for a in arrays])
            sizes.append(x.shape)
            assert all(a.ndim == 3 and a.flags.c_contiguous for a in arrays)
            return real(func, op, x, g, outs)
        monkeypatch.setattr(_softmax, "compute", spy)
    base = torch.randn(2, 3, 4, 5)
    with using(backend):
        for x in (base, base.transpose(1, 3), base.to(memory_format=torch.channels_last)):
            x = x.clone(memory_format=torch.preserve_format).requires_grad_()
            seen.clear()
            sizes = []
            y = ft.softmax(x, 1)
            assert seen == [[x.data_ptr(), y.data_ptr()]]
            assert y.stride() == x.stride()
            g = torch.empty_like(y).normal_()
            gx, = torch.autograd.grad(y, x, g)
            assert seen[1] == [y.data_ptr(), g.data_ptr(), gx.data_ptr()]
            for outer, n, inner in sizes:
                assert n == x.shape[1] and outer * n * inner == x.numel()
            torch.testing.assert_close(y, F.softmax(x, 1), rtol=5e-7, atol=1e-9)
        gaps = torch.randn(4, 10)[:, ::2]
        seen.clear()
        ft.softmax(gaps, 1)
        assert seen[0][0] != gaps.data_ptr()


@pytest.mark.parametrize("name", NAMES)
def test_output_modified_in_place(name):
    """y is a tensor of its own (not a view made inside the autograd function): it can be
    modified in place, and since the backward needs it (as PyTorch's does) autograd then
    refuses the backward with PyTorch's error; without grad it is a plain tensor."""
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for fn in (ours, theirs):
        y = fn(name, x, 1)
        y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    with torch.no_grad():
        y = ours(name, x, 1)
    y.add_(1)
    torch.testing.assert_close(y, theirs(name, x.detach(), 1) + 1, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------------------
# modules

@pytest.mark.parametrize("name", NAMES)
def test_modules_are_torch_nn_modules(name):
    cls_name = MODULES[name]
    cls, base = getattr(ft, cls_name), getattr(torch.nn, cls_name)
    assert issubclass(cls, base) and cls.__module__ == "fastact.torch"
    for args in ((), (1,), (-1,)):
        m, ref = cls(*args), base(*args)
        assert repr(m) == repr(ref) and m.dim == ref.dim
    m = cls(dim=0)
    x = make("channels_last", torch.float64).requires_grad_()
    y = m(x)
    assert type(y.grad_fn).__name__ == f"{cls_name}FunctionBackward"
    torch.testing.assert_close(y, base(dim=0)(x), **value_tolerance(torch.float64))
    m.dim = 2                                       # the attribute is used from then on
    torch.testing.assert_close(m(x), base(dim=2)(x), **value_tolerance(torch.float64))
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        y = cls()(x)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        y_ref = base()(x)
    assert [(str(w.message), w.filename) for w in ours_w] == \
        [(str(w.message), w.filename) for w in theirs_w]
    assert len(ours_w) == 1
    torch.testing.assert_close(y, y_ref, **value_tolerance(torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_modules_pickle_deepcopy_and_save(name, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), getattr(ft, MODULES[name])(dim=1))
    x = torch.randn(3, 4)
    y = model(x)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    copies = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model),
              torch.load(path, weights_only=False)]
    for other in copies:
        assert type(other[1]) is getattr(ft, MODULES[name]) and other[1].dim == 1
        assert torch.equal(other(x), y)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
def test_in_a_model_matches_torch(dtype, backend):
    """nn.Sequential(Linear, Softmax): the loss and every parameter's gradient equal the
    same model with torch.nn.Softmax; and a classifier's LogSoftmax + NLLLoss step."""
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(16, 10), torch.nn.Softmax(dim=-1)).to(dtype)
    model = copy.deepcopy(ref)
    model[1] = ft.Softmax(dim=-1)
    x = torch.randn(32, 16, dtype=dtype)
    target = torch.randn(32, 10, dtype=dtype)
    losses = []
    for m in (model, ref):
        loss = (m(x) - target).square().mean()
        loss.backward()
        losses.append(loss.detach())
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(losses[0], losses[1], **tol)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **tol)

    ref = torch.nn.Sequential(torch.nn.Linear(16, 10), torch.nn.LogSoftmax(dim=1)).to(dtype)
    model = copy.deepcopy(ref)
    model[1] = ft.LogSoftmax(dim=1)
    labels = torch.randint(0, 10, (32,))
    for m in (model, ref):
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        for _ in range(3):
            opt.zero_grad()
            F.nll_loss(m(x), labels).backward()
            opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, **tol)


def test_type_stub_declares_the_functions_and_modules():
    import os
    import re
    stub = open(os.path.join(os.path.dirname(ft.__file__), "torch.pyi")).read()
    for name in NAMES:
        assert name in ft.__all__ and MODULES[name] in ft.__all__
        assert re.search(rf"^def {name}\(input: torch\.Tensor, dim: int \| None = \.\.\.",
                         stub, re.M)
        assert re.search(rf"^class {MODULES[name]}\(torch\.nn\.{MODULES[name]}\)", stub, re.M)


# ---------------------------------------------------------------------------------------
# dask

da = None


@pytest.fixture(scope="module")
def dask_array():
    global da
    da = pytest.importorskip("dask.array")
    return da


def _np_data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def _entries(name, x, g, y, axis):
    """Every function and entry point of one member of the family, along axis."""
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    cls = getattr(fastact, MODULES[name])
    return {
        "forward": f("")(x, axis), "forward_dim": f("")(x, dim=axis),
        "backward_x": f("_backward")(g, x, axis=axis),
        "backward_y": f("_backward")(g, y=y, axis=axis),
        "forward_backward": f("_forward_backward")(x, axis),
        "forward_backward_g": f("_forward_backward")(x, axis, g),
        "class": cls(axis)(x), "class_backward_y": cls(axis).backward(g, y=y),
        "class_backward_x": cls(dim=axis).backward(g, x),
        "class_forward_backward": cls(axis).forward_backward(x, g),
        "get": fastact.get(name, axis=axis)(x),
    }


def _assert_lazy_equal(lazy, eager, chunks=None):
    """Every lazy result is a dask array (of the NumPy result's shape, dtype and, when
    given, chunks) whose computed value is the NumPy result bit for bit."""
    checks = []
    for entry, want in eager.items():
        got = lazy[entry]
        if isinstance(want, tuple):
            assert isinstance(got, tuple) and len(got) == len(want), entry
            pairs = zip(got, want)
        else:
            pairs = [(got, want)]
        for i, (lz, w) in enumerate(pairs):
            assert isinstance(lz, da.Array), (entry, i)             # lazy
            assert lz.shape == w.shape and lz.dtype == w.dtype, (entry, i)
            assert isinstance(lz._meta, np.ndarray) and lz._meta.dtype == w.dtype, (entry, i)
            if chunks is not None:
                assert lz.chunks == chunks, (entry, i, lz.chunks, chunks)
            checks.append(((entry, i), lz, w))
    computed = da.compute(*[lz for _, lz, _ in checks], scheduler="threads")
    for (what, _, w), value in zip(checks, computed):
        assert np.array_equal(value, w, equal_nan=True), what


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", NAMES)
def test_dask_equals_numpy(dask_array, name, axis, dtype, backend):
    shape = (14, 9, 11)
    x = _np_data(dtype, shape, 0)
    x[1, 2, :] = np.inf                               # special rows go through too
    x[3, :, 4] = np.nan
    g = _np_data(dtype, shape, 1)
    y = getattr(fastact, name)(x, axis)
    d = axis % 3
    chunks = tuple(-1 if i == d else (5, 4, 4)[i] for i in range(3))
    dx = da.from_array(x, chunks=chunks)
    dg = da.from_array(g, chunks=tuple(-1 if i == d else 3 for i in range(3)))   # other chunks
    dy = da.from_array(y, chunks=chunks)
    assert len(dx.chunks[d]) == 1 and all(len(c) > 1 for i, c in enumerate(dx.chunks) if i != d)
    eager = _entries(name, x, g, y, axis)
    _assert_lazy_equal(_entries(name, dx, dg, dy, axis), eager, chunks=dx.chunks)
    # a NumPy grad_output with a dask x (or y)
    mixed = {"backward_x": getattr(fastact, name + "_backward")(g, dx, axis=axis),
             "backward_y": getattr(fastact, name + "_backward")(g, y=dy, axis=axis),
             "forward_backward_g": getattr(fastact, name + "_forward_backward")(dx, axis, g)}
    _assert_lazy_equal(mixed, {k: eager[k] for k in mixed}, chunks=dx.chunks)


@pytest.mark.parametrize("name", NAMES)
def test_dask_axis_none_and_other_dtypes(dask_array, name):
    x = _np_data(np.float64, (6, 5), 2)
    one = da.from_array(x, chunks=-1)
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    eager = {"forward": f("")(x, None), "forward_backward": f("_forward_backward")(x, None)}
    _assert_lazy_equal({"forward": f("")(one, None),
                        "forward_backward": f("_forward_backward")(one, None)}, eager)
    with pytest.raises(ValueError, match=r"rechunk\(-1\)"):
        getattr(fastact, name)(da.from_array(x, chunks=(3, 5)), axis=None)
    for xs in (x.astype(np.float16), (x * 10).astype(np.int32), x > 0):
        lazy = getattr(fastact, name)(da.from_array(xs, chunks=(2, 5)), 1)
        want = getattr(fastact, name)(xs, 1)
        assert lazy.dtype == want.dtype
        assert np.array_equal(lazy.compute(), want, equal_nan=True)


def test_dask_is_lazy(dask_array):
    calls = []

    def spy(block):
        calls.append(block.shape)
        return block
    dx = da.ones((40, 6), chunks=(10, 6)).map_blocks(spy, dtype=np.float64)
    calls.clear()
    results = [fastact.softmax(dx), fastact.log_softmax_forward_backward(dx),
               fastact.softmin_backward(dx, dx), fastact.softmax_backward(dx, y=dx),
               fastact.Softmax(1)(dx)]
    assert calls == []
    assert results[0].numblocks == (4, 1)
    results[0].compute()
    assert len(calls) >= 4
    assert results[0].name.startswith("fastact-")
    assert fastact.softmax(dx).name != fastact.softmax(dx + 1).name
    assert fastact.softmax(dx).name != fastact.softmin(dx).name


@pytest.mark.parametrize("name", NAMES)
def test_dask_rows_in_several_chunks_raise(dask_array, name):
    x = _np_data(np.float64, (12, 10), 5)
    dx = da.from_array(x, chunks=(6, 4))
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    calls = [lambda: f("")(dx), lambda: f("")(dx, dim=1),
             lambda: f("_backward")(dx, dx, axis=1), lambda: f("_backward")(x, y=dx),
             lambda: f("_forward_backward")(dx, -1),
             lambda: getattr(fastact, MODULES[name])(1)(dx)]
    for call in calls:
        with pytest.raises(ValueError, match=r"rechunk\(\{1: -1\}\)"):
            call()
    with pytest.raises(ValueError, match=r"axis 0.*rechunk\(\{0: -1\}\)"):
        f("")(da.from_array(x, chunks=(5, 10)), 0)
    # after the rechunk it suggests: the NumPy result
    y = f("")(dx.rechunk({1: -1}))
    assert y.chunks == ((6, 6), (10,))
    assert np.array_equal(y.compute(), f("")(x))


@pytest.mark.parametrize("name", NAMES)
def test_dask_with_out_raises_type_error(dask_array, name):
    x = _np_data(np.float64, (12, 10), 6)
    dx = da.from_array(x, chunks=(4, 10))
    out = np.empty((12, 10))
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    calls = [lambda: f("")(dx, out=out), lambda: f("_backward")(dx, dx, out=out),
             lambda: f("_backward")(x, y=dx, out=out), lambda: f("_backward")(dx, x, out=out),
             lambda: f("_forward_backward")(dx, out=out),
             lambda: f("_forward_backward")(dx, grad_out=out),
             lambda: getattr(fastact, MODULES[name])()(dx, out=out)]
    for i, call in enumerate(calls):
        with pytest.raises(TypeError, match="out"):
            call()
            pytest.fail(f"call {i}: no error")
