"""fastact.torch: autograd functions and nn.Modules inside PyTorch (docs/torch.md).

References: mpmath (values and input gradients within 4 ulp), PyTorch's own
torch.nn.functional (models, fallbacks, reprs), torch.autograd.gradcheck/gradgradcheck.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastact  # noqa: E402
import fastact.torch as ft  # noqa: E402
from fastact._activations import ACTIVATIONS_BY_NAME  # noqa: E402
import reference  # noqa: E402
import cases  # noqa: E402
from cases import CASES, case_id, crossing, kinks  # noqa: E402
from helpers import torch_function  # noqa: E402

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}


def _points(name, params, dtype, n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(n) * 4, rng.uniform(-30, 30, 40), kinks(name, params),
                        [-0.0, 1e-6, -1e-6, 50.0, -50.0]])
    return x.astype(dtype)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_values_and_gradients_within_4_ulp(case, dtype, backend):
    name, params = case
    x = _points(name, params, dtype)
    t = torch.tensor(x, requires_grad=True)
    y = getattr(ft, name)(t, **params)
    y.backward(torch.ones_like(y))
    assert y.dtype == t.dtype and t.grad.dtype == t.dtype
    y_hi, y_lo, d_hi, d_lo = reference.reference(name, x, params, dtype)
    err_y = reference.ulp_error(y.detach().numpy(), y_hi, y_lo, dtype)
    err_d = reference.ulp_error(t.grad.numpy(), d_hi, d_lo, dtype, x=x,
                                crossing=crossing(name, params))
    assert err_y.max() <= 4, f"forward: {err_y.max():.2f} ulp at x={x[err_y.argmax()]!r}"
    assert err_d.max() <= 4, f"grad: {err_d.max():.2f} ulp at x={x[err_d.argmax()]!r}"
    # where autograd records nothing (no grad required, or grad mode off), the forward
    # skips the autograd function: the same values, and a result outside any graph
    with torch.no_grad():
        untracked = [getattr(ft, name)(t, **params), getattr(ft, name)(t.detach(), **params)]
    untracked.append(getattr(ft, name)(t.detach(), **params))
    for u in untracked:
        assert not u.requires_grad and u.grad_fn is None and u.dtype == t.dtype
        err_u = reference.ulp_error(u.numpy(), y_hi, y_lo, dtype)
        assert err_u.max() <= 4, f"untracked: {err_u.max():.2f} ulp at {x[err_u.argmax()]!r}"
        np.testing.assert_array_equal(u.numpy(), y.detach().numpy())


def _away_from_kinks(name, params, n=20, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4, 4, n)
    for k in kinks(name, params):                # finite differences must not cross one
        x = np.where(np.abs(x - k) < 1e-3, x + 1e-2, x)
    return torch.tensor(x.reshape(4, 5), dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradcheck_and_gradgradcheck(case):
    name, params = case
    x = _away_from_kinks(name, params)
    fn = lambda t: getattr(ft, name)(t, **params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    xt = _away_from_kinks(name, params, seed=2).detach().t().requires_grad_()  # strided input
    assert torch.autograd.gradcheck(fn, (xt,))


def _class_name(name):
    """fastact.torch's module: torch.nn's class name where PyTorch has the activation."""
    act = ACTIVATIONS_BY_NAME[name]
    return act.torch_module or act.cls_name


class _TorchFunctional(torch.nn.Module):
    """PyTorch's functional form as a module (torch.nn.Hardtanh refuses min_val ==
    max_val, which torch.nn.functional.hardtanh and fastact accept)."""

    def __init__(self, name, params):
        super().__init__()
        self.fn = torch_function(name, params)

    def forward(self, x):
        return self.fn(x)


def _module(name, params, use_fastact):
    if use_fastact:
        return getattr(ft, _class_name(name))(**params)
    return _TorchFunctional(name, params)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_step_matches_torch_modules(case, dtype):
    """A small MLP with fastact's modules gives PyTorch's loss and parameter gradients."""
    name, params = case
    tdtype = TORCH_DTYPES[dtype]
    models = []
    for use_fastact in (False, True):
        torch.manual_seed(0)
        models.append(torch.nn.Sequential(
            torch.nn.Linear(8, 32), _module(name, params, use_fastact), torch.nn.Linear(32, 16),
            _module(name, params, use_fastact), torch.nn.Linear(16, 1)).to(tdtype))
    data = torch.randn(64, 8, dtype=tdtype, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():                 # exponential of exponential: smaller inputs
        if not torch.isfinite(models[0](data).square().sum()):
            data = data / 30
    target = torch.randn(64, 1, dtype=tdtype, generator=torch.Generator().manual_seed(2))
    losses = []
    for model in models:
        loss = F.mse_loss(model(data), target)
        loss.backward()
        losses.append(loss.detach())
    # float64: PyTorch's own hardsigmoid and celu derivatives use float32 constants
    # (hardsigmoid'(0.5) = 0.16666667163), 3e-8 relative; accuracy is tested above
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-6, 1e-9)
    torch.testing.assert_close(losses[1], losses[0], rtol=rtol, atol=atol)
    for (pname, p_torch), p_fast in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(p_fast.grad, p_torch.grad, rtol=rtol, atol=atol,
                                   msg=lambda m, pname=pname: f"{pname}: {m}")


def test_module_reprs_and_parameters_match_torch():
    for name, params in CASES:
        if name == "hardtanh" and params.get("min_val") == params.get("max_val", 1.0):
            continue                                   # torch.nn.Hardtanh refuses it
        cls = _class_name(name)
        ours = getattr(ft, cls)(**params)
        if ACTIVATIONS_BY_NAME[name].torch_module:
            assert repr(ours) == repr(getattr(torch.nn, cls)(**params))
        else:                                          # fastact's own: its parameters
            values = ACTIVATIONS_BY_NAME[name].with_defaults(params)
            assert repr(ours) == f"{cls}({', '.join(f'{k}={v!r}' for k, v in values.items())})"
        assert list(ours.parameters()) == [] and ours.state_dict() == {}
    for cls in ("ReLU", "ELU", "Hardswish", "Threshold"):
        args = (0.5, 1.0) if cls == "Threshold" else ()
        assert repr(getattr(ft, cls)(*args, inplace=True)) == \
            repr(getattr(torch.nn, cls)(*args, inplace=True))
    with pytest.raises(TypeError):
        ft.GELU(inplace=True)                          # as torch.nn.GELU
    with pytest.raises(ValueError, match="approximate"):
        ft.GELU(approximate="fast")
    with pytest.raises(ValueError, match="beta"):
        ft.softplus(torch.ones(3), beta=0)
    with pytest.raises(TypeError):
        ft.Threshold(0.5)                              # value is required, as in torch


def test_saves_y_or_x_for_backward():
    x = torch.randn(1000, requires_grad=True)
    for fn in (ft.relu, ft.exponential):              # PyTorch's backward takes y: keeps y
        y = fn(x)
        saved, = y.grad_fn.saved_tensors
        assert saved.data_ptr() == y.data_ptr()
    for fn in (ft.gelu, ft.sigmoid, ft.tanh, ft.elu,  # needs x (from y: tails lost)
               ft.relu6, ft.leaky_relu, ft.hardtanh, ft.linear):   # as PyTorch: x
        y = fn(x)
        saved, = y.grad_fn.saved_tensors
        assert saved.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("name, args", [("LeakyReLU", (0.2,)), ("LeakyReLU", (-0.5,)),
                                        ("Hardtanh", (-0.5, 0.7)), ("ReLU6", ()),
                                        ("Identity", ()), ("GELU", ()), ("ELU", (0.5,))])
def test_in_place_op_on_the_output_as_pytorch(name, args):
    """An in-place op on the activation's output (nn.Dropout(inplace=True), y += r) leaves
    the backward working wherever PyTorch's module does: the gradients equal PyTorch's."""
    grads = []
    for mod in (getattr(ft, name)(*args), getattr(torch.nn, name)(*args)):
        torch.manual_seed(0)
        x = (torch.randn(64, dtype=torch.float64) * 3).requires_grad_()
        y = mod(x * 1.0)
        y.mul_(2.0).add_(1.0)
        y.pow(2).sum().backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-10), name


def test_tensors_stay_resizable():
    """Computing on a tensor's memory leaves its storage as PyTorch's own functions do:
    x.resize_ and a larger out= still work on the inputs and the elementwise outputs
    (Tensor.numpy() would have marked them not resizable for good)."""
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        x = torch.randn(6, 4, dtype=dtype).t()
        g = torch.randn(4, 6, dtype=dtype)
        y = ft.gelu(x)
        xr = x.clone().requires_grad_()
        ft.sigmoid(xr).backward(g)
        ft.glu(x, 0)
        ft.prelu(x, torch.tensor([0.25], dtype=dtype))
        ft.softmax(x, 1)
        for t in (x, g, y, xr.grad):
            t.resize_(100)
        out = ft.tanh(torch.randn(4, dtype=dtype)).resize_(0)    # reused as out=, grown
        torch.add(torch.ones(50, dtype=dtype), 1, out=out)
        assert out.shape == (50,) and torch.all(out == 2)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_works_on_the_tensors_memory_without_copying(monkeypatch, requires_grad):
    """The kernels get the tensors' memory (the compiled backend its addresses, NumPy's
    views of it): contiguous, transposed and channels-last inputs, with and without
    autograd; the output keeps the input's layout."""
    seen = []
    real_flat = ft._flat
    monkeypatch.setattr(ft, "_flat", lambda t: seen.append(t.data_ptr()) or real_flat(t))
    backend = ft._backend.active
    real_at = backend.launch_at
    if real_at is not None:
        def launch_at(kernel, entry, dt, n, a, b, o1, o2, params):
            seen.extend((a, o1))
            return real_at(kernel, entry, dt, n, a, b, o1, o2, params)
        monkeypatch.setattr(backend, "launch_at", launch_at)
    base = torch.randn(2, 3, 4, 5)
    for x in (base, base.transpose(1, 3), base.to(memory_format=torch.channels_last)):
        x = x.clone(memory_format=torch.preserve_format).requires_grad_(requires_grad)
        seen.clear()
        y = ft.silu(x)
        assert seen == [x.data_ptr(), y.data_ptr()]
        assert y.stride() == x.stride() and y.requires_grad == requires_grad
        torch.testing.assert_close(y, F.silu(x), rtol=2e-6, atol=1e-7)


