#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600; the
# test command's smoke step passes 10). Installs cargo-fuzz if missing.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none
#   FUZZ_JOBS       parallel fuzzing jobs per target (default 1; >1 leaves
#                   libFuzzer's fuzz-<n>.log files in the working directory)
#   FUZZ_MERGE=1    afterwards, merge what the run found into the kept corpus
#                   (fuzz/corpus/<target>/, minimised with libFuzzer -merge=1)
#
# The kept corpus is read, never written: new inputs go to a scratch
# directory. A crash fails the script; its input is in fuzz/artifacts/<target>/
# (minimise with `RUSTC_BOOTSTRAP=1 cargo fuzz tmin <target> <file>`, then add
# it to fuzz/corpus/<target>/ with the fix).
#
# cargo-fuzz needs nightly flags (-Zsanitizer, sancov options); only stable
# Rust is installed, so RUSTC_BOOTSTRAP=1 is set for these commands only.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-600}
shift || true
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-1}
parallel=()
# libFuzzer's -jobs writes each job's log to ./fuzz-<n>.log.
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# One build of every target; the runs below reuse it.
cargo fuzz build --sanitizer "$sanitizer"

scratch=$(mktemp -d /tmp/fhirgate-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
  printf '\n== fuzz %s (%ss, sanitizer %s)\n' "$t" "$secs" "$sanitizer"
  mkdir -p "$scratch/$t" "fuzz/corpus/$t"
  if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
      "${parallel[@]}" 2>"$scratch/$t.log"; then
    tail -n 60 "$scratch/$t.log" >&2
    failed+=("$t")
    continue
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "$scratch/$t.log" || true
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run --sanitizer "$sanitizer" "$t" "fuzz/corpus/$t" "$scratch/$t" -- -merge=1 \
      2>>"$scratch/$t.log" >/dev/null
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: no crash in ${targets[*]}"
