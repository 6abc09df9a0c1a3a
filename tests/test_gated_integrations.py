"""The gated units, prelu and rrelu inside PyTorch (fastact.torch) and with dask arrays
(docs/gated.md, sections "In PyTorch: fastact.torch" and "Dask").

References are independent of fastact's kernels: PyTorch itself (torch.nn.functional,
torch.nn modules and the expressions of docs/gated.md's table, in float64 on the same
inputs), torch.autograd.gradcheck/gradgradcheck, and, for dask, fastact's own NumPy-array
results (the lazy result must equal them bit for bit). The NumPy functions themselves are
tested in tests/test_gated.py.
"""
import copy
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastact  # noqa: E402
import fastact.torch as ft  # noqa: E402

TORCH_DTYPES = (torch.float32, torch.float64)

# (name, parameters): every gated unit, geglu with both approximations
CASES = [("glu", {}), ("swiglu", {}), ("geglu", {"approximate": "none"}),
         ("geglu", {"approximate": "tanh"}), ("reglu", {})]
MODULES = {"glu": "GLU", "swiglu": "SwiGLU", "geglu": "GeGLU", "reglu": "ReGLU"}


@pytest.fixture(autouse=True)
def _seeded_torch():
    """Every test draws from the same torch global generator state (deterministic data);
    the state from before is restored afterwards."""
    state = torch.get_rng_state()
    torch.manual_seed(20240611)
    yield
    torch.set_rng_state(state)


def case_id(case):
    return case[0] + "".join(f"-{v}" for v in case[1].values())


def tid(dtype):
    return str(dtype).replace("torch.", "")


def expression(case, a, gate):
    """docs/gated.md's PyTorch column: what fastact's value must be."""
    name, params = case
    if name == "glu":
        return F.glu(torch.cat([a, gate], dim=-1), dim=-1)
    if name == "swiglu":
        return a * F.silu(gate)
    if name == "geglu":
        return a * F.gelu(gate, approximate=params.get("approximate", "none"))
    return a * F.relu(gate)


def expression_split(case, x, dim):
    """The one-tensor form in PyTorch: F.glu for glu, else the expression of the halves."""
    if case[0] == "glu":
        return F.glu(x, dim)
    if x.shape[dim] % 2:
        raise RuntimeError("odd size")       # never reached with the inputs used below
    a, gate = x.chunk(2, dim)
    return expression(case, a, gate)


def ours(case, *args):
    return getattr(ft, case[0])(*args, **case[1])


def tolerances(dtype, scale=None):
    """fastact: within 4 ulp of the exact value; the reference is PyTorch's float64
    expression on the same inputs (a few float64 ulp). For gradients, scale = max|g| *
    max|x|: near where f' crosses zero (silu, gelu) the gate's gradient g * a * f' is
    held to 4 machine epsilons times |g a| (twice that in float64, where PyTorch's
    expression has such an error itself), as tests/test_gated.py does."""
    eps = torch.finfo(dtype).eps
    if dtype == torch.float32:
        tol = dict(rtol=2e-6, atol=1e-6)
    else:
        tol = dict(rtol=1e-13, atol=1e-14)
    if scale is not None:
        tol["atol"] = max(tol["atol"], (4 if dtype == torch.float32 else 8) * eps * scale)
    return tol


def grad_scale(g, *inputs):
    return float(g.abs().max()) * max(float(t.detach().abs().max()) for t in inputs)


SHAPE = (4, 6, 6, 8)        # N, C, H, W: every dim even


def make(layout, dtype, seed=0, shape=SHAPE):
    """A tensor of `shape` in a memory layout."""
    gen = torch.Generator().manual_seed(seed)
    n, c, h, w = shape

    def randn(*dims):                     # in dtype before any view is taken
        return (torch.randn(dims, generator=gen, dtype=torch.float64) * 2).to(dtype)
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
    if layout == "channels_last":
        assert t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    elif layout != "contiguous":
        assert not t.is_contiguous()
    return t


LAYOUTS = ["contiguous", "transposed", "fortran", "channels_last", "strided"]


def reference_grads(fn, inputs, g):
    """(y, grads) of PyTorch's float64 autograd of fn on the inputs (cast to float64)."""
    leaves = [t.detach().double().requires_grad_() for t in inputs]
    y = fn(*leaves)
    grads = torch.autograd.grad(y, leaves, g.double())
    return y.detach(), grads


# ---------------------------------------------------------------------------------------
# gated units: functions

@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_one_tensor_form_values_and_gradients(case, dtype, layout, dim):
    x = make(layout, dtype).requires_grad_()
    before = x.detach().clone()
    y = ours(case, x, dim)
    expected_shape = list(SHAPE)
    expected_shape[dim] //= 2
    assert y.shape == tuple(expected_shape) and y.dtype == dtype and y.requires_grad
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=dtype)
    y.backward(g)
    assert x.grad.shape == x.shape and x.grad.dtype == dtype
    assert torch.equal(x.detach(), before)                 # the input is not modified
    y_ref, (gx_ref,) = reference_grads(lambda t: expression_split(case, t, dim), [x], g)
    torch.testing.assert_close(y.detach().double(), y_ref, **tolerances(dtype))
    torch.testing.assert_close(x.grad.double(), gx_ref, **tolerances(dtype, grad_scale(g, x)))
    # where autograd records nothing, no autograd function: the same values, no graph
    with torch.no_grad():
        untracked = [ours(case, x, dim)]
    untracked.append(ours(case, x.detach(), dim))
    for u in untracked:
        assert not u.requires_grad and u.grad_fn is None and torch.equal(u, y.detach())


