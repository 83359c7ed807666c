#!/usr/bin/env bash
# Plain upload bodies: splice (socket -> pipe -> file) against read/write
# through the ring buffer. Uploads a 256 MiB file ROUNDS times in each mode,
# interleaved, server pinned to CPU 0 and curl to CPU 1, and prints the
# medians of wall time and of the server's CPU time (utime+stime ticks).
# Usage: bench/upload_splice.sh [ROUNDS] [DIR]   (DIR: where uploads land)
set -euo pipefail
rounds=${1:-5}
store=${2:-/dev/shm/ls-upload-bench}
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
mkdir -p "$store"
trap 'rm -rf "$work" "$store"' EXIT
head -c $((256 << 20)) /dev/urandom > "$work/big.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/ls.conf" <<CONF
error_log stderr error;
server { listen 127.0.0.1:$port; root $work;
  location /up/ { upload_store $store; allowed_methods PUT; client_max_body_size 0; } }
CONF
declare -A wall cpu
for r in $(seq "$rounds"); do
  for mode in 1 0; do
    LOCALSERVER_SPLICE=$mode taskset -c 0 ./target/release/localserver -c "$work/ls.conf" & pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    t=$( { /usr/bin/time -f %e taskset -c 1 curl -s -o /dev/null -H 'Expect:' -T "$work/big.bin" "http://127.0.0.1:$port/up/big.bin"; } 2>&1 )
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    cmp -s "$work/big.bin" "$store/big.bin" || { echo "upload corrupted (splice=$mode)"; exit 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true
    wall[$mode]+="$t "; cpu[$mode]+="$((c1 - c0)) "
  done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in 1 0; do
  name=$([ "$mode" = 1 ] && echo splice || echo read/write)
  echo "$name: wall s [${wall[$mode]}] median $(echo "${wall[$mode]}" | med); server cpu ticks [${cpu[$mode]}] median $(echo "${cpu[$mode]}" | med)"
done
