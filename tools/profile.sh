#!/usr/bin/env bash
# CPU profile of the release server under one of bench/run.sh's load cases:
#   target/profile/CASE.svg   flame graph (inferno)
#   target/profile/CASE.txt   the load's figures, perf stat software counters,
#                             and perf report --stdio: the top 30 symbols
#   target/profile/CASE.data  the perf.data itself (perf report -i ...)
# Usage: tools/profile.sh CASE [SECONDS]
#   CASE: 1k-keepalive (wrk -c50), 1k-1000 (wrk -c1000), 1k-close (wrk -c50,
#         Connection: close), 100k (wrk -c10), 10m (wrk -c10), 1g (1 GiB curl
#         downloads one after another)
#   SECONDS: how long perf records (default 10); the load runs 2 s longer.
# Sampling is perf's cpu-clock software event (this VM has no hardware
# counters). Stacks are unwound from DWARF (Rust's std has no frame pointers);
# PROFILE_CALLGRAPH=fp gives cheaper frame-pointer stacks (perf record -g).
# Server pinned to CPU 0, wrk to CPU 1, as in the bench.
set -euo pipefail
case_=${1:-}
secs=${2:-10}
case "$case_" in
  1k-keepalive) conns=50 file=index.html hdr=() ;;
  1k-1000) conns=1000 file=index.html hdr=() ;;
  1k-close) conns=50 file=index.html hdr=(-H 'Connection: close') ;;
  100k) conns=10 file=100k.bin hdr=() ;;
  10m) conns=10 file=10m.bin hdr=() ;;
  1g) conns=1 file=1g.bin hdr=() ;;
  *) echo "usage: tools/profile.sh 1k-keepalive|1k-1000|1k-close|100k|10m|1g [SECONDS]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo

# ---- tools ------------------------------------------------------------------------
apt_install() {
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! command -v perf >/dev/null; then
  # Debian ships perf as linux-perf; Ubuntu as linux-tools-<kernel>.
  if apt-cache policy linux-perf 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_install linux-perf
  else
    apt_install "linux-tools-$(uname -r)" || apt_install linux-tools-generic
  fi
fi
missing=()
for pair in wrk:wrk python3:python3 taskset:util-linux; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
if ! command -v inferno-flamegraph >/dev/null || ! command -v inferno-collapse-perf >/dev/null; then
  echo "installing inferno (cargo install inferno)"
  cargo install --quiet --locked inferno
fi
# One measurement at a time (bench/run.sh takes the same lock).
exec 9>/tmp/localserver-bench.lock
if ! flock -n 9; then
  echo "bench/run.sh or another profile is running; waiting for it (at most 30 min)"
  flock -w 1800 9 || { echo "gave up waiting" >&2; exit 1; }
fi
cargo build --release --quiet

# ---- document root (shared with bench/run.sh) ---------------------------------------
cache=target/bench-root
mkdir -p "$cache"
make_file() { # NAME SIZE
  [ "$(stat -c %s "$cache/$1" 2>/dev/null || echo 0)" = "$2" ] && return
  if [ "$1" = index.html ]; then
    head -c 768 /dev/urandom | base64 -w 0 > "$cache/$1.tmp"
  else
    head -c "$2" /dev/urandom > "$cache/$1.tmp"
  fi
  mv "$cache/$1.tmp" "$cache/$1"
}
make_file index.html 1024
make_file 100k.bin $((100 << 10))
make_file 10m.bin $((10 << 20))
[ "$case_" != 1g ] || make_file 1g.bin $((1 << 30))

work=$(mktemp -d /tmp/ls-profile.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/root"
cp -l "$cache/$file" "$work/root/" 2>/dev/null || cp "$cache/$file" "$work/root/"
ulimit -n "$(ulimit -Hn)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/ls.conf" <<CONF
error_log stderr error;
keepalive_requests 1000000;
server { listen 127.0.0.1:$port; root $work/root; }
CONF
taskset -c 0 ./target/release/localserver -c "$work/ls.conf" 9>&- & srv=$!
pids+=("$srv")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

out=target/profile
mkdir -p "$out"
if [ "${PROFILE_CALLGRAPH:-dwarf}" = fp ]; then cg=(-g); else cg=(--call-graph dwarf,16384); fi

# Load for secs + 2: one second to warm up before perf attaches, one spare.
if [ "$case_" = 1g ]; then
  # Downloads back to back; a last one may outlive the window by a second.
  timeout $((secs + 60)) bash -c 'end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
      taskset -c 1 curl -s -o /dev/null --max-time 30 -w "%{size_download} bytes in %{time_total} s: %{speed_download} B/s\n" "$2"
    done' _ "$((secs + 2))" "http://127.0.0.1:$port/$file" > "$work/wrk.txt" & load=$!
else
  timeout $((secs + 60)) taskset -c 1 wrk -t1 -c"$conns" -d"$((secs + 2))s" --latency "${hdr[@]}" \
    "http://127.0.0.1:$port/$file" > "$work/wrk.txt" & load=$!
fi
pids+=("$load")
sleep 1
c0=$(sed 's/.*) //' "/proc/$srv/stat" | awk '{print $12 + $13}')
# perf stat alongside perf record, over the same window: software counters only.
timeout $((secs + 30)) perf stat -e task-clock,context-switches,cpu-migrations,page-faults \
  -p "$srv" -o "$work/stat.txt" -- sleep "$secs" & st=$!
pids+=("$st")
timeout $((secs + 30)) perf record -q -e cpu-clock -F 999 "${cg[@]}" -p "$srv" -o "$out/$case_.data" -- sleep "$secs" 2>"$work/record.err" \
  || { cat "$work/record.err" >&2; exit 1; }
wait "$st" || true
c1=$(sed 's/.*) //' "/proc/$srv/stat" | awk '{print $12 + $13}')
wait "$load" || true

# ---- reports -----------------------------------------------------------------------
perf script -i "$out/$case_.data" 2>/dev/null | inferno-collapse-perf 2>/dev/null \
  | inferno-flamegraph --title "localserver: $case_ (-c$conns ${hdr[*]} /$file, ${secs} s, cpu-clock)" \
  > "$out/$case_.svg"
{
  echo "# tools/profile.sh $case_ $secs  ($(date -u '+%Y-%m-%d %H:%M UTC'), localserver git $(git describe --always --dirty))"
  echo
  echo "## load ($((secs + 2)) s; perf attached for the middle ${secs} s)"
  cat "$work/wrk.txt"
  echo
  echo "server CPU while perf recorded: $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms in ${secs} s (perf itself adds some)"
  echo
  echo "## perf stat (software counters; this VM has no hardware counters)"
  grep -v '^$' "$work/stat.txt" || true
  echo
  echo "## perf report --stdio --no-children: by object, then the top 30 symbols"
  # (the IPC columns perf adds are empty without hardware counters: cut off)
  perf report -i "$out/$case_.data" --stdio --no-children -g none --sort dso 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -8 || true
  echo
  perf report -i "$out/$case_.data" --stdio --no-children -g none --sort dso,symbol 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -30 || true
} > "$out/$case_.txt"
cat "$out/$case_.txt"
echo
echo "flame graph: $out/$case_.svg   report: $out/$case_.txt   data: $out/$case_.data"