@pytest.mark.parametrize("layouts", [("contiguous", "contiguous"), ("transposed", "contiguous"),
                                     ("channels_last", "fortran"), ("strided", "transposed")],
                         ids=lambda p: "+".join(p))
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_two_tensor_form_values_and_gradients(case, dtype, layouts):
    a = make(layouts[0], dtype, seed=1).requires_grad_()
    gate = make(layouts[1], dtype, seed=2).requires_grad_()
    y = ours(case, a, gate)
    assert y.shape == SHAPE and y.dtype == dtype
    g = torch.randn(SHAPE, generator=torch.Generator().manual_seed(8), dtype=dtype)
    y.backward(g)
    y_ref, (ga_ref, gg_ref) = reference_grads(lambda u, v: expression(case, u, v), [a, gate], g)
    torch.testing.assert_close(y.detach().double(), y_ref, **tolerances(dtype))
    tol = tolerances(dtype, grad_scale(g, a, gate))
    torch.testing.assert_close(a.grad.double(), ga_ref, **tol)
    torch.testing.assert_close(gate.grad.double(), gg_ref, **tol)
    # the one-tensor form along a dim gives the two-tensor form of its halves
    x = torch.cat([a.detach(), gate.detach()], dim=1)
    torch.testing.assert_close(ours(case, x, 1), y.detach(), rtol=0, atol=0)
    untracked = ours(case, a.detach(), gate.detach())     # no autograd function
    assert not untracked.requires_grad and torch.equal(untracked, y.detach())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradient_of_one_input_only(case):
    """Only a (or only the gate) requires grad: the other gets none."""
    a = make("contiguous", torch.float64, seed=3)
    gate = make("contiguous", torch.float64, seed=4)
    for which in (0, 1):
        inputs = [a.clone(), gate.clone()]
        inputs[which].requires_grad_()
        y = ours(case, *inputs)
        y.sum().backward()
        _, grads = reference_grads(lambda u, v: expression(case, u, v), [a, gate],
                                   torch.ones(SHAPE, dtype=torch.float64))
        torch.testing.assert_close(inputs[which].grad, grads[which],
                                   **tolerances(torch.float64, grad_scale(a, gate)))
        assert inputs[1 - which].grad is None


def _away_from_kinks(shape, seed):
    """Gates away from 0 (relu's kink) for finite differences."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.where(g < 0, g - 0.1, g + 0.1)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradcheck_and_gradgradcheck(case):
    a = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    gate = _away_from_kinks((3, 4), 6)
    for dim in (0, 1, -1):
        x = torch.cat([a, gate], dim=dim).requires_grad_()
        fn = lambda t, dim=dim: ours(case, t, dim)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,), check_forward_ad=True)   # jvp too
        assert torch.autograd.gradgradcheck(fn, (x,))
    xt = torch.cat([a, gate], dim=0).t().contiguous().t().requires_grad_()   # F order
    assert not xt.is_contiguous()
    assert torch.autograd.gradcheck(lambda t: ours(case, t, 0), (xt,))
    pair = (a.clone().requires_grad_(), gate.clone().requires_grad_())
    assert torch.autograd.gradcheck(lambda u, v: ours(case, u, v), pair, check_forward_ad=True)
    assert torch.autograd.gradgradcheck(lambda u, v: ours(case, u, v), pair)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_double_backward_matches_torch(case):
    """create_graph=True: the second derivatives are PyTorch's."""
    x = torch.cat([torch.randn(5, 3, dtype=torch.float64), _away_from_kinks((5, 3), 9)],
                  dim=1).requires_grad_()
    g = torch.randn(5, 3, dtype=torch.float64)
    results = []
    for fn in (lambda t: ours(case, t, 1), lambda t: expression_split(case, t, 1)):
        gx, = torch.autograd.grad(fn(x), x, g, create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), x)[0])
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_geglu_approximate_argument_positions():
    x = make("contiguous", torch.float64)
    a, gate = x.chunk(2, -1)
    tanh = expression(("geglu", {"approximate": "tanh"}), a, gate)
    erf = expression(("geglu", {"approximate": "none"}), a, gate)
    assert not torch.allclose(tanh, erf, rtol=1e-10, atol=0)
    for y in (ft.geglu(x, -1, "tanh"), ft.geglu(x, dim=-1, approximate="tanh"),
              ft.geglu(a, gate, approximate="tanh"), ft.GeGLU(-1, "tanh")(x),
              ft.GeGLU(approximate="tanh")(a, gate)):
        torch.testing.assert_close(y, tanh, rtol=1e-13, atol=1e-14)
    for y in (ft.geglu(x), ft.geglu(a, gate), ft.GeGLU()(x)):
        torch.testing.assert_close(y, erf, rtol=1e-13, atol=1e-14)


def test_no_grad_and_inputs_not_modified():
    x = make("transposed", torch.float64).requires_grad_()
    before = x.detach().clone()
    with torch.no_grad():
        y = ft.swiglu(x, 0)
    assert y.grad_fn is None and not y.requires_grad
    torch.testing.assert_close(y, expression_split(("swiglu", {}), x.detach(), 0),
                               rtol=1e-13, atol=1e-14)
    assert torch.equal(x.detach(), before)


# ---------------------------------------------------------------------------------------
# gated units: what PyTorch computes (ineligible tensors) and errors

