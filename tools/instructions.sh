#!/usr/bin/env bash
# Instructions per keep-alive request, counted by callgrind (exact and
# repeatable, whatever else the machine does; the figure to compare before
# and after a change to the request path).
# Usage: [LOG=combined|json] tools/instructions.sh [BINARY]
#        (default: target/release/localserver; LOG adds an access log line)
# Runs the server under valgrind twice, serving 1,000 and then 6,000 GETs of a
# 1 KiB file on one keep-alive connection, and prints (Ir(6000) - Ir(1000)) / 5000.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/localserver}
[ "$bin" != target/release/localserver ] || cargo build --release --quiet
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
work=$(mktemp -d /tmp/ls-instr.XXXXXX)
trap '[ -n "${KEEP:-}" ] && cp "$work"/cg.* "$KEEP"/ ; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 768 /dev/urandom | base64 -w 0 > "$work/www/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# LOG=combined or LOG=json: each request also writes an access log line
# (json: a log_format of six variables), to compare what a line costs.
case "${LOG:-}" in
  combined) log="access_log $work/access.log;" ;;
  json) log="access_log $work/access.log j;" ;;
  *) log="" ;;
esac
cat > "$work/conf" <<CONF
error_log stderr error;
log_format j escape=json '{"t":"\$time_iso8601","a":"\$remote_addr","r":"\$request",'
                         '"s":\$status,"b":\$body_bytes_sent,"rt":\$request_time}';
server { listen 127.0.0.1:$port; root $work/www; $log }
CONF
run() { # N -> total Ir
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" "$bin" -c "$work/conf" 2>"$work/vg.$1" &
  local vg=$!
  python3 - "$port" "$1" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        time.sleep(0.05)
req = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: instructions.sh\r\nAccept: */*\r\n\r\n"
buf = b""
for i in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")][0])
            if len(buf) >= end + 4 + length:
                buf = buf[end + 4 + length:]
                break
        buf += s.recv(65536)
s.close()
PY
  kill -TERM "$vg"; wait "$vg" || true
  sed -n 's/^summary: //p' "$work/cg.$1"
}
a=$(run 1000); b=$(run 6000)
echo "instructions per keep-alive request: $(( (b - a) / 5000 ))   (Ir 1000 requests: $a, 6000: $b)"
