#!/usr/bin/env bash
# The one test command: installs what the tests need (Node packages for the
# Medplum upstream and the browser SMART app, Python OAuth clients, Chromium,
# PostgreSQL), starts a private PostgreSQL, then runs
# formatting, lints and every test of the workspace (unit, integration and
# the black-box conformance suites against both upstreams).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

step "node packages for the Medplum upstream"
(cd conformance-tests/medplum && npm ci --no-audit --no-fund --loglevel=error)

step "node packages for Azurite (Azure Blob Storage emulator for the bulk export tests)"
(cd conformance-tests/azurite && npm ci --no-audit --no-fund --loglevel=error)

step "node packages for the browser SMART app (fhirclient, playwright-core)"
(cd conformance-tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "node packages for the OpenID Provider (federated sign-in tests)"
(cd conformance-tests/oidc && npm ci --no-audit --no-fund --loglevel=error)

step "python packages for the third-party OAuth clients"
venv=conformance-tests/python/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r conformance-tests/python/requirements.txt

step "starting a private PostgreSQL"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdir=$(mktemp -d /tmp/fhirgate-pg.XXXXXX)
pgport=${FHIRGATE_TEST_PG_PORT:-55432}
chown postgres "$pgdir" 2>/dev/null || true
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=on" -l "$pgdir/log" -w start >/dev/null
cleanup() { as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap cleanup EXIT
as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres fhirgate_test
export FHIRGATE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/fhirgate_test"
export FHIRGATE_REQUIRE_POSTGRES=1
export FHIRGATE_REQUIRE_MEDPLUM=1
export FHIRGATE_REQUIRE_AZURITE=1

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --quiet
export FHIRGATE_BIN="$root/target/debug/fhirgate"

step "tests"
cargo test --workspace -- --test-threads=2

step "integration suites again as two replicas on one PostgreSQL, requests alternating (tests/common)"
FHIRGATE_TEST_REPLICAS=2 cargo test -p fhirgate --test '*' -- --test-threads=2

step "fuzz smoke: every cargo-fuzz target for 10 s (long run: scripts/fuzz.sh)"
scripts/fuzz.sh "${FHIRGATE_FUZZ_SECS:-10}"

step "third-party client suites (Python)"
(cd conformance-tests/python && .venv/bin/python -m pytest -q)

step "third-party client suite (fhirclient.js in headless Chromium)"
node --test conformance-tests/browser/smart.test.mjs

step "patient consent portal (headless Chromium)"
node --test conformance-tests/browser/portal.test.mjs

step "step-up authentication: TOTP enrollment, step-up, replay, throttle (headless Chromium)"
node --test conformance-tests/browser/mfa.test.mjs

step "DTR SMART app: launch, form, QuestionnaireResponse (headless Chromium)"
node --test conformance-tests/browser/dtr_app.test.mjs

step "prior authorization end to end: CRD, DTR, PAS, reviewer in headless Chromium, subscription"
node --test conformance-tests/browser/prior_auth.test.mjs
