#!/usr/bin/env bash
# Bounded soak (issue 10): fhirgate (release build, embedded SQLite store,
# consent and the audit ledger on) under wrk at a fixed concurrency for a
# fixed time, reads and searches alternating over the seeded patients; the
# server's resident memory is sampled every second.
#
#   bench/soak.sh                 10 minutes at 8 connections
#
# Settings (environment): SOAK_SECONDS (600), SOAK_CONNECTIONS (8),
# SOAK_THREADS (2), SOAK_PATIENTS (seeded population, 10), SOAK_NO_BUILD=1
# uses the release binary as it is, SOAK_KEEP=1 keeps the temp dir.
# The ledger takes about 3 KB per entry (6 KB before the payloads' stored
# form, src/audit/compact.rs), some 14 MB a second at this load: the run
# stops before it starts when the temp dir's volume has less than 30 MB for
# each of SOAK_SECONDS, twice that (SOAK_ANY_DISK=1 runs anyway, e.g. to
# fill it).
#
# Prints: requests, answers by status, socket errors, p50/p99, and memory:
# RSS after the first minute (warm), at the end, the peak, and the slope of
# a least-squares line through the samples after the first minute (kB per
# minute). Afterwards the whole ledger is verified offline (`fhirgate ledger
# verify`) and its entry count compared with the requests acknowledged.
# The samples are kept in $SOAK_OUT (default bench/results/soak-<date>.csv).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TOTAL="${SOAK_SECONDS:-600}"
CONNECTIONS="${SOAK_CONNECTIONS:-8}"
THREADS="${SOAK_THREADS:-2}"
PATIENTS="${SOAK_PATIENTS:-10}"
log() { printf '[soak] %s\n' "$*" >&2; }
die() { printf '[soak] error: %s\n' "$*" >&2; exit 1; }

for tool in wrk curl jq; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install wrk curl jq)"
done
if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
  log "building fhirgate (release)"
  (cd "$ROOT" && cargo build --release --bin fhirgate --quiet)
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/fhirgate"
[ -x "$BIN" ] || die "no release binary at $BIN"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fhirgate-soak.XXXXXX")"
AVAIL_KB="$(df -Pk "$TMP" | awk 'NR == 2 {print $4}')"
NEED_KB=$((SECONDS_TOTAL * 30000))
if [ "${SOAK_ANY_DISK:-0}" != 1 ] && [ "${AVAIL_KB:-0}" -lt "$NEED_KB" ]; then
  rmdir "$TMP"
  die "$((AVAIL_KB / 1024)) MiB free under ${TMPDIR:-/tmp}, the ledger needs about $((NEED_KB / 1024)) MiB for ${SECONDS_TOTAL}s (set TMPDIR, lower SOAK_SECONDS, or SOAK_ANY_DISK=1)"
fi
PID=""
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  if [ "${SOAK_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
for v in $(compgen -e); do
  case "$v" in FHIRGATE_*) unset "$v" ;; esac
done

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export FHIRGATE_DATA_DIR="$TMP/data" FHIRGATE_DEMO=0 FHIRGATE_CONFIG="$TMP/fhirgate.toml" \
  FHIRGATE_LISTEN="127.0.0.1:$PORT" FHIRGATE_PUBLIC_URL="http://127.0.0.1:$PORT"
cat >"$TMP/fhirgate.toml" <<'TOML'
# bench/soak.sh: consent and the audit ledger on, as deployed.
[consent]
exempt_clients = []

[audit]
enabled = true
TOML
log "seeding $PATIENTS patients"
"$BIN" seed --patients "$PATIENTS" >"$TMP/seed.log" 2>&1 || die "seed failed: $(tail -5 "$TMP/seed.log")"
TOKEN="$("$BIN" token issue --client soak --any-client --scope 'system/*.rs' --ttl 86400 2>"$TMP/token.log")" ||
  die "token issue failed: $(cat "$TMP/token.log")"
