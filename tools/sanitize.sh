#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of
# fastact (FASTACT_SANITIZE=1: -O1 -g -fsanitize=address,undefined). The build happens in
# a copy of the source tree inside WORKDIR with its own venv, so the development build is
# untouched. Python itself is not instrumented, so libasan is preloaded and leak checks
# are off (CPython's arenas look like leaks). Any sanitizer report aborts the run.
#
#   tools/sanitize.sh [WORKDIR] [pytest args...]      (~10 minutes here)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}; shift || true
mkdir -p "$work"
python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet numpy "Cython>=3.1" setuptools pytest mpmath gmpy2 hypothesis \
    threadpoolctl
rm -rf "$work/src"
mkdir "$work/src"
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work/src")
cd "$work/src"
FASTACT_SANITIZE=1 python -m pip install --quiet --no-build-isolation -e . > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
python -c "import fastact; assert fastact.backend() == 'compiled'" 2>/dev/null || true
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
python -c "import fastact; fastact.show_config()"
# deselected: PyTorch's own C++ exception (leaky_relu of an int64 tensor, raised inside
# torch) aborts under a preloaded ASan runtime; fastact is not involved in that call.
python -m pytest -q -p no:cacheprovider tests \
    --deselect "tests/test_torch_module.py::test_other_tensors_fall_back_to_torch[int64]" "$@"
echo "sanitizer run clean"
