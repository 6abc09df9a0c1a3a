"""The public API: names, signatures and defaults (PyTorch's), classes, get(), parameter
validation, and the consistency of the four entry points."""
import inspect
import math
import pickle

import numpy as np
import pytest
import torch

import fastact
import cases
from cases import CASES, case_id
from fastact._activations import ACTIVATIONS_BY_NAME, ACTIVATIONS_TABLE, KERNELS, REQUIRED
import reference

TORCH_NAMES = ("sigmoid tanh linear relu leaky_relu elu gelu silu softplus mish selu celu "
              "hardtanh relu6 hardsigmoid hardswish softsign logsigmoid tanhshrink softshrink "
              "hardshrink threshold").split()
TORCH_CLASSES = ("Sigmoid Tanh Linear ReLU LeakyReLU ELU GELU SiLU Softplus Mish SELU CELU "
                "Hardtanh ReLU6 Hardsigmoid Hardswish Softsign LogSigmoid Tanhshrink "
                "Softshrink Hardshrink Threshold").split()
# activations whose kernel offers backward(y=...) for some parameters (the table's)
Y_FORMS = {a.name for a in ACTIVATIONS_TABLE if KERNELS[fastact.get(a.name, **dict(
    CASES)[a.name] if a.name == "threshold" else {})._kernel].y_form}


def test_names():
    """The activations of torch.nn.functional the contract names are all there (in its
    order, first); activations beyond them may follow."""
    assert fastact.ACTIVATIONS[:len(TORCH_NAMES)] == tuple(TORCH_NAMES)
    for name, cls in zip(TORCH_NAMES, TORCH_CLASSES):
        for suffix in ("", "_grad", "_backward", "_forward_backward"):
            assert callable(getattr(fastact, name + suffix)), name + suffix
            assert name + suffix in fastact.__all__
        assert issubclass(getattr(fastact, cls), fastact.ActivationFunction)
        assert getattr(fastact, cls)().name == name if name != "threshold" else True


# The activations of jax.nn, Keras and ONNX fastact adds, with those libraries' parameter
# names and defaults (jax.nn.squareplus(x, b=4), keras.activations.relu(x,
# negative_slope=0.0, max_value=None, threshold=0.0) as clipped_relu, ONNX Swish alpha
# as beta), and the aliases (jax.nn.hard_silu / hard_swish are hardswish; jax.nn's and
# Keras's snake_case names of PyTorch's activations where their parameters agree)
OTHER_LIBRARIES = {"squareplus": {"b": 4.0}, "sparse_plus": {}, "sparse_sigmoid": {},
                   "swish": {"beta": 1.0}, "quick_gelu": {}, "exponential": {},
                   "clipped_relu": {"negative_slope": 0.0, "max_value": None, "threshold": 0.0}}
OTHER_ALIASES = {"hard_silu": "hardswish", "hard_swish": "hardswish", "identity": "linear",
                 "log_sigmoid": "logsigmoid", "hard_sigmoid": "hardsigmoid",
                 "hard_tanh": "hardtanh", "soft_sign": "softsign", "tanh_shrink": "tanhshrink"}


def test_every_activation_is_public_everywhere():
    """Each row of the table: four functions, a class, fastact.torch's function and
    module, a benchmark case, typed in the stubs; the aliases are the same objects."""
    import os
    from fastact import bench
    import fastact.torch as ft
    assert set(OTHER_LIBRARIES) <= set(fastact.ACTIVATIONS)
    stub = open(os.path.join(os.path.dirname(fastact.__file__), "__init__.pyi")).read()
    for act in ACTIVATIONS_TABLE:
        for suffix in ("", "_grad", "_backward", "_forward_backward"):
            assert act.name + suffix in fastact.__all__ and f"def {act.name}{suffix}(" in stub
        cls = getattr(fastact, act.cls_name)
        assert issubclass(cls, fastact.ActivationFunction) and f"class {act.cls_name}(" in stub
        assert callable(getattr(ft, act.name)) and issubclass(
            getattr(ft, act.torch_module or act.cls_name), torch.nn.Module)
        assert act.name in {name for _, name, _ in bench.CASES}
    for alias, name in OTHER_ALIASES.items():
        for suffix in ("", "_grad", "_backward", "_forward_backward"):
            assert getattr(fastact, alias + suffix) is getattr(fastact, name + suffix)
            assert alias + suffix in fastact.__all__
        assert fastact.get(alias) == fastact.get(name)
        assert getattr(ft, alias) is getattr(ft, name)