def test_jit_trace_records_the_modules():
    """torch.jit.trace of a model with fastact's modules (elementwise and gated): the
    traced model gives the eager model's values and gradients (the kernels run inside
    it)."""
    model = torch.nn.Sequential(torch.nn.Linear(5, 14), ft.SwiGLU(), ft.GELU(),
                                torch.nn.Linear(7, 3), ft.Softplus(beta=2.0)).double()
    x = torch.randn(4, 5, dtype=torch.float64)

    def expected_of(t):
        h = model[0](t)
        return F.softplus(model[3](F.gelu(h[:, :7] * F.silu(h[:, 7:]))), beta=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the tracer's notes on Python functions
        traced = torch.jit.trace(model, (x,))
    xt = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    y, yt = model(xt), traced(xt)
    expected = expected_of(xt)
    torch.testing.assert_close(yt, expected, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(y, yt, rtol=0, atol=0)
    g, = torch.autograd.grad(yt.sum(), xt)
    g_ref, = torch.autograd.grad(expected.sum(), xt)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)
    # traced where autograd records nothing (frozen weights, no_grad): the kernels are
    # still in the trace, so another input gets its own values
    model.requires_grad_(False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.trace(model, (x,))
        x2 = torch.randn(3, 5, dtype=torch.float64)
        torch.testing.assert_close(frozen(x2), expected_of(x2), rtol=1e-14, atol=1e-15)


def test_views_with_gaps_and_expanded_gradients():
    base = torch.randn(10, 12, dtype=torch.float64)
    x = base[::2, 1::3].requires_grad_()               # gaps: copied once, still right
    xr = x.detach().clone().requires_grad_()
    y, yr = ft.tanh(x), torch.tanh(xr)
    y.sum().backward()                                 # grad_output expanded (stride 0)
    yr.sum().backward()
    torch.testing.assert_close(y, yr, rtol=1e-15, atol=0)
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-14, atol=0)


def test_inputs_are_not_modified_and_no_grad():
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    y = ft.elu(x, alpha=0.5)
    y.backward(torch.randn(100, dtype=torch.float64))
    assert torch.equal(x.detach(), before)
    with torch.no_grad():
        z = ft.elu(x, 0.5)
    assert z.grad_fn is None and not z.requires_grad
    torch.testing.assert_close(z, F.elu(x.detach(), 0.5), rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16],
                         ids=["float16", "bfloat16"])
