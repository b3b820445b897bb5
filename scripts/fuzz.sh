#!/usr/bin/env bash
# Fuzz the file formats with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer included): checkpoints (tests/fuzz/fuzz_checkpoint.c) and search journals
# (tests/fuzz/fuzz_journal.c), each from a seed corpus of valid files the targets write.
# Usage: bash scripts/fuzz.sh [seconds per target, default 60]
# A crash leaves its input in build-fuzz/ (crash-*) and fails the script; replay it with
# build-fuzz/fuzz_<target> <file>. Inputs left by an earlier run are removed first (each run
# judges only its own), and the fuzzer's own exit status counts too (a failure that writes
# no input, e.g. in its initialization, still fails the script); the full log is
# build-fuzz/fuzz_<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/install-deps.sh clang libomp-dev libclang-rt-14-dev

dir=build-fuzz
flags=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
       -Dbench=false -Ddefault_library=static -Dc_args=-fsanitize=fuzzer-no-link)
if [ -d "$dir" ]; then CC=clang meson setup --reconfigure "$dir" "${flags[@]}" >/dev/null
else CC=clang meson setup "$dir" "${flags[@]}" >/dev/null; fi
ninja -C "$dir" lib/libintdim.a >/dev/null
blas_libs=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for target in checkpoint journal; do
  bin="$dir/fuzz_$target"
  clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude "tests/fuzz/fuzz_$target.c" \
    "$dir/lib/libintdim.a" $blas_libs -fopenmp -lm -o "$bin"
  corpus="$dir/corpus_$target"
  rm -rf "$corpus" && mkdir -p "$corpus"
  FUZZ_WRITE_SEED="$corpus" "$bin"
  echo "== fuzz $target for ${seconds}s (seed corpus: $(ls "$corpus" | tr '\n' ' '))"
  rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/oom-* "$dir"/timeout-*
  log="$dir/fuzz_$target.log"
  rc=0
  (cd "$dir" && "./fuzz_$target" "corpus_$target" -max_total_time="$seconds" -seed=1 \
     -use_value_profile=1 -max_len=8192 -print_final_stats=1) > "$log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|#[0-9]+ *DONE)' "$log" || true
  if [ "$rc" -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/oom-* "$dir"/timeout-* >/dev/null 2>&1; then
    echo "fuzz $target: failed (exit status $rc; see $log and any crash-*/leak-*/oom-*/timeout-* in $dir)" >&2
    exit 1
  fi
done
