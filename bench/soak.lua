-- wrk script for bench/soak.sh: cycles reads and searches over the patients
-- in SOAK_PATIENTS (space-separated ids) and counts answers by status.
--
-- SOAK_AUTH      value of the Authorization header
-- SOAK_PATIENTS  patient ids to cycle over

local auth = os.getenv("SOAK_AUTH")
local ids = {}
for id in string.gmatch(os.getenv("SOAK_PATIENTS") or "", "%S+") do
  ids[#ids + 1] = id
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local n = 0
statuses = {}

function init(args)
  wrk.headers["Authorization"] = auth
  wrk.headers["Accept"] = "application/fhir+json"
end

function request()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  if n % 2 == 0 then
    return wrk.format("GET", "/fhir/Patient/" .. id)
  end
  return wrk.format("GET", "/fhir/Observation?patient=Patient/" .. id .. "&_count=20")
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s or {}) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(merged) do
    parts[#parts + 1] = code .. "=" .. count
  end
  table.sort(parts)
  io.write(string.format("SOAK requests=%d errors_socket=%d p50_us=%d p99_us=%d statuses=%s\n",
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
