#!/usr/bin/env bash
# localserver against nginx and lighttpd on the same files, same machine.
# Usage: bench/run.sh [--quick] [--rounds N] [--only CASE,CASE...]
#   full: 3 rounds, 10 s runs (~17-20 min)    --quick: 1 round, 3 s runs (~3-5 min)
#   --only: just these cases (idle ka50 ka1000 close50 100k 10m 1g siege syscalls
#   ranges rate200 cold), to rerun one figure after a change; the table then holds only those rows.
#   cold (root, cgroup v1 blkio): downloads from a throttled disk and a fresh
#   client meanwhile, with nginx `aio threads` as a fourth server; skipped,
#   with the reason, where it cannot be set up.
#   BENCH_PERF=CASE,...: also perf record and ss -tmi of the server during those
#   cases (curl cases), into target/bench/last/ (perf costs CPU: diagnosis only).
# Installs what is missing with apt, builds the release server, serves one
# document root from the three servers (each pinned to CPU 0, every load
# generator pinned to CPU 1), runs each case against each server in turn
# (A B C A B C ...), and prints one markdown table (medians over rounds, ratios
# localserver/nginx and localserver/lighttpd), also written to bench/RESULTS.md.
# Raw results and tool outputs stay in target/bench/last/. See bench/README.md.
set -euo pipefail
rounds=3 secs=10 mode=full only=
usage() { echo "usage: bench/run.sh [--quick] [--rounds N] [--only CASE,CASE...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rounds=1 secs=3 mode=quick ;;
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage; rounds=$2; shift ;;
    --only) [ -n "${2:-}" ] || usage; only=",$2,"; shift ;;
    *) usage ;;
  esac
  shift
done
# The download cases (10m, 1g) run at least 8 s in a full run: on loopback the
# client's receive windows take several seconds to grow, and in 4-5 s runs
# servers that differ there look alike (issue 13). --quick keeps its 3 s.
dl_secs=$secs; [ "$mode" = quick ] || [ "$dl_secs" -ge 8 ] || dl_secs=8
# When the windows are read: ~6 s into a download run (60 % into a shorter one).
win_at=$(awk -v s="$dl_secs" 'BEGIN { print (s >= 8) ? 6 : s * 0.6 }')
# True when CASE is to run.
want() { [ -z "$only" ] || [[ "$only" == *",$1,"* ]]; }
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
t_start=$(date +%s)

# ---- tools -------------------------------------------------------------------
command -v cargo >/dev/null || { echo "cargo is needed to build localserver (https://rustup.rs)" >&2; exit 1; }
# h2load (nghttp2-client) is installed for later HTTP/2 cases; none uses it yet.
need=()
for pair in nginx:nginx lighttpd:lighttpd wrk:wrk siege:siege h2load:nghttp2-client \
            curl:curl strace:strace python3:python3 taskset:util-linux pgrep:procps \
            fincore:util-linux ss:iproute2 nstat:iproute2; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  # A fresh install may start the distribution's own nginx/lighttpd on port
  # 80; those are not ours and are left alone (the bench uses free ports).
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# ---- one bench at a time: two runs at once would measure each other (a build too)
exec 9>/tmp/localserver-bench.lock
if ! flock -n 9; then
  echo "another bench/run.sh is running on this machine; waiting for it (at most 30 min)"
  flock -w 1800 9 || { echo "gave up waiting for the other bench run" >&2; exit 1; }
fi

cargo build --release --quiet
# Where cargo put it: CARGO_TARGET_DIR (relative to the repository) if set.
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/localserver")
# The version of what is measured, taken now: later edits do not change it.
ls_version="$("$bin" -v 2>&1 | sed 's/.*: //') (git $(git describe --always --dirty 2>/dev/null || echo unknown))"

# ---- descriptor limit: siege, wrk -c1000 and 10,000 idle connections -----------
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 10100 ] || { echo "need a descriptor limit >= 10100 (ulimit -Hn is $(ulimit -Hn))" >&2; exit 1; }

# ---- document root -------------------------------------------------------------
# Generated once into target/bench-root/ (real random bytes, no sparse file) and
# hard-linked (or copied) into a temp dir for each run.
cache=target/bench-root
mkdir -p "$cache"
make_file() { # NAME SIZE
  [ "$(stat -c %s "$cache/$1" 2>/dev/null || echo 0)" = "$2" ] && return
  echo "generating $cache/$1 ($2 bytes)"
  if [ "$1" = index.html ]; then
    head -c 768 /dev/urandom | base64 -w 0 > "$cache/$1.tmp"   # 1024 printable bytes
  else
    head -c "$2" /dev/urandom > "$cache/$1.tmp"
  fi
  mv "$cache/$1.tmp" "$cache/$1"
}
make_file index.html 1024
make_file 100k.bin $((100 << 10))
make_file 10m.bin $((10 << 20))
make_file 1g.bin $((1 << 30))

