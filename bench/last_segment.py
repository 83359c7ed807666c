#!/usr/bin/env python3
"""Request-to-last-byte latency of files over ONE keep-alive connection.

Issue 13 asks whether corking a file body (TCP_CORK around head + sendfile,
uncorked at the body's end) ever holds back the body's last, partial segment
(a ~40 ms delayed-ACK / Nagle / 200 ms cork-timer stall), and whether small
files are as fast as before. This client opens one connection to
127.0.0.1:PORT, sends `GET PATH HTTP/1.1` for each PATH in turn (round-robin,
so a corked large body is followed by a small one on the same connection),
reads the head, takes the body length from Content-Length, and times from
just before the request is written to the moment the body's last byte is
read. One request at a time (no pipelining).

For each PATH it prints the count, p50, p90, p99, max and mean in ms, and how
many requests took over --stall-ms (default 20 ms: far above a warm loopback
transfer of these sizes, far below a 40 ms delayed ACK). With --json, one
JSON line per PATH instead; with --raw FILE, every latency (path, ms) too.

Examples:
  bench/last_segment.py --port 18201 /1k.bin /100k7.bin /1m1.bin /3m100.bin
  taskset -c 1 bench/last_segment.py --port 8080 -n 300 --warmup 20 /index.html

Only 127.0.0.1 is contacted; every socket operation has a timeout
(--timeout, 10 s), so the run always ends.
"""
import argparse
import json
import math
import socket
import sys
import time


def percentile(xs, q):
    """Nearest rank: the smallest value with at least q of the sample at or below it."""
    s = sorted(xs)
    rank = min(len(s), max(1, math.ceil(len(s) * q)))
    return s[rank - 1]


class Conn:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray(8 << 20)
        self.view = memoryview(self.buf)

    def get(self, path):
        """(ms from request to last body byte, status, body length)."""
        req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        t0 = time.perf_counter()
        self.sock.sendall(req)
        head = bytearray()
        while True:
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            n = self.sock.recv_into(self.view, len(self.buf))
            if n == 0:
                raise ConnectionError("closed before the end of the head")
            head += self.view[:n]
        body_have = len(head) - end - 4
        lines = bytes(head[:end]).split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        if length is None:
            raise ValueError(f"{path}: no Content-Length in the answer")
        if body_have > length:
            raise ValueError(f"{path}: more bytes than Content-Length (pipelined answer?)")
        left = length - body_have
        while left > 0:
            n = self.sock.recv_into(self.view, min(left, len(self.buf)))
            if n == 0:
                raise ConnectionError(f"{path}: closed with {left} body bytes missing")
            left -= n
        t1 = time.perf_counter()
        return (t1 - t0) * 1000, status, length

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (or bench/README.md) for what is measured.")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="request paths, e.g. /1k.bin")
    ap.add_argument("--port", type=int, required=True, help="server port on 127.0.0.1")
    ap.add_argument("-n", "--requests", type=int, default=300, help="measured requests per PATH (300)")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured requests per PATH first (10)")
    ap.add_argument("--stall-ms", type=float, default=20.0, help="count requests slower than this (20)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for any socket operation (10)")
    ap.add_argument("--label", default="", help="a name printed with the figures")
    ap.add_argument("--json", action="store_true", help="one JSON line per PATH")
    ap.add_argument("--raw", metavar="FILE", help="write every latency as 'PATH MS' lines")
    a = ap.parse_args()

    conn = Conn(a.port, a.timeout)
    lat = {p: [] for p in a.paths}
    sizes = {}
    try:
        for i in range(a.warmup + a.requests):
            for p in a.paths:
                ms, status, length = conn.get(p)
                if status != 200:
                    sys.exit(f"{p}: status {status}")
                sizes[p] = length
                if i >= a.warmup:
                    lat[p].append(ms)
    finally:
        conn.close()

    if a.raw:
        with open(a.raw, "w") as f:
            for i in range(a.requests):
                for p in a.paths:
                    f.write(f"{p} {lat[p][i]:.4f}\n")
    for p in a.paths:
        xs = lat[p]
        r = {"label": a.label, "path": p, "bytes": sizes[p], "n": len(xs),
             "p50_ms": round(percentile(xs, 0.5), 4), "p90_ms": round(percentile(xs, 0.9), 4),
             "p99_ms": round(percentile(xs, 0.99), 4), "max_ms": round(max(xs), 4),
             "mean_ms": round(sum(xs) / len(xs), 4),
             "over_stall": sum(1 for x in xs if x > a.stall_ms)}
        if a.json:
            print(json.dumps(r))
        else:
            print(f"{a.label:12} {p:14} {r['bytes']:>9} B  n={r['n']}  p50 {r['p50_ms']:.3f}  "
                  f"p90 {r['p90_ms']:.3f}  p99 {r['p99_ms']:.3f}  max {r['max_ms']:.3f}  "
                  f"mean {r['mean_ms']:.3f} ms  >{a.stall_ms:g}ms: {r['over_stall']}")


if __name__ == "__main__":
    main()