@pytest.mark.parametrize("name", sorted(OTHER_LIBRARIES))
def test_parameters_are_the_other_libraries(name):
    sig = inspect.signature(getattr(fastact, name)).parameters
    assert {p.name: p.default for p in sig.values() if p.name not in ("x", "out")} == \
        OTHER_LIBRARIES[name]
    assert inspect.signature(getattr(fastact, name + "_grad")).parameters.keys() == sig.keys()


def test_keras_relu_examples(backend, dtype):
    """Keras's relu docstring examples: their values; the zeros are those of
    negative_slope (x - threshold) (docs/contract.md: -0.0 below the threshold where
    Keras's relu gives +0.0), and at -inf the limit."""
    x = np.array([-10, -5, 0.0, 5, 10], dtype)
    for params, want, signs in [({}, [0, 0, 0, 5, 10], [1, 1, 0, 0, 0]),
                                ({"negative_slope": 0.5}, [-5, -2.5, 0, 5, 10], [1, 1, 0, 0, 0]),
                                ({"max_value": 5.0}, [0, 0, 0, 5, 5], [1, 1, 0, 0, 0]),
                                ({"threshold": 5.0}, [0, 0, 0, 0, 10], [1, 1, 1, 0, 0])]:
        y = fastact.clipped_relu(x, **params)
        assert np.array_equal(y, want) and np.array_equal(np.signbit(y), signs), params
    inf = np.array([-np.inf, -0.0], dtype)
    assert np.array_equal(np.signbit(fastact.clipped_relu(inf)), [1, 1])
    assert np.array_equal(np.signbit(fastact.clipped_relu(inf, threshold=-1.0)), [1, 1])
    assert np.array_equal(fastact.clipped_relu(inf, negative_slope=0.5), [-np.inf, 0])


def test_other_libraries_examples():
    """Values the other libraries document: jax's sparse_plus and squareplus at a few
    points, silu = swish(beta=1), quick_gelu = swish(beta=1.702)."""
    z = np.linspace(-3, 3, 61)
    assert np.array_equal(fastact.swish(z), fastact.silu(z))
    assert np.allclose(fastact.quick_gelu(z), fastact.swish(z, beta=1.702), rtol=1e-15)
    assert np.allclose(fastact.squareplus(z), (z + np.sqrt(z * z + 4)) / 2, rtol=1e-15)
    assert np.allclose(fastact.squareplus(z, b=0.5), (z + np.sqrt(z * z + 0.5)) / 2, rtol=1e-14)
    assert np.array_equal(fastact.sparse_plus(np.array([-2, -1, 0, 1, 2.0])), [0, 0, 0.25, 1, 2])
    assert np.array_equal(fastact.sparse_sigmoid(np.array([-2, -1, 0, 1, 2.0])), [0, 0, 0.5, 1, 1])
    assert np.allclose(fastact.exponential(z), np.exp(z), rtol=1e-15)
    assert np.array_equal(fastact.swish(np.array([np.inf, np.nan, -2.0]), beta=0.0),
                          [np.inf, np.nan, -1.0], equal_nan=True)
    with pytest.raises(ValueError, match="b must be > 0"):
        fastact.squareplus(z, b=0.0)


