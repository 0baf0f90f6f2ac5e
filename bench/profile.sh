#!/usr/bin/env bash
# Instruction-count profile of the facade (issue 10): the same set-up as
# bench/run.sh (a second fhirgate as the upstream, the facade with consent
# and the audit ledger on), but the facade runs under a tool and gets a
# FIXED load, so the numbers repeat on a noisy, shared machine.
#
#   bench/profile.sh callgrind   facade under valgrind --tool=callgrind;
#                                prints instructions per request for reads
#                                and for searches and keeps callgrind.out.*
#   bench/profile.sh strace      facade under strace -c -f; syscall counts
#                                (fsync/fdatasync per request)
#   bench/profile.sh perf        facade native, perf record -e cpu-clock
#                                (wall-clock samples, flat by symbol)
#   bench/profile.sh none        no tool (a smoke test of the harness)
#
# Settings: PROFILE_N (requests per operation, default 200), PROFILE_C
# (concurrent clients, 8), PROFILE_OUT (where callgrind.out.* and the
# summary go, default bench/profile-out), BENCH_PATIENTS (10), TMPDIR,
# FG_EXTRA (VAR=value words added to the facade's environment in the none
# and perf modes, e.g. FHIRGATE_LOG_LEVEL=info,sqlx::query=debug).
# Uses the release binary as it is (build it first).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOL="${1:-callgrind}"
N="${PROFILE_N:-200}"
C="${PROFILE_C:-8}"
OUT="${PROFILE_OUT:-$ROOT/bench/profile-out}"
PATIENTS="${BENCH_PATIENTS:-10}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/fhirgate"
[ -x "$BIN" ] || { echo "no release binary at $BIN" >&2; exit 1; }
mkdir -p "$OUT"
log() { printf '[profile] %s\n' "$*" >&2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fhirgate-profile.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ "${BENCH_KEEP:-0}" = 1 ] && log "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT
for v in $(compgen -e); do case "$v" in FHIRGATE_*) unset "$v" ;; esac; done
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() {
  for ((i = 0; i < 900; i++)); do
    kill -0 "$2" 2>/dev/null || { log "$3 exited"; tail -20 "$4" >&2; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.2
  done
  log "$3 not ready"; exit 1
}

# upstream: a plain FHIR store
UP_PORT="$(free_port)"
mkdir -p "$TMP/up"
cat >"$TMP/up/fhirgate.toml" <<'TOML'
[consent]
exempt_clients = ["bench-facade"]
poll_seconds = 0
[audit]
enabled = false
TOML
UP_ENV=(FHIRGATE_DATA_DIR="$TMP/up/data" FHIRGATE_DEMO=0 FHIRGATE_CONFIG="$TMP/up/fhirgate.toml"
  FHIRGATE_LISTEN="127.0.0.1:$UP_PORT" FHIRGATE_PUBLIC_URL="http://127.0.0.1:$UP_PORT")
env "${UP_ENV[@]}" "$BIN" seed --patients "$PATIENTS" >"$TMP/seed.log" 2>&1
UP_TOKEN="$(env "${UP_ENV[@]}" "$BIN" token issue --client bench-facade --any-client --scope 'system/*.rs' --ttl 86400)"
env "${UP_ENV[@]}" "$BIN" serve >"$TMP/up/log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
UPSTREAM="http://127.0.0.1:$UP_PORT/fhir"
wait_http "$UPSTREAM/metadata" "$UP_PID" upstream "$TMP/up/log"

# the facade: consent and ledger on
FG_PORT="$(free_port)"
mkdir -p "$TMP/fg"
cat >"$TMP/fg/fhirgate.toml" <<'TOML'
[consent]
exempt_clients = []
[audit]
enabled = true
TOML
FG_ENV=(FHIRGATE_DATA_DIR="$TMP/fg/data" FHIRGATE_DEMO=0 FHIRGATE_CONFIG="$TMP/fg/fhirgate.toml"
  FHIRGATE_LISTEN="127.0.0.1:$FG_PORT" FHIRGATE_PUBLIC_URL="http://127.0.0.1:$FG_PORT"
  FHIRGATE_UPSTREAM_URL="$UPSTREAM" FHIRGATE_UPSTREAM_AUTH=bearer FHIRGATE_UPSTREAM_BEARER_TOKEN="$UP_TOKEN")
AUTH="Bearer $(env "${FG_ENV[@]}" "$BIN" token issue --client bench-profile --any-client --scope 'system/*.rs' --ttl 86400)"
case "$TOOL" in
  callgrind)
    rm -f "$OUT"/callgrind.out.*
    env "${FG_ENV[@]}" valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$OUT/callgrind.out.%p" \
      "$BIN" serve >"$TMP/fg/log" 2>&1 &
    ;;
  strace)
    env "${FG_ENV[@]}" strace -f -c -o "$OUT/strace.txt" "$BIN" serve >"$TMP/fg/log" 2>&1 &
    ;;
  none | perf) env "${FG_ENV[@]}" ${FG_EXTRA:-} "$BIN" serve >"$TMP/fg/log" 2>&1 & ;;
  *) echo "usage: bench/profile.sh callgrind|strace|perf|none" >&2; exit 2 ;;