def _half_numpy(t):
    """A NumPy view of a 16-bit CPU tensor's bits (bfloat16 as ml_dtypes')."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _equal_bits(t, a):
    n = _half_numpy(t.contiguous())
    return n.dtype == a.dtype and n.shape == a.shape and np.array_equal(
        n.view(np.uint16), np.asarray(a).view(np.uint16))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_half_precision_computed_by_fastact(case, dtype):
    """float16 tensors, and bfloat16 ones with ml_dtypes installed, are computed by
    fastact's kernels (docs/torch.md): the values and gradients of fastact's NumPy
    functions on the same 16-bit data, bit for bit, through fastact's autograd node;
    close to PyTorch's float64 expression on the same 16-bit values (2 epsilons of the
    type, relative or absolute: PyTorch's own 16-bit glu gradient is 27 ulp off here).
    (tests/test_half_integrations.py has the accuracy and the fallback without
    ml_dtypes.)"""
    eps = torch.finfo(dtype).eps
    close = dict(rtol=2 * eps, atol=2 * eps)
    x = (torch.randn(6, 8, generator=torch.Generator().manual_seed(3)) * 2).to(dtype)
    xn = _half_numpy(x)
    for dim in (0, 1, -1):
        y = ours(case, x, dim)
        assert y.dtype == dtype and _equal_bits(y, getattr(fastact, case[0])(xn, dim, **case[1]))
        torch.testing.assert_close(y.double(), expression_split(case, x.double(), dim), **close)
    a, gate = x[:3], x[3:]
    y = ours(case, a, gate)
    assert _equal_bits(y, getattr(fastact, case[0])(xn[:3], xn[3:], **case[1]))
    torch.testing.assert_close(y.double(), expression(case, a.double(), gate.double()), **close)
    # autograd: fastact's backward kernel
    xr = x.clone().requires_grad_()
    y = ours(case, xr, 0)
    assert type(y.grad_fn).__name__ == "_GatedSplitBackward"
    g = torch.ones_like(y)
    y.backward(g)
    assert xr.grad.dtype == dtype and _equal_bits(xr.grad, getattr(
        fastact, case[0] + "_backward")(_half_numpy(g), xn, 0, **case[1]))
    xe = x.double().requires_grad_()
    expression_split(case, xe, 0).backward(g.double())
    torch.testing.assert_close(xr.grad.double(), xe.grad, **close)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_other_tensors_fall_back_to_torch(case):
    gen = torch.Generator().manual_seed(6)
    a = torch.randn(4, 5, dtype=torch.float32, generator=gen)
    gate = torch.randn(4, 5, dtype=torch.float64, generator=gen)
    y = ours(case, a, gate)                                # mixed dtypes: PyTorch promotes
    expected = expression(case, a, gate)
    assert y.dtype == expected.dtype == torch.float64
    # glu: a * sigmoid(gate) or F.glu of the concatenation, a rounding apart
    exact = dict(rtol=1e-15, atol=0) if case[0] == "glu" else dict(rtol=0, atol=0)
    torch.testing.assert_close(y, expected, **exact)
    meta = torch.empty(4, 10, device="meta")
    y = ours(case, meta, -1)
    assert y.device.type == "meta" and y.shape == (4, 5)
    x = torch.randn(3, 8, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(torch.func.vmap(lambda t: ours(case, t, -1))(x),
                               expression_split(case, x, -1), rtol=0, atol=0)
    g = torch.func.grad(lambda t: ours(case, t, -1).sum())(x)
    ge = torch.func.grad(lambda t: expression_split(case, t, -1).sum())(x)
    torch.testing.assert_close(g, ge, rtol=0, atol=0)


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_odd_size_along_dim_raises(case, dtype, size):
    """docs/gated.md: the size along dim must be even, else an error (ValueError from
    fastact's kernels; PyTorch's own error where PyTorch computes)."""
    x = torch.randn(4, size).to(dtype)
    errors = (ValueError,) if dtype in TORCH_DTYPES else (ValueError, RuntimeError)
    with pytest.raises(errors):
        ours(case, x, 1)
    with pytest.raises(errors):
        getattr(ft, MODULES[case[0]])(1, *case[1].values())(x)
    if dtype in TORCH_DTYPES:
        with pytest.raises(ValueError, match="even"):
            ours(case, x.t(), 0)


@pytest.mark.parametrize("dim", [2, 5, -3, 1.0, True, "1"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_dim_raises_as_f_glu(case, dim):
    """A dim out of range (IndexError) or not an integer (TypeError) raises what F.glu
    raises, with its message (the function's name in place of glu's), from the
    functions and the modules, on CPU float32 tensors (fastact's path) and float16."""
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(4, 6).to(dtype)
        with pytest.raises(Exception) as want:
            F.glu(x, dim)
        message = str(want.value).replace("glu()", f"{case[0]}()")
        for call in (lambda: ours(case, x, dim),
                     lambda: getattr(ft, MODULES[case[0]])(dim, *case[1].values())(x)):
            with pytest.raises(type(want.value)) as got:
                call()
            assert str(got.value) == message, (dim, dtype)


@pytest.mark.parametrize("dtype", TORCH_DTYPES + (torch.float16, torch.bfloat16), ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_results_are_resizable_in_torchs_layout(case, dtype):
    """The gated units' results and gradients, both forms, are tensors PyTorch can
    resize, as F.glu's (results shared with NumPy memory were not: resize_ and out= of a
    larger result failed), in the layout of PyTorch's own (F order for an F-contiguous
    input). Their values are tested above."""
    for x in (torch.randn(4, 6).to(dtype), torch.randn(6, 4).to(dtype).t()):
        xa = x.clone().requires_grad_()
        y = ours(case, xa, 1)
        assert y.stride() == expression_split(case, x, 1).stride()
        y.backward(torch.ones_like(y))
        a, b = (h.contiguous().requires_grad_() for h in x.chunk(2, 1))
        y2 = ours(case, a, b)
        y2.backward(torch.ones_like(y2))
        for t in (y.detach(), xa.grad, y2.detach(), a.grad, b.grad):
            t.resize_(t.numel() + 5)
            assert t.numel() == t.untyped_storage().nbytes() // t.element_size()


def test_two_tensors_of_different_shapes_raise():
    """Two tensors: the same shape, no broadcasting (as everywhere in fastact)."""
    with pytest.raises(ValueError):
        ft.swiglu(torch.randn(3, 4), torch.randn(3, 5))


def test_invalid_approximate_raises():
    with pytest.raises(ValueError):
        ft.GeGLU(approximate="fast")
    with pytest.raises(ValueError):
        ft.geglu(torch.randn(4, 6), -1, "fast")


# ---------------------------------------------------------------------------------------
# gated units: modules

class _Expression(torch.nn.Module):
    """PyTorch's expression of a gated unit as a module (the reference model)."""

    def __init__(self, case, dim=-1):
        super().__init__()
        self.case, self.dim = case, dim

    def forward(self, x):
        return expression_split(self.case, x, self.dim)


def _module(case, dim=-1):
    return getattr(ft, MODULES[case[0]])(dim, **case[1])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_glu_module_is_torch_nn_glu(dim):
    ours_m, theirs = ft.GLU(dim), torch.nn.GLU(dim)
    assert repr(ours_m) == repr(theirs) and ours_m.dim == dim
    assert repr(ft.GLU()) == repr(torch.nn.GLU())
    x = make("channels_last", torch.float64).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y, yr = ours_m(x), theirs(xr)
    torch.testing.assert_close(y, yr, rtol=1e-13, atol=1e-14)
    g = torch.randn(y.shape, dtype=torch.float64)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-13, atol=1e-14)
    assert list(ours_m.parameters()) == [] and ours_m.state_dict() == {}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_module_forward_one_and_two_tensors(case):
    x = make("transposed", torch.float64)
    for dim in (0, 1, -1):
        m = _module(case, dim)
        assert m.dim == dim
        torch.testing.assert_close(m(x), expression_split(case, x, dim), rtol=1e-13, atol=1e-14)
    a, gate = make("contiguous", torch.float64, 1), make("fortran", torch.float64, 2)
    m = _module(case, 2)                       # the dim does not matter with two tensors
    torch.testing.assert_close(m(a, gate), expression(case, a, gate), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(m.forward(a, gate), expression(case, a, gate),
                               rtol=1e-13, atol=1e-14)
    assert list(m.parameters()) == [] and m.state_dict() == {}
    assert isinstance(m, torch.nn.Module)


def test_module_reprs():
    assert repr(ft.SwiGLU()) == "SwiGLU(dim=-1)"
    assert repr(ft.ReGLU(1)) == "ReGLU(dim=1)"
    assert repr(ft.GeGLU(approximate="tanh")) == "GeGLU(dim=-1, approximate='tanh')"
    assert repr(ft.GeGLU(0)) == "GeGLU(dim=0, approximate='none')"
    assert ft.GeGLU(approximate="tanh").approximate == "tanh"
    m = ft.GeGLU()                         # assignment validated as the constructor does
    with pytest.raises(ValueError, match="approximate"):
        m.approximate = "bogus"
    assert m.approximate == "none"
    m.approximate = "tanh"
    x = torch.randn(3, 4, dtype=torch.float64)
    assert repr(m) == "GeGLU(dim=-1, approximate='tanh')"
    torch.testing.assert_close(m(x), ft.geglu(x, approximate="tanh"), rtol=0, atol=0)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 4), ft.SwiGLU())
    assert "SwiGLU(dim=-1)" in repr(seq)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_step_matches_the_pytorch_expression_model(case, dtype):
    """Linear -> gated unit -> Linear: the loss, every parameter's gradient and the
    parameters after an SGD step are those of the same model with PyTorch's expression
    (or torch.nn.GLU)."""
    models = []
    for use_fastact in (False, True):
        torch.manual_seed(0)
        if use_fastact:
            act = _module(case)
        else:
            act = torch.nn.GLU() if case[0] == "glu" else _Expression(case)
        models.append(torch.nn.Sequential(torch.nn.Linear(8, 32), act, torch.nn.Linear(16, 8),
                                          torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype))
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(p, q)                               # the same weights
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(64, 8, dtype=dtype, generator=gen)
    target = torch.randn(64, 1, dtype=dtype, generator=gen)
    losses = []
    for model in models:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        opt.zero_grad()
        loss = F.mse_loss(model(data), target)
        loss.backward()
        losses.append(loss.detach())
        opt.step()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(losses[1], losses[0], **tol)
    for (pname, p), q in zip(models[0].named_parameters(), models[1].parameters()):
        assert q.grad is not None and q.grad.abs().sum() > 0, pname
        torch.testing.assert_close(q.grad, p.grad, **tol, msg=lambda m, n=pname: f"{n}: {m}")
        torch.testing.assert_close(q, p, **tol, msg=lambda m, n=pname: f"{n}: {m}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_modules_pickle_deepcopy_and_save(case, tmp_path):
    module = _module(case, 1)
    x = make("contiguous", torch.float64)
    a, gate = x.chunk(2, 1)
    expected, expected2 = module(x), module(a, gate)
    for other in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert type(other) is type(module) and repr(other) == repr(module)
        assert other.dim == 1
        assert torch.equal(other(x), expected) and torch.equal(other(a, gate), expected2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 12), _module(case)).to(torch.float64)
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    data = torch.randn(2, 3, dtype=torch.float64)
    assert torch.equal(loaded(data), model(data))
    assert loaded.state_dict().keys() == model.state_dict().keys()


