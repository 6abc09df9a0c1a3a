"""Compiler flags of fastact's kernels: the one list that setup.py, the vectorization
check and the cross-compiled C driver (tools/) all use. Loaded by file path, without
importing fastact, so the build can read it.

IEEE semantics are kept (no -ffast-math: NaN and inf must propagate); -ffp-contract=off
because the math uses FMA only where it says so (FA_FMA), so that every level and
platform with FMA gives the same bits.
"""
BASE = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
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
