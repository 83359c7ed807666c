#!/usr/bin/env python3
"""CGI demo: the files in the upload store (www/uploads, found from this
script's own folder), as JSON: {"count": N, "files": [{"name", "size",
"modified"}, ...]}. upload.html builds its list from it.

    curl -i http://127.0.0.1:8080/cgi-bin/upload_count.py
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
store = os.path.normpath(os.path.join(here, "..", "uploads"))

files = []
try:
    with os.scandir(store) as entries:
        for e in entries:
            # Hidden names are the server's half-written uploads (and the
            # repository's .gitkeep/.gitignore): not files anyone uploaded.
            if e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                continue
            st = e.stat(follow_symlinks=False)
            files.append({"name": e.name, "size": st.st_size, "modified": int(st.st_mtime)})
except FileNotFoundError:
    pass
files.sort(key=lambda f: f["name"])

body = json.dumps({"count": len(files), "files": files}, indent=1).encode() + b"\n"
sys.stdout.buffer.write(
    b"Content-Type: application/json\r\n"
    b"Cache-Control: no-store\r\n"
    b"Content-Length: %d\r\n\r\n" % len(body)
    + body
)
