"""The activations and parameter sets every test runs over, with their kinks."""
import fastact
from fastact._activations import ACTIVATIONS_BY_NAME

# (activation, params): the defaults of every activation, plus other parameters.
CASES = [(name, {}) for name in fastact.ACTIVATIONS if name != "threshold"] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.5}),
    ("elu", {"alpha": 0.5}),
    ("elu", {"alpha": -0.7}),
    ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("softplus", {"beta": 0.5, "threshold": 20.0}),
    ("softplus", {"beta": -1.0, "threshold": 20.0}),
    ("celu", {"alpha": 2.0}),
    ("celu", {"alpha": 0.3}),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}),
    ("hardtanh", {"min_val": 0.5, "max_val": 0.5}),
    ("softshrink", {"lambd": 1.5}),
    ("softshrink", {"lambd": 0.0}),
    ("hardshrink", {"lambd": 1.5}),
    ("hardshrink", {"lambd": -0.5}),
    ("threshold", {"threshold": 0.5, "value": -2.0}),
    ("threshold", {"threshold": -1.0, "value": 3.0}),
    ("squareplus", {"b": 0.25}),
    ("squareplus", {"b": 100.0}),
    ("swish", {"beta": 2.5}),
    ("swish", {"beta": -0.75}),
    ("swish", {"beta": 0.0}),
    ("clipped_relu", {"negative_slope": 0.2, "max_value": 6.0, "threshold": 0.5}),
    ("clipped_relu", {"negative_slope": -0.5, "max_value": -1.0, "threshold": -2.0}),
]

# hardtanh's bounds (min_val, max_val) of every kind for the 16-bit types: values of both,
# of bfloat16 only (below float16's range), of float16 only (11 significant bits), of
# neither (0.1: float16(0.1) < 0.1f < bfloat16(0.1); -0.3 and 0.7 round the other way),
# one of each, past float16's range, infinite, and an empty interval at a non-value
HARDTANH_BOUNDS = [(-2.0, 3.0), (-2.0 ** -30, 2.0 ** -30), (-1.0009765625, 1.0009765625),
                   (-0.1, 0.1), (-0.3, 0.7), (-1.0, 0.7), (-1e30, 1e30),
                   (-float("inf"), float("inf")), (0.1, 0.1)]


def case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def kinks(name, params):
    """Points where the activation or its derivative changes formula (the table's)."""
    return list(ACTIVATIONS_BY_NAME[name].kinks_at(params))


def crossing(name, params):
    """Where the derivative crosses zero (None if it does not): there it is held to an
    absolute bound (docs/contract.md, Accuracy)."""
    points = ACTIVATIONS_BY_NAME[name].crossings_at(params)
    return points[0] if points else None


ENTRY_POINTS = ("forward", "grad", "backward", "forward_backward")


def call(entry, name, x, params, grad_output=None, **kw):
    """fastact's entry point ('forward', 'grad', 'backward', ...) for a case; grad_output
    is used by 'backward' only."""
    suffix = {"forward": "", "grad": "_grad", "backward": "_backward",
              "forward_backward": "_forward_backward"}[entry]
    f = getattr(fastact, name + suffix)
    return f(grad_output, x, **params, **kw) if entry == "backward" else f(x, **params, **kw)


# Parameter magnitudes of both signs for the sweep of every numeric parameter (PyTorch
# accepts them all): tiny, around 1, large, and past 2^64 (where a product with the
# 2^64-scaled tail e^x 2^64 would overflow), and near the largest finite value (elu's
# m alpha overflowed on the way to alpha e^x; squareplus's x^2 + b); float64 also near
# its own extremes.
PARAM_VALUES = {
    "float32": (1e-45, 1e-39, 1e-30, 0.3, 1.0, 3.7, 1e20, 1e30, 3e38),
    "float64": (5e-324, 1e-310, 1e-300, 1e-30, 0.3, 1.0, 3.7, 1e20, 1e30, 1e300, 1.7e308),
}


def param_sweep(dtype_name):
    """(activation, params) for every numeric parameter of every activation set to each
    value of PARAM_VALUES, either sign, and 0, with the others at their defaults (or the
    first CASES entry's, where required); combinations the activation refuses
    (ValueError) are left out."""
    from fastact._activations import ACTIVATIONS_TABLE, REQUIRED
    base_cases = dict(reversed([(n, p) for n, p in CASES if p]))
    out = []
    for act in ACTIVATIONS_TABLE:
        base = {k: v for k, v in act.params if v is not REQUIRED and not isinstance(v, str)}
        base.update(base_cases.get(act.name, {}) if any(v is REQUIRED for _, v in act.params)
                    else {})
        for pname, default in act.params:
            if isinstance(default, str):
                continue
            for mag in PARAM_VALUES[dtype_name]:
                for value in (mag, -mag, 0.0) if mag == 1.0 else (mag, -mag):
                    params = {**base, pname: value}
                    try:
                        fastact.get(act.name, **params)
                    except ValueError:
                        continue
                    out.append((act.name, params))
    return out


# For the tests of assigned parameters: a valid value other than the default, by
# parameter name, and one the activation refuses (ValueError)
NEW_VALUES = {"negative_slope": 0.5, "alpha": 2.5, "approximate": "tanh", "beta": 3.0,
              "threshold": 0.75, "min_val": -0.25, "max_val": 2.0, "lambd": 1.25,
              "value": -3.0, "b": 2.0, "max_value": 3.0}


def bad_value(name, pname):
    return {"approximate": "fast", "min_val": 5.0, "max_val": -5.0, "b": 0.0,
            "beta": 0.0 if name == "softplus" else float("nan"),
            "lambd": -1.0 if name == "softshrink" else float("nan")}.get(pname, float("nan"))