def test_half_tensors_are_computed_by_fastact(dtype):
    """float16 tensors, and bfloat16 ones with ml_dtypes installed (docs/torch.md), are
    computed by fastact's kernels: its autograd node, fastact's NumPy results on the same
    16-bit data bit for bit, within a 16-bit rounding of PyTorch's float64 values on them.
    (tests/test_half_integrations.py: every activation, and bfloat16 without ml_dtypes.)"""
    def numpy_of(t):
        t = t.detach()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(pytest.importorskip("ml_dtypes").bfloat16)
        return t.numpy()

    import fastact
    x = (torch.randn(50, generator=torch.Generator().manual_seed(0)) * 3).to(dtype)
    x.requires_grad_()
    eps = torch.finfo(dtype).eps
    for name in ("relu", "hardtanh", "leaky_relu", "gelu"):
        y = getattr(ft, name)(x)
        assert y.dtype == dtype and type(y.grad_fn).__name__.endswith("FunctionBackward")
        yn = getattr(fastact, name)(numpy_of(x))
        assert np.array_equal(numpy_of(y).view(np.uint16), yn.view(np.uint16)), name
        torch.testing.assert_close(y.double(), torch_function(name, {})(x.detach().double()),
                                   rtol=eps, atol=eps)


@pytest.mark.parametrize("make", [
    lambda: torch.randn(50, device="meta"),
    lambda: torch.arange(-5, 5),
], ids=["meta-device", "int64"])
def test_other_tensors_fall_back_to_torch(make):
    x = make()
    for name in ("relu", "hardtanh", "leaky_relu", "gelu"):
        try:
            theirs = torch_function(name, {})(x)
        except (RuntimeError, NotImplementedError) as e:      # e.g. gelu of int64
            with pytest.raises(type(e)):
                getattr(ft, name)(x)
            continue
        ours = getattr(ft, name)(x)
        assert ours.dtype == theirs.dtype and ours.device == theirs.device
        if x.device.type != "meta":
            assert torch.equal(ours, theirs)


def test_negated_views_fall_back_to_torch():
    """A tensor with the negative bit (x.conj().imag of a complex tensor, a _neg_view)
    has no NumPy view: PyTorch computes it, with autograd, for the elementwise
    activations, the gated units and the softmax family."""
    base = torch.randn(6, 4, dtype=torch.cfloat)
    for x in (base.conj().imag, torch._neg_view(torch.randn(6, 4))):
        assert x.is_neg()
        for name in ("gelu", "relu", "tanh"):
            torch.testing.assert_close(getattr(ft, name)(x), torch_function(name, {})(x),
                                       rtol=0, atol=0)
        torch.testing.assert_close(ft.glu(x), F.glu(x), rtol=0, atol=0)
        torch.testing.assert_close(ft.softmax(x, dim=-1), F.softmax(x, dim=-1))
    leaf = torch.randn(5, dtype=torch.cfloat, requires_grad=True)
    ft.silu(leaf.conj().imag).sum().backward()
    expected = torch.randn(5, dtype=torch.cfloat).detach().copy_(leaf.detach()).requires_grad_()
    F.silu(expected.conj().imag).sum().backward()
    torch.testing.assert_close(leaf.grad, expected.grad)


