#!/usr/bin/env python3
"""The slowest requests of an access log, and a latency histogram.

Reads a log whose lines carry nginx's $request_time (seconds with
millisecond resolution) and $request, in one of two shapes:

  * JSON lines (log_format ... escape=json): the keys are given by
    --time-key (default "request_time") and --request-key ("request");
  * text lines: $request_time is the last field and $request the first
    double-quoted string, as in `combined` with $request_time appended:

        log_format timed '$remote_addr - $remote_user [$time_local] '
                         '"$request" $status $body_bytes_sent $request_time';

Prints the N slowest requests, the percentiles and a histogram with one bar
per power-of-two bucket of milliseconds. With --uris, prints only the
distinct request targets of the N slowest GETs, one per line (what
tools/perf-replay.sh replays).

Usage: tools/request-times.py [--top N] [--uris] [--time-key K]
                              [--request-key K] LOG
"""

import argparse
import json
import math
import re
import sys

QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse(line, time_key, request_key):
    """(seconds, request) of one line, or None when it carries neither."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            d = json.loads(line)
            return float(d[time_key]), str(d.get(request_key, "-"))
        except (ValueError, KeyError, TypeError):
            return None
    fields = line.rsplit(None, 1)
    try:
        t = float(fields[-1])
    except (ValueError, IndexError):
        return None
    m = QUOTED.search(line)
    return t, (m.group(1) if m else "-")


def percentile(sorted_times, p):
    if not sorted_times:
        return 0.0
    k = max(0, math.ceil(p / 100 * len(sorted_times)) - 1)
    return sorted_times[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--uris", action="store_true")
    ap.add_argument("--time-key", default="request_time")
    ap.add_argument("--request-key", default="request")
    a = ap.parse_args()

    rows = []
    skipped = 0
    with open(a.log, "rb") as f:
        for raw in f:
            row = parse(raw.decode("utf-8", "replace"), a.time_key, a.request_key)
            if row is None:
                skipped += 1
            else:
                rows.append(row)
    rows.sort(key=lambda r: r[0], reverse=True)

    if a.uris:
        seen = []
        for _, req in rows:
            parts = req.split(" ")
            if len(parts) >= 2 and parts[0] == "GET" and parts[1] not in seen:
                seen.append(parts[1])
            if len(seen) >= a.top:
                break
        print("\n".join(seen))
        return 0

    if not rows:
        print(f"no line with a request time in {a.log} ({skipped} skipped)")
        return 1
    times = sorted(r[0] for r in rows)
    print(f"{len(rows)} requests ({skipped} lines skipped)")
    print("p50 {:.3f}s  p90 {:.3f}s  p99 {:.3f}s  max {:.3f}s".format(
        percentile(times, 50), percentile(times, 90),
        percentile(times, 99), times[-1]))
    print(f"\nslowest {min(a.top, len(rows))}:")
    for t, req in rows[: a.top]:
        print(f"  {t:8.3f}s  {req}")

    # Buckets: < 1 ms, then [2^k, 2^(k+1)) ms.
    buckets = {}
    for t in times:
        ms = t * 1000
        k = -1 if ms < 1 else int(math.log2(ms))
        buckets[k] = buckets.get(k, 0) + 1
    width = max(buckets.values())
    print("\nhistogram (ms):")
    for k in range(min(buckets), max(buckets) + 1):
        n = buckets.get(k, 0)
        label = "<1" if k < 0 else f"{2 ** k}-{2 ** (k + 1)}"
        bar = "#" * (0 if n == 0 else max(1, round(40 * n / width)))
        print(f"  {label:>12} {n:8} {bar}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        sys.exit(0)
