"""fastact: neural-network activation functions and their gradients on NumPy arrays.

For every elementwise activation of torch.nn.functional, and those of jax.nn, Keras and
ONNX it lacks (``fastact.ACTIVATIONS``):
``NAME(x)``, ``NAME_grad(x)``, ``NAME_backward(grad_output, x)``,
``NAME_forward_backward(x)`` and a class (``fastact.GELU(approximate='tanh')``), with
PyTorch's names, parameters and values, computed by compiled, vectorized, multithreaded
kernels (or NumPy, see ``fastact.backend()``). Beyond elementwise: the gated units
(``fastact.GATED``: glu, swiglu, geglu, reglu), prelu, rrelu (``fastact.WEIGHTED``) and
the softmax family along an axis (``fastact.SOFTMAX``: softmax, log_softmax, softmin).
Documentation: docs/ (docs/index.md).
"""
from . import _api, _api_gated, _api_softmax
from ._api import ACTIVATIONS, ActivationFunction, get
from ._api_gated import GATED, WEIGHTED, GatedFunction
from ._backend import set_backend, set_simd_level
from ._config import backend, show_config, simd_level
from ._threads import get_num_threads, set_num_threads, threads
from ._version import __version__

globals().update({name: _api._NAMESPACE[name] for name in _api.PUBLIC})
globals().update({name: _api_gated._NAMESPACE[name] for name in _api_gated.PUBLIC})
globals().update({name: _api_softmax._NAMESPACE[name] for name in _api_softmax.PUBLIC})
# other libraries' names of the same functions (jax's hard_silu is hardswish)
ALIASES = {alias + suffix: name + suffix for alias, name in _api.ALIASES.items()
           for suffix in ("", "_grad", "_backward", "_forward_backward")}
globals().update({alias: _api._NAMESPACE[name] for alias, name in ALIASES.items()})

__all__ = sorted(["ACTIVATIONS", "ALIASES", "GATED", "WEIGHTED", "ActivationFunction", "get",
                  "backend", "set_backend", "simd_level", "set_simd_level", "show_config",
                  "get_num_threads", "set_num_threads", "threads", "__version__"] + _api.PUBLIC + list(ALIASES)
                 + _api_gated.PUBLIC + _api_softmax.PUBLIC)
