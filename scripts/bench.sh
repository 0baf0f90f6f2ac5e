#!/usr/bin/env bash
# Foundation benchmark: facade overhead vs. the embedded store, and search
# cost at 100 and 10,000 patients. Figures are printed, not asserted.
# Usage: scripts/bench.sh [small_patients] [large_patients]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench foundation -- "${1:-100}" "${2:-10000}"