"$BIN" serve >"$TMP/fhirgate.log" 2>&1 &
PID=$!
for ((i = 0; i < 300; i++)); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/fhir/metadata" || true)" = 200 ] && break
  kill -0 "$PID" 2>/dev/null || die "fhirgate exited: $(tail -5 "$TMP/fhirgate.log")"
  sleep 0.2
done
IDS="$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Patient?_count=50" | jq -r '[.entry[]?.resource.id] | join(" ")')"
[ -n "$IDS" ] || die "no patient is readable through fhirgate"
SEQ0="$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/metadata" |
  awk 'tolower($1) == "x-ledger-seq:" {gsub("\r", "", $2); print $2}')"

OUT="${SOAK_OUT:-$ROOT/bench/results/soak-$(date -u +%Y-%m-%d-%H%M).csv}"
mkdir -p "$(dirname "$OUT")"
echo "second,rss_kb" >"$OUT"
(
  s=0
  while kill -0 "$PID" 2>/dev/null && [ "$s" -le "$SECONDS_TOTAL" ]; do
    echo "$s,$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)" >>"$OUT"
    s=$((s + 1))
    sleep 1
  done
) &
SAMPLER=$!
log "wrk: ${SECONDS_TOTAL}s at $CONNECTIONS connections, $THREADS threads, memory sampled each second into $OUT"
SOAK_AUTH="Bearer $TOKEN" SOAK_PATIENTS="$IDS" \
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${SECONDS_TOTAL}s" --timeout 10s -s "$ROOT/bench/soak.lua" \
  "http://127.0.0.1:$PORT" >"$TMP/wrk.txt" 2>&1 || die "wrk failed: $(cat "$TMP/wrk.txt")"
wait "$SAMPLER" 2>/dev/null || true
SEQ1="$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/metadata" |
  awk 'tolower($1) == "x-ledger-seq:" {gsub("\r", "", $2); print $2}')"
kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
PID=""
LINE="$(grep '^SOAK ' "$TMP/wrk.txt")" || die "no result line from wrk: $(cat "$TMP/wrk.txt")"
VERIFY="$("$BIN" ledger verify 2>&1 | tail -1)" || VERIFY="FAILED: $VERIFY"

python3 - "$OUT" "$LINE" "${SEQ0:-}" "${SEQ1:-}" "$VERIFY" "$SECONDS_TOTAL" "$CONNECTIONS" <<'PY'
import csv, sys
path, line, seq0, seq1, verify, secs, conns = sys.argv[1:8]
rows = [(int(r["second"]), int(r["rss_kb"])) for r in csv.DictReader(open(path)) if r["rss_kb"] not in ("", "0")]
f = dict(kv.split("=", 1) for kv in line.split()[1:])
warm = [r for r in rows if r[0] >= 60] or rows
xs = [r[0] / 60 for r in warm]; ys = [r[1] for r in warm]
n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
den = sum((x - mx) ** 2 for x in xs) or 1
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
reqs = int(f["requests"])
print(f"| soak | {secs} s at {conns} connections (reads and searches, consent and ledger on) |")
print("|---|---|")
print(f"| requests | {reqs} ({reqs / int(secs):.0f}/s) |")
print(f"| answers by status | {f['statuses']} |")
print(f"| socket errors | {f['errors_socket']} |")
print(f"| latency p50 / p99 | {int(f['p50_us']) / 1000:.1f} ms / {int(f['p99_us']) / 1000:.1f} ms |")
print(f"| RSS at 1 min / end / peak | {warm[0][1] / 1024:.1f} MiB / {rows[-1][1] / 1024:.1f} MiB / {max(y for _, y in rows) / 1024:.1f} MiB |")
print(f"| RSS slope after the first minute | {slope:+.0f} kB/min |")
if seq0 and seq1:
    print(f"| ledger entries written during the run | {int(seq1) - int(seq0) - 1} for {reqs} requests answered (a search writes more than one) |")
print(f"| ledger verify | {verify} |")
PY
