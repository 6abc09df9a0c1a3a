"""Which backend computes, and at which SIMD level.

The compiled backend is fastact._runner driving one of the ``_kernels_<level>`` modules
(the same loops compiled for baseline x86-64, AVX2+FMA, and AVX-512). At import the best
level the CPU runs is chosen; FASTACT_SIMD=<level> asks for a lower one and
FASTACT_BACKEND=numpy for the pure-NumPy fallback. The active choice is the module-level
``active`` object, which fastact._api reads on every call.
"""
import importlib
import os
import warnings

from . import _activations, _numpy_backend

LEVELS = ("baseline", "avx2", "avx512")
BACKENDS = ("compiled", "numpy")

# Elements below which a kernel of cost 1 runs on one thread; a kernel of cost c switches
# at GRAIN / c. Measured with benchmarks/thread_threshold.py on a 2-core AVX-512 machine:
# two threads start to pay at ~64K elements for relu, ~7K for elu/tanh, ~3.5K for gelu.
GRAIN = 1 << 16


def _no_fast_path(*args):
    return None


class Backend:
    """What fastact._api calls: the fast paths (None when absent) and launch."""

    def __init__(self, name, launch, call1=_no_fast_path, call2=_no_fast_path,
                 call_fb=_no_fast_path):
        self.name, self.launch = name, launch
        self.call1, self.call2, self.call_fb = call1, call2, call_fb


NUMPY = Backend("numpy", _numpy_backend.launch)

try:
    from . import _runner
except ImportError as exc:     # no compiled extension: a source tree that was not built
    _runner, _IMPORT_ERROR = None, exc
else:
    _IMPORT_ERROR = None

COMPILED = None if _runner is None else Backend(
    "compiled", _runner.launch, _runner.call1, _runner.call2, _runner.call_fb)

_kernel_modules = {}
level = None          # SIMD level in use by the compiled backend
active = NUMPY


def built_levels():
    """SIMD levels this build has kernels for."""
    found = []
    for name in LEVELS:
        try:
            _kernel_modules[name] = importlib.import_module(f"fastact._kernels_{name}")
        except ImportError:
            continue
        found.append(name)
    return tuple(found)


def supported_levels():
    """Built levels this CPU can run."""
    if _runner is None:
        return ()
    best = LEVELS.index(_runner.cpu_level())
    return tuple(lv for lv in built_levels() if LEVELS.index(lv) <= best)


def kernel_module(name=None):
    return _kernel_modules[name or level]


def set_simd_level(name):
    """Run the compiled kernels built for this level ('baseline', 'avx2', 'avx512');
    returns the previous level. ValueError if not built or not supported by this CPU."""
    global level
    if name not in supported_levels():
        raise ValueError(f"SIMD level {name!r} is not available here; "
                         f"this build and CPU support {supported_levels()}")
    module = _kernel_modules[name]
    if module.KERNELS != tuple(k.name for k in _activations.KERNELS):
        raise ImportError(f"fastact._kernels_{name} was built from another kernel table; "
                          f"rebuild fastact")
    grains = [max(1024, GRAIN // k.cost) for k in _activations.KERNELS]
    _runner.use_table(module.TABLE_CAPSULE, grains)
    previous, level = level, name
    return previous


def set_backend(name):
    """Compute with 'compiled' (the default when built) or 'numpy'; returns the previous
    backend's name."""
    global active
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "compiled" and COMPILED is None:
        raise ImportError(f"fastact's compiled extension is not available: {_IMPORT_ERROR}")
    previous = active.name
    active = COMPILED if name == "compiled" else NUMPY
    return previous


def _init():
    global active
    requested = os.environ.get("FASTACT_BACKEND", "").strip().lower() or "auto"
    if requested not in BACKENDS + ("auto",):
        raise ImportError(f"FASTACT_BACKEND must be 'compiled', 'numpy' or unset, "
                          f"got {requested!r}")
    if _runner is None:
        if requested == "compiled":
            raise ImportError(f"FASTACT_BACKEND=compiled but the extension is missing: "
                              f"{_IMPORT_ERROR}")
        if requested == "auto":
            warnings.warn(f"fastact's compiled extension is missing ({_IMPORT_ERROR}); "
                          f"using the NumPy fallback", RuntimeWarning, stacklevel=3)
        return
    levels = supported_levels()
    if not levels:
        raise ImportError("fastact's kernel modules are missing; rebuild fastact")
    forced = os.environ.get("FASTACT_SIMD", "").strip().lower()
    if forced and forced not in levels:
        warnings.warn(f"FASTACT_SIMD={forced!r} is not available (this build and CPU "
                      f"support {levels}); using {levels[-1]!r}", RuntimeWarning, stacklevel=3)
        forced = ""
    set_simd_level(forced or levels[-1])
    if requested != "numpy":
        active = COMPILED


_init()
