"""Which backend computes, and at which SIMD level.

The compiled backend is fastact._runner (built for baseline x86-64, so it loads on any
CPU) driving one of the ``_kernels_<level>`` modules: the same loops compiled for
baseline, AVX2+FMA and AVX-512. A level's module is imported only after _runner has
checked that the CPU runs that level: its module init already executes instructions of
its level, so importing it on a CPU without them would kill the process (SIGILL).
At import the best level the CPU runs is chosen; FASTACT_SIMD=<level> asks for a lower
one and FASTACT_BACKEND=numpy for the pure-NumPy fallback. The active choice is the
module-level ``active`` object, which fastact._arrays reads on every call.
"""
import importlib
import importlib.util
import os
import sys
import warnings

from . import _activations, _numpy_backend
from ._build_flags import LEVELS

BACKENDS = ("compiled", "numpy")

# Elements below which a kernel of cost 1 runs on one thread; a kernel of cost c switches
# at GRAIN / c. Measured with benchmarks/thread_threshold.py on a 2-core AVX-512 machine:
# two threads start to pay at ~64K elements for relu, ~7K for elu/tanh, ~3.5K for gelu.
GRAIN = 1 << 16

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_user(message, category=RuntimeWarning):
    """warnings.warn pointing at the user's line: the first frame outside fastact (and
    outside importlib, whose frames warnings skips when counting)."""
    frame, level = sys._getframe(1), 2
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            frame = frame.f_back
            continue
        if not name.startswith(_PACKAGE_DIR):
            break
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class Backend:
    """What fastact._arrays calls, the same for both: fast(kernel, entry, a, b, o1, o2,
    params) takes the common case or returns None (softmax_fast: fastact._softmax's); launch(kernel, entry, inputs, outputs,
    params) runs prepared flat arrays."""

    def __init__(self, name, module):
        self.name, self.fast, self.launch = name, module.fast, module.launch
        self.softmax_fast = module.softmax_fast     # the softmax family's fast path
        # launch_at(kernel, entry, dtype code, n, addresses..., params): the compiled
        # backend's launch on raw memory (fastact.torch's tensors); None for NumPy's
        self.launch_at = getattr(module, "launch_at", None)


NUMPY = Backend("numpy", _numpy_backend)

try:
    from . import _runner
except ImportError as exc:     # no compiled extension: a source tree that was not built
    _runner, _IMPORT_ERROR = None, exc
else:
    _IMPORT_ERROR = None

COMPILED = None if _runner is None else Backend("compiled", _runner)


class _Dtype:      # the dtype code's name and size, for the message (bfloat16 needs no ml_dtypes)
    def __init__(self, name, itemsize):
        self.name, self.itemsize = name, itemsize


_CODES = {0: _Dtype("float32", 4), 1: _Dtype("float64", 8), 2: _Dtype("float16", 2),
          3: _Dtype("bfloat16", 2)}

if _runner is not None:
    _runner.set_nonzero([k.nonzero_mask() for k in _activations.KERNELS],
                        lambda kernel, params, code: _activations.rounding_error(
                            kernel, params, _CODES[code]))

_kernel_modules = {}  # level -> imported module (only levels this CPU runs)
level = None          # SIMD level loaded into the compiled backend (None: none yet)
active = NUMPY


def built_levels():
    """SIMD levels this build has kernel modules for (looked up, not imported)."""
    return tuple(name for name in LEVELS
                 if importlib.util.find_spec(f"fastact._kernels_{name}") is not None)


def cpu_levels():
    """SIMD levels this CPU runs (whether built or not)."""
    if _runner is None:
        return ()
    return LEVELS[:_runner.cpu_level() + 1]


def supported_levels():
    """Built levels this CPU runs."""
    runs = cpu_levels()
    return tuple(lv for lv in built_levels() if lv in runs)


def kernel_module(name=None):
    """The imported kernel module of a level (default: the one in use)."""
    return _load(name or level)


def _load(name):
    """Import a level's kernel module; only ever called for a level the CPU runs."""
    module = _kernel_modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(f"fastact._kernels_{name}")
        except ImportError as exc:
            raise ImportError(f"fastact._kernels_{name} failed to load: {exc}") from exc
        if (module.KERNELS != tuple(k.name for k in _activations.KERNELS)
                or module.ENTRIES != _activations.ENTRIES
                or module.SEGMENTS != _activations.SEGMENTS):
            raise ImportError(f"fastact._kernels_{name} was built from another kernel "
                              f"table; rebuild fastact")
        _kernel_modules[name] = module
    return module


def set_simd_level(name):
    """Run the compiled kernels built for this level ('baseline', 'avx2', 'avx512');
    returns the previous level; the name in any case, as FASTACT_SIMD. ValueError if not
    built or not supported by this CPU."""
    global level
    if isinstance(name, str):
        name = name.strip().lower()
    if name not in supported_levels():
        raise ValueError(f"SIMD level {name!r} is not available here: this build has "
                         f"{built_levels()}, this CPU runs {cpu_levels()}")
    module = _load(name)
    grains = [max(1024, GRAIN // k.cost) for k in _activations.KERNELS]
    _runner.use_table(module.TABLE_CAPSULE, grains, module.SEG_CAPSULE,
                      len(_activations.SEGMENTS), module.SMX_CAPSULE)
    previous, level = level, name
    return previous


def _load_best(wanted=None):
    """Install the wanted level, else the best level that loads; a level that fails to
    load is reported with its error. ImportError if none loads."""
    levels = supported_levels()
    if not levels:
        raise ImportError(f"fastact's kernel modules are missing from {_PACKAGE_DIR} "
                          f"(built: {built_levels() or 'none'}; this CPU runs "
                          f"{cpu_levels()}); rebuild fastact")
    if wanted and wanted not in levels:
        warn_user(f"FASTACT_SIMD={wanted!r} is not available (this build has "
                  f"{built_levels()}, this CPU runs {cpu_levels()}); using {levels[-1]!r}")
        wanted = None
    errors = []
    for name in dict.fromkeys(([wanted] if wanted else []) + list(reversed(levels))):
        try:
            set_simd_level(name)
        except ImportError as exc:
            errors.append(str(exc))
            continue
        if errors:
            warn_user("; ".join(errors) + f"; using the {name!r} level")
        return
    raise ImportError("; ".join(errors))


def set_backend(name):
    """Compute with 'compiled' (the default when built) or 'numpy'; returns the previous
    backend's name. The name in any case, as FASTACT_BACKEND and set_simd_level."""
    global active
    if isinstance(name, str):
        name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "compiled":
        if COMPILED is None:
            raise ImportError(f"fastact's compiled extension is not available: "
                              f"{_IMPORT_ERROR}")
        if level is None:
            _load_best(os.environ.get("FASTACT_SIMD", "").strip().lower() or None)
    previous = active.name
    active = COMPILED if name == "compiled" else NUMPY
    return previous


def _init():
    requested = os.environ.get("FASTACT_BACKEND", "").strip().lower() or "auto"
    if requested not in BACKENDS + ("auto",):
        raise ImportError(f"FASTACT_BACKEND must be 'compiled', 'numpy' or unset, "
                          f"got {requested!r}")
    if _runner is None:
        if requested == "compiled":
            raise ImportError(f"FASTACT_BACKEND=compiled but the extension is missing: "
                              f"{_IMPORT_ERROR}")
        if requested == "auto":
            warn_user(f"fastact's compiled extension is missing ({_IMPORT_ERROR}); "
                      f"using the NumPy fallback")
        return
    if requested != "numpy":
        set_backend("compiled")


_init()
