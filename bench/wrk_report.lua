-- wrk script: at the end of a run, print one machine-readable line (bench/run.sh reads it)
--   WRK_JSON {...}
-- with the request count, bytes, error counters and latency percentiles (microseconds).
-- Only done() is defined, so wrk's per-request fast path is unchanged.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%.1f,"p50":%.1f,"p75":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