# ---------------------------------------------------------------------------------------
# prelu

def test_prelu_module_is_torch_nn_prelu():
    assert issubclass(ft.PReLU, torch.nn.PReLU)
    for kwargs in ({}, {"num_parameters": 3}, {"num_parameters": 5, "init": -0.1},
                   {"init": 0.75}):
        ours_m, theirs = ft.PReLU(**kwargs), torch.nn.PReLU(**kwargs)
        assert isinstance(ours_m.weight, torch.nn.Parameter) and ours_m.weight.requires_grad
        assert ours_m.weight.shape == theirs.weight.shape
        assert ours_m.weight.dtype == theirs.weight.dtype
        assert torch.equal(ours_m.weight, theirs.weight)
        assert repr(ours_m) == repr(theirs)
        assert ours_m.state_dict().keys() == theirs.state_dict().keys()
        assert [n for n, _ in ours_m.named_parameters()] == ["weight"]
    positional = ft.PReLU(4, 0.3)
    assert positional.weight.shape == (4,) and torch.equal(positional.weight,
                                                           torch.nn.PReLU(4, 0.3).weight)


def _prelu_pair(num_parameters, dtype, weight):
    ours_m = ft.PReLU(num_parameters).to(dtype)
    theirs = torch.nn.PReLU(num_parameters).to(dtype)
    with torch.no_grad():
        ours_m.weight.copy_(weight)
        theirs.weight.copy_(weight)
    return ours_m, theirs


