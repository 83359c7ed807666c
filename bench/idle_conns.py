#!/usr/bin/env python3
"""User-space RSS per idle keep-alive connection.

Usage: idle_conns.py PORT PID [N] [PATH]

Warms the server up with a few requests, reads VmRSS of PID, then opens N
connections one after another; each sends one GET for PATH, reads the whole
answer and stays open. With all N open and idle, VmRSS is read again and the
script prints one JSON line: rss before/after (KiB), connections that got a
200, and (after - before) / N in bytes. The descriptor limit is raised to the
hard limit first; N must fit under it.
"""
import json
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def get(sock, request):
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return status


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    path = sys.argv[4] if len(sys.argv) > 4 else "/index.html"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if n + 50 > hard:
        sys.exit(f"{n} connections do not fit under the descriptor limit {hard}")
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    # Warm-up: whatever a server allocates once (caches, first buffers) is
    # not per-connection.
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for _ in range(10):
                get(s, request)
    time.sleep(0.5)
    before = rss_kib(pid)

    socks, ok, errors = [], 0, 0
    t0 = time.monotonic()
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            if get(s, request) == 200:
                ok += 1
            else:
                errors += 1
        except OSError as e:
            errors += 1
            if errors == 1:
                print(f"idle_conns: {e!r}", file=sys.stderr)
    opened = time.monotonic() - t0
    time.sleep(1.0)
    after = rss_kib(pid)
    # Still open? A server that dropped idle connections must not look lean.
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(1)  # EOF or stray bytes: not an idle open connection
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    print(json.dumps({
        "conns": n, "ok": ok, "errors": errors, "alive": alive,
        "rss_before_kib": before, "rss_after_kib": after,
        "bytes_per_conn": (after - before) * 1024 / n,
        "open_secs": round(opened, 2),
    }))


if __name__ == "__main__":
    main()
