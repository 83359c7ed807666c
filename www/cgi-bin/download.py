#!/usr/bin/env python3
"""CGI demo: a members-only download, handed to the server.

The file lives in www/members/, a location marked `internal;` in
localserver.conf: a client asking for /members/handbook.txt gets 404. This
script checks the session (SESSION_user, stored by /cgi-bin/login.py) and,
for a signed-in visitor, answers only headers:

    X-Accel-Redirect: /members/handbook.txt
    Content-Disposition: attachment; filename="handbook.txt"

The server then ends the script and sends the file itself as a static file
(sendfile, Range, ETag, If-None-Match), keeping Content-Disposition and
Cache-Control and never passing X-Accel-* on. A signed-out visitor gets 403
and a link to sign in.

    curl -i -c jar -b jar -d name=Ada http://127.0.0.1:8080/cgi-bin/login.py
    curl -i -c jar -b jar http://127.0.0.1:8080/cgi-bin/download.py
"""
import os
import sys

TARGET = "/members/handbook.txt"

if os.environ.get("SESSION_user"):
    sys.stdout.buffer.write((
        f"X-Accel-Redirect: {TARGET}\r\n"
        "Content-Disposition: attachment; filename=\"handbook.txt\"\r\n"
        "Cache-Control: private, no-cache\r\n"
        "\r\n").encode())
else:
    body = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Members only · localserver</title>\n"
            "<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n<main>\n"
            "<h1>Members only</h1>\n"
            "<p class=\"lead\">The handbook is for signed-in visitors. "
            "<a href=\"/cgi-bin/login.py?next=/cgi-bin/download.py\">Sign in</a>, "
            "then come back.</p>\n</main>\n</body>\n</html>\n").encode()
    sys.stdout.buffer.write((
        "Status: 403 Forbidden\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n").encode() + body)