@pytest.mark.parametrize("name, cls", list(zip(TORCH_NAMES, TORCH_CLASSES)))
def test_parameters_are_pytorchs(name, cls):
    """Parameter names and defaults equal torch.nn's (without inplace)."""
    ours = inspect.signature(getattr(fastact, name)).parameters
    theirs = {}
    if hasattr(torch.nn, cls) and cls != "Linear":
        for p in inspect.signature(getattr(torch.nn, cls).__init__).parameters.values():
            if p.name not in ("self", "inplace", "min_value", "max_value") and \
                    p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                theirs[p.name] = p.default
    mine = {p.name: p.default for p in ours.values() if p.name not in ("x", "out")}
    assert mine == theirs
    assert ours["out"].kind is inspect.Parameter.KEYWORD_ONLY
    for p in list(ours.values())[1:-1]:
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_positional_and_keyword_parameters():
    x = np.linspace(-3, 3, 7)
    assert np.array_equal(fastact.leaky_relu(x, 0.2), fastact.leaky_relu(x, negative_slope=0.2))
    assert np.array_equal(fastact.softplus(x, 2.0, 5.0), fastact.softplus(x, beta=2.0, threshold=5.0))
    assert np.array_equal(fastact.threshold(x, 0.5, -1.0), fastact.threshold(x, threshold=0.5, value=-1.0))
    assert np.array_equal(fastact.elu_backward(x, x, 0.5), fastact.elu_backward(x, x, alpha=0.5))
    assert np.array_equal(fastact.elu_grad(x, 0.5), fastact.ELU(0.5).gradient(x))
    with pytest.raises(TypeError):
        fastact.relu(x, np.empty_like(x))          # out is keyword-only
    with pytest.raises(TypeError):
        fastact.threshold(x)                       # threshold and value are required
    with pytest.raises(TypeError, match="threshold"):
        fastact.threshold_backward(x, x)


def test_classes_repr_eq_hash_pickle():
    a = fastact.ELU(alpha=0.5)
    assert repr(a) == "ELU(alpha=0.5)"
    assert repr(fastact.Sigmoid()) == "Sigmoid()"
    assert repr(fastact.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(fastact.Threshold(0.1, 20.0)) == "Threshold(threshold=0.1, value=20.0)"
    assert a == fastact.ELU(0.5) and a != fastact.ELU(1.0) and a != fastact.CELU(0.5)
    assert hash(a) == hash(fastact.ELU(0.5))
    # equal parameters by ==: 0.0 and -0.0 too (docs/contract.md), 1 and 1.0
    assert fastact.LeakyReLU(0.0) == fastact.LeakyReLU(-0.0)
    assert hash(fastact.LeakyReLU(0.0)) == hash(fastact.LeakyReLU(-0.0))
    assert fastact.LeakyReLU(1) == fastact.LeakyReLU(1.0)
    assert a.alpha == 0.5 and a.params == {"alpha": 0.5}
    assert pickle.loads(pickle.dumps(a)) == a
    assert fastact.Softplus().threshold == 20.0
    with pytest.raises(AttributeError):
        a.beta


def test_get():
    assert fastact.get("elu", alpha=0.5) == fastact.ELU(alpha=0.5)
    assert fastact.get("ELU") == fastact.ELU()
    assert fastact.get("LeakyReLU", negative_slope=0.1) == fastact.LeakyReLU(0.1)
    assert fastact.get("swish", beta=2.0) == fastact.Swish(2.0)
    assert fastact.get("hard_silu") == fastact.get("HardSwish") == fastact.Hardswish()
    assert fastact.get("identity") == fastact.Linear()
    for name in fastact.ACTIVATIONS:
        params = {"threshold": 0.0, "value": 0.0} if name == "threshold" else {}
        assert fastact.get(name, **params).name == name
    with pytest.raises(ValueError, match="unknown activation"):
        fastact.get("nope")
    with pytest.raises(TypeError):
        fastact.get("elu", beta=1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: fastact.celu(1.0, alpha=0.0), "alpha"),
    (lambda: fastact.CELU(0), "alpha"),
    (lambda: fastact.softplus(1.0, beta=0.0), "beta"),
    (lambda: fastact.hardtanh(1.0, 2.0, 1.0), "min_val"),
    (lambda: fastact.softshrink(1.0, -0.1), "lambd"),
    (lambda: fastact.elu(1.0, float("nan")), "alpha"),
    (lambda: fastact.threshold(1.0, 0.0, float("nan")), "value"),
    (lambda: fastact.leaky_relu_grad(1.0, float("nan")), "negative_slope"),
    (lambda: fastact.gelu(1.0, approximate="fast"), "approximate"),
    (lambda: fastact.Softplus(threshold=float("nan")), "threshold"),
])
def test_invalid_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _numeric_params():
    return [(a.name, pname) for a in ACTIVATIONS_TABLE for pname, default in a.params
            if not isinstance(default, str)]