def test_parameters_as_0d_tensors():
    """torch.nn.functional takes a 0-d tensor as a number parameter (alpha=torch.tensor
    (0.5)): so do fastact.torch's functions and modules, with the same results."""
    x = torch.randn(50, dtype=torch.float64)
    for name, params in [("elu", {"alpha": 0.5}), ("leaky_relu", {"negative_slope": 0.2}),
                         ("celu", {"alpha": 1.5}), ("softplus", {"beta": 2.0, "threshold": 5.0}),
                         ("hardtanh", {"min_val": -0.5, "max_val": 0.5}),
                         ("threshold", {"threshold": 0.1, "value": -1.0}),
                         ("softshrink", {"lambd": 0.3}), ("hardshrink", {"lambd": 0.3})]:
        # a float64 tensor holds the very number; PyTorch's own result with tensors
        tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        expected = getattr(ft, name)(x, **params)
        torch.testing.assert_close(expected, torch_function(name, tensors)(x))
        t32 = {k: torch.tensor(v) for k, v in params.items()}       # float32: 0.2 rounded
        torch.testing.assert_close(getattr(ft, name)(x, **t32), torch_function(name, t32)(x))
        torch.testing.assert_close(getattr(ft, name)(x, **tensors), expected, rtol=0, atol=0)
        torch.testing.assert_close(getattr(ft, name)(x, *tensors.values()), expected,
                                   rtol=0, atol=0)
        module = {m.__name__.lower(): m for m in vars(ft).values()
                  if isinstance(m, type) and issubclass(m, torch.nn.Module)}
        cls = next(c for k, c in module.items() if k == name.replace("_", "")
                   or k == ACTIVATIONS_BY_NAME[name].torch_module.lower())
        torch.testing.assert_close(cls(**tensors)(x), expected, rtol=0, atol=0)


# a module of PyTorch's made with each set of arguments (the defaults, and some others)
_MODULE_ARGS = {"Threshold": [(0.1, -1.0), (-2.0, 3.0, True)],
                "LeakyReLU": [(), (0.2,), (-0.5, True)], "ELU": [(), (0.5,), (2.0, True)],
                "CELU": [(), (1.5,)], "Hardtanh": [(), (-2.0, 3.0)],
                "Softplus": [(), (2.0, 5.0)], "GELU": [(), ("tanh",)],
                "Softshrink": [(), (0.3,)], "Hardshrink": [(), (0.3,)], "GLU": [(), (0,)],
                "Softmax": [(), (1,)], "LogSoftmax": [(), (0,)], "Softmin": [(), (-1,)],
                "PReLU": [(), (3, 0.1)], "RReLU": [(), (0.1, 0.3)]}


def test_modules_are_subclasses_of_torchs_own_with_its_attributes():
    """Every fastact.torch module with a torch.nn counterpart of its name is a subclass
    of it (code that checks isinstance(m, nn.GELU) takes it), and made with the same
    arguments holds the same public attributes and repr (ReLU6's bounds included)."""
    modules = {n: c for n, c in vars(ft).items()
               if isinstance(c, type) and issubclass(c, torch.nn.Module)}
    counterparts = {n: getattr(torch.nn, n) for n in modules if hasattr(torch.nn, n)}
    assert len(counterparts) >= 27, sorted(counterparts)
    for name, theirs_cls in counterparts.items():
        ours_cls = modules[name]
        assert issubclass(ours_cls, theirs_cls), name
        for args in _MODULE_ARGS.get(name, [()]):
            ours, theirs = ours_cls(*args), theirs_cls(*args)
            assert isinstance(ours, theirs_cls)
            public = {k: v for k, v in vars(theirs).items()
                      if not k.startswith("_") and k != "training"}
            got = {k: getattr(ours, k, "missing") for k in public}
            assert got == public and repr(ours) == repr(theirs), (name, args)


NEW_BOUNDS = {"min_val": 7.0, "max_val": -4.0}   # doubled: past the other bound


def test_assigned_attributes_are_used_as_torchs_module_uses_them():
    """Every public number attribute of a torch.nn counterpart (parameters, and the
    constants of a parameterless module: ReLU6's bounds), assigned another valid value,
    changes the forward and the gradient as it does PyTorch's module; an invalid one
    raises ValueError by the next call at the latest where PyTorch's module raises it."""
    x = torch.linspace(-8, 8, 161, dtype=torch.float64)
    checked = 0
    for name, ours_cls in sorted(vars(ft).items()):
        if not (isinstance(ours_cls, type) and issubclass(ours_cls, torch.nn.Module)
                and hasattr(torch.nn, name)):
            continue
        theirs_cls = getattr(torch.nn, name)
        for args in _MODULE_ARGS.get(name, [()]):
            plain = [k for k, v in vars(theirs_cls(*args)).items()
                     if not k.startswith("_") and k not in ("training", "inplace")
                     and type(v) in (int, float) and k in cases.NEW_VALUES]
            for attr in plain:
                ours, theirs = ours_cls(*args), theirs_cls(*args)
                for m in (ours, theirs):
                    setattr(m, attr, cases.NEW_VALUES[attr])
                xo, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
                yo, yt = ours(xo * 1), theirs(xt * 1)     # (not leaves: inplace=True)
                torch.testing.assert_close(yo, yt, rtol=1e-12, atol=0, msg=f"{name}.{attr}")
                yo.backward(torch.cos(x))
                yt.backward(torch.cos(x))
                torch.testing.assert_close(xo.grad, xt.grad, rtol=1e-12, atol=0,
                                           msg=f"{name}.{attr} grad")
                if attr in ("min_val", "max_val"):       # crossing the other bound
                    outcome = []
                    for m in (ours_cls(*args), theirs_cls(*args)):
                        try:
                            setattr(m, attr, 2 * NEW_BOUNDS[attr])
                            outcome.append(m(x))
                        except ValueError:
                            outcome.append(ValueError)
                    assert (outcome[0] is ValueError) == (outcome[1] is ValueError), (name, attr)
                    if outcome[0] is not ValueError:
                        torch.testing.assert_close(*outcome, rtol=1e-12, atol=0)
                checked += 1
    assert checked >= 3, checked          # ReLU6's two bounds and Hardtanh's at least


