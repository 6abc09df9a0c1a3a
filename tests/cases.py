"""The activations and parameter sets every test runs over, with their kinks."""
import fastact

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
]


def case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def kinks(name, params):
    """Points where the activation or its derivative changes formula."""
    points = [0.0]
    if name in ("hardsigmoid", "hardswish"):
        points += [-3.0, 3.0]
    if name == "hardtanh":
        points += [params.get("min_val", -1.0), params.get("max_val", 1.0)]
    if name == "relu6":
        points += [6.0]
    if name in ("softshrink", "hardshrink"):
        lam = params.get("lambd", 0.5)
        points += [lam, -lam]
    if name == "threshold":
        points += [params["threshold"]]
    if name == "softplus":
        points += [params.get("threshold", 20.0) / params.get("beta", 1.0)]
    if name == "hardswish":
        points += [-1.5]
    return points


ENTRY_POINTS = ("forward", "grad", "backward", "forward_backward")


def call(entry, name, x, params, grad_output=None, **kw):
    """fastact's entry point ('forward', 'grad', 'backward', ...) for a case; grad_output
    is used by 'backward' only."""
    suffix = {"forward": "", "grad": "_grad", "backward": "_backward",
              "forward_backward": "_forward_backward"}[entry]
    f = getattr(fastact, name + suffix)
    return f(grad_output, x, **params, **kw) if entry == "backward" else f(x, **params, **kw)