@pytest.mark.parametrize("name, pname", _numeric_params())
def test_integer_parameters_past_float64_are_refused_by_name(name, pname):
    """An int parameter past float64's range (10**400) is a ValueError naming the
    parameter, from the function and the class, not Python's bare OverflowError."""
    act = ACTIVATIONS_BY_NAME[name]
    required = {n: 0.5 for n, d in act.params if d is REQUIRED}   # threshold's two
    for value in (10 ** 400, -10 ** 400):
        kw = {**required, pname: value}
        for call in (lambda: getattr(fastact, name)(np.ones(3), **kw),
                     lambda: fastact.get(name, **kw)):
            with pytest.raises(ValueError, match=pname):
                call()


def _half_dtypes():
    types = [np.float32, np.float16]
    try:
        import ml_dtypes
        types.append(ml_dtypes.bfloat16)
    except ImportError:       # bfloat16 arrays cannot exist without it
        pass
    return types


@pytest.mark.parametrize("name, pname, value", [
    ("celu", "alpha", 1e-50), ("celu", "alpha", -2.0 ** -150), ("squareplus", "b", 2.0 ** -150)])
def test_parameters_rounding_to_zero_are_refused(name, pname, value, backend):
    """A parameter refused as 0 is refused where it rounds to 0 in float32, the type
    float32 and the 16-bit types compute in (celu's x / alpha was NaN at 0, squareplus'
    f'(0) was 1): ValueError naming it, from every entry point and the class; float64
    computes with it. Just above, 2^-149 (float32's smallest) computes without NaN."""
    x = np.array([-2.0, -0.0, 0.0, 1.0])
    calls = [lambda a, v: getattr(fastact, name)(a, **{pname: v}),
             lambda a, v: getattr(fastact, name + "_grad")(a, **{pname: v}),
             lambda a, v: getattr(fastact, name + "_backward")(a, a, **{pname: v}),
             lambda a, v: getattr(fastact, name + "_forward_backward")(a, **{pname: v}),
             lambda a, v: fastact.get(name, **{pname: v})(a)]
    for dt in _half_dtypes():
        for call in calls:
            with pytest.raises(ValueError, match=f"{pname}=.* rounds to 0 in float32"):
                call(x.astype(dt), value)
    for call in calls:
        r = call(x, value)
        for u in (r if isinstance(r, tuple) else (r,)):
            assert u.dtype == np.float64 and not np.isnan(u).any()
    smallest = math.copysign(2.0 ** -149, value)
    for call in calls:
        r = call(x.astype(np.float32), smallest)
        for u in (r if isinstance(r, tuple) else (r,)):
            assert not np.isnan(u).any(), (name, u)


@pytest.mark.parametrize("beta", [1e-50, -1e-300])
def test_softplus_with_a_beta_rounding_to_zero_computes_as_pytorch(beta, backend):
    """softplus's beta rounding to 0 in float32 is computed, as PyTorch does (the exact
    log1p(e^(beta x)) / beta = ln2 / beta + x / 2 + ... overflows float32, f' = 1/2):
    +-inf and 1/2 in every float32-computed dtype, both backends (the NumPy backend
    raised ZeroDivisionError), ln2 / beta in float64."""
    x = np.array([-2.0, -0.0, 0.0, 1.0])
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ty = torch.nn.functional.softplus(t, beta=beta)
    ty.sum().backward()
    for dt in _half_dtypes():
        y, d = fastact.softplus_forward_backward(x.astype(dt), beta)
        assert np.array_equal(y.astype(np.float64), ty.detach().numpy().astype(np.float64))
        assert np.array_equal(d.astype(np.float64), t.grad.numpy().astype(np.float64))
    y64 = fastact.softplus(x, beta)
    assert np.allclose(y64, math.log(2) / beta + x / 2, rtol=1e-15)


