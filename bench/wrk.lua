-- wrk script for bench/run.sh: one machine-readable result line, and the
-- token-exchange request body.
--
-- BENCH_AUTH        value of the Authorization header (reads and searches;
--                   not sent with the token exchange)
-- BENCH_ASSERTIONS  file of pre-signed client assertions, one per line: each
--                   request is a client_credentials POST with the next one
--                   (each wrk thread takes every n-th line, so no jti is
--                   sent twice unless the file runs out; then it wraps and
--                   the replays show up as non-2xx answers)
-- BENCH_SCOPE       scope asked for in the token exchange
-- BENCH_PACE_MS     when set, each connection waits this long after an answer
--                   before its next request (a paced load below saturation;
--                   the wait is not part of the measured latency)

local auth = os.getenv("BENCH_AUTH")
local assertions_file = os.getenv("BENCH_ASSERTIONS")
local scope = os.getenv("BENCH_SCOPE") or "system/*.rs"

local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local mine = nil
local next_i = 1

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  if auth and auth ~= "" and not (assertions_file and assertions_file ~= "") then
    wrk.headers["Authorization"] = auth
  end
  wrk.headers["Accept"] = "application/fhir+json"
  if assertions_file and assertions_file ~= "" then
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    mine = {}
    local i = 0
    for line in io.lines(assertions_file) do
      if line ~= "" then
        if i % nthreads == id then
          table.insert(mine, line)
        end
        i = i + 1
      end
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end

-- Defined for the token exchange only: without a request() function wrk
-- builds its request once, which keeps the load generator's own CPU cost
-- (this is a 2-core machine) the same for every read and search cell.
if assertions_file and assertions_file ~= "" then
  function request()
    local a = mine[next_i]
    next_i = next_i + 1
    if next_i > #mine then next_i = 1 end
    local body = "grant_type=client_credentials&scope=" .. urlencode(scope)
      .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
      .. "&client_assertion=" .. a
    return wrk.format("POST", nil, nil, body)
  end
end

local pace_ms = tonumber(os.getenv("BENCH_PACE_MS") or "")
if pace_ms then
  function delay()
    return pace_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
