#!/usr/bin/env python3
"""CGI demo: who this session belongs to, as JSON, and a visit counter.

Every page of the demo site asks this script (from /session.js) to fill in
its "Signed in as ..." badge, so each call of a signed-in browser counts one
page view of the session: the script reads SESSION_visits (set by the server
from the session store), adds one, and stores the new count with an
`X-Session` header, which the server keeps and never sends on. Two browsers
have two sessions and two counters. Anonymous visits are not counted: a
stored value makes the session take a file and a place under `session_max`,
which a stranger's request should not get.

    curl -i -c jar -b jar http://127.0.0.1:8080/cgi-bin/whoami.py

answers {"user": null, "visits": 0}, and {"user": "Ada", "visits": 1}, then
2, ... once /cgi-bin/login.py has stored a name.
"""
import json
import os
import sys

user = os.environ.get("SESSION_user") or None
try:
    visits = int(os.environ.get("SESSION_visits", "0")) + 1
except ValueError:
    visits = 1

headers = [
    "Content-Type: application/json",
    "Cache-Control: no-store",
]
# Only a signed-in session (on a route with `session on`) counts.
if os.environ.get("SESSION_ID") and user:
    headers.append(f"X-Session: visits={visits}")
else:
    visits = 0

body = json.dumps({"user": user, "visits": visits}).encode() + b"\n"
headers.append(f"Content-Length: {len(body)}")
sys.stdout.buffer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
