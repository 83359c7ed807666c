#!/usr/bin/env python3
"""CGI demo: a script that fails before writing any header. The server
answers 502 Bad Gateway; what it wrote to stderr goes to the error log.

    curl -i http://127.0.0.1:8080/cgi-bin/fail.py
"""
import sys

print("fail.py: failing on purpose, before any output", file=sys.stderr)
sys.exit(1)
