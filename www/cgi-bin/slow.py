#!/usr/bin/env python3
"""CGI demo: sleep N seconds (the query string, `?3` or `?s=3`; at most 120)
before answering. With `cgi_timeout` shorter than N the server kills the
script and answers 504; meanwhile it goes on serving everyone else.

    curl -i 'http://127.0.0.1:8080/cgi-bin/slow.py?2'
"""
import os
import sys
import time
from urllib.parse import parse_qs

query = os.environ.get("QUERY_STRING", "")
value = parse_qs(query).get("s", [query])[0]
try:
    seconds = min(max(float(value), 0.0), 120.0)
except ValueError:
    seconds = 1.0

start = time.monotonic()
time.sleep(seconds)
text = f"slept {time.monotonic() - start:.2f} s\n".encode()
sys.stdout.buffer.write(
    b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(text) + text
)