def test_identity_takes_and_ignores_any_argument():
    """As torch.nn.Identity(54, unused_argument1=0.1, unused_argument2=False)."""
    x = torch.randn(7)
    for module in (ft.Identity(), ft.Identity(54, unused_argument1=0.1, unused_argument2=False)):
        assert torch.equal(module(x), torch.nn.Identity(54, unused_argument1=0.1)(x))
        assert repr(module) == "Identity()"


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_an_odd_size_raises_torchs_error_and_fastacts(error):
    """An odd size along dim raises an error that is both F.glu's RuntimeError (code
    written for PyTorch catches it) and fastact's ValueError, for every gated unit."""
    x = torch.randn(2, 5)
    with pytest.raises(RuntimeError, match="even"):
        F.glu(x)
    for call in (ft.glu, ft.GLU(), ft.swiglu, ft.geglu, ft.reglu):
        for t in (x, x.double(), x.T.contiguous().T):
            with pytest.raises(error, match="even"):
                call(t)


def test_torch_func_transforms_fall_back_to_torch():
    x = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(ft.gelu)(x), F.gelu(x), rtol=0, atol=0)
    g = torch.func.grad(lambda t: ft.silu(t).sum())(x)
    torch.testing.assert_close(g, torch.func.grad(lambda t: F.silu(t).sum())(x), rtol=0, atol=0)


def test_inplace_follows_torch():
    x = torch.randn(20)
    expected = F.relu6(x)
    out = ft.ReLU6(inplace=True)(x)
    assert out is x and torch.equal(x, expected)


def test_parameters_equal_in_value_are_not_confused():
    """-0.0 after 0.0 (and back) is its own parameter, and True is refused after 1: as
    PyTorch, for the functions and the modules, values and gradients."""
    x0 = torch.tensor([-2.0, -0.5, 0.0, 1.5], dtype=torch.float64)
    for slope in (0.0, -0.0, 0.0, 0, -0.0):
        for f in (lambda x: ft.leaky_relu(x, slope), lambda x: ft.LeakyReLU(slope)(x)):
            x, xr = x0.clone().requires_grad_(), x0.clone().requires_grad_()
            y, yr = f(x), F.leaky_relu(xr, float(slope))
            y.backward(torch.ones_like(y))
            yr.backward(torch.ones_like(yr))
            assert torch.equal(torch.signbit(y), torch.signbit(yr)), slope
            assert torch.equal(y, yr) and torch.equal(x.grad, xr.grad), slope
    ft.leaky_relu(x0, 1)
    with pytest.raises(TypeError, match="negative_slope"):
        ft.leaky_relu(x0, True)


def test_type_stub_matches_the_modules():
    """fastact/torch.pyi (tools/gen_stubs.py) declares every function and module (a
    subclass of PyTorch's own where there is one), with inplace exactly where torch.nn
    and fastact.torch have it."""
    import inspect
    import os
    import re
    stub = open(os.path.join(os.path.dirname(ft.__file__), "torch.pyi")).read()
    for act in ACTIVATIONS_BY_NAME.values():
        line = re.search(rf"^def {act.name}\((.*)\)", stub, re.M).group(1)
        cls = _class_name(act.name)
        base = re.escape(f"torch.nn.{act.torch_module or 'Module'}")  # the runtime base
        assert re.search(rf"^class {cls}\({base}\):", stub, re.M), cls
        assert issubclass(getattr(ft, cls), getattr(torch.nn, act.torch_module or "Module"))
        torch_has = act.torch_module is not None and \
            "inplace" in inspect.signature(getattr(torch.nn, cls)).parameters
        ours_has = "inplace" in inspect.signature(getattr(ft, act.name)).parameters
        assert ("inplace" in line) == torch_has == ours_has, act.name


def test_type_stub_all_lists_the_modules_names():
    """The stub's __all__ is fastact.torch's (what `from fastact.torch import *` gives a
    type checker), each name declared in the stub."""
    import ast
    import os
    tree = ast.parse(open(os.path.join(os.path.dirname(ft.__file__), "torch.pyi")).read())
    declared = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    declared |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    stub_all = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                and n.targets[0].id == "__all__"]
    assert len(stub_all) == 1 and sorted(stub_all[0]) == sorted(ft.__all__)
    assert set(ft.__all__) <= declared


def _reference_fn(name, params):
    return torch_function(name, params)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_modules_pickle_save_load_and_deepcopy(case, tmp_path):
    """Every module (any parameters) pickles, survives torch.save/torch.load inside a
    model and copy.deepcopy, and computes the same afterwards."""
    import copy
    import pickle
    name, params = case
    module = _module(name, params, True)
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)
    expected = module(x)
    for other in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert type(other) is type(module) and repr(other) == repr(module)
        assert torch.equal(other(x), expected)
    model = torch.nn.Sequential(torch.nn.Linear(3, 41), module).to(torch.float64)
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    data = torch.randn(2, 3, dtype=torch.float64)
    assert torch.equal(loaded(data), model(data))


