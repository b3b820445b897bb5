#!/usr/bin/env bash
# Line coverage of lib/ by the unit tests (meson test, without the slow suite) and the Python
# tests, with gcc's own gcov (no other tool needed). Prints each file's share of lines run and
# every function no test entered. Not part of CI: a map of what the tests do not reach.
# Usage: bash scripts/coverage.sh [build dir, default build-coverage]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh # gcov comes with gcc (build-essential)
dir=${1:-build-coverage}
# -O2 (debugoptimized): at -O0 the transform's tests run past their timeout. Line counts are
# then a little coarser (inlined functions count in their callers).
opts=(-Db_coverage=true -Dbuildtype=debugoptimized -Dbench=false)
if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null
else meson setup "$dir" "${opts[@]}" >/dev/null; fi
dir=$(cd "$dir" && pwd)
ninja -C "$dir" >/dev/null
find "$dir" -name '*.gcda' -delete
meson test -C "$dir" --no-suite slow --num-processes 2 >/dev/null ||
  echo "coverage: some tests failed ($dir/meson-logs/testlog.txt)"
INTDIM_LIBRARY="$dir/lib/libintdim.so.0" /usr/bin/python3 -m pytest -q python/tests >/dev/null ||
  echo "coverage: some Python tests failed"
objdir=$(dirname "$(find "$dir/lib" -name 'train.c.gcno' | head -n 1)")
report=$(cd "$objdir" && for f in *.gcno; do gcov -f -n "$f" 2>/dev/null; done)
echo "lines run, per file of lib/:"
echo "$report" | grep -A1 "^File '.*lib/[a-z_0-9]*\.\(c\|inc\)'" | grep -v '^--' | paste - - |
  sed "s|File '.*/lib/|lib/|; s/'//; s/Lines executed://" | awk '{printf "  %-22s %8s of %s\n", $1, $2, $4}'
echo "functions no test entered:"
echo "$report" | grep -A1 '^Function' | grep -v '^--' | paste - - | grep 'executed:0.00%' |
  sed "s/Function '\([^']*\)'.*/  \1/" || echo "  (none)"
