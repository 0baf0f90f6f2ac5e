#!/usr/bin/env bash
# Gateway benchmark (issue 10, item 6): fhirgate as a facade vs. the same
# upstream FHIR server called directly vs. nginx as a plain reverse proxy in
# front of it, side by side in one run, with wrk as the load generator.
#
#   bench/run.sh            full run: 10 s per cell after a 2 s warm-up;
#                           prints the table and writes bench/results/<date>.md
#   bench/run.sh --smoke    1 s per cell, 3 patients: proves the harness works
#                           (prints only; nothing written to bench/results/)
#
# Settings (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, 2),
# BENCH_CONNECTIONS (8), BENCH_THREADS (wrk threads, 2), BENCH_PATIENTS
# (seeded population, 10), BENCH_ASSERTIONS_PER_SEC (pre-signed assertions
# per second of token-exchange load, 2500), BENCH_KEEP=1 keeps the temp dir
# (logs, configs) for a look afterwards, BENCH_NO_BUILD=1 uses the release
# binary as it is, BENCH_ATTRIBUTION=0 leaves out the attribution rows (a
# second facade with the ledger off, and with consent off too; and the
# facade's search with _total=none, without consent's count ahead),
# BENCH_PACE_MS (16; 0 leaves the paced cells out) is the wait of each
# connection between requests in the paced read cells,
# BENCH_UPSTREAM=medplum uses the conformance tests' Medplum engine (Node) as
# the upstream instead of a second fhirgate on its embedded store. Data
# dirs, logs and nginx's files go under $TMPDIR (default /tmp, here on the
# same disk as the builds); TMPDIR=/dev/shm puts the stores and the ledger
# on tmpfs, which separates the disk's fsync latency from CPU cost.
#
# What runs: the upstream, a second fhirgate serving its embedded SQLite store
# (seeded with `fhirgate seed`, called with a static bearer token, no consent
# and no ledger of its own: a plain FHIR server; fhirgate has no
# unauthenticated mode); fhirgate (release build) in front of it with consent
# on (the caller is a registered Backend Services client, not in
# [consent] exempt_clients) and the audit ledger on (the default); nginx in
# front of the same upstream (bench/nginx.conf.template). Cells: read
# (GET Patient/{id}) and search (GET Observation?patient=Patient/{id}&_count=20)
# on each of upstream direct, nginx, fhirgate (and the attribution facade);
# then the read again, paced (each connection waits BENCH_PACE_MS between
# requests: about 430 req/s here, a fifth of fhirgate's saturated rate), on
# upstream direct, nginx and fhirgate, so the p99 a hop adds is measured
# below saturation as well as at it; then a token exchange (POST /auth/token, client_credentials with a
# pre-signed RS384 assertion per request, bench/assertions.mjs +
# bench/wrk.lua) on fhirgate. Peak memory: VmHWM of each server process.
#
# Installs what is missing with apt-get (Debian packages wrk, nginx-light,
# curl, jq, nodejs/npm; Node.js signs the assertions and formats the report)
# and, for BENCH_UPSTREAM=medplum, the Medplum packages (npm ci). Needs cargo.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"

SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--smoke]" >&2; exit 2 ;;
esac
if [ "$SMOKE" = 1 ]; then
  DURATION="${BENCH_DURATION:-1}"
  WARMUP="${BENCH_WARMUP:-1}"
  PATIENTS="${BENCH_PATIENTS:-3}"
else
  DURATION="${BENCH_DURATION:-10}"
  WARMUP="${BENCH_WARMUP:-2}"
  PATIENTS="${BENCH_PATIENTS:-10}"
fi
CONNECTIONS="${BENCH_CONNECTIONS:-8}"
THREADS="${BENCH_THREADS:-2}"
PER_SEC="${BENCH_ASSERTIONS_PER_SEC:-2500}"
PACE_MS="${BENCH_PACE_MS:-16}"
UPSTREAM_KIND="${BENCH_UPSTREAM:-fhirgate}"
case "$UPSTREAM_KIND" in
  fhirgate | medplum) ;;
  *) echo "BENCH_UPSTREAM is fhirgate or medplum, not $UPSTREAM_KIND" >&2; exit 2 ;;
