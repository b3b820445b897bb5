#!/usr/bin/env bash
# Run every test of libintdim: the release build (warnings are errors), the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, a BLIS build, and the Python tests.
# Usage (fresh Debian 12, as root):  bash scripts/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

setup() { # setup DIR [meson options...]: configure once, reconfigure on later runs
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null; else meson setup "$dir" "$@" >/dev/null; fi
}

echo "== release build (OpenBLAS, -Werror)"
setup build-test -Dwerror=true -Dblas=openblas
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debugoptimized -Dbench=false
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite slow

echo "== BLIS build (projection and core tests)"
setup build-blis -Dwerror=true -Dblas=blis -Dexamples=false -Dbench=false
ninja -C build-blis
meson test -C build-blis --print-errorlogs --suite blas

echo "== Python binding (Debian's /usr/bin/python3)"
INTDIM_LIBRARY="$PWD/build-test/lib/libintdim.so.0" /usr/bin/python3 -m pytest -q python/tests
