#!/bin/sh
# The MPI driver reaches the same d90 (and the same table, bit for bit) as the local runner.
# Usage: check_agreement.sh MPIRUN INTDIM_MPI INTDIM
set -eu
mpirun=$1
intdim_mpi=$2
intdim=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Open MPI's own allocations are not ours to leak-check under AddressSanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
export OMP_NUM_THREADS=1
# Open MPI refuses to start in some containers without these (no ssh, no real network).
export OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=yes
run_mpi() { # run_mpi NP ARGS...
  np=$1; shift
  "$mpirun" --allow-run-as-root --oversubscribe -np "$np" -x OMP_NUM_THREADS -x ASAN_OPTIONS \
    ${INTDIM_MPI_FAIL_TRIAL:+-x INTDIM_MPI_FAIL_TRIAL} "$intdim_mpi" "$@"
}
status=0
# Options: --help prints the usage once (rank 0) and exits 0; a bad option is reported once,
# not once per rank, and exits non-zero.
run_mpi 3 --help > "$dir/help.out" 2>&1 || { echo "FAIL: intdim-mpi --help"; status=1; }
[ "$(grep -c '^usage: mpirun' "$dir/help.out")" -eq 1 ] || { echo "FAIL: --help printed $(grep -c '^usage' "$dir/help.out") times"; status=1; }
if run_mpi 3 --bogus > "$dir/bogus.out" 2>&1; then echo "FAIL: --bogus accepted"; status=1; fi
[ "$(grep -c 'unknown option --bogus' "$dir/bogus.out")" -eq 1 ] || { echo "FAIL: --bogus reported $(grep -c 'unknown option' "$dir/bogus.out") times"; status=1; }
for strategy in adaptive grid; do
  args="--strategy $strategy --seeds 2 --n-d 16 --steps 600 --quiet"
  "$intdim" run-toy $args --journal "$dir/local-$strategy.journal" > "$dir/local-$strategy.out"
  for np in 2 3; do
    run_mpi "$np" $args --journal "$dir/mpi-$strategy-$np.journal" > "$dir/mpi-$strategy-$np.out"
    "$intdim" report "$dir/local-$strategy.journal" > "$dir/a"
    "$intdim" report "$dir/mpi-$strategy-$np.journal" > "$dir/b"
    local_d90=$(grep '^d90 = ' "$dir/local-$strategy.out")
    mpi_d90=$(grep '^d90 = ' "$dir/mpi-$strategy-$np.out")
    echo "$strategy, np $np: local '$local_d90', MPI '$mpi_d90'"
    if [ "$local_d90" != "$mpi_d90" ] || [ -z "$local_d90" ]; then
      echo "FAIL: d90 differs"; status=1
    fi
    # One worker runs the adaptive trials in the local order, so even the table and the trial
    # count match; with two, the adaptive search may run a few trials speculatively.
    if [ "$strategy" = adaptive ] && [ "$np" -gt 2 ]; then continue; fi
    if ! cmp -s "$dir/a" "$dir/b"; then
      echo "FAIL: reports differ"; diff "$dir/a" "$dir/b" || true; status=1
    fi
  done
done
# A trial that fails on a worker (injected) stops the run with an error, without a hang; the
# trials in flight still reach the journal, which stays consistent: the local runner resumes
# it and reports exactly what an uninterrupted run reports.
args="--strategy grid --seeds 2 --n-d 16 --steps 600 --quiet"
rc=0
INTDIM_MPI_FAIL_TRIAL=9 run_mpi 3 $args --journal "$dir/fail.journal" \
  > "$dir/fail.out" 2> "$dir/fail.err" || rc=$?
if [ "$rc" -eq 0 ]; then echo "FAIL: a failed trial did not fail the MPI run"; status=1; fi
grep -q 'callback' "$dir/fail.err" || { echo "FAIL: no message for the failed trial: $(cat "$dir/fail.err")"; status=1; }
rows=$(grep -c '^T ' "$dir/fail.journal" || true)
echo "injected failure: exit $rc, $rows trials journaled"
[ "$rows" -ge 9 ] || { echo "FAIL: trials before and beside the failed one were not journaled ($rows)"; status=1; }
"$intdim" run-toy $args --journal "$dir/fail.journal" > /dev/null 2>&1 || { echo "FAIL: resume after the failure"; status=1; }
"$intdim" report "$dir/fail.journal" > "$dir/fail.report"
"$intdim" report "$dir/local-grid.journal" > "$dir/a"
cmp -s "$dir/a" "$dir/fail.report" || { echo "FAIL: resumed report differs"; diff "$dir/a" "$dir/fail.report" || true; status=1; }
exit $status
