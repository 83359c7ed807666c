#!/usr/bin/env python3
"""CGI demo: a form handler. GET shows two forms; POST shows what was sent,
field by field, from either an `application/x-www-form-urlencoded` or a
`multipart/form-data` body. Standard library only (the `cgi` module is gone
from Python 3.13): urllib.parse for the first, email.parser for the second.

    curl -i -d 'name=Ada&lang=Rust' http://127.0.0.1:8080/cgi-bin/form.py
    curl -i -F name=Ada -F file=@README.md http://127.0.0.1:8080/cgi-bin/form.py
"""
import email.parser
import email.policy
import html
import os
import sys
from urllib.parse import parse_qsl

SCRIPT = os.environ.get("SCRIPT_NAME", "/cgi-bin/form.py")


def page(title, content):
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)} · localserver</title>
  <link rel="stylesheet" href="/style.css">
  <script src="/session.js" defer></script>
  <link rel="icon" href="/img/logo.svg" type="image/svg+xml">
</head>
<body>
  <header class="site">
    <div class="bar">
      <a class="brand" href="/"><img src="/img/logo.svg" width="28" height="28" alt="">localserver</a>
      <nav>
        <a href="/">Home</a>
        <a href="/about.html">About</a>
        <a href="/files/">Files</a>
        <a href="/docs/">Docs</a>
        <a href="/upload.html">Uploads</a>
        <a href="{html.escape(SCRIPT)}" aria-current="page">CGI</a>
        <a href="/php/">PHP</a>
      </nav>
      <div class="who" id="user-badge"><a class="signin" href="/cgi-bin/login.py">Sign in</a></div>
    </div>
  </header>
  <main>
    <h1>{html.escape(title)}</h1>
{content}
  </main>
  <footer class="site">localserver demo site · <code>www/cgi-bin/form.py</code></footer>
</body>
</html>
"""


def forms():
    action = html.escape(SCRIPT)
    return f"""    <p class="lead">A Python CGI script that echoes what a form sends.</p>
    <h2>URL-encoded</h2>
    <form method="post" action="{action}">
      <p><label>Name <input name="name" value="Ada Lovelace"></label></p>
      <p><label>Favourite language
        <select name="lang"><option>Rust</option><option>C</option><option>Python</option></select>
      </label></p>
      <p><label>Comment<br><textarea name="comment" rows="3" cols="40">Hello, server!</textarea></label></p>
      <p><button type="submit">Send</button></p>
    </form>
    <h2>Multipart, with a file</h2>
    <form method="post" action="{action}" enctype="multipart/form-data">
      <p><label>Title <input name="title" value="a file"></label></p>
      <p><label>File <input type="file" name="file"></label></p>
      <p><button type="submit">Send</button></p>
    </form>"""


def parse_urlencoded(body):
    text = body.decode("utf-8", "replace")
    return [(k, v, None) for k, v in parse_qsl(text, keep_blank_values=True)]


def parse_multipart(content_type, body):
    """(name, value, filename) for each part. The body is parsed as a MIME
    message whose head is the request's Content-Type."""
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise ValueError("not a multipart body")
    fields = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        fields.append((name, data, filename))
    return fields


def describe(fields):
    if not fields:
        return "    <p>The form was empty.</p>"
    rows = []
    for name, value, filename in fields:
        if filename is not None:
            shown = f"file <code>{html.escape(filename)}</code>, {len(value)} bytes"
            if value and b"\0" not in value[:1024]:
                preview = value[:200].decode("utf-8", "replace")
                shown += f"<pre>{html.escape(preview)}</pre>"
        else:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            shown = html.escape(value).replace("\n", "<br>")
        rows.append(f"      <tr><th>{html.escape(name)}</th><td>{shown}</td></tr>")
    return ("    <table>\n      <tr><th>field</th><th>value</th></tr>\n"
            + "\n".join(rows) + "\n    </table>")


def main():
    method = os.environ.get("REQUEST_METHOD", "GET")
    status = "200 OK"
    if method == "POST":
        length = int(os.environ.get("CONTENT_LENGTH") or 0)
        body = sys.stdin.buffer.read(length) if length else b""
        ctype = os.environ.get("CONTENT_TYPE", "")
        kind = ctype.split(";")[0].strip().lower()
        try:
            if kind == "multipart/form-data":
                fields = parse_multipart(ctype, body)
            else:
                fields = parse_urlencoded(body)
            content = (f"    <p class=\"lead\">{len(body)} bytes of "
                       f"<code>{html.escape(kind or 'no type')}</code> arrived.</p>\n"
                       + describe(fields)
                       + f"\n    <p><a href=\"{html.escape(SCRIPT)}\">Back to the form</a></p>")
            text = page("What the form sent", content)
        except (ValueError, LookupError) as e:
            status = "400 Bad Request"
            text = page("Unreadable form", f"    <p>{html.escape(str(e))}</p>")
    else:
        text = page("A form", forms())

    data = text.encode("utf-8")
    sys.stdout.buffer.write(
        f"Status: {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode("latin-1") + data
    )


main()