@pytest.mark.parametrize("threshold", [np.inf, 1e300])
@pytest.mark.parametrize("beta", [2.0, 1e30, -3.0])
def test_softplus_where_beta_x_overflows_below_the_threshold(beta, threshold, dtype, backend):
    """A threshold of inf (or one past the dtype's range) leaves softplus on
    log1p(e^(beta x)) / beta where beta x overflows: the exact value is x (beta > 0, x
    large) or its limit; f' 1 (PyTorch gives inf there); backward g f'. The exact
    value's other side, e^(beta x) / beta, underflows to a zero of beta's sign."""
    big = float(np.finfo(dtype).max) / 2
    x = np.array([big, -big, 0.5 * big, np.inf, -np.inf], dtype) * np.sign(beta)
    y, d = fastact.softplus_forward_backward(x, beta, threshold)
    pos, fin = np.array([1, 0, 1, 1, 0], bool), np.isfinite(x)
    eps = float(np.finfo(dtype).eps)
    assert np.all(np.abs(y[pos & fin] - x[pos & fin]) <= 2 * eps * np.abs(x[pos & fin]))
    assert np.array_equal(y[pos & ~fin], x[pos & ~fin]) and np.all(d[pos] == 1)
    assert np.all(y[~pos] == 0) and np.array_equal(np.signbit(y[~pos]), [beta < 0] * 2)
    assert np.all(d[~pos] == 0)
    assert np.array_equal(fastact.softplus(x, beta, threshold), y)
    assert np.array_equal(fastact.softplus_backward(np.full_like(x, 2), x, beta, threshold),
                          2 * d)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_gelu_keeps_the_sign_of_a_tiny_x(dtype, backend):
    """gelu(x) = x Phi(x) has x's sign: the smallest subnormals of either sign round to
    a zero of that sign (float64's -5e-324 gave +0.0: x/2 is -0.0, plus a +0.0 product),
    or to themselves, as PyTorch's float64 gelu."""
    tiny = float(np.finfo(dtype).smallest_subnormal)
    x = np.array([-tiny, tiny, -2 * tiny, 2 * tiny, -0.0, 0.0]).astype(dtype)
    for y in (fastact.gelu(x), fastact.gelu(x, approximate="tanh"),
              fastact.gelu_forward_backward(x)[0]):
        assert np.array_equal(np.signbit(y.astype(np.float64)), np.signbit(x.astype(np.float64)))
        assert np.all(np.abs(y.astype(np.float64)) <= np.abs(x.astype(np.float64)))
    ref = torch.nn.functional.gelu(torch.tensor([-tiny, tiny], dtype=torch.float64))
    assert list(np.signbit(ref.numpy())) == [True, False]


def test_parameter_types():
    with pytest.raises(TypeError, match="alpha"):
        fastact.elu(1.0, alpha="1")
    with pytest.raises(TypeError, match="negative_slope"):
        fastact.LeakyReLU(None)