esac

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} (apt-get)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
MEDPLUM="$ROOT/conformance-tests/medplum"
if [ "$UPSTREAM_KIND" = medplum ] && [ ! -d "$MEDPLUM/node_modules/@medplum/fhir-router" ]; then
  log "installing the Medplum packages (npm ci)"
  (cd "$MEDPLUM" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building fhirgate (release)"
  (cd "$ROOT" && cargo build --release --bin fhirgate --quiet)
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/fhirgate"
[ -x "$BIN" ] || die "no release binary at $BIN"

# --- processes ----------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fhirgate-bench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits until URL answers 200 (or the process PID dies); $3 names it.
wait_http() {
  local url="$1" pid="$2" name="$3" i
  for ((i = 0; i < 450; i++)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready (logs in $TMP; BENCH_KEEP=1 keeps them)"
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then
      return 0
    fi
    sleep 0.2
  done
  die "$name did not answer $url with 200 in 90 s"
}

# Peak resident set (VmHWM, kB) of PID, plus its children's (nginx workers).
peak_rss_kb() {
  local total=0 p v
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    v="$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

for v in $(compgen -e); do
  case "$v" in FHIRGATE_*) unset "$v" ;; esac
done

# --- upstream -----------------------------------------------------------
if [ "$UPSTREAM_KIND" = medplum ]; then
  # Medplum's FhirRouter + MemoryRepository (conformance-tests/medplum).
  log "starting the upstream (Medplum, Node)"
  (cd "$MEDPLUM" && PORT=0 exec node server.mjs) >"$TMP/medplum.log" 2>&1 &
  UP_PID=$!
  PIDS+=("$UP_PID")
  for ((i = 0; i < 450; i++)); do
    grep -q '^LISTENING ' "$TMP/medplum.log" 2>/dev/null && break
    kill -0 "$UP_PID" 2>/dev/null || die "the Medplum upstream exited: $(tail -5 "$TMP/medplum.log")"
    sleep 0.2
  done
  UP_PORT="$(awk '/^LISTENING / {print $2; exit}' "$TMP/medplum.log")"
  [ -n "$UP_PORT" ] || die "the Medplum upstream did not print LISTENING <port>"
  UPSTREAM="http://127.0.0.1:$UP_PORT/fhir/R4"
  UP_DESC="Medplum FhirRouter + MemoryRepository (Node $(node --version))"
  UP_AUTH=""
else
  # A second fhirgate on its embedded store (SQLite): a plain FHIR server
  # behind a static bearer token. It has no switch for "no authentication",
  # so fhirgate reaches it with [upstream] auth = "bearer", and wrk sends the
  # same token when it calls it directly or through nginx. Its caller is
  # exempt from its consent and its ledger is off: it plays the FHIR store,
  # nothing more.
  UP_PORT="$(free_port)"
  UP_DIR="$TMP/upstream"
  mkdir -p "$UP_DIR"
  cat >"$UP_DIR/fhirgate.toml" <<'TOML'
# bench/run.sh upstream: a plain FHIR store (no consent for its one caller,
# no audit ledger).
[consent]
exempt_clients = ["bench-facade"]
poll_seconds = 0

[audit]
enabled = false
TOML
  UP_ENV=(FHIRGATE_DATA_DIR="$UP_DIR/data" FHIRGATE_DEMO=0 FHIRGATE_CONFIG="$UP_DIR/fhirgate.toml"
    FHIRGATE_LISTEN="127.0.0.1:$UP_PORT" FHIRGATE_PUBLIC_URL="http://127.0.0.1:$UP_PORT")
  up() { env "${UP_ENV[@]}" "$BIN" "$@"; }
  log "seeding $PATIENTS patients into the upstream's embedded store"
  up seed --patients "$PATIENTS" >"$TMP/seed.log" 2>&1 || die "fhirgate seed failed: $(tail -5 "$TMP/seed.log")"
  UP_TOKEN="$(up token issue --client bench-facade --any-client --scope 'system/*.rs' --ttl 86400 2>"$TMP/up-token.log")" ||
    die "fhirgate token issue failed: $(cat "$TMP/up-token.log")"
  UP_AUTH="Bearer $UP_TOKEN"
  log "starting the upstream (fhirgate, embedded store) on 127.0.0.1:$UP_PORT"
  # a simple command, not a function: $! is the server's own pid
  env "${UP_ENV[@]}" "$BIN" serve >"$UP_DIR/fhirgate.log" 2>&1 &
  UP_PID=$!
  PIDS+=("$UP_PID")
  UPSTREAM="http://127.0.0.1:$UP_PORT/fhir"
  wait_http "$UPSTREAM/metadata" "$UP_PID" "the upstream fhirgate"
  UP_DESC="a second fhirgate on its embedded SQLite store (static bearer token, no consent, no ledger)"
fi

# --- fhirgate, the facade under test --------------------------------------
# A fresh data dir, the upstream above, consent and ledger on.
FG_PORT="$(free_port)"
PUBLIC="http://127.0.0.1:$FG_PORT"
export FHIRGATE_DATA_DIR="$TMP/data" FHIRGATE_DEMO=0 FHIRGATE_UPSTREAM_URL="$UPSTREAM" \
  FHIRGATE_LISTEN="127.0.0.1:$FG_PORT" FHIRGATE_PUBLIC_URL="$PUBLIC" FHIRGATE_CONFIG="$TMP/fhirgate.toml"
if [ -n "$UP_AUTH" ]; then
  export FHIRGATE_UPSTREAM_AUTH=bearer FHIRGATE_UPSTREAM_BEARER_TOKEN="$UP_TOKEN"
fi
cat >"$TMP/fhirgate.toml" <<'TOML'
# bench/run.sh: consent and the audit ledger on, as deployed.
[consent]
exempt_clients = []

[audit]
enabled = true
TOML
if [ "$UPSTREAM_KIND" = medplum ]; then
  log "seeding $PATIENTS patients through fhirgate into the upstream"
  "$BIN" seed --patients "$PATIENTS" >"$TMP/seed.log" 2>&1 || die "fhirgate seed failed: $(tail -5 "$TMP/seed.log")"
fi

log "registering the Backend Services client (private_key_jwt, RS384)"
node "$BENCH/assertions.mjs" keygen "$TMP"
"$BIN" client add --name "bench backend" --auth private_key_jwt --grant client_credentials \
  --scope "system/*.rs" --jwks-file "$TMP/client-jwks.json" >"$TMP/client.json" 2>"$TMP/client.log" ||
  die "fhirgate client add failed: $(cat "$TMP/client.log")"
CLIENT_ID="$(jq -r .client_id "$TMP/client.json")"

log "starting fhirgate on $PUBLIC"
"$BIN" serve >"$TMP/fhirgate.log" 2>&1 &
FG_PID=$!
PIDS+=("$FG_PID")
wait_http "$PUBLIC/fhir/metadata" "$FG_PID" fhirgate

TOKEN_URL="$PUBLIC/auth/token"
node "$BENCH/assertions.mjs" sign "$TMP" "$CLIENT_ID" "$TOKEN_URL" 1 "$TMP/one.txt"
ACCESS="$(curl -sf "$TOKEN_URL" \
  --data-urlencode grant_type=client_credentials --data-urlencode "scope=system/*.rs" \
  --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  --data-urlencode "client_assertion=$(cat "$TMP/one.txt")" | jq -r .access_token)"
[ -n "$ACCESS" ] && [ "$ACCESS" != null ] || die "the token exchange failed"
AUTH="Bearer $ACCESS"

# nginx: a plain reverse proxy to the same upstream.
NG_PORT="$(free_port)"
NG_DIR="$TMP/nginx"
mkdir -p "$NG_DIR"
sed -e "s#@DIR@#$NG_DIR#g" -e "s#@LISTEN_PORT@#$NG_PORT#g" -e "s#@UPSTREAM_PORT@#$UP_PORT#g" \
  "$BENCH/nginx.conf.template" >"$NG_DIR/nginx.conf"
if [ "$(id -u)" = 0 ]; then
  # workers run as nobody: let them reach their temp dirs
  chmod 755 "$TMP"
  mkdir -p "$NG_DIR"/{client_body,proxy,fastcgi,uwsgi,scgi}
  chown -R nobody "$NG_DIR"
fi
log "starting nginx on 127.0.0.1:$NG_PORT"
"$NGINX" -p "$NG_DIR" -c "$NG_DIR/nginx.conf" -e "$NG_DIR/error.log" -g 'daemon off;' \
  >"$NG_DIR/stdout.log" 2>&1 &
NG_PID=$!
PIDS+=("$NG_PID")
NGINX_BASE="http://127.0.0.1:$NG_PORT${UPSTREAM#"http://127.0.0.1:$UP_PORT"}"
wait_http "$NGINX_BASE/metadata" "$NG_PID" nginx

# Attribution (BENCH_ATTRIBUTION=1, the default): a second facade on the same
# upstream with the audit ledger off, called by a client consent applies to
# ("ledger off") and by a client in its exempt_clients ("ledger and consent
# off"). Not part of the targets; it shows where the facade's cost goes.
TARGETS=(direct nginx facade)
if [ "${BENCH_ATTRIBUTION:-1}" = 1 ]; then
  AT_PORT="$(free_port)"
  AT_DIR="$TMP/attribution"
  mkdir -p "$AT_DIR"
  cat >"$AT_DIR/fhirgate.toml" <<'TOML'
# bench/run.sh attribution facade: ledger off; bench-exempt skips consent.
[consent]
exempt_clients = ["bench-exempt"]

[audit]
enabled = false
TOML
  AT_ENV=(FHIRGATE_DATA_DIR="$AT_DIR/data" FHIRGATE_CONFIG="$AT_DIR/fhirgate.toml"
    FHIRGATE_LISTEN="127.0.0.1:$AT_PORT" FHIRGATE_PUBLIC_URL="http://127.0.0.1:$AT_PORT")
  attr_fg() { env "${AT_ENV[@]}" "$BIN" "$@"; }
  AT_NOLEDGER="Bearer $(attr_fg token issue --client bench-noledger --any-client --scope 'system/*.rs' --ttl 86400)"
  AT_BARE="Bearer $(attr_fg token issue --client bench-exempt --any-client --scope 'system/*.rs' --ttl 86400)"
  log "starting the attribution facade (ledger off) on 127.0.0.1:$AT_PORT"
  env "${AT_ENV[@]}" "$BIN" serve >"$AT_DIR/fhirgate.log" 2>&1 &
  AT_PID=$!
  PIDS+=("$AT_PID")
  wait_http "http://127.0.0.1:$AT_PORT/fhir/metadata" "$AT_PID" "the attribution facade"
  TARGETS+=(noledger bare)
fi

# A patient the facade releases (consent on) with a full page of Observations.
PATIENT=""
for id in $(curl -sf ${UP_AUTH:+-H "Authorization: $UP_AUTH"} "$UPSTREAM/Patient?_count=50" | jq -r '.entry[]?.resource.id'); do
  code="$(curl -s -o "$TMP/probe.json" -w '%{http_code}' -H "Authorization: $AUTH" "$PUBLIC/fhir/Patient/$id")"
  [ "$code" = 200 ] || continue
  n="$(curl -sf -H "Authorization: $AUTH" "$PUBLIC/fhir/Observation?patient=Patient/$id&_count=20" | jq '[.entry[]? | select(.resource.resourceType == "Observation")] | length')"
  if [ "${n:-0}" -ge 20 ]; then
    PATIENT="$id"
    break
  fi
done
[ -n "$PATIENT" ] || die "no seeded patient is readable through fhirgate with 20 Observations"
LEDGER_SEQ="$(curl -s -D - -o /dev/null -H "Authorization: $AUTH" "$PUBLIC/fhir/Patient/$PATIENT" |
  awk 'tolower($1) == "x-ledger-seq:" {gsub("\r", "", $2); print $2}')"
[ -n "$LEDGER_SEQ" ] || die "no X-Ledger-Seq on a facade read: is the audit ledger on?"
log "patient $PATIENT; ledger receipt X-Ledger-Seq $LEDGER_SEQ"

declare -A BASE=([direct]="$UPSTREAM" [nginx]="$NGINX_BASE" [facade]="$PUBLIC/fhir")
declare -A PROC=([direct]="$UP_PID" [nginx]="$NG_PID" [facade]="$FG_PID")
# What each target is called with: the upstream's own token when it has one.
declare -A AUTHS=([direct]="${UP_AUTH:-$AUTH}" [nginx]="${UP_AUTH:-$AUTH}" [facade]="$AUTH")
if [ -n "${AT_PID:-}" ]; then
  BASE[noledger]="http://127.0.0.1:$AT_PORT/fhir"
  BASE[bare]="http://127.0.0.1:$AT_PORT/fhir"
  PROC[noledger]="$AT_PID"
  PROC[bare]="$AT_PID"
  AUTHS[noledger]="$AT_NOLEDGER"
  AUTHS[bare]="$AT_BARE"
fi
PATHS_read="Patient/$PATIENT"
PATHS_search="Observation?patient=Patient/$PATIENT&_count=20"
for t in "${TARGETS[@]}"; do
  for op in read search; do
    var="PATHS_$op"
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: ${AUTHS[$t]}" "${BASE[$t]}/${!var}")"
    [ "$code" = 200 ] || die "$op on $t answered $code"
  done
done

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
# wrk_cell OP TARGET URL [assertions_warmup assertions_measure]
wrk_cell() {
  local op="$1" target="$2" url="$3" line
  BENCH_AUTH="${AUTHS[$target]}" BENCH_THREADS="$THREADS" BENCH_ASSERTIONS="${4:-}" BENCH_PACE_MS="${CELL_PACE_MS:-}" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s -s "$BENCH/wrk.lua" "$url" >/dev/null
  line="$(BENCH_AUTH="${AUTHS[$target]}" BENCH_THREADS="$THREADS" BENCH_ASSERTIONS="${5:-}" BENCH_PACE_MS="${CELL_PACE_MS:-}" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$BENCH/wrk.lua" "$url" |
    grep '^BENCH_RESULT')" || die "wrk gave no result for $op on $target"
  local -A r=()
  local kv
  for kv in ${line#BENCH_RESULT }; do r[${kv%%=*}]="${kv#*=}"; done
  local rss
  rss="$(peak_rss_kb "${PROC[$target]}")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$target" "${r[requests]}" \
    "${r[duration_us]}" "${r[bytes]}" "${r[p50_us]}" "${r[p99_us]}" "${r[max_us]}" \
    "${r[non2xx]}" "${r[socket_errors]}" "$rss" >>"$RESULTS"
  log "$(printf '%-6s %-8s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s' "$op" "$target" \
    "$(echo "${r[requests]} ${r[duration_us]}" | awk '{print $1 / ($2 / 1e6)}')" \
    "$(echo "${r[p50_us]}" | awk '{print $1 / 1000}')" "$(echo "${r[p99_us]}" | awk '{print $1 / 1000}')" \
    "$((r[non2xx] + r[socket_errors]))")"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $LOAD_BEFORE; $CONNECTIONS connections, $THREADS wrk threads, ${WARMUP}s warm-up + ${DURATION}s per cell"
for op in read search; do
  var="PATHS_$op"
  for t in "${TARGETS[@]}"; do
    wrk_cell "$op" "$t" "${BASE[$t]}/${!var}"
  done
done

# Attribution: the facade's search without the count ahead of its true
# total (`_total=none`; what `consent.count_ahead = 0` does unasked).
if [ "${BENCH_ATTRIBUTION:-1}" = 1 ]; then
  wrk_cell search-nototal facade "${BASE[facade]}/$PATHS_search&_total=none"
fi

# Paced reads: the same read at a fixed, lower rate on the proxies (each
# connection waits PACE_MS between requests), so their p99 is the latency a
# hop adds, not queueing at saturation.
if [ "$PACE_MS" != 0 ]; then
  for t in direct nginx facade; do
    CELL_PACE_MS="$PACE_MS" wrk_cell read-paced "$t" "${BASE[$t]}/$PATHS_read"
  done
fi

# Token exchange: every request carries its own pre-signed assertion (fresh
# jti); signed just before the cell (exp = now + 290 s).
log "signing client assertions for the token exchange"
node "$BENCH/assertions.mjs" sign "$TMP" "$CLIENT_ID" "$TOKEN_URL" $((WARMUP * PER_SEC)) "$TMP/warmup.txt"
node "$BENCH/assertions.mjs" sign "$TMP" "$CLIENT_ID" "$TOKEN_URL" $((DURATION * PER_SEC)) "$TMP/measure.txt"
PROC[facade]="$FG_PID"
wrk_cell token facade "$TOKEN_URL" "$TMP/warmup.txt" "$TMP/measure.txt"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

DATE="$(date -u +%Y-%m-%dT%H:%MZ)"
jq -n --arg date "$DATE" --argjson smoke "$SMOKE" --arg threads "$THREADS" --arg connections "$CONNECTIONS" \
  --arg duration "$DURATION" --arg warmup "$WARMUP" --arg patients "$PATIENTS" --arg pace_ms "$PACE_MS" \
  --arg upstream "$UP_DESC" \
  --arg git "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo '+changes')$([ "${BENCH_NO_BUILD:-0}" = 1 ] && echo ", not rebuilt: BENCH_NO_BUILD=1")" \
  --arg client "$CLIENT_ID" --arg ledger_seq "$LEDGER_SEQ" \
  --arg nginx_version "$("$NGINX" -v 2>&1 | sed 's#.*nginx/##')" --arg nproc "$(nproc)" \
  --arg load_before "$LOAD_BEFORE" --arg load_after "$LOAD_AFTER" \
  --arg data_fs "$(df --output=fstype "$TMP" | tail -1) ($(dirname "$TMP"))" \
  --argjson upstream_rss_kb "$(peak_rss_kb "$UP_PID")" \
  '{date: $date, smoke: ($smoke == 1), threads: $threads, connections: $connections, duration: $duration,
    warmup: $warmup, patients: $patients, pace_ms: $pace_ms, upstream: $upstream, git: $git, client: $client,
    ledger_seq: $ledger_seq, nginx_version: $nginx_version, nproc: $nproc, load_before: $load_before,
    load_after: $load_after, upstream_rss_kb: $upstream_rss_kb, data_fs: $data_fs}' >"$TMP/meta.json"

REPORT="$(node "$BENCH/report.mjs" "$RESULTS" "$TMP/meta.json")"
echo
echo "$REPORT"
if [ "$SMOKE" = 0 ]; then
  mkdir -p "$BENCH/results"
  OUT="$BENCH/results/$(date -u +%Y-%m-%d-%H%M).md"
  echo "$REPORT" >"$OUT"
  log "written to ${OUT#"$ROOT"/}"
fi
