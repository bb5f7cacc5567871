-- Appended to every wrk script of bench/run: one machine-readable line per run.
-- RESULT <requests> <duration µs> <non-2xx/3xx> <socket errors> <p50 µs> <p99 µs> <max µs>
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
