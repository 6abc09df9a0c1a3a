"""Build fastact's compiled backend.

Extensions:
  fastact._runner            the per-call fast path and thread control (baseline flags)
  fastact._kernels_<level>   the loops, one module per SIMD level, from one template
                             (fastact/_src/_kernels.pyx.in rendered over the kernel table)

Levels: 'baseline' always; on x86-64 also 'avx2' (AVX2 + FMA) and 'avx512'
(AVX-512 F/DQ/BW/VL). fastact picks the best one the CPU runs at import.

Environment:
  FASTACT_DISABLE_OPENMP=1   build without OpenMP (as if the compiler lacked it)
  FASTACT_SIMD_LEVELS=a,b    build only these levels (default: all the platform has)
  FASTACT_SANITIZE=1         AddressSanitizer + UBSan debug build (docs/robustness.md)
"""
import functools
import glob
import os
import platform
import shutil
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join("fastact", "_src")
GEN = os.path.join("build", "generated")


def _load(filename):
    """A module of the fastact package by path, without importing the package."""
    import importlib.util

    name = "_fastact_build_" + filename[:-3].lstrip("_")
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "fastact", filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module             # dataclasses look their module up
    spec.loader.exec_module(module)
    return vars(module)


FLAGS = _load("_build_flags.py")


def _levels(msvc):
    """SIMD level -> extra compile flags (the levels FASTACT_SIMD_LEVELS selects)."""
    levels = FLAGS["level_flags"](platform.machine(), msvc)
    wanted = os.environ.get("FASTACT_SIMD_LEVELS")
    if wanted:
        names = [w.strip() for w in wanted.split(",") if w.strip()]
        unknown = set(names) - set(levels)
        if unknown:
            raise SystemExit(f"FASTACT_SIMD_LEVELS: unknown level(s) {sorted(unknown)}; "
                             f"this platform has {sorted(levels)}")
        levels = {k: v for k, v in levels.items() if k in names or k == "baseline"}
    return levels


def _openmp_flags(compiler):
    """(compile, link) flags enabling OpenMP, or None when the compiler cannot build and
    link a small OpenMP program (scikit-learn's approach)."""
    if os.environ.get("FASTACT_DISABLE_OPENMP", "0") not in ("", "0"):
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    code = textwrap.dedent("""\
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return n == omp_get_max_threads() ? 0 : 1;
        }
        """)
    for cflags, lflags in candidates:
        tmp = tempfile.mkdtemp()
        try:
            src = os.path.join(tmp, "omp_test.c")
            with open(src, "w") as f:
                f.write(code)
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objs, "omp_test", output_dir=tmp, extra_postargs=lflags)
            return cflags, lflags
        except Exception:
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