def test_accepted_parameters():
    """What PyTorch accepts is accepted with PyTorch's meaning."""
    x = np.linspace(-2, 2, 9)
    assert np.all(fastact.hardtanh(x, 0.5, 0.5) == 0.5)
    assert np.array_equal(fastact.softshrink(x, 0.0), x)
    assert np.array_equal(fastact.hardshrink(x, -1.0), x)
    assert np.allclose(fastact.elu(x, -0.5), torch.nn.functional.elu(torch.tensor(x), -0.5))
    assert np.allclose(fastact.leaky_relu(x, -0.5), torch.nn.functional.leaky_relu(torch.tensor(x), -0.5))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_entry_points_agree(case, backend, dtype):
    """forward_backward is (forward, grad) and (forward, backward) bit for bit; backward
    is grad_output * grad; the class methods are the functions."""
    name, params = case
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(500) * 4).astype(dtype)
    g = rng.uniform(-2, 2, 500).astype(dtype)
    f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
    y, d = f("")(x, **params), f("_grad")(x, **params)
    y2, d2 = f("_forward_backward")(x, **params)
    assert np.array_equal(y, y2, equal_nan=True) and np.array_equal(d, d2, equal_nan=True)
    b = f("_backward")(g, x, **params)
    y3, b3 = f("_forward_backward")(x, **params, grad_output=g)
    assert np.array_equal(y, y3, equal_nan=True) and np.array_equal(b, b3, equal_nan=True)
    expected = (g.astype(np.float64) * d).astype(dtype)
    assert np.all(np.abs(b.astype(np.float64) - expected) <= np.spacing(np.abs(expected)))
    act = fastact.get(name, **params)
    assert np.array_equal(act(x), y, equal_nan=True)
    assert np.array_equal(act.gradient(x), d, equal_nan=True)
    assert np.array_equal(act.backward(g, x), b, equal_nan=True)
    ya, da = act.forward_backward(x)
    assert np.array_equal(ya, y, equal_nan=True) and np.array_equal(da, d, equal_nan=True)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in Y_FORMS], ids=case_id)
def test_backward_from_y(case, backend, dtype):
    name, params = case
    act = fastact.get(name, **params)
    if not KERNELS[act._kernel].takes_y(act._params):      # e.g. elu with alpha < 0
        with pytest.raises(TypeError, match="pass x"):
            getattr(fastact, name + "_backward")(np.ones(3), y=np.ones(3), **params)
        return
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(400) * 3, [0.0, -0.0]]).astype(dtype)
    g = rng.uniform(0.5, 2, x.size).astype(dtype)
    y = getattr(fastact, name)(x, **params)
    got = getattr(fastact, name + "_backward")(g, y=y, **params)
    # f' written in y is accurate to y's scale (y + alpha cancels in the tails, sigmoid'
    # from y = 1.0 is 0): within a few epsilons of |f'(x)| + |y| + 1 of the exact f'(x)
    d = reference.reference(name, x, params, dtype)[2]
    tol = 8 * np.finfo(dtype).eps * (np.abs(d) + np.abs(y) + 1)
    assert np.all(np.abs(got / g - d) <= tol)
    # at the kinks the y-form and the x-form agree exactly
    at0 = getattr(fastact, name + "_backward")(g[-2:], x[-2:], **params)
    assert np.array_equal(got[-2:], at0)


@pytest.mark.parametrize("gdtype", [np.float64, np.int64, bool])
@pytest.mark.parametrize("bounds", [(-0.3, 0.7), (-1.0, 1.0), (0.1, 0.1), (-1e-40, 3e38)])
def test_hardtanh_from_a_float32_y_with_a_wider_grad_output(bounds, gdtype, backend):
    """A float32 y was clipped at the float32 bounds by a float32 forward: a float64 (int,
    bool) grad_output promotes the result, not the bounds f' compares y with (0.7 >
    float32(0.7)); the y-form gives g times that forward's derivative (hardtanh_grad of
    the float32 x, PyTorch's). The x-form with the float64 grad_output computes in float64
    (x = float32(0.7) < 0.7 is inside), which a y cannot tell apart."""
    lo, hi = bounds
    x = np.array([-2, lo, hi, 0.0, -0.0, 2, np.nextafter(np.float32(hi), np.float32(-1)),
                  np.nextafter(np.float32(lo), np.float32(1))], np.float32)
    g = np.array([1, 2, 3, 1, 1, 2, 3, 1]).astype(gdtype)
    y = fastact.hardtanh(x, lo, hi)
    got = fastact.hardtanh_backward(g, y=y, min_val=lo, max_val=hi)
    assert got.dtype == np.float64
    assert np.array_equal(got, g * fastact.hardtanh_grad(x, lo, hi).astype(np.float64))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.hardtanh(tx, lo, hi).backward(torch.ones_like(tx))
    assert np.array_equal(got, g * tx.grad.numpy().astype(np.float64))
    assert np.array_equal(fastact.Hardtanh(lo, hi).backward(g, y=y), got)


