-- A fixed GET at a bounded rate: each connection waits PACE_MS between requests, so the total
-- rate is about connections × 1000 / PACE_MS (a light, steady client next to a flood).
local pace = tonumber(os.getenv("PACE_MS") or "10")
function delay()
  return pace
end
