-- Cycle through distinct bearer tokens (one per line in the file named by $ZT_TOKENS); report p50/p99 as JSON.
local tokens = {}
for line in io.lines(os.getenv("ZT_TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/hello", {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]})
end
done = function(summary, latency, requests)
  io.write(string.format('ZTJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
