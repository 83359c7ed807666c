#!/bin/sh
# CGI demo: the `Status` header sets the response's status line.
#   curl -i http://127.0.0.1:8080/cgi-bin/status.sh            -> 418 I'm a teapot
#   curl -i 'http://127.0.0.1:8080/cgi-bin/status.sh?code=503' -> 503
code=418
reason="I'm a teapot"
case "$QUERY_STRING" in
    code=[1-5][0-9][0-9])
        code=${QUERY_STRING#code=}
        reason="Chosen by the query"
        ;;
esac
printf 'Status: %s %s\r\n' "$code" "$reason"
printf 'Content-Type: text/plain; charset=utf-8\r\n'
printf 'X-Teapot: short and stout\r\n'
printf '\r\n'
printf 'This answer carries status %s, set by the script.\n' "$code"