@pytest.mark.parametrize("name", [a.name for a in ACTIVATIONS_BY_NAME.values() if a.params
                                  and a.name != "gelu"] + ["gelu"])
def test_changed_module_attributes_are_used_and_validated(name):
    """As torch.nn: assigning a parameter attribute changes what the module computes
    (and its repr); an invalid value raises the constructor's error and changes nothing."""
    act = ACTIVATIONS_BY_NAME[name]
    base = dict(CASES)[name] if name == "threshold" else {}
    new = cases.NEW_VALUES
    bad = {pname: cases.bad_value(name, pname) for pname in new}
    x = torch.linspace(-4, 4, 81, dtype=torch.float64, requires_grad=True)
    for pname, _ in act.params:
        module = getattr(ft, _class_name(name))(**base)
        setattr(module, pname, new[pname])
        assert getattr(module, pname) == new[pname]
        params = {**base, **{p: getattr(module, p) for p, _ in act.params}}
        fresh = getattr(ft, _class_name(name))(**params)
        assert repr(module) == repr(fresh)
        y = module(x)
        torch.testing.assert_close(y, _reference_fn(name, params)(x), rtol=1e-13, atol=1e-15)
        g, = torch.autograd.grad(y.sum(), x)
        gr, = torch.autograd.grad(_reference_fn(name, params)(x).sum(), x)
        torch.testing.assert_close(g, gr, rtol=1e-13, atol=1e-15)
        with pytest.raises(ValueError) as raised:
            setattr(module, pname, bad[pname])
        with pytest.raises(ValueError) as constructed:
            getattr(ft, _class_name(name))(**{**params, pname: bad[pname]})
        assert str(raised.value) == str(constructed.value)
        assert getattr(module, pname) == new[pname]


MODES = ["is_grads_batched", "jacobian_vectorized", "forward_ad", "jacfwd", "jacrev", "hessian"]