@pytest.mark.parametrize("shape, num_parameters, layout", [
    ((50,), 1, "contiguous"), ((6, 5), 1, "contiguous"), ((6, 5), 5, "contiguous"),
    ((3, 4, 7), 4, "contiguous"), ((2, 3, 4, 5), 3, "contiguous"),
    ((2, 3, 4, 5), 3, "channels_last"), ((2, 3, 4, 5), 1, "channels_last"),
    ((2, 3, 4, 5), 3, "transposed")])
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
def test_prelu_values_and_gradients_match_torch(shape, num_parameters, layout, dtype):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    x.view(-1)[:3] = torch.tensor([0.0, -0.0, -1e-3], dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(0, 3).contiguous().transpose(0, 3)
        assert not x.is_contiguous()
    x = x.to(dtype)
    weight = torch.linspace(-0.5, 0.7, num_parameters, dtype=torch.float64)
    ours_m, theirs = _prelu_pair(num_parameters, dtype, weight)
    g = torch.randn(shape, generator=gen, dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, yr = ours_m(xa), theirs(xb)
    assert y.shape == yr.shape and y.dtype == dtype
    torch.testing.assert_close(y, yr, rtol=0, atol=0)           # one rounding each: exact
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
    assert ours_m.weight.grad.shape == ours_m.weight.shape
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(ours_m.weight.grad, theirs.weight.grad, **tol)
    # grad_weight summed exactly in float64 (fastact: a float64 sum, so close to it)
    x64, g64 = x.double(), g.double()
    contrib = torch.where(x64 > 0, 0.0, g64 * x64)
    if num_parameters == 1:
        exact = contrib.sum().reshape(1)
    else:
        exact = contrib.transpose(0, 1).reshape(num_parameters, -1).sum(1)
    tight = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(ours_m.weight.grad.double(), exact, **tight)
    # the function form, and a weight that does not require grad
    torch.testing.assert_close(ft.prelu(x, weight.to(dtype)), F.prelu(x, weight.to(dtype)),
                               rtol=0, atol=0)
    with torch.no_grad():                       # the module's weight, grad mode off
        u = ours_m(x)
    assert not u.requires_grad and torch.equal(u, y.detach())


def test_prelu_gradcheck_and_gradgradcheck():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    x = torch.where(x < 0, x - 0.1, x + 0.1).requires_grad_()
    for w in (torch.tensor([0.3], dtype=torch.float64),
              torch.tensor([0.3, -0.2, 1.5, 0.0], dtype=torch.float64)):
        w = w.requires_grad_()
        assert torch.autograd.gradcheck(ft.prelu, (x, w), check_forward_ad=True)
        assert torch.autograd.gradgradcheck(ft.prelu, (x, w))
    m = ft.PReLU(4).double()
    assert torch.autograd.gradcheck(lambda t: m(t), (x,))


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
def test_prelu_optimizer_step_matches_torch(dtype):
    models = []
    for cls in (torch.nn.PReLU, ft.PReLU):
        torch.manual_seed(0)
        models.append(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), cls(4, init=0.2),
                                          torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 1)
                                          ).to(dtype))
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(8, 3, 8, 8, generator=gen, dtype=dtype)
    target = torch.randn(8, 1, generator=gen, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)
    for model in models:
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(model(data), target).backward()
            opt.step()
    w_torch, w_ours = models[0][1].weight, models[1][1].weight
    assert not torch.allclose(w_ours, torch.full_like(w_ours, 0.2))     # it was trained
    torch.testing.assert_close(w_ours, w_torch, **tol)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(q, p, **tol)


