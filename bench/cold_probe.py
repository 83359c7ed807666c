#!/usr/bin/env python3
"""Cold-disk case of bench/run.sh: downloads of cold files and a fresh client.

Usage: cold_probe.py PORT DOCROOT PROBE_PATH LATENCIES_OUT FILE...

1. Drops every FILE (names under DOCROOT) from the page cache with
   posix_fadvise(POSIX_FADV_DONTNEED) and asks `fincore` how many bytes of
   them are still cached (the run is only cold if that is 0).
2. Starts one `curl -o /dev/null` per FILE at once, from 127.0.0.1:PORT.
3. Meanwhile a fresh client opens a new connection every 50 ms (on a 50 ms
   grid; a probe slower than that delays the next one, none is skipped to
   catch up), sends `GET PROBE_PATH` with `Connection: close` and reads the
   answer to its end; its latency is connect to last byte.
4. When the last download is done, prints one JSON line: the downloads'
   status, bytes and times, their aggregate MB/s (all bytes / the time from
   the start to the end of the last one), the probe's count, errors and
   p50/p90/p99/max in ms, and the cached bytes before and after eviction.
   Every probe latency goes to LATENCIES_OUT, one per line, in order.

Run it pinned to the load generators' CPU (`taskset -c 1`): curl inherits it.
Only 127.0.0.1 is contacted; every step is bounded in time.
"""
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

PROBE_EVERY = 0.050      # s between probe starts
PROBE_TIMEOUT = 10.0     # s for one probe; a slower one counts as an error
DOWNLOAD_TIMEOUT = 240   # s for one download (curl --max-time)


def cached_bytes(paths):
    """Bytes of PATHS in the page cache, as fincore counts them (-1: unknown)."""
    try:
        out = subprocess.run(["fincore", "-n", "-b", "-o", "RES", *paths],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return sum(int(x) for x in out.split())
    except (OSError, subprocess.SubprocessError, ValueError):
        return -1


def evict(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            # Dirty pages are not dropped: run.sh fsyncs the files once made.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def probe_once(port, path):
    """(latency in ms, ok) of one GET on a fresh connection."""
    t = time.perf_counter()
    ok = False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as s:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            got = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        ok = got.startswith(b"HTTP/1.1 200 ")
    except OSError:
        pass
    return (time.perf_counter() - t) * 1000, ok


def percentile(xs, q):
    """Nearest rank: the smallest value with at least q of the sample at or below it."""
    if not xs:
        return None
    s = sorted(xs)
    rank = min(len(s), max(1, math.ceil(len(s) * q)))
    return s[rank - 1]


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    port, root, probe_path, lat_out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    names = sys.argv[5:]
    paths = [os.path.join(root, n) for n in names]
    expect = sum(os.stat(p).st_size for p in paths)

    before = cached_bytes(paths)
    evict(paths)
    after = cached_bytes(paths)
    if after != 0:   # a page under writeback or read at that moment: once more
        time.sleep(0.2)
        evict(paths)
        after = cached_bytes(paths)

    lat, errors, stop = [], [0], threading.Event()

    def prober():
        nxt = time.perf_counter()
        while not stop.is_set():
            ms, ok = probe_once(port, probe_path)
            lat.append(ms)
            if not ok:
                errors[0] += 1
            nxt = max(nxt + PROBE_EVERY, time.perf_counter())
            stop.wait(max(0.0, nxt - time.perf_counter()))

    fmt = '{"http_code":%{http_code},"size":%{size_download},"time":%{time_total}}'
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "--max-time", str(DOWNLOAD_TIMEOUT),
                               "-w", fmt, f"http://127.0.0.1:{port}/{n}"],
                              stdout=subprocess.PIPE, text=True) for n in names]
    th = threading.Thread(target=prober)
    th.start()
    downloads = []
    for p in procs:
        out = p.communicate(timeout=DOWNLOAD_TIMEOUT + 30)[0]
        try:
            downloads.append(json.loads(out))
        except ValueError:
            downloads.append({"http_code": 0, "size": 0, "time": 0})
    wall = time.perf_counter() - t0
    stop.set()
    th.join(PROBE_TIMEOUT + 5)

    with open(lat_out, "w") as f:
        f.write("".join(f"{x:.3f}\n" for x in lat))
    got = sum(d["size"] for d in downloads)
    print(json.dumps({
        "downloads": downloads, "bytes": got, "expect": expect, "wall_s": round(wall, 4),
        "mbps": got / wall / 1e6 if wall > 0 else 0,
        "probes": len(lat), "probe_errors": errors[0],
        "p50_ms": percentile(lat, 0.50), "p90_ms": percentile(lat, 0.90),
        "p99_ms": percentile(lat, 0.99), "max_ms": max(lat) if lat else None,
        "cached_before_evict": before, "cached_at_start": after,
    }))


if __name__ == "__main__":
    main()
