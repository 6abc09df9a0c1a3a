"""What fastact is running with: backend(), simd_level(), show_config()."""
import sys

import numpy as np

from . import _backend, _threads
from ._version import __version__


def backend():
    """'compiled' or 'numpy': the backend computing now."""
    return _backend.active.name


def simd_level():
    """The SIMD level of the compiled kernels computing now ('baseline', 'avx2',
    'avx512'), or None when the NumPy backend computes."""
    return _backend.level if _backend.active is _backend.COMPILED else None


def config():
    """show_config()'s facts, as a dict."""
    info = {"version": __version__, "backend": backend(), "numpy": np.__version__,
            "python": sys.version.split()[0], "threads": _threads.get_num_threads(),
            "simd_level": simd_level()}
    runner = _backend._runner
    if runner is None:
        info["compiled"] = f"not available ({_backend._IMPORT_ERROR})"
        return info
    try:
        from . import _build_config as build
    except ImportError:
        build = None
    info.update({
        "cpu_levels": _backend.cpu_levels(), "built_levels": _backend.built_levels(),
        "openmp": runner.OPENMP and getattr(build, "OPENMP", True),
        "compiler": getattr(build, "COMPILER", "unknown"),
    })
    if _backend.level is not None:
        module = _backend.kernel_module()
        info.update({"kernel_level": _backend.level, "simd": module.SIMD, "fma": module.FMA,
                     "openmp": module.OPENMP and runner.OPENMP,
                     "flags": getattr(build, "LEVEL_FLAGS", {}).get(_backend.level, "unknown")})
    return info


def show_config(file=None):
    """Print the version, backend, SIMD levels (built, run by this CPU, in use), OpenMP,
    threads, compiler and build flags."""
    c = config()
    lines = [f"fastact {c['version']} (numpy {c['numpy']}, python {c['python']})",
             f"  backend:     {c['backend']}"]
    if "compiled" in c:
        lines.append(f"  compiled:    {c['compiled']}")
    else:
        if "kernel_level" in c:
            use = (f"{c['kernel_level']} ({c['simd']}{', FMA' if c['fma'] else ''})"
                   + ("" if c["simd_level"] else ", not in use: the NumPy backend computes"))
        else:
            use = "none loaded (the NumPy backend computes)"
        lines += [
            f"  SIMD level:  {use}",
            f"  levels:      built {', '.join(c['built_levels']) or 'none'}; "
            f"this CPU runs {', '.join(c['cpu_levels'])}",
            f"  OpenMP:      {'on' if c['openmp'] else 'off (single-threaded build)'}",
            f"  threads:     {c['threads']}",
            f"  compiler:    {c['compiler']}",
            f"  build flags: {c.get('flags', 'n/a')}",
        ]
    print("\n".join(lines), file=file or sys.stdout)
