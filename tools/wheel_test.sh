#!/usr/bin/env bash
# Build fastact's sdist and wheel with `python -m build` (the wheel is built from the
# sdist, so this also proves the sdist is complete), install the wheel into a fresh
# virtual environment outside the source tree, hide every C compiler, and run the test
# suite against the installed wheel. Then rebuild the wheel from the same sdist with
# FASTACT_DISABLE_OPENMP=1 (a compiler without OpenMP) and run the suite again: it must
# build, say "OpenMP: off" and run on one thread.
#
#   tools/wheel_test.sh [WORKDIR]       (what .ci/run does; ~6 minutes here)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
python=${PYTHON:-python3}

echo "== build sdist + wheel"
rm -rf "$work/dist"
"$python" -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/fastact-*.tar.gz)
wheel=$(ls "$work"/dist/fastact-*.whl)
echo "   $(basename "$sdist")  $(basename "$wheel")"

# the sdist ships the Cython/C sources and no generated C (see README, Packaging)
listing=$(tar tzf "$sdist")
for f in fastact/_runner.pyx fastact/_src/_kernels.pyx.in fastact/_src/fa_math.h \
         fastact/_src/fa_activations.h fastact/_src/fa_coeffs.h fastact/__init__.pyi \
         fastact/py.typed LICENSE tests/conftest.py; do
    grep -q "/$f\$" <<<"$listing" || { echo "sdist lacks $f"; exit 1; }
done
if grep -E '\.(c|so)$' <<<"$listing"; then echo "sdist ships generated/binary files"; exit 1; fi

echo "== fresh venv, install the wheel"
"$python" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet "$wheel[test]"

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
    python -m pytest -q -p no:cacheprovider "$root/tests"
}
echo "== tests against the installed wheel"
run_suite on

echo "== the same sdist built without OpenMP"
PATH=${PATH#"$work/nocc:"}          # a compiler again, for this build only
FASTACT_DISABLE_OPENMP=1 python -m pip wheel --quiet --no-deps -w "$work/noomp" "$sdist" \
    > "$work/noomp.log" 2>&1 || { tail -40 "$work/noomp.log"; exit 1; }
python -m pip install --quiet --force-reinstall --no-deps "$work"/noomp/fastact-*.whl
export PATH="$work/nocc:$PATH"
run_suite off
echo "== wheel test passed"
