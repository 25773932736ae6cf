-- wrk script: POST a small non-streaming chat completion request.
-- Environment: BENCH_API_KEY (sent as "Authorization: Bearer <key>" when set),
--              BENCH_MODEL (default "bench-model").
-- After the run it prints one line "BENCH_JSON {...}" with exact figures (latencies in microseconds).

local model = os.getenv("BENCH_MODEL") or "bench-model"
local key = os.getenv("BENCH_API_KEY")

wrk.method = "POST"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}]}'
wrk.headers["Content-Type"] = "application/json"
if key ~= nil and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
