#!/usr/bin/env python3
"""CGI demo: sign in and out, with the name kept in the server's session.

The server (`session on` in localserver.conf) gives every browser a session
and passes its stored values to this script as SESSION_<key> variables. The
script never touches the cookie or the session files: it asks the server to
store or forget things with response headers, which the server keeps to
itself.

    GET                 the form, or who is signed in and a "Sign out" button
    POST name=NAME      X-Session-Rotate: 1 and X-Session: user=NAME (a new
                        session id at sign-in), then 303 to `next` (default /)
    POST logout=1       X-Session-Destroy: 1, then 303 to /

    curl -i -c jar -b jar -d name=Ada http://127.0.0.1:8080/cgi-bin/login.py
    curl -i -c jar -b jar http://127.0.0.1:8080/cgi-bin/whoami.py
"""
import html
import os
import sys
from urllib.parse import parse_qs

SCRIPT = os.environ.get("SCRIPT_NAME", "/cgi-bin/login.py")
MAX_NAME = 64  # characters; the store takes values up to 4096 bytes


def esc(s):
    return html.escape(s, quote=True)


def badge(user):
    """The header's session badge, as /session.js would draw it."""
    if not user:
        return f'<a class="signin" href="{esc(SCRIPT)}" aria-current="page">Sign in</a>'
    return (f'<a href="{esc(SCRIPT)}" title="Your session" aria-current="page">'
            f'<span class="avatar" aria-hidden="true">{esc(user[0].upper())}</span>'
            f'<span class="name">{esc(user)}</span></a>')


def page(title, content, user=""):
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(title)} · localserver</title>
  <link rel="stylesheet" href="/style.css">
  <link rel="icon" href="/img/logo.svg" type="image/svg+xml">
  <script src="/session.js" defer></script>
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
        <a href="/cgi-bin/form.py">CGI</a>
        <a href="/php/">PHP</a>
      </nav>
      <div class="who" id="user-badge">{badge(user)}</div>
    </div>
  </header>
  <main>
{content}
  </main>
  <footer class="site">localserver demo site · <code>www/cgi-bin/login.py</code></footer>
</body>
</html>
"""


def safe_next(target):
    """A path on this site to go back to, or "/" (never another host)."""
    if (not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7f for c in target)):
        return "/"
    return target


def clean_name(raw):
    """Spaces collapsed, control characters dropped, at most MAX_NAME."""
    name = " ".join("".join(c for c in raw if c.isprintable() or c.isspace()).split())
    return name[:MAX_NAME].strip()


def session_table():
    """What the server passed about the session (the id shortened: the
    cookie is HttpOnly, so the page does not show it whole)."""
    sid = os.environ.get("SESSION_ID", "")
    rows = [("SESSION_ID", sid[:8] + "…" if sid else "(none)")]
    for key in sorted(k for k in os.environ if k.startswith("SESSION_") and k != "SESSION_ID"):
        rows.append((key, os.environ[key]))
    cells = "\n".join(f"      <tr><th><code>{esc(k)}</code></th><td>{esc(v)}</td></tr>"
                      for k, v in rows)
    return f"""    <h2>What the server told this script</h2>
    <table class="kv">
{cells}
    </table>"""


def signed_in_page(user):
    return page("Your session", f"""    <h1>Signed in</h1>
    <p class="lead">Signed in as <strong id="current-user">{esc(user)}</strong>. Every page
      of this site knows it, because the name is kept in your session on the server.</p>
    <form class="panel" method="post" action="{esc(SCRIPT)}">
      <p>Signing out ends the session (<code>X-Session-Destroy: 1</code>); your browser
        gets a fresh one on its next request.</p>
      <p><button type="submit" id="signout">Sign out</button></p>
      <input type="hidden" name="logout" value="1">
    </form>
{session_table()}""", user)


def form_page(next_path, error="", value=""):
    err = f'\n      <p class="error" role="alert">{esc(error)}</p>' if error else ""
    return page("Sign in", f"""    <h1>Sign in</h1>
    <p class="lead">Any name will do: this demo checks no password. The name is stored in
      your session on the server, and every page that asks shows it.</p>
    <form class="panel" method="post" action="{esc(SCRIPT)}">{err}
      <p><label for="name">Your name</label>
        <input id="name" name="name" value="{esc(value)}" maxlength="{MAX_NAME}" required autofocus
               autocomplete="nickname" placeholder="Ada Lovelace"></p>
      <p><button type="submit" id="signin">Sign in</button></p>
      <input type="hidden" name="next" value="{esc(next_path)}">
    </form>
    <p class="note">The script answers the form with <code>X-Session: user=NAME</code>, a header
      the server keeps for itself, and <code>303 See Other</code> back to the page you came from.</p>
{session_table()}""")


def respond(status, body="", headers=()):
    data = body.encode("utf-8")
    head = [f"Status: {status}"]
    head += list(headers)
    head += ["Content-Type: text/html; charset=utf-8", "Cache-Control: no-store",
             f"Content-Length: {len(data)}"]
    sys.stdout.buffer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + data)


def redirect(target, headers):
    body = f'<!DOCTYPE html>\n<p><a href="{esc(target)}">Continue</a></p>\n'
    respond("303 See Other", body, list(headers) + [f"Location: {target}"])


def main():
    method = os.environ.get("REQUEST_METHOD", "GET")
    user = os.environ.get("SESSION_user", "")
    query = parse_qs(os.environ.get("QUERY_STRING", ""))
    if method in ("GET", "HEAD"):
        if user:
            respond("200 OK", signed_in_page(user))
        else:
            respond("200 OK", form_page(safe_next(query.get("next", ["/"])[0])))
        return
    if method != "POST":
        respond("405 Method Not Allowed", page("Not allowed", "    <h1>GET or POST only</h1>"),
                ["Allow: GET, HEAD, POST"])
        return

    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    raw = sys.stdin.buffer.read(length) if length else b""
    form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    field = lambda k: form.get(k, [""])[0]  # noqa: E731
    next_path = safe_next(field("next") or "/")

    if not os.environ.get("SESSION_ID"):
        respond("500 Internal Server Error",
                page("No session", "    <h1>No session</h1>\n    <p>This route has no "
                     "<code>session on</code>, so there is nowhere to keep a name.</p>"))
    elif field("logout"):
        redirect("/", ["X-Session-Destroy: 1"])
    else:
        name = clean_name(field("name"))
        if not name:
            respond("400 Bad Request", form_page(next_path, "Please type a name.", field("name")))
        else:
            # A new session id at sign-in: an id planted before it (session
            # fixation) does not become a signed-in one.
            redirect(next_path, ["X-Session-Rotate: 1", f"X-Session: user={name}"])


main()
