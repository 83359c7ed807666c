#!/usr/bin/env python3
"""Many paced downloads at once: the server's cost of `limit_rate`.

Usage: rate_conns.py PORT N PATH SECS

Opens N connections, each sending one GET for PATH (a file larger than
SECS seconds' worth at the server's limit_rate), reads all of them in one
thread for SECS seconds, then closes them. Prints one JSON line: the
connections, those that got a 200 head, bytes received, the seconds read,
and connection-seconds (N x seconds), which run.sh divides the server's
CPU time by. The descriptor limit is raised to the hard limit first.
"""
import json
import resource
import selectors
import socket
import sys
import time


def main():
    port, n, path, secs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    conns, errors = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(request)
            s.setblocking(False)
            conns.append(s)
            sel.register(s, selectors.EVENT_READ, {"head": b"", "ok": None})
        except OSError:
            errors += 1
    total = 0
    start = time.monotonic()
    end = start + secs
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            try:
                data = key.fileobj.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                continue
            total += len(data)
            st = key.data
            if st["ok"] is None:
                st["head"] += data[:256]
                if b"\r\n" in st["head"]:
                    st["ok"] = st["head"].split(b" ", 2)[1] == b"200"
    elapsed = time.monotonic() - start
    ok = sum(1 for k in sel.get_map().values() if k.data["ok"])
    for s in conns:
        s.close()
    print(json.dumps({"conns": n, "ok": ok, "errors": errors + (n - ok), "bytes": total,
                      "secs": elapsed, "conn_secs": n * elapsed}))


if __name__ == "__main__":
    main()
