#!/usr/bin/env bash
# Build fastact's sdist and wheel with `python -m build` (the wheel is built from the
# sdist, so this also proves the sdist is complete), install the wheel into a fresh
# virtual environment outside the source tree, hide every C compiler, and run the test
# suite against the installed wheel; the wheel must hold exactly the SIMD levels of its
# build. Then rebuild the wheel from the same sdist with the lowest setuptools, Cython and
# NumPy pyproject.toml allows, FASTACT_DISABLE_OPENMP=1 (a compiler without OpenMP) and
# FASTACT_SIMD_LEVELS=baseline,avx2 over a stale avx512 module, and run the suite again:
# it must build, ship two levels, say "OpenMP: off" and run on one thread.
#
#   tools/wheel_test.sh [WORKDIR]       (~15 minutes here)
#
# WHEEL_STAGE=build does the two builds only, WHEEL_STAGE=test (same WORKDIR) the two
# test runs only: .ci/run compiles while another suite runs, then tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
python=${PYTHON:-python3}
stage=${WHEEL_STAGE:-all}

# a wheel holds exactly the SIMD levels of its own build (x86-64: all three)
levels_in() {
    "$python" -c 'import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print(" ".join(sorted(m.group(1) for n in names if (m := re.match(r"fastact/_kernels_(\w+?)\.", n)))) + " ", end="")' "$1"
}

if [ "$stage" != test ]; then
echo "== build sdist + wheel"
rm -rf "$work/dist" "$work/noomp"
"$python" -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/fastact-*.tar.gz)
wheel=$(ls "$work"/dist/fastact-*.whl)
echo "   $(basename "$sdist")  $(basename "$wheel")"