@pytest.mark.parametrize("name", sorted(set(fastact.ACTIVATIONS) - Y_FORMS))
def test_y_not_available(name):
    params = {"threshold": 0.0, "value": 0.0} if name == "threshold" else {}
    with pytest.raises(TypeError, match=f"{name}_forward_backward"):
        getattr(fastact, name + "_backward")(np.ones(3), y=np.ones(3), **params)


def test_backward_needs_exactly_one_of_x_and_y():
    with pytest.raises(TypeError, match="needs x"):
        fastact.sigmoid_backward(np.ones(3))
    with pytest.raises(TypeError, match="not both"):
        fastact.sigmoid_backward(np.ones(3), np.ones(3), y=np.ones(3))


@pytest.mark.parametrize("name", [n for n in fastact.ACTIVATIONS
                                  if fastact.get(n, **({"threshold": 0.5, "value": 1.0}
                                                        if n == "threshold" else {})).params])
def test_assigned_parameters_are_used_and_validated(name):
    """act.alpha = 2.0 changes what the object computes, equality and hash; an invalid
    value raises the constructor's error and leaves the object as it was."""
    base = {"threshold": 0.5, "value": 1.0} if name == "threshold" else {}
    new = cases.NEW_VALUES
    bad = {pname: cases.bad_value(name, pname) for pname in new}
    x = np.linspace(-4, 4, 81)
    for pname in fastact.get(name, **base).params:
        act = fastact.get(name, **base)
        setattr(act, pname, np.float64(new[pname]) if pname != "approximate" else new[pname])
        params = act.params
        assert params[pname] == new[pname] and type(params[pname]) is not np.float64
        fresh = fastact.get(name, **params)
        assert act == fresh and hash(act) == hash(fresh) and repr(act) == repr(fresh)
        assert np.array_equal(act(x), getattr(fastact, name)(x, **params))
        assert np.array_equal(act.gradient(x), getattr(fastact, name + "_grad")(x, **params))
        with pytest.raises(ValueError) as raised:
            setattr(act, pname, bad[pname])
        with pytest.raises(ValueError) as constructed:
            fastact.get(name, **{**params, pname: bad[pname]})
        assert str(raised.value) == str(constructed.value) and act == fresh


def test_zero_d_array_parameters():
    """A parameter given as a NumPy scalar or 0-d array works as the number it holds."""
    x = np.linspace(-3, 3, 13)
    for value in (np.array(0.2), np.float32(0.2), np.array([0.2])[0]):
        assert np.array_equal(fastact.elu(x, alpha=value), fastact.elu(x, alpha=float(value)))
        assert fastact.ELU(alpha=value) == fastact.ELU(alpha=float(value))
    with pytest.raises(TypeError, match="alpha"):
        fastact.elu(x, alpha=np.array([0.2, 0.3]))


@pytest.mark.parametrize("entry", cases.ENTRY_POINTS)
def test_parameters_equal_in_value_are_not_confused(entry, backend):
    """Each call's parameters are its own, whatever was called before: fastact remembers
    the validated parameters of earlier calls, by value, and neither -0.0 (equal to 0.0)
    nor True (equal to 1) nor 1+0j may take an earlier call's entry. Checked against
    PyTorch, on every entry point, in both orders."""
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    g = np.array([1.0, -3.0, 2.0, 0.5])
    t = torch.tensor(x, requires_grad=True)

    def expected(slope):
        y = torch.nn.functional.leaky_relu(t, slope)
        (d,) = torch.autograd.grad(y, t, torch.tensor(g))
        return y.detach().numpy(), d.numpy() / g

    def got(slope):
        if entry == "backward":
            return fastact.leaky_relu_backward(g, x, slope) / g
        if entry == "forward_backward":
            return fastact.leaky_relu_forward_backward(x, slope)
        return cases.call(entry, "leaky_relu", x, {"negative_slope": slope})

    for order in ((0.0, -0.0, 0.0, 0, -0.0), (-0.0, 0.0, 0, -0.0)):
        for slope in order:
            want = expected(float(slope))
            want = {"forward": want[0], "grad": want[1], "backward": want[1],
                    "forward_backward": want}[entry]
            assert np.array_equal(np.signbit(got(slope)), np.signbit(want)), slope
            assert np.array_equal(got(slope), want), slope
    for slope in (1, 1.0, 0.5):                    # remembered, then the look-alikes
        got(slope)
    for bad in (True, np.True_, 1 + 0j, complex(0.5, 0)):
        with pytest.raises(TypeError, match="negative_slope"):
            got(bad)


