"""What fastact is running with: backend(), simd_level(), show_config()."""
import sys

import numpy as np

from . import _backend, _threads
from ._version import __version__


def backend():
    """'compiled' or 'numpy': the backend computing now."""
    return _backend.active.name


def simd_level():
    """The SIMD level of the compiled kernels in use ('baseline', 'avx2', 'avx512'), or
    None without the compiled extension."""
    return _backend.level


def config():
    """show_config()'s facts, as a dict."""
    info = {"version": __version__, "backend": backend(), "numpy": np.__version__,
            "python": sys.version.split()[0], "threads": _threads.get_num_threads()}
    runner = _backend._runner
    if runner is None:
        info["compiled"] = f"not available ({_backend._IMPORT_ERROR})"
        return info
    try:
        from . import _build_config as build
    except ImportError:
        build = None
    module = _backend.kernel_module()
    info.update({
        "simd_level": _backend.level, "cpu_level": runner.cpu_level(),
        "built_levels": _backend.built_levels(), "simd": module.SIMD, "fma": module.FMA,
        "openmp": module.OPENMP and runner.OPENMP,
        "compiler": getattr(build, "COMPILER", "unknown"),
        "flags": getattr(build, "LEVEL_FLAGS", {}).get(_backend.level, "unknown"),
    })
    return info


def show_config(file=None):
    """Print the version, backend, OpenMP, threads, SIMD level and build flags."""
    c = config()
    lines = [f"fastact {c['version']} (numpy {c['numpy']}, python {c['python']})",
             f"  backend:     {c['backend']}"]
    if "simd_level" in c:
        lines += [
            f"  SIMD level:  {c['simd_level']} ({c['simd']}{', FMA' if c['fma'] else ''}); "
            f"CPU supports {c['cpu_level']}, built {', '.join(c['built_levels'])}",
            f"  OpenMP:      {'on' if c['openmp'] else 'off (single-threaded build)'}",
            f"  threads:     {c['threads']}",
            f"  compiler:    {c['compiler']}",
            f"  build flags: {c['flags']}",
        ]
    else:
        lines.append(f"  compiled:    {c['compiled']}")
    print("\n".join(lines), file=file or sys.stdout)