def _mode(mode, fn, x):
    import torch.autograd.forward_ad as fwAD
    n = x.numel()
    if mode == "is_grads_batched":
        xr = x.detach().requires_grad_()
        return torch.autograd.grad(fn(xr), xr, torch.eye(n, dtype=x.dtype),
                                   is_grads_batched=True)[0]
    if mode == "jacobian_vectorized":
        return torch.autograd.functional.jacobian(fn, x, vectorize=True)
    if mode == "forward_ad":
        with fwAD.dual_level():
            tangent = torch.linspace(-1, 1, n, dtype=x.dtype)
            return fwAD.unpack_dual(fn(fwAD.make_dual(x, tangent)))[1]
    if mode == "jacfwd":
        return torch.func.jacfwd(fn)(x)
    if mode == "jacrev":
        return torch.func.jacrev(fn)(x)
    return torch.autograd.functional.hessian(lambda t: fn(t).sum(), x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_autograd_modes_match_torch(case, mode):
    """Batched gradients, vectorized jacobians, forward-mode AD, torch.func's jacobians
    and second derivatives: fastact.torch gives torch.nn.functional's results."""
    name, params = case
    x = _away_from_kinks(name, params).detach().reshape(-1)[:8]
    ours = _mode(mode, lambda t: getattr(ft, name)(t, **params), x)
    try:
        theirs = _mode(mode, _reference_fn(name, params), x)
    except RuntimeError:       # PyTorch cannot differentiate its hardsigmoid_backward
        assert name == "hardsigmoid" and mode == "hessian"
        theirs = torch.zeros_like(ours)               # f'' = 0 away from the kinks
    # PyTorch's hardsigmoid' is a float32 1/6 also in float64 (fastact's is exact), and
    # its celu' takes 1/alpha in float32 (3.7e-7 off in float64 at alpha = 0.3, where
    # fastact's jvp, the kernel's, is within an ulp)
    rtol = 1e-7 if name == "hardsigmoid" else 1e-12
    rtol = 1e-6 if name == "celu" and mode == "forward_ad" else rtol
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_forward_ad_tangent_by_the_kernel(case, dtype, backend):
    """Forward-mode AD in ordinary code (grad mode on, nothing requiring grad): the
    tangent is fastact's g f'(x), within 4 ulp of the exact value as the backward is
    (tails included, where PyTorch's expressions are not: sigmoid'(30) in float32), and
    like PyTorch's it records no graph. (It had been the PyTorch expression whenever
    grad mode was on, with a graph of its own for the activations differentiated by
    autograd.)"""
    import torch.autograd.forward_ad as fwAD
    name, params = case
    x = _points(name, params, dtype)
    t = torch.tensor(x)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(getattr(ft, name)(fwAD.make_dual(t, torch.ones_like(t)),
                                                     **params)).tangent
        theirs = fwAD.unpack_dual(_reference_fn(name, params)(
            fwAD.make_dual(t, torch.ones_like(t)))).tangent
    assert tangent.requires_grad == theirs.requires_grad == False  # noqa: E712
    assert tangent.grad_fn is None and tangent.dtype == t.dtype
    _, _, d_hi, d_lo = reference.reference(name, x, params, dtype)
    err = reference.ulp_error(tangent.numpy(), d_hi, d_lo, dtype, x=x,
                              crossing=crossing(name, params))
    assert err.max() <= 4, f"jvp: {err.max():.2f} ulp at x={x[err.argmax()]!r}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_create_graph_gradient_connected_as_torch(case):
    """A create_graph gradient requires grad where PyTorch's does, and its own gradient
    (the second derivative summed) is PyTorch's: relu's, from y, had been detached
    (torch.autograd.grad of it raised). hardsigmoid: neither has a second derivative."""
    name, params = case
    x = _away_from_kinks(name, params)
    ours, = torch.autograd.grad(getattr(ft, name)(x, **params).sum(), x, create_graph=True)
    theirs, = torch.autograd.grad(_reference_fn(name, params)(x).sum(), x, create_graph=True)
    if name == "hardsigmoid":     # PyTorch's hardsigmoid_backward has no derivative: its
        return                    # gradient's graph raises when used, as ours does
    assert ours.requires_grad == theirs.requires_grad
    if not theirs.requires_grad:
        return
    h, = torch.autograd.grad(ours.sum(), x, allow_unused=True)
    hr, = torch.autograd.grad(theirs.sum(), x, allow_unused=True)
    h = torch.zeros_like(x) if h is None else h
    hr = torch.zeros_like(x) if hr is None else hr
    torch.testing.assert_close(h, hr, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype_", [torch.float32, torch.float64])
def test_relu_create_graph_gradient_at_zeros_and_nan(dtype_):
    """relu's create_graph gradient (PyTorch operations on the saved y) at -0.0, +0.0,
    NaN, +-inf and ordinary points: the plain backward's values, g * f'(x) with f' = +0
    at both zeros and NaN at NaN (the contract's NaN in, NaN out), connected to the
    graph (its own gradient 0)."""
    x = torch.tensor([-0.0, 0.0, float("nan"), float("inf"), -float("inf"), -1.5, 2.0],
                     dtype=dtype_, requires_grad=True)
    g = torch.tensor([-1.0, -2.0, 1.0, 3.0, 1.0, -1.0, -0.5], dtype=dtype_)
    graph, = torch.autograd.grad(ft.relu(x), x, g, create_graph=True)
    plain, = torch.autograd.grad(ft.relu(x), x, g)
    xd = x.detach()
    # g * f'(x) literally (the contract's sign of zero: -0 for g < 0 where f' is +0)
    want = (g * torch.where(xd > 0, 1.0, 0.0)).masked_fill(torch.isnan(xd), float("nan"))
    for got in (graph, plain):
        assert torch.equal(torch.signbit(got), torch.signbit(want))
        torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)
    assert graph.requires_grad
    second, = torch.autograd.grad(graph.sum(), x, allow_unused=True)
    assert second is None or not second[~torch.isnan(x)].any()


def test_openmp_libraries_of_a_process():
    """The OpenMP runtimes mapped into a process, from /proc/self/maps lines: one library
    mapped in several segments is one runtime; a wheel's renamed copy (libgomp-<hash>) is
    another; LLVM's and Intel's count; other libraries and anonymous maps do not."""
    line = "7f1c-7f1d r-xp 00002000 08:01 1234  {}"
    gomp = "/venv/torch/lib/libgomp.so.1"
    assert ft._openmp_libraries([line.format(gomp)] * 3 + ["7f-7f rw-p 0 00:00 0"]) == {gomp}
    others = ["/venv/fastact.libs/libgomp-a34b3233.so.1", "/usr/lib/libomp.so.5",
              "/opt/intel/libiomp5.so", "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0"]
    for other in others:
        assert ft._openmp_libraries([line.format(gomp), line.format(other)]) == {gomp, other}
    for unrelated in ("/usr/lib/libompl.so", "/usr/lib/libm.so.6", "/x/libgomp_cfg.txt"):
        assert ft._openmp_libraries([line.format(unrelated)]) == set()


def _on_pool_and_team(compute):
    """compute()'s results on fastact's pool, then on OpenMP's team, at 1 to 3 threads
    each (the process's setting restored after)."""
    runner = ft._backend._runner
    setting = ft._shares_pytorchs_openmp()
    results = []
    try:
        for team in (False, True):
            runner.set_openmp_team(team)
            for threads in (1, 2, 3):
                with fastact.threads(threads):
                    results.append(compute())
    finally:
        runner.set_openmp_team(setting)
    return results


@pytest.mark.parametrize("name", ["gelu", "silu", "tanh", "softplus"])
def test_openmp_team_gives_the_pools_bits(name):
    """fastact.torch's calls on OpenMP's team (PyTorch's threads, where the process has
    one runtime) and on fastact's pool, at 1 to 3 threads: the same bits, forward and
    backward (with and without autograd), each within 4 ulp of PyTorch's float64."""
    runner = ft._backend._runner
    if runner is None:
        pytest.skip("the compiled extension is not built")
    x64 = torch.linspace(-12, 12, 600_001, dtype=torch.float64)
    x = x64.float().requires_grad_()
    g = torch.cos(x64 * 3).float()

    def compute():
        y = getattr(ft, name)(x)
        dx, = torch.autograd.grad(y, x, g)
        return y.detach(), dx, getattr(ft, name)(x.detach())
    results = _on_pool_and_team(compute)
    for y, dx, plain in results[1:]:
        assert torch.equal(y, results[0][0]) and torch.equal(dx, results[0][1])
        assert torch.equal(plain, results[0][0])
    x64 = x.detach().double().requires_grad_()          # the float32 inputs, exactly
    # float64 references (gelu's through erfc: PyTorch's 1 + erf cancels in the tail)
    y64 = (0.5 * x64 * torch.special.erfc(-x64 / 2 ** 0.5) if name == "gelu"
           else getattr(F, name)(x64))
    dx64, = torch.autograd.grad(y64, x64, g.double())
    torch.testing.assert_close(results[0][0].double(), y64.detach(), rtol=4 * 2.0 ** -23,
                               atol=1e-37)
    torch.testing.assert_close(results[0][1].double(), dx64, rtol=1e-5, atol=1e-6)


def _float64_reference(name, x, w):
    """PyTorch's float64 value of fastact.torch's name at x (and prelu's weight w)."""
    if name == "swiglu":
        a, b = x.chunk(2, -1)
        return a * F.silu(b)
    if name == "prelu":
        return F.prelu(x, w)
    dim = 0 if name.endswith("dim0") else -1
    return getattr(torch, name.split("_dim0")[0])(x, dim)


@pytest.mark.parametrize("name, shape", [
    ("swiglu", (300, 2000)),                 # a segment loop (split halves)
    ("prelu", (600, 1000)),                  # fixed blocks, the weight's gradient summed
    ("softmax", (2, 300_000)),               # two long rows: threads within each row
    ("log_softmax", (600, 1000)),            # whole rows per thread
    ("softmax_dim0", (1000, 600))])          # tiles of columns
def test_openmp_team_for_the_gated_units_prelu_and_softmax(name, shape, monkeypatch):
    """The gated units, prelu and the softmax family reach the runner through the array
    API; inside fastact.torch they too run on OpenMP's team where it is on: the same bits
    as on the pool at 1 to 3 threads, forward and backward, and within float32's error
    of PyTorch's float64 value."""
    runner = ft._backend._runner
    if runner is None:
        pytest.skip("the compiled extension is not built")
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 4).float().requires_grad_()
    w = torch.linspace(-0.5, 0.5, shape[1], dtype=torch.float64).float().requires_grad_()
    fn = {"swiglu": lambda t: ft.swiglu(t), "prelu": lambda t: ft.prelu(t, w),
          "softmax_dim0": lambda t: ft.softmax(t, 0)}.get(
              name, lambda t: getattr(ft, name)(t, -1))
    marks, real = [], ft._on_team             # whether the backends ran marked for it

    def spy(f, *args, **kwargs):
        return real(lambda *a, **k: marks.append(runner.team_here()) or f(*a, **k),
                    *args, **kwargs)
    monkeypatch.setattr(ft, "_on_team", spy)

    def compute():
        y = fn(x)
        g = torch.cos(torch.arange(y.numel(), dtype=torch.float32)).view(y.shape)
        grads = torch.autograd.grad(y, [x, w] if name == "prelu" else [x], g)
        with torch.no_grad():
            plain = fn(x)
        return y.detach(), *grads, plain
    results = _on_pool_and_team(compute)
    assert len(marks) == 6 * 3 and all(marks)      # forward, backward, no_grad forward
    for got in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(got, results[0]))
    assert torch.equal(results[0][-1], results[0][0])
    x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    want = _float64_reference(name, x64, w64)
    torch.testing.assert_close(results[0][0].double(), want.detach(), rtol=4 * 2.0 ** -23,
                               atol=1e-37)
    g = torch.cos(torch.arange(want.numel(), dtype=torch.float32)).view(want.shape).double()
    want_grads = torch.autograd.grad(want, [x64, w64] if name == "prelu" else [x64], g)
    for got, ref in zip(results[0][1:-1], want_grads):
        torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)


