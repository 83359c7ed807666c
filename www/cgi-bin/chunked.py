#!/usr/bin/env python3
"""CGI demo: a body of unknown length, written in several flushed pieces.
The script sends no Content-Length, so an HTTP/1.1 client gets it with
`Transfer-Encoding: chunked` (and an HTTP/1.0 client until the connection
closes), piece by piece as the script writes it.

    curl -iN http://127.0.0.1:8080/cgi-bin/chunked.py
"""
import sys
import time

out = sys.stdout.buffer
out.write(b"Content-Type: text/plain; charset=utf-8\r\n\r\n")
out.flush()
for i in range(1, 6):
    out.write(b"piece %d of 5\n" % i)
    out.flush()
    time.sleep(0.2)
out.write(b"done\n")
