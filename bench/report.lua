-- wrk script used by bench/run.sh: no change to the requests, only a
-- machine-readable summary line (prefix WRKJSON) once the run is done, so the
-- figures come exact (bytes, µs) instead of wrk's rounded human units.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p99_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