def test_on_team_is_per_thread():
    """on_team marks the calling thread alone, for the call's length: a thread started
    inside it is not marked, nor is the caller afterwards (also after an exception,
    and after a nested call)."""
    runner = ft._backend._runner
    if runner is None:
        pytest.skip("the compiled extension is not built")
    import threading
    seen = {}

    def inside():
        seen["caller"] = runner.team_here()
        other = threading.Thread(target=lambda: seen.__setitem__("other", runner.team_here()))
        other.start()
        other.join()
        seen["nested"] = runner.on_team(runner.team_here)
        seen["after nested"] = runner.team_here()
        return "result"

    assert not runner.team_here()
    assert runner.on_team(inside) == "result"
    assert seen == {"caller": True, "other": False, "nested": True, "after nested": True}
    assert not runner.team_here()
    with pytest.raises(ZeroDivisionError):
        runner.on_team(lambda: 1 / 0)
    assert not runner.team_here()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_computes_on_the_pool():
    """GNU OpenMP's team is not in a child after fork() (PyTorch's own ops hang there):
    a child's fastact.torch calls run on fastact's pool, with the parent's bits."""
    code = r"""
import os, numpy as np, torch, fastact, fastact.torch as ft
x = torch.linspace(-9, 9, 1 << 20)
with fastact.threads(2):
    want = ft.silu(x).numpy(), ft.gelu(x).numpy()
    pid = os.fork()
    if pid == 0:            # (compared by NumPy: PyTorch's own parallel ops hang here)
        got = ft.silu(x).numpy(), ft.gelu(x).numpy()
        os._exit(0 if all(np.array_equal(a, b) for a, b in zip(got, want)) else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stdout + r.stderr