esac
FG_PID=$!
PIDS+=("$FG_PID")
PUBLIC="http://127.0.0.1:$FG_PORT/fhir"
wait_http "$PUBLIC/metadata" "$FG_PID" facade "$TMP/fg/log"

# a released patient with a full page of Observations (as run.sh picks it)
PATIENT=""
for id in $(curl -sf -H "Authorization: Bearer $UP_TOKEN" "$UPSTREAM/Patient?_count=50" | jq -r '.entry[]?.resource.id'); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" "$PUBLIC/Patient/$id")" = 200 ] || continue
  n="$(curl -sf -H "Authorization: $AUTH" "$PUBLIC/Observation?patient=Patient/$id&_count=20" | jq '[.entry[]? | select(.resource.resourceType == "Observation")] | length')"
  if [ "${n:-0}" -ge 20 ]; then PATIENT="$id"; break; fi
done
[ -n "$PATIENT" ] || { log "no patient"; exit 1; }
log "patient $PATIENT"

# N requests over C keep-alive connections (curl reuses its connection
# across the URLs of one invocation).
load() {
  local url="$1" per=$(((N + C - 1) / C)) i kids=()
  for ((i = 0; i < C; i++)); do
    (
      args=()
      for ((j = 0; j < per; j++)); do args+=(-o /dev/null "$url"); done
      curl -s -H "Authorization: $AUTH" "${args[@]}"
    ) &
    kids+=($!)
  done
  wait "${kids[@]}"
}
# warm-up (caches, pool, first pages)
N=40 C=4 load "$PUBLIC/Patient/$PATIENT"
N=40 C=4 load "$PUBLIC/Observation?patient=Patient/$PATIENT&_count=20"

PER=$(((N + C - 1) / C * C))
for op in read search; do
  case "$op" in
    read) url="$PUBLIC/Patient/$PATIENT" ;;
    search) url="$PUBLIC/Observation?patient=Patient/$PATIENT&_count=20" ;;
  esac
  if [ "$TOOL" = callgrind ]; then callgrind_control -z "$FG_PID" >/dev/null; fi
  if [ "$TOOL" = perf ]; then
    perf record -q -e cpu-clock -F 4000 -p "$FG_PID" -o "$OUT/perf.$op.data" 2>/dev/null &
    PERF_PID=$!
    sleep 0.5
  fi
  t0=$(date +%s.%N)
  load "$url"
  t1=$(date +%s.%N)
  if [ "$TOOL" = callgrind ]; then
    callgrind_control -d "$op" "$FG_PID" >/dev/null
    sleep 1
    f="$(ls -t "$OUT"/callgrind.out.* | head -1)"
    cp "$f" "$OUT/callgrind.$op.out"
    ir="$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')"
    log "$op: $PER requests, $ir instructions, $((ir / PER)) per request ($(echo "$t1 - $t0" | bc) s under callgrind) [$f]"
    echo "$op $PER $ir $((ir / PER))" >>"$OUT/summary.txt"
  else
    log "$op: $PER requests in $(echo "$t1 - $t0" | bc) s"
    # the group commit: batches (appends) and entries so far
    curl -s -H "Authorization: $AUTH" "http://127.0.0.1:$FG_PORT/metrics" |
      grep -E '^fhirgate_ledger_(append_duration_seconds_(count|sum)|appended_entries_total)' >&2 || true
  fi
  if [ "$TOOL" = perf ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true
    perf report -i "$OUT/perf.$op.data" --no-children --sort symbol 2>/dev/null | grep -v '^#' | head -40 >"$OUT/perf.$op.txt" || true
    log "perf profile of $op in $OUT/perf.$op.txt"
  fi
done
if [ "$TOOL" = strace ]; then
  kill -TERM "$FG_PID"; wait "$FG_PID" 2>/dev/null || true
  log "strace summary (both operations, $((2 * PER + 160)) requests incl. warm-up) in $OUT/strace.txt"
  head -30 "$OUT/strace.txt" >&2
fi
