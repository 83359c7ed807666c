#!/bin/sh
# CGI demo in POSIX sh: the environment, sorted, and the length of the body
# that arrived on stdin.
#   curl -i 'http://127.0.0.1:8080/cgi-bin/env.sh?x=1'
#   curl -i --data-binary @README.md http://127.0.0.1:8080/cgi-bin/env.sh

# No Content-Length: the server sends the body chunked to HTTP/1.1 clients.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
env | sort
echo
echo "# working folder: $(pwd)"
if [ -n "$CONTENT_LENGTH" ]; then
    # stdin holds the body and is closed at its end.
    n=$(wc -c | tr -d ' ')
else
    n=0
fi
echo "# stdin length: $n"
