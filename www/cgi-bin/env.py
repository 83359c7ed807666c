#!/usr/bin/env python3
"""CGI demo: the environment the server gives a script, sorted, then what
arrived on stdin.

Try:  curl -i 'http://127.0.0.1:8080/cgi-bin/env.py/extra/path?x=1'
      curl -i --data-binary 'hello' http://127.0.0.1:8080/cgi-bin/env.py
"""
import os
import sys


def main():
    # RFC 3875 §4.2: the body is CONTENT_LENGTH bytes. localserver also
    # closes stdin at its end, so reading to EOF is safe when there is one;
    # without CONTENT_LENGTH there is no body, and stdin is not read.
    body = sys.stdin.buffer.read() if os.environ.get("CONTENT_LENGTH") else b""

    lines = [f"{name}={value}" for name, value in sorted(os.environ.items())]
    lines.append("")
    lines.append(f"# working folder: {os.getcwd()}")
    lines.append(f"# argv: {' '.join(sys.argv)}")
    lines.append(f"# stdin length: {len(body)}")
    text = ("\n".join(lines) + "\n").encode("utf-8", "replace")

    out = sys.stdout.buffer
    out.write(b"Content-Type: text/plain; charset=utf-8\r\n")
    out.write(b"Content-Length: %d\r\n\r\n" % len(text))
    out.write(text)


main()