def test_prelu_weight_gradient_same_bits_for_any_thread_count():
    """docs/gated.md: the weight's gradient is summed in a fixed order of fixed blocks."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 4, 128, 160, generator=gen, dtype=torch.float32)
    g = torch.randn(x.shape, generator=gen, dtype=torch.float32)
    results = []
    for n in (1, 2, 1):
        w = torch.tensor([0.25, -0.1, 0.3, 0.05], requires_grad=True)
        xr = x.clone().requires_grad_()
        with fastact.threads(n):
            ft.prelu(xr, w).backward(g)
        results.append((w.grad.clone(), xr.grad.clone()))
    for w_grad, x_grad in results[1:]:
        assert torch.equal(w_grad, results[0][0])
        assert torch.equal(x_grad, results[0][1])
    exact = torch.where(x.double() > 0, 0.0, g.double() * x.double()).transpose(0, 1) \
        .reshape(4, -1).sum(1)
    torch.testing.assert_close(results[0][0].double(), exact, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=tid)
def test_prelu_half_precision_computed_by_fastact(dtype):
    """16-bit tensors (bfloat16 with ml_dtypes installed) are computed by fastact's
    kernels: fastact.prelu's values and gradients on the same data, bit for bit; PyTorch's
    values (prelu's products round once in both)."""
    x = torch.randn(2, 3, 4).to(dtype).requires_grad_()
    w = torch.tensor([0.1, 0.2, 0.3]).to(dtype).requires_grad_()
    y = ft.prelu(x, w)
    assert type(y.grad_fn).__name__ == "_PReLUFunctionBackward"
    xn, wn = _half_numpy(x), _half_numpy(w)
    assert _equal_bits(y, fastact.prelu(xn, wn)) and torch.equal(y, F.prelu(x, w))
    g = torch.randn(2, 3, 4).to(dtype)
    y.backward(g)
    gx, gw = fastact.prelu_backward(_half_numpy(g), xn, wn)
    assert _equal_bits(x.grad, gx) and _equal_bits(w.grad, gw)
    m = ft.PReLU(3).to(dtype)
    ym = m(x)
    assert ym.dtype == dtype and type(ym.grad_fn).__name__ == "_PReLUFunctionBackward"
    assert _equal_bits(ym, fastact.prelu(xn, _half_numpy(m.weight)))
    assert torch.equal(ym, F.prelu(x, m.weight))


def test_prelu_module_pickle_and_deepcopy():
    m = ft.PReLU(3, init=0.4)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.randn(2, 3, 5)
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert type(other) is ft.PReLU and torch.equal(other.weight, m.weight)
        assert isinstance(other.weight, torch.nn.Parameter)
        assert torch.equal(other(x), m(x))
    fresh = ft.PReLU(3)
    fresh.load_state_dict(torch.nn.PReLU(3, init=0.4).state_dict())
    assert torch.equal(fresh.weight, torch.full((3,), 0.4))


@pytest.mark.parametrize("dtype", TORCH_DTYPES + (torch.float16, torch.bfloat16), ids=tid)
def test_prelu_and_rrelu_results_are_resizable_in_torchs_layout(dtype):
    """prelu's and rrelu's results and gradients (x's and the weight's; the training
    slopes), functions and modules, are tensors PyTorch can resize, as F.prelu's (NumPy
    memory shared through torch.from_numpy was not), in the layout of PyTorch's own."""
    for x in (torch.randn(4, 6).to(dtype), torch.randn(6, 4).to(dtype).t(),
              torch.randn(2, 3, 5).to(dtype).transpose(0, 2)):
        channels = x.shape[1]
        w = torch.rand(channels, dtype=dtype).requires_grad_()
        module = ft.PReLU(channels, dtype=dtype)
        for call, ref in ((lambda t: ft.prelu(t, w), lambda t: F.prelu(t, w)),
                          (module, lambda t: F.prelu(t, module.weight)),
                          (lambda t: ft.rrelu(t, training=True), None),
                          (ft.RReLU().train(), None)):
            xa = x.clone().requires_grad_()
            y = call(xa)
            if ref is not None:
                want = ref(x)
                assert torch.equal(y, want) and y.stride() == want.stride()
            y.backward(torch.ones_like(y))
            tensors = [y.detach(), xa.grad]
            for weight in (w, module.weight):
                if weight.grad is not None:
                    tensors.append(weight.grad)
                    weight.grad = None
            for t in tensors:
                t.resize_(t.numel() + 5)
                assert t.numel() == t.untyped_storage().nbytes() // t.element_size()


# ---------------------------------------------------------------------------------------
# rrelu

def _rrelu_input(dtype, n=4000, seed=0):
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[:4] = torch.tensor([0.0, -0.0, -5.0, 5.0], dtype=torch.float64)
    return (x * 3).to(dtype).reshape(40, -1)


@pytest.mark.parametrize("bounds", [(1 / 8, 1 / 3), (0.1, 0.3), (-0.5, -0.1), (0.2, 0.2)])
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
def test_rrelu_evaluation_is_torch(dtype, bounds):
    lower, upper = bounds
    x = _rrelu_input(dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = ft.rrelu(xa, lower, upper, training=False)
    yr = F.rrelu(xb, lower, upper, training=False)
    torch.testing.assert_close(y, yr, rtol=0, atol=0)
    g = torch.randn(x.shape, dtype=dtype)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
    ours_m, theirs = ft.RReLU(lower, upper).eval(), torch.nn.RReLU(lower, upper).eval()
    torch.testing.assert_close(ours_m(x), theirs(x), rtol=0, atol=0)
    torch.testing.assert_close(ft.rrelu(x), F.rrelu(x), rtol=0, atol=0)   # the defaults
    tl, tu = torch.tensor(lower), torch.tensor(upper)                     # 0-d tensors
    torch.testing.assert_close(ft.rrelu(x, tl, tu), F.rrelu(x, tl, tu), rtol=0, atol=0)


def test_rrelu_infinite_bounds_refused_and_huge_ones_averaged():
    """ft.rrelu and ft.RReLU refuse infinite bounds (PyTorch's slopes would be NaN or
    infinite), RReLU when it is made; the evaluation slope of bounds whose sum overflows
    is their mean, not inf as PyTorch's (lower + upper) / 2."""
    x = torch.tensor([-1.0, -0.5, 2.0], dtype=torch.float64)
    for lower, upper in ((-math.inf, math.inf), (0.1, math.inf)):
        for call in (lambda: ft.rrelu(x, lower, upper), lambda: ft.RReLU(lower, upper),
                     lambda: ft.rrelu(x, lower, upper, training=True)):
            with pytest.raises(ValueError, match="finite"):
                call()
    lower, upper = 1e308, 1.7e308
    mid = 1.35e308
    torch.testing.assert_close(ft.rrelu(x, lower, upper), F.leaky_relu(x, mid), rtol=0, atol=0)
    torch.testing.assert_close(ft.RReLU(lower, upper).eval()(x), F.leaky_relu(x, mid),
                               rtol=0, atol=0)


def test_rrelu_crossed_bounds_raise_torchs_error():
    """lower > upper raises what F.rrelu and nn.RReLU raise (RuntimeError), which is also
    fastact's ValueError, in every form: the function in and out of training, numbers,
    ints and 0-d tensors, the module when it is made (PyTorch's when it is called)."""
    x = torch.randn(6, dtype=torch.float64)
    for lower, upper in ((0.5, 0.1), (1, 0), (torch.tensor(0.3), 0.2), (-0.1, -0.2)):
        with pytest.raises(RuntimeError):
            F.rrelu(x, float(lower), float(upper), training=True)
        with pytest.raises(RuntimeError):
            torch.nn.RReLU(float(lower), float(upper))(x)
        for call in (lambda: ft.rrelu(x, lower, upper), lambda: ft.RReLU(lower, upper),
                     lambda: ft.rrelu(x, lower, upper, training=True)):
            with pytest.raises(RuntimeError, match="lower") as info:
                call()
            assert isinstance(info.value, ValueError)


def test_rrelu_evaluation_gradcheck():
    x = torch.randn(4, 5, dtype=torch.float64)
    x = torch.where(x < 0, x - 0.1, x + 0.1).requires_grad_()
    fn = lambda t: ft.rrelu(t, 0.1, 0.3, False)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("bounds", [(1 / 8, 1 / 3), (0.1, 0.3), (-0.5, -0.1)])
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=tid)
def test_rrelu_training_slopes_and_gradient(dtype, bounds):
    lower, upper = bounds
    x = _rrelu_input(dtype).requires_grad_()
    torch.manual_seed(3)
    y = ft.rrelu(x, lower, upper, training=True)
    assert y.shape == x.shape and y.dtype == dtype and y.requires_grad
    y.backward(torch.ones_like(y))
    noise = x.grad
    xd = x.detach()
    positive = xd > 0
    assert torch.all(noise[positive] == 1)
    slopes = noise[~positive]
    assert slopes.numel() > 1000 and (~positive)[0, 0] and (~positive)[0, 1]   # 0 and -0
    lo, up = torch.tensor(lower, dtype=dtype), torch.tensor(upper, dtype=dtype)
    assert torch.all((slopes >= lo) & (slopes <= up))
    assert slopes.unique().numel() > slopes.numel() // 2           # one slope per element
    # uniform in [lower, upper]: the mean within 5 standard errors (~1e-6 failure odds)
    std_err = (upper - lower) / np.sqrt(12 * slopes.numel())
    assert abs(float(slopes.double().mean()) - (lower + upper) / 2) < 5 * std_err
    # y = x * slope exactly (one rounding, as PyTorch's x * noise)
    assert torch.equal(y.detach(), xd * noise)
    # the backward uses the saved slopes: grad = grad_output * noise
    x2 = x.detach().clone().requires_grad_()
    torch.manual_seed(3)
    y2 = ft.rrelu(x2, lower, upper, training=True)
    assert torch.equal(y2, y)
    g = torch.randn(x.shape, dtype=dtype)
    y2.backward(g)
    assert torch.equal(x2.grad, g * noise)
    # forward-mode AD: the tangent times the same slopes
    import torch.autograd.forward_ad as fwAD
    torch.manual_seed(3)
    with fwAD.dual_level():
        out = ft.rrelu(fwAD.make_dual(xd, g), lower, upper, training=True)
        primal, tangent = fwAD.unpack_dual(out)
    assert torch.equal(primal, y.detach()) and torch.equal(tangent, g * noise)


def test_rrelu_equal_bounds_in_training_is_leaky_relu():
    for dtype in TORCH_DTYPES:
        x = _rrelu_input(dtype).requires_grad_()
        y = ft.rrelu(x, 0.2, 0.2, training=True)
        assert torch.equal(y, F.leaky_relu(x.detach(), 0.2))
        y.sum().backward()
        slope = torch.full_like(x.grad, 0.2)
        assert torch.equal(x.grad, torch.where(x.detach() > 0, torch.ones_like(slope), slope))


def test_rrelu_seeds_reproduce_and_differ():
    x = _rrelu_input(torch.float32)
    torch.manual_seed(11)
    first = ft.rrelu(x, training=True)
    second = ft.rrelu(x, training=True)                 # the generator advanced
    torch.manual_seed(11)
    again = ft.rrelu(x, training=True)
    torch.manual_seed(12)
    other = ft.rrelu(x, training=True)
    negative = x <= 0
    assert torch.equal(first, again)
    assert not torch.equal(first[negative], second[negative])
    assert not torch.equal(first[negative], other[negative])
    assert torch.equal(first[~negative], x[~negative])


def test_rrelu_module_train_and_eval():
    assert issubclass(ft.RReLU, torch.nn.RReLU)
    m, theirs = ft.RReLU(0.1, 0.4), torch.nn.RReLU(0.1, 0.4)
    assert repr(m) == repr(theirs) and repr(ft.RReLU()) == repr(torch.nn.RReLU())
    assert m.training and m.lower == 0.1 and m.upper == 0.4
    x = _rrelu_input(torch.float64)
    negative = x <= 0
    torch.manual_seed(0)
    a = m(x)
    torch.manual_seed(0)
    b = m(x)
    c = m(x)
    assert torch.equal(a, b) and not torch.equal(a[negative], c[negative])
    slope = a[negative & (x != 0)] / x[negative & (x != 0)]
    assert torch.all((slope >= 0.1 - 1e-15) & (slope <= 0.4 + 1e-15))
    assert slope.std() > 0.05                                 # random, not the mean
    m.eval()
    theirs.eval()
    assert torch.equal(m(x), theirs(x)) and torch.equal(m(x), F.leaky_relu(x, 0.25))
    m.train()
    torch.manual_seed(0)
    assert torch.equal(m(x), a)
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert type(other) is ft.RReLU and repr(other) == repr(m)
        torch.manual_seed(0)
        assert torch.equal(other(x), a)


def test_rrelu_training_module_backward_in_a_model():
    """Inside a model: the input's gradient is grad_output times the slopes of the
    forward (recovered as y / x from the same torch seed)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), ft.RReLU(), torch.nn.Linear(7, 1)
                                ).double()
    data = torch.randn(30, 5, dtype=torch.float64)
    hidden = model[0](data).detach().requires_grad_()
    torch.manual_seed(5)
    out = model[2](model[1](hidden))
    out.sum().backward()
    torch.manual_seed(5)
    y = model[1](hidden.detach())
    ratio = torch.where(hidden.detach() != 0, y / hidden.detach(), torch.ones_like(y))
    w2 = model[2].weight.detach()
    torch.testing.assert_close(hidden.grad, ratio * w2.expand_as(ratio), rtol=1e-13, atol=1e-15)


class _Subclass(torch.Tensor):
    pass


def test_rrelu_fallbacks_are_torch():
    # a tensor subclass: PyTorch's kernel, its random slopes
    x = torch.randn(300).as_subclass(_Subclass)
    torch.manual_seed(4)
    ours_y = ft.rrelu(x, 0.1, 0.3, training=True)
    torch.manual_seed(4)
    assert torch.equal(ours_y, F.rrelu(x, 0.1, 0.3, training=True))
    # bfloat16: fastact's with ml_dtypes installed (the slopes of fastact's generator),
    # else PyTorch's
    xb = torch.randn(300).to(torch.bfloat16).requires_grad_()
    torch.manual_seed(4)
    yb = ft.rrelu(xb, 0.1, 0.3, training=True)
    assert yb.dtype == torch.bfloat16
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        torch.manual_seed(4)
        assert torch.equal(yb, F.rrelu(xb, 0.1, 0.3, training=True))
    else:
        assert type(yb.grad_fn).__name__ == "_RReLUFunctionBackward"
    y = torch.randn(50, dtype=torch.float64)
    expected = F.rrelu(y.clone(), training=False)
    z = y.clone()
    out = ft.rrelu(z, training=False, inplace=True)
    assert out.data_ptr() == z.data_ptr() and torch.equal(z, expected)
    with pytest.raises(ValueError):
        ft.rrelu(y, 0.5, 0.1, training=True)                # lower > upper, as PyTorch
    with pytest.raises(ValueError):
        ft.rrelu(y, 0.5, 0.1)


# ---------------------------------------------------------------------------------------
# dask

da = None


@pytest.fixture(scope="module")
def dask_array():
    global da
    da = pytest.importorskip("dask.array")
    return da


SUFFIXES = ("", "_grad", "_backward", "_forward_backward")


def _np_data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def _entries_split(case, x, g, dim):
    name, params = case
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    return {"forward": f("")(x, dim, **params), "grad": f("_grad")(x, dim, **params),
            "backward": f("_backward")(g, x, dim, **params),
            "forward_backward": f("_forward_backward")(x, dim, **params),
            "forward_backward_g": f("_forward_backward")(x, dim, **params, grad_output=g)}


def _entries_pair(case, a, gate, g):
    name, params = case
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    return {"forward": f("")(a, gate, **params), "grad": f("_grad")(a, gate, **params),
            "backward": f("_backward")(g, a, gate, **params),
            "forward_backward": f("_forward_backward")(a, gate, **params),
            "forward_backward_g": f("_forward_backward")(a, gate, **params, grad_output=g)}


def _assert_lazy_equal(lazy, eager, chunks_of=None):
    """Every lazy result is a dask array (of the NumPy result's shape, dtype and, with
    chunks_of, chunks) whose computed value is the NumPy result bit for bit."""
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
            if chunks_of is not None:
                want_chunks = chunks_of(w.shape)
                assert lz.chunks == want_chunks, (entry, i, lz.chunks, want_chunks)
            checks.append(((entry, i), lz, w))
    computed = da.compute(*[lz for _, lz, _ in checks], scheduler="threads")
    for (what, _, w), value in zip(checks, computed):
        assert np.array_equal(value, w, equal_nan=True), what


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dask_one_array_form_equals_numpy(dask_array, case, dim, dtype, backend):
    shape = (20, 12, 10)
    x = _np_data(dtype, shape, 0)
    d = dim % 3
    chunks = tuple(-1 if i == d else (7, 5, 4)[i] for i in range(3))
    dx = da.from_array(x, chunks=chunks)
    assert len(dx.chunks[d]) == 1 and all(len(c) > 1 for i, c in enumerate(dx.chunks) if i != d)
    yshape = tuple(n // 2 if i == d else n for i, n in enumerate(shape))
    g = _np_data(dtype, yshape, 1)
    dg = da.from_array(g, chunks=tuple(-1 if i == d else 6 for i in range(3)))   # other chunks
    eager = _entries_split(case, x, g, dim)
    lazy = _entries_split(case, dx, dg, dim)

    def chunks_of(s):
        return tuple((s[i],) if i == d else dx.chunks[i] for i in range(3))
    _assert_lazy_equal(lazy, eager, chunks_of)
    # a NumPy grad_output with a dask x
    mixed = getattr(fastact, case[0] + "_backward")(g, dx, dim, **case[1])
    assert isinstance(mixed, da.Array)
    assert np.array_equal(mixed.compute(), eager["backward"], equal_nan=True)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dask_two_array_form_equals_numpy(dask_array, case, dtype, backend):
    shape = (30, 14)
    a, gate, g = (_np_data(dtype, shape, s) for s in (2, 3, 4))
    da_a = da.from_array(a, chunks=(10, 7))
    da_gate = da.from_array(gate, chunks=(8, 14))                  # other chunks: unified
    da_g = da.from_array(g, chunks=(15, 5))
    eager = _entries_pair(case, a, gate, g)
    _assert_lazy_equal(_entries_pair(case, da_a, da_gate, da_g), eager)
    # NumPy arrays mixed with dask arrays are chunked like them
    _assert_lazy_equal(_entries_pair(case, da_a, gate, g), eager,
                       chunks_of=lambda s: da_a.chunks)


def test_dask_is_lazy(dask_array):
    calls = []

    def spy(block):
        calls.append(block.shape)
        return block
    dx = da.ones((40, 6), chunks=(10, 6)).map_blocks(spy, dtype=np.float64)
    calls.clear()
    results = [fastact.swiglu(dx), fastact.glu_forward_backward(dx),
               fastact.reglu_grad(dx, dx), fastact.geglu_backward(dx[:, :3], dx)]
    assert calls == []
    assert results[0].numblocks == (4, 1)
    results[0].compute()
    assert len(calls) >= 4
    assert results[0].name.startswith("fastact-")
    assert fastact.swiglu(dx).name != fastact.swiglu(dx + 1).name


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dask_gated_dim_in_several_chunks_raises(dask_array, case):
    x = _np_data(np.float64, (12, 10), 5)
    dx = da.from_array(x, chunks=(6, 4))
    name, params = case
    for suffix in SUFFIXES:
        args = (da.ones((12, 5), chunks=(6, 5)), dx) if suffix == "_backward" else (dx,)
        with pytest.raises(ValueError, match="rechunk"):
            getattr(fastact, name + suffix)(*args, -1, **params)
    with pytest.raises(ValueError, match="rechunk"):                 # along dim 0
        getattr(fastact, name)(da.from_array(x, chunks=(5, 10)), 0, **params)
    # after the rechunk it suggests: the NumPy result
    y = getattr(fastact, name)(dx.rechunk({1: -1}), -1, **params)
    assert np.array_equal(y.compute(), getattr(fastact, name)(x, -1, **params))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dask_with_out_raises_type_error(dask_array, case):
    """docs/dask.md: out= is refused (TypeError) since the result is lazy; docs/gated.md:
    the gated units follow that rule (out= of every fastact function)."""
    name, params = case
    x = _np_data(np.float64, (12, 10), 6)
    dx = da.from_array(x, chunks=(4, 10))
    a, gate = dx[:, :5], dx[:, 5:]
    f = lambda s: getattr(fastact, name + s)  # noqa: E731
    calls = [
        lambda: f("")(dx, -1, **params, out=np.empty((12, 5))),
        lambda: f("_grad")(dx, -1, **params, out=np.empty((12, 10))),
        lambda: f("_backward")(a, dx, -1, **params, out=np.empty((12, 10))),
        lambda: f("_forward_backward")(dx, -1, **params, out=np.empty((12, 5))),
        lambda: f("_forward_backward")(dx, -1, **params, grad_out=np.empty((12, 10))),
        lambda: f("")(a, gate, **params, out=np.empty((12, 5))),
        lambda: f("_grad")(a, gate, **params, out=(np.empty((12, 5)), np.empty((12, 5)))),
        lambda: f("_forward_backward")(a, gate, **params, out=np.empty((12, 5))),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(TypeError, match="out"):
            call()
            pytest.fail(f"call {i}: no error")


def test_dask_prelu_and_training_rrelu_raise_type_error(dask_array):
    x = _np_data(np.float64, (6, 3, 4), 7)
    dx = da.from_array(x, chunks=(2, 3, 4))
    w = np.array([0.1, 0.2, 0.3])
    for call in (lambda: fastact.prelu(dx, w), lambda: fastact.prelu_grad(dx, w),
                 lambda: fastact.prelu_backward(dx, dx, w),
                 lambda: fastact.prelu_backward(x, dx, w),
                 lambda: fastact.prelu_backward(dx, x, w),
                 lambda: fastact.prelu_forward_backward(dx, w),
                 lambda: fastact.prelu(x, da.from_array(w)),
                 lambda: fastact.PReLU(w)(dx),
                 lambda: fastact.rrelu(dx, training=True, seed=0),
                 lambda: fastact.rrelu_grad(dx, training=True, seed=0),
                 lambda: fastact.rrelu_backward(dx, dx, 0.1, 0.3, True, seed=0),
                 lambda: fastact.rrelu_forward_backward(dx, training=True, seed=0),
                 lambda: fastact.RReLU()(dx, training=True, seed=0)):
        with pytest.raises(TypeError, match="dask"):
            call()
