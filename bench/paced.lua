-- wrk script addition: each connection waits KQE_BENCH_DELAY_MS before each request, so that
-- C connections send about C * 1000 / (delay + latency) requests per second (bench/run's
-- freshness measurement).
local pace = tonumber(os.getenv("KQE_BENCH_DELAY_MS") or "0")

function delay()
  return pace
end
