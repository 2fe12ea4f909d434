#!/usr/bin/env bash
# Builds the C++ core with AddressSanitizer + UndefinedBehaviorSanitizer (CMake option
# SAMEDENHANCER_SANITIZE) into its own virtual environment and runs the core tests (and the
# core's fuzz tests) under it.
# Any sanitizer report aborts the Python process, so the tests (and this script) fail.
#   scripts/sanitize.sh [PYTEST_ARGS...]     from an environment with the project's dev install
# The tests over every mask of ../shared/data are deselected (-k "not real": under ASan on a busy
# 2-core machine they take over 25 minutes); pass -k real (the last -k wins) to run them.
# The sanitizer venv (build/sanitize/venv) sees the current environment's packages through a .pth
# line but holds its own, instrumented samedenhancer; the current environment is not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
python="$(command -v python)"
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
work="$root/build/sanitize"
venv="$work/venv"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --without-pip "$venv"
fi
vsite="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# A plain path line: the current environment's packages, without running its .pth files (an
# editable install's import hook would otherwise shadow the instrumented build).
echo "$site" > "$vsite/_samedenhancer_parent_env.pth"

# The instrumented build (incremental in build/sanitize/cmake), installed into the sanitizer venv.
"$python" -m pip --disable-pip-version-check -q --python "$venv/bin/python" install --no-deps \
  --no-build-isolation --force-reinstall \
  -Cbuild-dir="$work/cmake" -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.SAMEDENHANCER_SANITIZE=ON -Ccmake.define.SAMEDENHANCER_WERROR=ON .

libasan="$(${CXX:-c++} -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "sanitize.sh: libasan.so not found (c++ -print-file-name)" >&2; exit 1; }
# libstdc++ is preloaded too: python is not linked against it, so without it ASan finds no real
# __cxa_throw to intercept at start-up and aborts on the first C++ exception (every ValueError the
# core raises itself).
libstdcxx="$(${CXX:-c++} -print-file-name=libstdc++.so)"
[ -f "$libstdcxx" ] || { echo "sanitize.sh: libstdc++.so not found (c++ -print-file-name)" >&2; exit 1; }
preload="$libasan $libstdcxx"
# CPython's own allocations are never freed at exit: leak detection would only report those.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# The real data the main test run finds (the tests look next to the working directory otherwise).
if [ -z "${SAMEDENHANCER_DATA:-}" ]; then
  SAMEDENHANCER_DATA="$("$python" -c 'from samedenhancer.bench import datasets; print(datasets.data_root() or "")')"
  export SAMEDENHANCER_DATA
fi
cd "$work"  # import samedenhancer from the sanitizer venv, never from the source tree
core="$(LD_PRELOAD="$preload" "$venv/bin/python" -c 'import samedenhancer._core as c; print(c.__file__)')"
case "$core" in
  "$vsite"/*) ;;
  *) echo "sanitize.sh: samedenhancer._core is $core, not the instrumented build in $vsite" >&2; exit 1 ;;
esac
# The fuzz tests of the core (its facade and _core, with extreme spacings and class ids) run too.
fuzz=()
for name in as_label_map connected_components distance_transform mine_prompts metrics \
    distance_transform_extreme_spacings_and_ids surface_metrics_extreme_spacings_and_ids \
    connected_components_extreme_ids mine_prompts_extreme_ids; do
  fuzz+=("$root/tests/test_fuzz.py::test_fuzz_$name")
done
LD_PRELOAD="$preload" "$venv/bin/python" -m pytest -p no:cacheprovider -c "$root/pyproject.toml" \
  --rootdir "$root" "$root"/tests/test_core_*.py "$root"/tests/test_metrics*.py "${fuzz[@]}" -k "not real" "$@"
