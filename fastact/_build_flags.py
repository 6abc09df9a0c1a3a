"""Compiler flags of fastact's kernels and the SIMD levels: the one place that setup.py,
the vectorization check and the cross-compiled C driver (tools/) take them from, all
through ``compile_flags``. Loaded by file path, without importing fastact, so the build
can read it; fastact._backend imports LEVELS.

IEEE semantics are kept (no -ffast-math: NaN and inf must propagate); -ffp-contract=off
because the math uses FMA only where it says so (FA_FMA), so that every level and
platform with FMA gives the same bits. -g0 overrides the -g of Python's CFLAGS: debug
information was four fifths of a kernel module's object file and a quarter of its
compile time.
"""
BASE = ["-O3", "-g0", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
        "-Wno-unused-function", "-Werror=implicit-function-declaration"]
# passed where the compiler accepts them (setup.py probes each):
# - every kernel loop is long and elementwise: vectorize it even where GCC's cost model
#   hesitates (it rejected gelu's loop, at a 10x cost);
# - Python's CFLAGS, which setuptools puts first, bring -fwrapv, under which clang cannot
#   count the iterations of an OpenMP loop (its `iv <= ub` step may wrap) and leaves every
#   prange loop scalar; -fno-wrapv after them undoes it (the kernels' integer arithmetic
#   is unsigned)
OPTIONAL = ["-fvect-cost-model=unlimited", "-fno-wrapv"]
MSVC_BASE = ["/O2", "/fp:precise"]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
            "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]

# SIMD level -> extra flags, per architecture (the levels fastact dispatches between at
# run time on x86-64; one level elsewhere)
X86_64 = {
    "baseline": [],
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma",
               "-mf16c", "-mprefer-vector-width=512"],
}
X86_64_MSVC = {"baseline": [], "avx2": ["/arch:AVX2"], "avx512": ["/arch:AVX512"]}
# aarch64: NEON (and FMA) is in the base architecture; SVE is checked by
# tools/kernel_driver.py, not built as a level
AARCH64 = {"baseline": []}
AARCH64_CROSS = {"neon": ["-march=armv8-a"], "sve": ["-march=armv8-a+sve"]}

# the x86-64 levels, lowest first: fastact._runner's CPU check returns an index in this
LEVELS = tuple(X86_64)


def level_flags(machine, msvc=False):
    """SIMD level -> extra flags for a machine (platform.machine(); 'aarch64-cross' for
    tools/kernel_driver.py's cross-compiled targets)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "x64"):
        return dict(X86_64_MSVC if msvc else X86_64)
    if machine == "aarch64-cross":
        return dict(AARCH64_CROSS)
    return dict(AARCH64 if machine in ("aarch64", "arm64") else {"baseline": []})


def compile_flags(level, machine, accepts=lambda flag: True, msvc=False, sanitize=False):
    """Every project compile flag of a level's kernel module (of fastact._runner: level
    'baseline'): the base set (MSVC's, or the sanitizer build's), the optional flags the
    compiler accepts (accepts(flag), as probed by the caller), then the level's flags."""
    extra = level_flags(machine, msvc)[level]
    if msvc:
        return MSVC_BASE + extra
    if sanitize:
        return SANITIZE + extra
    return BASE + [f for f in OPTIONAL if accepts(f)] + extra