def _accepts(compiler, flag):
    """Whether the compiler builds a trivial file with this flag."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "flag_test.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        compiler.compile([src], output_dir=tmp, extra_postargs=[flag, "-Werror"])
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compiler_version(compiler):
    """The C compiler's first line of --version (or its type, e.g. 'msvc')."""
    import subprocess

    command = getattr(compiler, "compiler", None)
    if not command:
        return compiler.compiler_type
    try:
        out = subprocess.run(command[:1] + ["--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return command[0]
    return out.splitlines()[0].strip() if out else command[0]


def _render_kernels(level, table):
    from Cython import Tempita

    with open(os.path.join(HERE, SRC, "_kernels.pyx.in")) as f:
        template = Tempita.Template(f.read())
    text = template.substitute(
        level=level, kernels=table["KERNELS"], entries=table["ENTRIES"],
        entry_code=table["ENTRY_CODE"], entry_statement=table["entry_statement"],
        has_entry=table["has_entry"], segments=table["SEGMENTS"],
        types=table["C_TYPES"], seg_types=table["C_TYPES"])
    path = os.path.join(GEN, "fastact", f"_kernels_{level}.pyx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for name in ("__init__.py",):
        open(os.path.join(GEN, "fastact", name), "a").close()
    old = open(path).read() if os.path.exists(path) else None
    if old != text:                      # keep mtimes for incremental builds
        with open(path, "w") as f:
            f.write(text)
    return path


class BuildExt(build_ext):
    """Generate, cythonize and compile the extensions with per-level flags."""

    def run(self):
        from Cython.Build import cythonize
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        compiler = new_compiler(compiler=self.compiler)
        customize_compiler(compiler)
        msvc = compiler.compiler_type == "msvc"
        omp = _openmp_flags(compiler)
        table = _load("_activations.py")
        sanitize = bool(os.environ.get("FASTACT_SANITIZE"))
        omp_c, omp_l = omp if omp else ([], [])
        threads = [] if msvc else ["-pthread"]      # the runner's pool (fa_pool.h)
        accepts = functools.lru_cache(maxsize=None)(lambda flag: _accepts(compiler, flag))

        def compile_args(level):
            """The project's flags for a level (FLAGS' compile_flags), then OpenMP's."""
            return FLAGS["compile_flags"](level, platform.machine(), accepts=accepts,
                                          msvc=msvc, sanitize=sanitize) + omp_c

        link = ["-fsanitize=address,undefined"] if sanitize else []
        numpy_include = __import__("numpy").get_include()
        headers = sorted(glob.glob(os.path.join(SRC, "*.h")))
        # the table's sizes (fa_table.h), from the activation table
        macros = [(k, str(v)) for k, v in table["C_MACROS"].items()]

        extensions = [Extension(
            "fastact._runner", [os.path.join("fastact", "_runner.pyx")],
            include_dirs=[numpy_include, os.path.join(HERE, SRC)], depends=headers,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] + macros,
            extra_compile_args=compile_args("baseline") + threads,
            extra_link_args=link + omp_l + threads)]
        self.level_flags = {}
        for level in _levels(msvc):
            self.level_flags[level] = " ".join(compile_args(level))
            extensions.append(Extension(
                f"fastact._kernels_{level}", [_render_kernels(level, table)],
                include_dirs=[os.path.join(HERE, SRC)], depends=headers, define_macros=macros,
                extra_compile_args=compile_args(level), extra_link_args=link + omp_l))
        self.extensions = cythonize(
            extensions, build_dir=os.path.join("build", "cython"), quiet=True,
            nthreads=int(os.environ.get("FASTACT_CYTHON_JOBS", os.cpu_count() or 1)),
            compiler_directives={"language_level": 3})
        for ext in self.extensions:          # setuptools' finalize_options bookkeeping
            ext._full_name = ext.name
            ext._links_to_dynamic = ext._needs_stub = False
            ext._file_name = self.get_ext_filename(ext.name)
            self.ext_map[ext.name] = self.ext_map[ext.name.split(".")[-1]] = ext
        self.openmp = omp is not None
        self.compiler_version = _compiler_version(compiler)
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1
        self._remove_other_levels(set(self.level_flags))
        super().run()
        self._write_build_config()

    def _remove_other_levels(self, levels):
        """Delete kernel modules of levels this build does not make, left in build/lib (or
        the source tree) by an earlier build: setuptools would package them."""
        dirs = [os.path.join(self.build_lib, "fastact")]
        if self.inplace:
            dirs.append(os.path.join(HERE, "fastact"))
        for directory in dirs:
            for path in glob.glob(os.path.join(directory, "_kernels_*")):
                level = os.path.basename(path)[len("_kernels_"):].split(".")[0]
                if level not in levels and not path.endswith((".pyx", ".c")):
                    os.remove(path)

    def _write_build_config(self):
        """fastact/_build_config.py: what show_config() reports about this build."""
        text = ("# Generated by setup.py at build time.\n"
                f"OPENMP = {self.openmp!r}\n"
                f"LEVEL_FLAGS = {self.level_flags!r}\n"
                f"COMPILER = {self.compiler_version!r}\n")
        targets = [os.path.join(self.build_lib, "fastact")]
        if self.inplace:
            targets = [os.path.join(HERE, "fastact")]
        for directory in targets:
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "_build_config.py"), "w") as f:
                f.write(text)


# Placeholders: BuildExt.run replaces them with the generated, cythonized extensions.
setup(
    ext_modules=[Extension("fastact._runner", [os.path.join("fastact", "_runner.pyx")])],
    cmdclass={"build_ext": BuildExt},
)
