#!/usr/bin/env bash
# Run every test of libintdim: the release build (warnings are errors), the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, a BLIS build, a clang build, the same under
# ThreadSanitizer, the Python tests, and a short fuzzing run over the file formats.
# Usage (fresh Debian 12, as root):  bash scripts/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh clang libomp-dev libclang-rt-14-dev # the sanitizer runtimes clang links

setup() { # setup DIR [meson options...]: configure once, reconfigure on later runs
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null; else meson setup "$dir" "$@" >/dev/null; fi
}

echo "== release build (OpenBLAS, -Werror)"
setup build-test -Dwerror=true -Dblas=openblas
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2

echo "== install, then build an outside program with pkg-config"
stage=$(mktemp -d)
DESTDIR="$stage" meson install -C build-test --quiet
prefix=$(meson introspect build-test --buildoptions | /usr/bin/python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
pcdir=$(dirname "$(find "$stage" -name intdim.pc | head -n1)")
PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$pcdir" \
  cc -Werror -o "$stage/consumer" tests/header_c99.c $(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs intdim)
LD_LIBRARY_PATH=$(dirname "$(find "$stage" -name libintdim.so.0 | head -n1)") "$stage/consumer"
echo "installed under $prefix: header, libintdim.so.0, intdim.pc; consumer links and runs"
rm -rf "$stage"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debugoptimized -Dbench=false
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite slow

echo "== BLIS build without OpenMP (projection, core, example-host tests)"
setup build-blis -Dwerror=true -Dblas=blis -Dopenmp=disabled -Dbench=false
ninja -C build-blis
meson test -C build-blis --print-errorlogs --suite blas

echo "== clang build (-Werror; its SIMD kernels must give the portable kernel's bits too)"
CC=clang setup build-clang -Dwerror=true -Dbench=false
ninja -C build-clang
meson test -C build-clang --print-errorlogs --num-processes 2 --no-suite slow

echo "== ThreadSanitizer (clang; OpenMP's barriers made visible to it by LLVM's Archer tool)"
# Check's forked test cases crash Archer (the children inherit its state), so they run
# unforked here; each test binary is one process, and any race fails it at once.
llvm=$(clang -dumpversion | cut -d. -f1) # Archer must match the libomp clang links
archer=/usr/lib/llvm-$llvm/lib/libarcher.so
[ -f "$archer" ] || { echo "$archer not found (package libomp-$llvm-dev)"; exit 1; }
CC=clang setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false \
  -Dbuildtype=debugoptimized -Dbench=false
ninja -C build-tsan
OMP_TOOL_LIBRARIES="$archer" CK_FORK=no \
  TSAN_OPTIONS=halt_on_error=1:ignore_noninstrumented_modules=1:second_deadlock_stack=1 \
  meson test -C build-tsan --print-errorlogs --num-processes 2 --no-suite slow --timeout-multiplier 4

echo "== Python binding (Debian's /usr/bin/python3)"
INTDIM_LIBRARY="$PWD/build-test/lib/libintdim.so.0" /usr/bin/python3 -m pytest -q python/tests

echo "== libFuzzer over checkpoints and journals (ASan + UBSan + LSan), 20 s each"
bash scripts/fuzz.sh 20