def test_parameters_of_every_kind_after_many_values():
    """Past the number of parameter sets fastact remembers, calls still compute with
    their own parameters; defaults given explicitly equal defaults left out."""
    x = np.linspace(-3, 3, 25)
    for i in range(600):
        slope = i / 7.0
        assert np.array_equal(fastact.leaky_relu(x, slope), np.where(x > 0, x, x * slope))
    assert np.array_equal(fastact.softplus(x), fastact.softplus(x, 1.0, 20.0))
    assert np.array_equal(fastact.softplus(x, 2.0), fastact.softplus(x, beta=2, threshold=20))
    assert not np.array_equal(fastact.softplus(x), fastact.softplus(x, 2.0))
    assert np.array_equal(fastact.clipped_relu(x, max_value=1.0), np.clip(x, 0.0, 1.0))
    assert np.array_equal(fastact.clipped_relu(x), np.maximum(x, 0.0))
    assert np.array_equal(fastact.gelu(x, approximate="tanh"), fastact.gelu(x, "tanh"))
    assert not np.array_equal(fastact.gelu(x, approximate="tanh"), fastact.gelu(x))


def test_y_when_says_where_backward_takes_y():
    """An activation whose backward takes y= for some parameters (or y dtypes) only says so
    in the table (y_when, shown by the docs); the others take it for every parameter they
    accept, in every dtype."""
    y_dtypes = (None, "float16", "bfloat16")
    for dtype in ("float32", "float64"):
        for name, params in cases.param_sweep(dtype):
            act = ACTIVATIONS_TABLE[fastact.ACTIVATIONS.index(name)]
            obj = fastact.get(name, **params)
            if KERNELS[obj._kernel].y_form is not None and not act.y_when:
                assert all(KERNELS[obj._kernel].takes_y(obj._params, t) for t in y_dtypes), \
                    (name, params)
    for act in ACTIVATIONS_TABLE:
        if act.y_when:
            assert any(not KERNELS[fastact.get(n, **p)._kernel].takes_y(
                fastact.get(n, **p)._params, t)
                for n, p in cases.param_sweep("float64") if n == act.name
                for t in y_dtypes), act.name


def test_kernel_parameter_names_are_the_c_functions():
    """The table's names of each kernel's parameters are the names its C function
    (fa_activations_impl.h) declares, in order: one word for a parameter in every layer."""
    import os
    import re
    src = os.path.join(os.path.dirname(fastact.__file__), "_src", "fa_activations_impl.h")
    if not os.path.exists(src):
        pytest.skip("C sources not in this tree")
    declared = {m.group(1): tuple(n.strip() for n in m.group(3).split(",") if n.strip())
                for m in re.finditer(r"S\((\w+)\)\(T x, FA_P(\d)\(T((?:, \w+)*)\)",
                                     open(src).read())}
    assert declared == {k.name: k.params for k in KERNELS}


def test_base_classes_are_not_activations():
    """The base classes (ActivationFunction, GatedFunction, SoftmaxFunction) made
    directly raise TypeError naming what to make, not an AttributeError or KeyError."""
    from fastact._api_gated import GatedFunction
    from fastact._api_softmax import SoftmaxFunction
    for base in (fastact.ActivationFunction, GatedFunction, SoftmaxFunction):
        with pytest.raises(TypeError, match="base class"):
            base()
    assert isinstance(fastact.GELU(), fastact.ActivationFunction)
    assert isinstance(fastact.GLU(), GatedFunction) and isinstance(fastact.Softmax(), SoftmaxFunction)
