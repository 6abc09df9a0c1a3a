"""Check that GCC vectorizes both loops (serial and OpenMP) of every generated kernel.

A kernel whose loop stops vectorizing still computes the right numbers, only 5-20x
slower, so no correctness test notices; this does. It recompiles the cythonized kernels
of one SIMD level (default: avx512) with -fopt-info-vec and maps the vectorized loops
back to the kernel functions. Run after a build (the .c files live in build/cython):

    python tools/check_vectorization.py [--level avx2]
"""
import argparse
import bisect
import os
import re
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from kernel_driver import FLAGS  # noqa: E402  (fastact/_build_flags.py, as setup.py reads it)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", default="avx512", choices=sorted(FLAGS.X86_64))
    args = ap.parse_args()
    src = os.path.join(ROOT, "build", "cython", "build", "generated", "fastact",
                       f"_kernels_{args.level}.c")
    if not os.path.exists(src):
        sys.exit(f"{src} not found: build fastact first")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "vec.txt")
        # -fno-ipa-icf: identical functions (relu's bwd and bwdy) keep a report each
        cmd = (["gcc"] + FLAGS.BASE + FLAGS.OPTIONAL + FLAGS.X86_64[args.level]
               + ["-fopenmp", "-fPIC", "-fno-ipa-icf", "-I", os.path.join(ROOT, "fastact", "_src"),
                  "-I", sysconfig.get_paths()["include"], "-c", src, "-o",
                  os.path.join(tmp, "k.o"), f"-fopt-info-vec-optimized={report}"])
        subprocess.run(cmd, check=True)
        lines = open(report).read().splitlines()
    text = open(src).read().splitlines()
    funcs = [(i, m.group(1)) for i, line in enumerate(text, 1) if "/*proto*/" not in line
             and (m := re.match(r"static void __pyx_f_\w+?_kernels_[a-z0-9]+?_(\w+)\(char const \*", line))]
    starts = [i for i, _ in funcs]
    counts = {name: 0 for _, name in funcs}
    for line in lines:
        m = re.search(r"\.c:(\d+):\d+: optimized: loop vectorized", line)
        if m:
            k = bisect.bisect(starts, int(m.group(1))) - 1
            if k >= 0:
                counts[funcs[k][1]] += 1
    # the serial and the OpenMP loop of each; linear's are copies that GCC turns into memcpy
    bad = [name for name, n in counts.items() if n < 2 and not name.startswith("linear_")]
    print(f"{len(funcs)} kernels at {args.level}: "
          f"{'all loops vectorized' if not bad else 'NOT vectorized: ' + ', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
