#!/usr/bin/env bash
# Runs every fuzz target (fuzz/*.c) for SECONDS each (default 20):
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Configures a clang build with the fuzz option, AddressSanitizer and
# UndefinedBehaviorSanitizer in $ND_FUZZ_BUILD (default build-fuzz beside
# this folder) unless it is there already, builds the targets, writes the
# seed corpora and dictionaries afresh (fuzz/make_seeds), then runs the
# targets, as many at once as there are cores ($ND_FUZZ_PARALLEL to
# choose), each on its own corpus in $ND_FUZZ_BUILD/fuzz-work/corpus/TARGET,
# kept from run to run so that long runs build on each other. Prints per
# target the executions, executions per second and the result; inputs
# that failed are kept as $ND_FUZZ_BUILD/fuzz-work/artifacts/TARGET-crash-...
# (leak-..., timeout-...); replay one with build-fuzz/fuzz/fuzz_TARGET FILE.
# Exits non-zero when a target finds a crash, a leak or a timeout, or does
# not run; the last line is "fuzz: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
secs=${1:-20}
shift || true
all=(safetensors checkpoint json inflate idx cifar csv npy)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
build=${ND_FUZZ_BUILD:-$repo/build-fuzz}
work=$build/fuzz-work
parallel=${ND_FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}

case $secs in
  ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
  echo "== fuzz: configure $build"
  log=$(mktemp)
  if ! CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Dwerror=true \
       -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
       >"$log" 2>&1; then
    cat "$log"; rm -f "$log"
    echo "fuzz: 0 passed, ${#targets[@]} failed"
    exit 1
  fi
  rm -f "$log"
fi
echo "== fuzz: build"
names=()
for t in "${targets[@]}"; do names+=("fuzz/fuzz_$t"); done
if ! ninja -C "$build" "${names[@]}" fuzz/make_seeds >"$build/fuzz-build.log" 2>&1; then
  cat "$build/fuzz-build.log"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

rm -rf "$work/seeds" "$work/logs"
mkdir -p "$work/seeds" "$work/logs" "$work/artifacts"
"$build/fuzz/make_seeds" "$work/seeds" || { echo "fuzz: make_seeds failed"; exit 1; }

# run TARGET: libFuzzer on the kept corpus and the fresh seeds, its output
# in logs/TARGET.log.
run() {
  local t=$1
  mkdir -p "$work/corpus/$t"
  local dict=()
  [ -f "$work/seeds/$t.dict" ] && dict=(-dict="$work/seeds/$t.dict")
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" "${dict[@]}" \
    "$work/corpus/$t" "$work/seeds/$t" >"$work/logs/$t.log" 2>&1
  echo $? >"$work/logs/$t.rc"
}

echo "== fuzz: ${#targets[@]} targets, $secs s each, $parallel at once"
running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
done
wait

pass=0 fail=0
printf '%-12s %12s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  log=$work/logs/$t.log
  rc=$(cat "$work/logs/$t.rc" 2>/dev/null || echo 1)
  execs=$(awk '/^stat::number_of_executed_units:/ {v = $2} END {print v}' "$log")
  speed=$(awk '/^stat::average_exec_per_sec:/ {v = $2} END {print v}' "$log")
  if [ "$rc" = 0 ]; then
    result=ok
  elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
    result=timeout
  elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
    result=out-of-memory
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then
    result=leak
  else
    result=crash
  fi
  printf '%-12s %12s %10s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$result"
  if [ "$result" = ok ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "---- $t: the end of $log"
    grep -E '^fuzz: |^nanodiff|ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