# the sdist ships the Cython/C sources and no generated C (see docs/packaging.md), and
# every file README and the documentation pages point to under docs/, tools/ and
# benchmarks/ (the images, the benchmark results, the scripts they name)
listing=$(tar tzf "$sdist")
named=$(cat "$root/README.md" "$root"/docs/*.md \
        | grep -oE '(docs|tools|benchmarks)/[A-Za-z0-9_./-]+\.(png|md|txt|json|py|sh)' | sort -u)
for f in fastact/_runner.pyx fastact/_src/_kernels.pyx.in fastact/_src/fa_math.h \
         fastact/_src/fa_activations.h fastact/_src/fa_coeffs.h fastact/_src/fa_table.h \
         fastact/_build_flags.py \
         fastact/__init__.pyi fastact/py.typed LICENSE tests/conftest.py tests/cpu_probe.py \
         .ci/run $named; do
    grep -q "/$f\$" <<<"$listing" || { echo "sdist lacks $f"; exit 1; }
done
if grep -E '\.(c|so)$' <<<"$listing"; then echo "sdist ships generated/binary files"; exit 1; fi

expected="baseline "
case "$(uname -m)" in x86_64|amd64) expected="avx2 avx512 baseline ";; esac
[ "$(levels_in "$wheel")" = "$expected" ] || { echo "wheel levels: $(levels_in "$wheel"), expected $expected"; exit 1; }
echo "   wheel levels: $expected"

echo "== the same sdist built at the toolchain floor, without OpenMP, two levels"
# setuptools 77 (project.license as an SPDX string), Cython 3.1, NumPy 2.0: the floors
# pyproject.toml states, in a build venv of their own (--no-build-isolation: exactly
# these). FASTACT_SIMD_LEVELS=baseline,avx2 after a stale avx512 module was left in
# build/lib: the wheel must hold baseline and avx2 only.
"$python" -m venv "$work/floor"
"$work/floor/bin/python" -m pip install --quiet "setuptools==77.0.3" "Cython==3.1.0" \
    "numpy==2.0.0" wheel
rm -rf "$work/src" && mkdir -p "$work/src" && tar xzf "$sdist" -C "$work/src" --strip-components=1
platlib=$("$work/floor/bin/python" -c "import sys, sysconfig; print(f'build/lib.{sysconfig.get_platform()}-cpython-{sys.version_info[0]}{sys.version_info[1]}')")
mkdir -p "$work/src/$platlib/fastact"
stale="$work/src/$platlib/fastact/_kernels_avx512$("$work/floor/bin/python" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")"
echo "stale" > "$stale"
(cd "$work/src" && FASTACT_DISABLE_OPENMP=1 FASTACT_SIMD_LEVELS=baseline,avx2 \
    "$work/floor/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation \
    -w "$work/noomp" .) > "$work/noomp.log" 2>&1 || { tail -40 "$work/noomp.log"; exit 1; }
[ ! -e "$stale" ] || { echo "the stale avx512 module was not removed from $platlib"; exit 1; }
noomp=$(ls "$work"/noomp/fastact-*.whl)
expected="baseline "
case "$(uname -m)" in x86_64|amd64) expected="avx2 baseline ";; esac
[ "$(levels_in "$noomp")" = "$expected" ] || { echo "wheel levels: $(levels_in "$noomp"), expected $expected"; exit 1; }
echo "   wheel levels: $expected(stale avx512 module removed)"

echo "== fresh venv, install the wheel"
rm -rf "$work/venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet torch==2.13.0
"$work/venv/bin/python" -m pip install --quiet "$wheel[test]"
fi

if [ "$stage" = build ]; then echo "== wheels built"; exit 0; fi
noomp=$(ls "$work"/noomp/fastact-*.whl)
. "$work/venv/bin/activate"

# no compiler at run time: anything that tried to compile would fail loudly
mkdir -p "$work/nocc"
for cc in cc gcc g++ c++ clang clang++ x86_64-linux-gnu-gcc; do
    printf '#!/bin/sh\necho "no compiler at run time ($0)" >&2; exit 1\n' > "$work/nocc/$cc"
    chmod +x "$work/nocc/$cc"
done
export PATH="$work/nocc:$PATH"

cd "$work"        # outside the source tree: `import fastact` is the installed wheel
run_suite() {
    python - "$root" "$1" <<'PY'
import os, sys, fastact
root, openmp = sys.argv[1], sys.argv[2] == "on"
assert not os.path.abspath(fastact.__file__).startswith(root + os.sep), fastact.__file__
assert fastact.backend() == "compiled", fastact.backend()
assert bool(fastact._config.config()["openmp"]) == openmp
if not openmp:
    fastact.set_num_threads(4)
    assert fastact.get_num_threads() == 1
fastact.show_config()
PY
    # the emulated CPUs and aarch64 (tests/test_cpu_models.py, test_platforms.py) ran in
    # CI's main suite: the cross-compiled driver does not depend on this build, and the
    # dispatch under qemu is the same code; the exhaustive 16-bit sweeps (test_half.py,
    # every pattern x case x entry x level) ran in the main and clang suites on kernels
    # built by the same compilers from the same source (the dtype rules, integrations
    # and 16-bit gated/softmax tests of test_half_integrations.py run here too), and so
    # did the ulp sweeps of test_accuracy.py (this wheel's kernels are the same C, built
    # with the same compiler and flags; fast-vs-slow parity, properties and robustness
    # run here); the wheel without OpenMP leaves out, besides, the files whose subject is not
    # the kernels (the bench CLI, packaging metadata, documentation, Dask and the
    # integrations' wrappers, hypothesis properties): its difference is the threading
    local skip=(--ignore "$root/tests/test_cpu_models.py" --ignore "$root/tests/test_platforms.py"
                --ignore "$root/tests/test_half.py" --ignore "$root/tests/test_accuracy.py")
    if [ "$1" = off ]; then
        for f in test_cli test_packaging test_docs test_dask test_properties \
                 test_gated_integrations test_softmax_integrations; do
            skip+=(--ignore "$root/tests/$f.py")
        done
    fi
    python -m pytest -q -p no:cacheprovider "$root/tests" "${skip[@]}"
}
echo "== tests against the installed wheel"
run_suite on

python -m pip install --quiet --force-reinstall --no-deps "$noomp"
echo "== tests against the wheel built without OpenMP (the kernels' files)"
run_suite off
echo "== wheel test passed"
