#!/usr/bin/env bash
# Foundation benchmark: facade overhead vs. the embedded store, and search
# cost at 100 and 10,000 patients. Figures are printed, not asserted.
# Usage: scripts/bench.sh [small_patients] [large_patients]   (foundation)
#        scripts/bench.sh smart                               (token endpoint, auth cost)
#        scripts/bench.sh consent [patients]                  (decision time, search on/off)
#        scripts/bench.sh bulk [patients]                     ($export throughput, consent on/off)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = smart ]; then
  exec cargo bench --bench smart
fi
if [ "${1:-}" = bulk ]; then
  exec cargo bench --bench bulk -- "${2:-100}"
fi
if [ "${1:-}" = consent ]; then
  exec cargo bench --bench consent -- "${2:-100}"
fi
exec cargo bench --bench foundation -- "${1:-100}" "${2:-10000}"
