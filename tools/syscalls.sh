#!/usr/bin/env bash
# Syscalls per keep-alive request: strace -c -f attached to a release build
# serving a 1 KiB file while wrk (or, without wrk, a curl loop) sends load.
# Usage: tools/syscalls.sh [SECONDS] [CONNECTIONS]
# strace slows the server down a lot: read the counts, not the req/s.
set -euo pipefail
secs=${1:-5}
conns=${2:-10}
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace is needed (apt-get install strace)"; exit 1; }
cargo build --release --quiet
dir=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 > "$dir/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/ls.conf" <<CONF
error_log stderr error;
server { listen 127.0.0.1:$port; root $dir; }
CONF
./target/release/localserver -c "$dir/ls.conf" & srv=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
strace -c -f -p "$srv" -o "$dir/strace.txt" & st=$!
sleep 0.5
if command -v wrk >/dev/null; then
  wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/index.html" | tee "$dir/wrk.txt"
  reqs=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
else
  reqs=2000
  curl -s -o /dev/null $(for _ in $(seq $reqs); do echo "http://127.0.0.1:$port/index.html"; done)
fi
kill -INT "$st"; wait "$st" 2>/dev/null || true
cat "$dir/strace.txt"
total=$(awk '/^100.00/ {print $4}' "$dir/strace.txt")
echo "requests: $reqs  syscalls: $total  per request: $(python3 -c "print(round($total/$reqs, 2))")"