work=$(mktemp -d /tmp/ls-bench.XXXXXX)
chmod 755 "$work"
pids=()
cg=   # the cold case's cgroup, once made
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  cold_cleanup
  rm -rf "$work"
}
# Removes the cold case's cgroup. Its servers are stopped by then; whatever is
# still in it was started by this script (a server slow to exit): killed.
cold_cleanup() {
  local p i
  [ -n "$cg" ] && [ -d "$cg" ] || return 0
  for i in $(seq 50); do
    [ -n "$(cat "$cg/cgroup.procs" 2>/dev/null)" ] || break
    if [ "$i" = 20 ]; then
      for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    fi
    sleep 0.1
  done
  rmdir "$cg" 2>/dev/null || echo "could not remove $cg (processes in it: $(cat "$cg/cgroup.procs" 2>/dev/null | xargs))" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
docroot=$work/root
mkdir -p "$docroot"
cp -l "$cache"/index.html "$cache"/*.bin "$docroot/" 2>/dev/null || cp "$cache"/index.html "$cache"/*.bin "$docroot/"
cat "$docroot"/* > /dev/null   # into the page cache before the first run
logs=target/bench/last
rm -rf "$logs"; mkdir -p "$logs"
results=$logs/results.jsonl
: > "$results"

# ---- the cold case: a throttled disk ------------------------------------------------
# Four 256 MiB files in a folder on a real disk (target/bench-cold/, or
# /var/tmp/localserver-bench-cold/ where target/ is not on a block device),
# every server started inside a cgroup v1 blkio group that throttles reads of
# that disk to 100 MB/s and 400 IOPS, the files dropped from the page cache
# before each run (bench/cold_probe.py). Where any of it cannot be set up, the
# case is skipped and cold_skip says why; the rest of the run goes on.
cold_bps=100000000 cold_iops=400 cold_size=$((256 << 20))
cold_files=(cold1.bin cold2.bin cold3.bin cold4.bin)
cold_ok= cold_skip= cold_dev= cold_root=
# MAJ:MIN of the whole disk that holds DIR (blkio throttles disks, not
# partitions); nothing when DIR is not on a block device (tmpfs, overlay, ...).
disk_of() {
  local d
  d=$(python3 -c 'import os, sys; s = os.stat(sys.argv[1]).st_dev; print(f"{os.major(s)}:{os.minor(s)}")' "$1")
  [ -e "/sys/dev/block/$d" ] || return 0
  [ ! -e "/sys/dev/block/$d/partition" ] || d=$(cat "/sys/dev/block/$d/../dev")
  echo "$d"
}
cold_setup() {
  local mnt f
  if [ "$(id -u)" != 0 ]; then
    cold_skip="needs root (it makes a blkio cgroup and starts the servers in it)"; return
  fi
  mnt=$(awk '$3 == "cgroup" && $4 ~ /(^|,)blkio(,|$)/ {print $2; exit}' /proc/mounts)
  if [ -z "$mnt" ] || [ ! -e "$mnt/blkio.throttle.read_bps_device" ]; then
    cold_skip="no cgroup v1 blkio controller with throttling is mounted (cgroup v2 only?)"; return
  fi
  for cold_root in "$PWD/target/bench-cold" /var/tmp/localserver-bench-cold; do
    mkdir -p "$cold_root"
    cold_dev=$(disk_of "$cold_root")
    [ -z "$cold_dev" ] || break
  done
  if [ -z "$cold_dev" ]; then
    cold_skip="neither target/ nor /var/tmp is on a block device"; return
  fi
  for f in "${cold_files[@]}"; do
    [ "$(stat -c %s "$cold_root/$f" 2>/dev/null || echo 0)" != "$cold_size" ] || continue
    echo "generating $cold_root/$f ($cold_size bytes)"
    head -c "$cold_size" /dev/urandom > "$cold_root/$f.tmp"
    sync "$cold_root/$f.tmp"   # written back: POSIX_FADV_DONTNEED drops only clean pages
    mv "$cold_root/$f.tmp" "$cold_root/$f"
  done
  cp "$cache/index.html" "$cold_root/index.html"
  if [ -d "$mnt/localserver-bench-cold" ] && [ -n "$(cat "$mnt/localserver-bench-cold/cgroup.procs")" ]; then
    cold_skip="$mnt/localserver-bench-cold has processes in it (left by a killed run?): stop them and rmdir it"
    return
  fi
  cg=$mnt/localserver-bench-cold
  mkdir -p "$cg"
  if ! echo "$cold_dev $cold_bps" 2>/dev/null > "$cg/blkio.throttle.read_bps_device" ||
     ! echo "$cold_dev $cold_iops" 2>/dev/null > "$cg/blkio.throttle.read_iops_device"; then
    cold_skip="the kernel refused a read throttle on disk $cold_dev"; return
  fi
  cold_ok=1
}
if want cold; then
  cold_setup
  if [ -n "$cold_ok" ]; then
    echo "cold case: files in $cold_root, reads of disk $cold_dev throttled to $cold_bps B/s and $cold_iops IOPS in $cg"
  else
    echo "cold case skipped: $cold_skip" >&2
  fi
fi

# ---- configurations --------------------------------------------------------------
# Three ports for the warm servers, four for the cold case's.
read -r p_ls p_nginx p_lighttpd pc_ls pc_nginx pc_aio pc_lighttpd < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
servers=(localserver nginx lighttpd)
declare -A port=([localserver]=$p_ls [nginx]=$p_nginx [lighttpd]=$p_lighttpd)
cold_servers=(localserver nginx nginx-aio lighttpd)
declare -A cold_port=([localserver]=$pc_ls [nginx]=$pc_nginx [nginx-aio]=$pc_aio [lighttpd]=$pc_lighttpd)

# localserver: defaults (keepalive_timeout 75s, worker_connections 16384,
# worker_processes 1) except keepalive_requests, raised as for the others.
# /rate/ is the same root at limit_rate 256k (the rate200 case; nginx alike).
ls_conf() { # PORT ROOT
  cat <<CONF
error_log stderr error;
keepalive_requests 1000000;
server { listen 127.0.0.1:$1; root $2; location /rate/ { alias $2/; limit_rate 256k; } }
CONF
}

nginx_user=; [ "$(id -u)" = 0 ] && nginx_user="user root;"
nginx_conf() { # PORT ROOT DIR [DIRECTIVE]: DIR holds its pid and temp files
  mkdir -p "$3"
  cat <<CONF
$nginx_user
worker_processes 1;
worker_rlimit_nofile 20000;
pid $3/nginx.pid;
error_log /dev/null crit;
events { worker_connections 20000; }
http {
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on; tcp_nopush on; tcp_nodelay on;${4:+
    $4}
    access_log off;
    open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
    keepalive_requests 1000000; keepalive_timeout 75s;
    client_body_temp_path $3/body; proxy_temp_path $3/proxy;
    fastcgi_temp_path $3/fastcgi; uwsgi_temp_path $3/uwsgi;
    scgi_temp_path $3/scgi;
    server { listen 127.0.0.1:$1; root $2; location /rate/ { alias $2/; limit_rate 256k; } }
}
CONF
}

# lighttpd: max-connections may not exceed max-fds / 2.
lighttpd_conf() { # PORT ROOT ERROR_LOG
  cat <<CONF
server.document-root = "$2"
server.bind = "127.0.0.1"
server.port = $1
server.max-worker = 0
server.max-fds = 20000
server.max-connections = 10000
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 75
server.network-backend = "sendfile"
server.errorlog = "$3"
mimetype.assign = (".html" => "text/html", ".bin" => "application/octet-stream")
CONF
}

ls_conf "$p_ls" "$docroot" > "$work/localserver.conf"
nginx_conf "$p_nginx" "$docroot" "$work/nginx" > "$work/nginx.conf"
lighttpd_conf "$p_lighttpd" "$docroot" "$work/lighttpd-error.log" > "$work/lighttpd.conf"
if [ -n "$cold_ok" ]; then
  # The same configurations on the cold folder; nginx-aio adds a thread pool
  # (32 threads) that reads the file, so that its one loop does not wait.
  ls_conf "$pc_ls" "$cold_root" > "$work/cold-localserver.conf"
  nginx_conf "$pc_nginx" "$cold_root" "$work/cold-nginx" > "$work/cold-nginx.conf"
  nginx_conf "$pc_aio" "$cold_root" "$work/cold-nginx-aio" "aio threads;" > "$work/cold-nginx-aio.conf"
  lighttpd_conf "$pc_lighttpd" "$cold_root" "$work/cold-lighttpd-error.log" > "$work/cold-lighttpd.conf"
fi

cat > "$work/siegerc" <<CONF
verbose = false
quiet = true
json_output = true
show-logfile = false
logging = false
logfile = $work/siege.log
protocol = HTTP/1.1
connection = keep-alive
parser = false
accept-encoding = identity
limit = 255
failures = 1000000
benchmark = true
CONF
cp "$work"/*.conf "$work/siegerc" "$logs/"

# ---- servers ---------------------------------------------------------------------
declare -A spid   # the process whose CPU and memory are measured
wait_port() { # PORT PID
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "server (pid $2) died on start" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2; exit 1
}
start_servers() {
  local w
  taskset -c 0 "$bin" -c "$work/localserver.conf" 2>>"$logs/localserver.err" 9>&- &
  pids+=($!); spid[localserver]=$!
  wait_port "$p_ls" "${spid[localserver]}"

  taskset -c 0 nginx -e "$work/nginx/error.log" -g 'daemon off;' -c "$work/nginx.conf" -p "$work/nginx/" 9>&- &
  pids+=($!); nginx_master=$!
  wait_port "$p_nginx" "$nginx_master"
  w=
  for _ in $(seq 100); do w=$(pgrep -P "$nginx_master" || true); [ -n "$w" ] && break; sleep 0.05; done
  [ -n "$w" ] || { echo "no nginx worker" >&2; exit 1; }
  spid[nginx]=$w

  taskset -c 0 lighttpd -D -f "$work/lighttpd.conf" 9>&- &
  pids+=($!); spid[lighttpd]=$!
  wait_port "$p_lighttpd" "${spid[lighttpd]}"
}
stop_servers() {
  local p
  for p in "${spid[localserver]}" "$nginx_master" "${spid[lighttpd]}"; do
    kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  done
  pids=()
}

# utime+stime in clock ticks (fields 14 and 15, counted after the ")" of comm),
# time on CPU in ns from schedstat (summed over the process's threads: nginx
# with `aio threads` reads in its thread pool), and the user+nice+system ticks
# of all of CPU 0 (what is not the server's there is another process taking
# its CPU); one JSON fragment.
cpu() {
  echo "\"ticks\":$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')," \
       "\"sched_ns\":$(cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}')," \
       "\"cpu0_ticks\":$(awk '$1 == "cpu0" {print $2 + $3 + $4}' /proc/stat)"
}
delta() { # "ticks:a,sched_ns:b" before and after -> JSON fragment of differences
  python3 -c 'import json,sys; a=json.loads("{"+sys.argv[1]+"}"); b=json.loads("{"+sys.argv[2]+"}"); print(",".join(f"\"{k}\":{b[k]-a[k]}" for k in a))' "$1" "$2"
}
record() { # CASE SERVER ROUND CPU_DELTA JSON: the run's result, kept by measure
  rec="{\"case\":\"$1\",\"server\":\"$2\",\"round\":$3,\"secs\":$secs,$4,$5}"
}
# Percent of all CPUs busy over half a second. Between runs the servers idle,
# so what is busy is someone else's work.
busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 0.5
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk '{t = $4 - $2; print (t > 0) ? int(100 * ($3 - $1) / t) : 0}'
}
# Waiting for quiet and running again cost time: at most this many seconds
# over the whole run, after which rows are only flagged (in the table).
patience=180; [ "$mode" = full ] || patience=60
wait_quiet() { # until the machine is idle, while patience lasts (~30 s at most each)
  local busy=0 i
  for i in $(seq 30); do
    busy=$(busy_pct)
    [ "$busy" -le 5 ] && return
    [ "$patience" -gt 0 ] || break
    sleep 0.5; patience=$((patience - 1))
  done
  echo "  (the machine is ${busy} % busy with other work; going on)" >&2
}
# Runs one measurement (a run_* function and its arguments) on a quiet machine
# and appends its record; when other processes still took more than 5 % of
# CPU 0 during it, runs it once more (patience allowing) and keeps the second.
measure() {
  local try share
  for try in 1 2; do
    wait_quiet
    rec=
    "$@"
    if [ -z "$rec" ]; then return; fi
    share=$(python3 -c 'import json, sys; sys.path.insert(0, "bench"); from summarize import foreign_share
x = foreign_share(json.loads(sys.argv[1]), int(sys.argv[2])); print(int(100 * (x or 0)))' "$rec" "$clk")
    if [ "$share" -le 5 ] || [ "$try" = 2 ] || [ "$patience" -lt "$secs" ]; then
      echo "$rec" >> "$results"; return
    fi
    patience=$((patience - secs))
    echo "  ($2 on $3, round $4: other processes took $share % of CPU 0 during it; once more)" >&2
  done
}
clk=$(getconf CLK_TCK)
url() { echo "http://127.0.0.1:${port[$1]}/$2"; }

# TCP segments sent by this network namespace so far (nstat -a: absolute,
# -s: no history file is read or written), -1 without nstat.
tcp_out_segs() {
  nstat -asz TcpOutSegs 2>/dev/null | awk '$1 == "TcpOutSegs" {print $2; f = 1} END {if (!f) print -1}'
}
# The download cases' window figures: win_at s after this is called, ss -tmi of
# the server's established connections (local port = the server's), in the
# background into target/bench/last/ss-at.CASE.SERVER.ROUND.txt. snd_wnd on a
# server socket is the window the client advertises; the server cannot send
# more than that ahead of the client's reading.
win_start() { # CASE SERVER ROUND
  win_file=$logs/ss-at.$1.$2.$3.txt
  ( sleep "$win_at"; ss -tmiH state established "( sport = :${port[$2]} )" ) > "$win_file" 2>&1 &
  win_pid=$!
  win_segs=$(tcp_out_segs)
}
# -> JSON fragment: "win":{at, snd_wnd of each connection, the server's data
# segments and bytes sent on them}, "tcp_out_segs": TcpOutSegs over the run
# (all of loopback, both directions: the server's segments and the client's ACKs).
win_end() {
  local segs
  segs=$(tcp_out_segs)
  wait "$win_pid" 2>/dev/null || true
  echo "\"win\":$(python3 -c 'import json, sys; sys.path.insert(0, "bench"); from summarize import parse_ss
print(json.dumps(dict(parse_ss(open(sys.argv[1]).read()), at=float(sys.argv[2]))))' "$win_file" "$win_at")," \
       "\"tcp_out_segs\":$(( win_segs < 0 || segs < 0 ? -1 : segs - win_segs ))"
}
run_wrk() { # CASE SERVER ROUND CONNS PATH [wrk args...]
  local c=$1 s=$2 r=$3 n=$4 path=$5; shift 5
  local pid=${spid[$s]} before after out json win=
  # The download case runs dl_secs; record (dynamic scope) sees this secs.
  local secs=$secs; [ "$c" != 10m ] || secs=$dl_secs
  [ "$c" != 10m ] || win_start "$c" "$s" "$r"
  before=$(cpu "$pid")
  out=$(timeout $((secs + 60)) taskset -c 1 wrk -t1 -c"$n" -d"${secs}s" --latency -s bench/report.lua "$@" "$(url "$s" "$path")")
  after=$(cpu "$pid")
  [ "$c" != 10m ] || win=,$(win_end)
  echo "$out" > "$logs/$c.$s.$r.txt"
  json=$(sed -n 's/^WRKJSON //p' <<<"$out")
  [ -n "$json" ] || { echo "no wrk summary for $c $s" >&2; echo "$out" >&2; exit 1; }
  record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"wrk\",\"wrk\":$json$win"
}
# BENCH_PERF=CASE,...: during those cases' runs, perf record -g of the server
# and ss -tmi of its sockets each 0.5 s, into target/bench/last/ (a diagnosis aid:
# perf costs the server CPU, so such a run's figures are not comparable).
perf_on() { # CASE SERVER ROUND -> sets perf_pids
  perf_pids=()
  [[ ",${BENCH_PERF:-}," == *",$1,"* ]] || return 0
  perf record -q -e cpu-clock -g -p "${spid[$2]}" -o "$logs/perf.$1.$2.$3.data" 2>/dev/null &
  perf_pids+=($!)
  ( while :; do date +%s.%N; ss -tmi "sport = :${port[$2]}"; sleep 0.5; done ) > "$logs/ss.$1.$2.$3.txt" 2>&1 &
  perf_pids+=($!)
}
perf_off() {
  local p
  for p in "${perf_pids[@]}"; do kill -INT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  perf_pids=()
}
curl_w='{"http_code":%{http_code},"size":%{size_download},"time":%{time_total},"speed":%{speed_download}}\n'
# The file downloaded once on its own connection (the "one curl download" that
# issue 13 and anchor-bench quote, and the pace), then again and again on one
# keep-alive connection for at least dl_secs (the number of downloads set by
# the first one's time), which is the run measured: its windows have had
# time to grow.
run_curl() { # CASE SERVER ROUND PATH
  local c=$1 s=$2 r=$3 pid=${spid[$2]} before after out first n i size cached
  local secs=$dl_secs get=()
  # Into the page cache first, for every server alike. This VM pages out file
  # pages idle for a minute (a DAMON pageout scheme), so by the time the
  # download case comes round most of the 1 GiB file is gone, and the first
  # server of the round would pay for the disk reads (readahead was half of
  # localserver's CPU in the full runs that put it at 2x nginx's CPU per MB).
  cat "$docroot/$4" > /dev/null
  cached=$(fincore -n -b -o RES "$docroot/$4" 2>/dev/null || echo -1)
  size=$(stat -c %s "$docroot/$4")
  first=$(timeout 300 taskset -c 1 curl -s -o /dev/null --max-time 240 -w "$curl_w" "$(url "$s" "$4")" || true)
  [ -n "$first" ] || first='{"http_code":0,"size":0,"time":0,"speed":0}'
  n=$(python3 -c 'import json, math, sys
t = json.loads(sys.argv[1])["time"]
print(min(200, max(1, math.ceil(float(sys.argv[2]) / t))) if t > 0 else 1)' "$first" "$secs")
  for i in $(seq "$n"); do get+=(-o /dev/null "$(url "$s" "$4")"); done
  perf_on "$c" "$s" "$r"
  win_start "$c" "$s" "$r"
  before=$(cpu "$pid")
  out=$(timeout $((secs * 4 + 120)) taskset -c 1 curl -s --max-time 240 -w "$curl_w" "${get[@]}" || true)
  after=$(cpu "$pid")
  perf_off
  echo "$first" > "$logs/$c.$s.$r.txt"
  echo "$out" >> "$logs/$c.$s.$r.txt"
  # The n downloads as one: 200 if all were, bytes and seconds summed.
  out=$(python3 -c 'import json, sys
d = [json.loads(l) for l in sys.stdin if l.strip()]
size, time = sum(x["size"] for x in d), sum(x["time"] for x in d)
code = 200 if d and all(x["http_code"] == 200 for x in d) else 0
print(json.dumps({"http_code": code, "size": size, "time": time, "speed": size / time if time else 0, "n": len(d)}))' <<<"$out")
  record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"curl\",\"curl\":$out,\"expect\":$((n * size)),\"file_size\":$size,\"cached\":$cached,\"first\":$first,$(win_end)"
}
# Several ranges of one file in one request: 10 parts of 1,000 bytes, one in
# each MiB of the 10 MiB file, so every server answers a 206
# multipart/byteranges (none of them merges a range here). One curl first
# checks that it does: a server answering 200 would send the whole file, and
# its figure would mean something else (said on stderr and in the log).
ranges_hdr="Range: bytes=$(python3 -c 'print(",".join(f"{i << 20}-{(i << 20) + 999}" for i in range(10)))')"
run_ranges() { # CASE SERVER ROUND
  local got
  got=$(timeout 30 taskset -c 1 curl -s -o /dev/null -w '%{http_code} %{content_type} %{size_download}' \
          -H "$ranges_hdr" "$(url "$2" 10m.bin)" || true)
  [[ $got == "206 multipart/byteranges"* ]] ||
    echo "  ($2 answered the ranges with \"$got\", not a multipart 206)" >&2
  run_wrk "$1" "$2" "$3" 50 10m.bin -H "$ranges_hdr"
  echo "check: $got" >> "$logs/$1.$2.$3.txt"
}
run_siege() { # CASE SERVER ROUND PATH
  local c=$1 s=$2 r=$3 pid=${spid[$2]} before after out json rc try
  # siege 4.0.7 now and then hangs (on connections the server closed) or
  # exits without its summary: bounded, and up to 3 tries.
  for try in 1 2 3; do
    before=$(cpu "$pid")
    rc=0
    out=$(timeout -k 5 $((secs + 20)) taskset -c 1 siege -R "$work/siegerc" -b -c 255 -t "${secs}S" "$(url "$s" "$4")" 2>&1) || rc=$?
    after=$(cpu "$pid")
    echo "$out" > "$logs/$c.$s.$r.txt"
    if json=$(python3 -c 'import json, re, sys
m = re.search(r"\{.*\}", sys.stdin.read(), re.S)
print(json.dumps(json.loads(m.group(0))))' <<<"$out" 2>/dev/null); then
      record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"siege\",\"siege\":$json,\"tries\":$try"
      return
    fi
    echo "  (siege on $s gave no summary, exit status $rc: ${out:0:200})" >&2
    sleep 2
  done
  record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"siege\",\"siege\":{\"availability\":0,\"failed\":\"no summary from siege\"}"
}
# 200 connections each downloading 10 MiB at limit_rate 256k for secs
# seconds (bench/rate_conns.py): the server's CPU per connection-second of
# paced sending. localserver and nginx (lighttpd's rate limit is another
# mechanism, per second of its own loop: left out).
run_rate() { # CASE SERVER ROUND
  local c=$1 s=$2 r=$3 pid=${spid[$2]} before after out
  before=$(cpu "$pid")
  out=$(timeout $((secs + 60)) taskset -c 1 python3 bench/rate_conns.py "${port[$s]}" 200 /rate/10m.bin "$secs")
  after=$(cpu "$pid")
  echo "$out" > "$logs/$c.$s.$r.txt"
  record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"rate\",\"rate\":$out"
}
run_idle() { # CASE SERVER ROUND
  local c=$1 s=$2 r=$3 pid=${spid[$2]} before after out
  before=$(cpu "$pid")
  out=$(timeout 300 taskset -c 1 python3 bench/idle_conns.py "${port[$s]}" "$pid" 10000 /index.html)
  after=$(cpu "$pid")
  echo "$out" > "$logs/$c.$s.$r.txt"
  record "$c" "$s" "$r" "$(delta "$before" "$after")" "\"tool\":\"idle\",\"idle\":$out"
}
run_strace() { # CASE SERVER ROUND
  local c=$1 s=$2 r=$3 pid=${spid[$2]} st out json calls
  timeout 120 strace -q -c -f -U calls,errors,name -p "$pid" -o "$work/strace.txt" & st=$!
  pids+=("$st")
  sleep 0.5
  out=$(timeout 60 taskset -c 1 wrk -t1 -c10 -d3s -s bench/report.lua "$(url "$s" index.html)")
  kill -INT "$st" 2>/dev/null || true; wait "$st" 2>/dev/null || true
  { echo "$out"; cat "$work/strace.txt"; } > "$logs/$c.$s.$r.txt"
  json=$(sed -n 's/^WRKJSON //p' <<<"$out")
  calls=$(python3 -c '
import json, sys
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 2 and f[0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[0])
print(json.dumps(calls))' "$work/strace.txt")
  record "$c" "$s" "$r" '"ticks":0,"sched_ns":0,"cpu0_ticks":0' "\"tool\":\"strace\",\"wrk\":$json,\"calls\":$calls"
}

# The cold case's servers, one at a time, each started fresh for its run
# inside the cgroup: the shell writes its own pid into cgroup.procs, then
# becomes the server (exec), so the server and all it forks (nginx's worker)
# read the disk through the throttle. Sets cold_pid (to stop) and cold_spid
# (to measure: nginx's worker).
cold_start() { # SERVER
  local s=$1 w cmd=()
  case $s in
    localserver) cmd=("$bin" -c "$work/cold-localserver.conf") ;;
    nginx|nginx-aio) cmd=(nginx -e "$work/cold-$s/error.log" -g 'daemon off;' -c "$work/cold-$s.conf" -p "$work/cold-$s/") ;;
    lighttpd) cmd=(lighttpd -D -f "$work/cold-lighttpd.conf") ;;
  esac
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  sh -c 'echo $$ > "$0" && exec taskset -c 0 "$@"' "$cg/cgroup.procs" "${cmd[@]}" 2>>"$logs/cold-$s.err" 9>&- &
  cold_pid=$!
  pids+=("$cold_pid")
  wait_port "${cold_port[$s]}" "$cold_pid"
  cold_spid=$cold_pid
  if [[ $s == nginx* ]]; then
    w=
    for _ in $(seq 100); do w=$(pgrep -P "$cold_pid" || true); [ -n "$w" ] && break; sleep 0.05; done
    [ -n "$w" ] || { echo "no nginx worker" >&2; exit 1; }
    cold_spid=$w
  fi
}
cold_stop() {
  kill "$cold_pid" 2>/dev/null || true; wait "$cold_pid" 2>/dev/null || true
  pids=()   # the cold case runs while no other server is up
}
# Bytes the cgroup read from the throttled disk so far.
cold_disk_read() {
  awk -v d="$cold_dev" '$1 == d && $2 == "Read" {print $3; f = 1} END {if (!f) print 0}' \
    "$cg/blkio.throttle.io_service_bytes" 2>/dev/null || echo 0
}
run_cold() { # CASE SERVER ROUND
  local c=$1 s=$2 r=$3 before after out rd0 rd1
  cold_start "$s"
  cat "$cold_root/index.html" > /dev/null
  rd0=$(cold_disk_read)
  before=$(cpu "$cold_spid")
  out=$(timeout 400 taskset -c 1 python3 bench/cold_probe.py "${cold_port[$s]}" "$cold_root" /index.html \
          "$logs/$c.$s.$r.probe-ms" "${cold_files[@]}" 2>>"$logs/$c.$s.$r.err" || true)
  after=$(cpu "$cold_spid")
  rd1=$(cold_disk_read)
  cold_stop
  echo "$out" > "$logs/$c.$s.$r.txt"
  [ -n "$out" ] || out='{"failed":"no result from bench/cold_probe.py"}'
  record "$c" "$s" "$r" "$(delta "$before" "$after")" \
    "\"tool\":\"cold\",\"cold\":$out,\"disk_read\":$((rd1 - rd0)),\"throttle\":{\"dev\":\"$cold_dev\",\"bps\":$cold_bps,\"iops\":$cold_iops}"
}

# ---- the run -----------------------------------------------------------------------
echo "bench: $mode run, $rounds round(s) of ${secs} s runs; localserver :$p_ls nginx :$p_nginx lighttpd :$p_lighttpd"
warm=   # any case but cold: those share the three servers of the round
for c in idle ka50 ka1000 close50 100k 10m 1g siege syscalls ranges rate200; do want "$c" && warm=1; done
for r in $(seq "$rounds"); do
  if [ -n "$warm" ]; then
    start_servers   # fresh processes each round: the idle-memory case needs them
    echo "round $r/$rounds: servers localserver ${spid[localserver]} nginx worker ${spid[nginx]} lighttpd ${spid[lighttpd]}"
  fi
  # Idle connections first, on fresh processes, so that memory left over from
  # the other cases does not hide the per-connection cost.
  if want idle; then for s in "${servers[@]}"; do measure run_idle idle "$s" "$r"; done; fi
  if want ka50; then for s in "${servers[@]}"; do measure run_wrk ka50 "$s" "$r" 50 index.html; done; fi
  if want ka1000; then for s in "${servers[@]}"; do measure run_wrk ka1000 "$s" "$r" 1000 index.html; done; fi
  if want close50; then
    for s in "${servers[@]}"; do measure run_wrk close50 "$s" "$r" 50 index.html -H 'Connection: close'; done
  fi
  if want 100k; then for s in "${servers[@]}"; do measure run_wrk 100k "$s" "$r" 10 100k.bin; done; fi
  if want 10m; then for s in "${servers[@]}"; do measure run_wrk 10m "$s" "$r" 10 10m.bin; done; fi
  if want 1g; then for s in "${servers[@]}"; do measure run_curl 1g "$s" "$r" 1g.bin; done; fi
  if want siege; then for s in "${servers[@]}"; do measure run_siege siege "$s" "$r" index.html; done; fi
  if want syscalls; then for s in "${servers[@]}"; do measure run_strace syscalls "$s" "$r"; done; fi
  if want ranges; then for s in "${servers[@]}"; do measure run_ranges ranges "$s" "$r"; done; fi
  if want rate200; then for s in localserver nginx; do measure run_rate rate200 "$s" "$r"; done; fi
  [ -z "$warm" ] || stop_servers
  if [ -n "$cold_ok" ]; then
    echo "round $r/$rounds: cold case, ~12 s per server"
    for s in "${cold_servers[@]}"; do measure run_cold cold "$s" "$r"; done
  fi
done
cold_cleanup; cg=

# ---- versions and the table --------------------------------------------------------
meta=$logs/meta.json
python3 - "$meta" <<PY
import json, sys
json.dump({
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "mode": "$mode", "rounds": $rounds, "secs": $secs,
  "nproc": "$(nproc)",
  "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')",
  "kernel": "$(uname -sr)",
  "clk_tck": $(getconf CLK_TCK),
  "localserver": "$ls_version",
  "nginx": "$(nginx -v 2>&1 | sed 's/.*: //')",
  "lighttpd": "$(lighttpd -v | cut -d' ' -f1)",
  "wrk": "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)",
  "siege": "$(siege -V 2>&1 | head -1)",
  "curl": "$(curl -V | head -1 | cut -d' ' -f1-2)",
  "strace": "$(strace -V | head -1)",
  "elapsed_s": $(( $(date +%s) - t_start )),
  "cold": {"wanted": $(want cold && echo True || echo False), "ran": $([ -n "$cold_ok" ] && echo True || echo False),
           "skipped": "$cold_skip", "dir": "$cold_root", "dev": "$cold_dev",
           "bps": $cold_bps, "iops": $cold_iops},
  "dl_secs": $dl_secs,
}, open(sys.argv[1], "w"))
PY
python3 bench/summarize.py "$results" "$meta" > "$logs/RESULTS.md"
cat "$logs/RESULTS.md"
if [ -z "$only" ]; then
  cp "$logs/RESULTS.md" bench/RESULTS.md
  echo "written to bench/RESULTS.md (raw results: $logs/)"
else
  echo "a partial run (--only): bench/RESULTS.md left as it was (this table: $logs/RESULTS.md)"
fi
