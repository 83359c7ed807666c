#!/usr/bin/env bash
# Slow attacks against a release localserver on loopback, with slowhttptest:
# slowloris (-H), slow body (-B, R-U-Dead-Yet) and slow read (-X), each for
# a bounded time, while a curl loop times a fresh client's GET ten times a
# second. Prints, per attack, slowhttptest's last status and the probe's
# figures (requests, failures, p50, p99, max) and the server's descriptors.
# Usage: bench/abuse.sh [SECONDS]   (each attack; default 20)
# Installs slowhttptest with apt when it is missing. See bench/README.md.
set -euo pipefail
secs=${1:-20}
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/abuse.sh [SECONDS]" >&2; exit 2; }
cd "$(dirname "$0")/.."

if ! command -v slowhttptest >/dev/null; then
  echo "installing slowhttptest..." >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y slowhttptest >/dev/null
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

cargo build --release -q
work=$(mktemp -d /tmp/localserver-abuse.XXXXXX)
pid=
probe_pid=
cleanup() {
  [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/up"
echo "probe ok" > "$work/www/probe.txt"
head -c $((64 << 20)) /dev/zero > "$work/www/big.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/abuse.conf" <<EOF
error_log stderr warn;
client_header_timeout 10s;
client_body_timeout 10s;
send_timeout 10s;
keepalive_timeout 15s;
server {
    listen 127.0.0.1:$port;
    root www;
    location /upload/ { upload_store up; allowed_methods GET POST PUT; client_max_body_size 100m; }
}
EOF
./target/release/localserver -c "$work/abuse.conf" 2> "$work/server.log" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/probe.txt" && break; sleep 0.05; done
base_fds=$(ls /proc/$pid/fd | wc -l)
fd_list() { ls -l /proc/$pid/fd | tail -n +2 | awk '{print $(NF-2), $NF}' | sort; }
fd_list > "$work/fds.base"
echo "localserver $pid on 127.0.0.1:$port, $base_fds descriptors at rest; $secs s per attack"

# probe FILE: one line per GET, "CODE SECONDS", every 100 ms until killed.
probe() {
  while :; do
    curl -s -o /dev/null -m 3 -w '%{http_code} %{time_total}\n' \
      "http://127.0.0.1:$port/probe.txt" >> "$1" || echo "000 3" >> "$1"
    sleep 0.1
  done
}

# summary FILE: requests, non-200, p50, p99, max (ms).
summary() {
  awk '{ n++; if ($1 != "200") bad++; print $2 * 1000 }' "$1" | sort -n | awk -v bad="$(awk '$1 != "200"' "$1" | wc -l)" '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "no probes"; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
      printf "probe: %d requests, %d not 200, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, bad, p50, p99, v[NR]
    }'
}

attack() {
  local name=$1; shift
  local log="$work/$name.probe"
  : > "$log"
  probe "$log" &
  probe_pid=$!
  local peak=0
  slowhttptest "$@" -l "$secs" -o "$work/$name" > "$work/$name.out" 2>&1 &
  local st=$!
  while kill -0 "$st" 2>/dev/null; do
    n=$(ls /proc/$pid/fd | wc -l); [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.5
  done
  wait "$st" || true
  kill "$probe_pid" 2>/dev/null || true; wait "$probe_pid" 2>/dev/null || true; probe_pid=
  # Freed once the attack is over (the longest timeout is 15 s).
  local after
  for _ in $(seq 40); do
    after=$(ls /proc/$pid/fd | wc -l); [ "$after" -le "$base_fds" ] && break; sleep 0.5
  done
  echo
  echo "== $name: slowhttptest $*"
  # The last status block (colour codes stripped) and why the test ended.
  sed 's/\x1b\[[0-9;]*m//g' "$work/$name.out" \
    | grep -E "^(pending|connected|error|closed|service available|Exit status):" \
    | tail -6 | tr -s ' \t' ' ' | paste -sd ';' - | sed 's/^/slowhttptest: /'
  if [ "${after:-0}" -gt "$base_fds" ]; then
    echo "descriptors not there at rest:"; fd_list | comm -13 "$work/fds.base" - | sed 's/^/  /'
  fi
  summary "$log"
  echo "server descriptors: $base_fds at rest, peak $peak, $after after"
  kill -0 "$pid" || { echo "localserver died"; cat "$work/server.log"; exit 1; }
}

url="http://127.0.0.1:$port"
attack slowloris -H -c 1000 -r 200 -i 5 -x 24 -p 3 -u "$url/probe.txt"
attack slow-body -B -c 1000 -r 200 -i 5 -x 24 -s 8192 -p 3 -t POST -u "$url/upload/slow.bin"
attack slow-read -X -c 500 -r 200 -w 32 -y 64 -n 5 -z 32 -k 3 -p 3 -u "$url/big.bin"

echo
echo "server error log (warnings and worse):"
grep -v "running as root" "$work/server.log" | tail -5 || true
