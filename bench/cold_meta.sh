#!/usr/bin/env bash
# Cold metadata: does open/stat of a file whose inode and dentries are not in
# memory block the one event loop long enough to matter? (issue 13)
#
#   bench/cold_meta.sh [--servers "localserver nginx-aio"] [--rounds 3]
#                      [--files 4000] [--secs 10] [--bin PATH] [--out DIR]
#                      [--inode-readahead BLOCKS]
#
# As root, with a cgroup v1 blkio controller (as bench/run.sh's cold case):
#  1. A tree of FILES small files (0.5-2 KiB) in nested folders
#     (a00-a19/b00-b09/cNN.html) on a real disk (/var/tmp/localserver-cold-meta,
#     checked: not tmpfs/overlay, on a block device), plus a 1 KiB probe file.
#  2. A blkio cgroup (/sys/fs/cgroup/blkio/localserver-cold-meta) throttling
#     reads of that disk to 100 MB/s and 400 IOPS; each server is started in
#     it (its PID written to cgroup.procs, then exec), pinned to CPU 0, the
#     clients on CPU 1. The cgroup is removed at the end, whatever happens.
#  3. Per server and round, three phases of SECS seconds each:
#     - "warm":  a fresh-connection probe GETs the 1 KiB file every 50 ms
#                (connect to last byte, as bench/cold_probe.py), nothing else;
#     - "cold":  `sync; echo 3 > /proc/sys/vm/drop_caches`, the probe file
#                read back into memory, then the same probe while one
#                keep-alive client GETs the tree's files one after the other
#                in a shuffled order (each file once; every one is cold);
#     - "strace": caches dropped again, the server restarted (empty open-file
#                cache), the same walker alone while
#                `strace -f -T -e trace=openat,openat2,open,statx,newfstatat,fstat`
#                follows the server (strace slows it: read the durations of
#                the calls, not the walker's rate).
#  4. Prints a table: the probe's p50/p99/max warm and cold, the walker's
#     files/s and per-file p50/p99, and the traced calls' count, p50, p99, max
#     and total time, per server (medians over rounds). Raw results (JSON
#     lines, strace logs, probe latencies) go to DIR (target/bench/cold-meta).
#
# --inode-readahead BLOCKS sets ext4's inode_readahead_blks of that filesystem
# (/sys/fs/ext4/DEV/, default 32: one read of a cold inode brings the 32
# inode-table blocks around it, 512 inodes of 256 B, so a tree made at one go
# costs few metadata reads) for the run (0: one read per inode-table block),
# and puts the old value back at the end (it is system-wide). Measured on
# 2026-12-03 (bench/raw/2026-12-03-cold-meta.txt): with 32 a few opens per
# 10 s walk blocked ~100 ms, the throttle's slice; with 0, none.
#
# Servers: localserver (defaults, as bench/run.sh), nginx-aio (bench/run.sh's
# nginx configuration, open_file_cache included, plus `aio threads;`), nginx
# (without aio) and lighttpd. Ports 18240-18249, 127.0.0.1 only. Every step
# is bounded in time (a round is about 3*SECS + 15 s per server); only the
# processes this script starts are stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ira= ira_file= ira_old=
servers="localserver nginx-aio" rounds=3 nfiles=4000 secs=10
bin=${CARGO_TARGET_DIR:-target}/release/localserver out=target/bench/cold-meta
while [ $# -gt 0 ]; do
  case $1 in
    --servers) servers=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --files) nfiles=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --inode-readahead) ira=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (blkio cgroup, drop_caches)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no server binary at $bin (cargo build --release, or --bin)" >&2; exit 1; }
for t in python3 strace taskset nginx; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
mkdir -p "$out"
bps=100000000 iops=400

# ---- the tree, on a real disk -----------------------------------------------------
base=/var/tmp/localserver-cold-meta
root=$base/root
mkdir -p "$root"
fstype=$(stat -f -c %T "$root")
case $fstype in tmpfs|overlayfs|ramfs|nfs*|fuse*) echo "$root is on $fstype, not a local disk" >&2; exit 1 ;; esac
dev=$(python3 -c 'import os, sys; s = os.stat(sys.argv[1]).st_dev; print(f"{os.major(s)}:{os.minor(s)}")' "$root")
[ -e "/sys/dev/block/$dev" ] || { echo "$root (dev $dev) is not on a block device" >&2; exit 1; }
fsdev=$(basename "$(readlink -f "/sys/dev/block/$dev")")
[ ! -e "/sys/dev/block/$dev/partition" ] || dev=$(cat "/sys/dev/block/$dev/../dev")
if [ "$(cat "$base/made" 2>/dev/null)" != "$nfiles" ]; then
  echo "making $nfiles files under $root"
  rm -rf "$root"; mkdir -p "$root"
  python3 - "$root" "$nfiles" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(13)
for i in range(n):
    d = os.path.join(root, f"a{i // 200:02d}", f"b{i // 20 % 10:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"c{i % 20:02d}.html"), "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 2048)))
with open(os.path.join(root, "probe.html"), "wb") as f:
    f.write(rng.randbytes(1024))
PY
  sync
  echo "$nfiles" > "$base/made"
fi
echo "tree: $nfiles files in $root ($fstype, disk $dev); $(df -h --output=source,fstype "$root" | tail -1)"

# ---- the cgroup ----------------------------------------------------------------------
mnt=$(awk '$3 == "cgroup" && $4 ~ /(^|,)blkio(,|$)/ {print $2; exit}' /proc/mounts)
[ -n "$mnt" ] && [ -e "$mnt/blkio.throttle.read_bps_device" ] ||
  { echo "no cgroup v1 blkio controller with throttling is mounted" >&2; exit 1; }
cg=$mnt/localserver-cold-meta
if [ -d "$cg" ] && [ -n "$(cat "$cg/cgroup.procs")" ]; then
  echo "$cg has processes in it (a killed run?): stop them and rmdir it" >&2; exit 1
fi
work=$(mktemp -d /tmp/ls-cold-meta.XXXXXX)
pids=()
cleanup() {
  local p i
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -d "$cg" ]; then
    for i in $(seq 50); do
      [ -n "$(cat "$cg/cgroup.procs" 2>/dev/null)" ] || break
      if [ "$i" = 20 ]; then   # only what this script started can be in it
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      fi
      sleep 0.1
    done
    rmdir "$cg" 2>/dev/null || echo "could not remove $cg" >&2
  fi
  if [ -n "$ira_old" ]; then echo "$ira_old" > "$ira_file" && echo "inode_readahead_blks back to $ira_old"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$cg"
echo "$dev $bps" > "$cg/blkio.throttle.read_bps_device"
echo "$dev $iops" > "$cg/blkio.throttle.read_iops_device"
if [ -n "$ira" ]; then
  ira_file=/sys/fs/ext4/$fsdev/inode_readahead_blks
  [ -w "$ira_file" ] || { echo "no $ira_file" >&2; exit 1; }
  ira_old=$(cat "$ira_file"); echo "$ira" > "$ira_file"
  echo "inode_readahead_blks of $fsdev: $ira (was $ira_old) for this run"
fi
echo "cgroup $cg: reads of $dev throttled to $bps B/s, $iops IOPS"

# ---- servers -------------------------------------------------------------------------
declare -A port=([localserver]=18240 [nginx-aio]=18241 [nginx]=18242 [lighttpd]=18243)
printf 'error_log stderr error;\nkeepalive_requests 1000000;\nserver { listen 127.0.0.1:%s; root %s; }\n' \
  "${port[localserver]}" "$root" > "$work/localserver.conf"
nginx_conf() { # PORT DIR [DIRECTIVE]
  mkdir -p "$2"
  cat <<CONF
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $2/nginx.pid;
error_log /dev/null crit;
events { worker_connections 20000; }
http {
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on; tcp_nopush on; tcp_nodelay on;${3:+
    $3}
    access_log off;
    open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
    keepalive_requests 1000000; keepalive_timeout 75s;
    client_body_temp_path $2/body; proxy_temp_path $2/proxy;
    fastcgi_temp_path $2/fastcgi; uwsgi_temp_path $2/uwsgi;
    scgi_temp_path $2/scgi;
    server { listen 127.0.0.1:$1; root $root; }
}
CONF
}
nginx_conf "${port[nginx-aio]}" "$work/nginx-aio" "aio threads;" > "$work/nginx-aio.conf"
nginx_conf "${port[nginx]}" "$work/nginx" > "$work/nginx.conf"
cat > "$work/lighttpd.conf" <<CONF
server.document-root = "$root"
server.bind = "127.0.0.1"
server.port = ${port[lighttpd]}
server.max-worker = 0
server.max-fds = 20000
server.max-connections = 10000
server.max-keep-alive-requests = 1000000
server.network-backend = "sendfile"
server.errorlog = "$work/lighttpd-error.log"
mimetype.assign = (".html" => "text/html", ".bin" => "application/octet-stream")
CONF
cp "$work"/*.conf "$out/"

spid= mpid=
start() { # SERVER: sets mpid (to stop) and spid (the process that serves)
  local s=$1 cmd=() w
  case $s in
    localserver) cmd=("$bin" -c "$work/localserver.conf") ;;
    nginx|nginx-aio) cmd=(nginx -e "$work/$s/error.log" -g 'daemon off;' -c "$work/$s.conf" -p "$work/$s/") ;;
    lighttpd) cmd=(lighttpd -D -f "$work/lighttpd.conf") ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  sh -c 'echo $$ > "$0" && exec taskset -c 0 "$@"' "$cg/cgroup.procs" "${cmd[@]}" 2>>"$out/$s.err" &
  mpid=$!; pids+=("$mpid")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${port[$s]}") 2>/dev/null && break
    kill -0 "$mpid" 2>/dev/null || { echo "$s died on start" >&2; exit 1; }
    sleep 0.05
  done
  spid=$mpid
  if [[ $s == nginx* ]]; then
    w=; for _ in $(seq 100); do w=$(pgrep -P "$mpid" || true); [ -n "$w" ] && break; sleep 0.05; done
    spid=$w
  fi
}
stop() { kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true; pids=(); }
drop() { timeout 60 sync || true; echo 3 > /proc/sys/vm/drop_caches; cat "$root/probe.html" > /dev/null; }
disk() { awk -v d="$dev" '$1 == d && $2 == "Read" {b = $3} END {print b + 0}' "$cg/blkio.throttle.io_service_bytes"; }
ios() { awk -v d="$dev" '$1 == d && $2 == "Read" {b = $3} END {print b + 0}' "$cg/blkio.throttle.io_serviced"; }
# Reads the whole disk completed (all cgroups; metadata the throttle may not see).
devios() { awk '{print $1}' "/sys/dev/block/$dev/stat"; }
steal() { awk '/^cpu /{print $9}' /proc/stat; }

# The clients: probe (fresh connection every 50 ms) and/or walker (one
# keep-alive connection, the tree's files in a shuffled order), SECS seconds.
cat > "$work/client.py" <<'PY'
import json, math, os, random, socket, sys, threading, time
port, root, secs, mode, seed, lat_out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]

def pct(xs, q):
    if not xs: return None
    s = sorted(xs); return round(s[min(len(s), max(1, math.ceil(len(s) * q))) - 1], 3)

def get(sock, path):
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = sock.recv(65536)
        if not c: raise ConnectionError("closed")
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":", 1)[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        c = sock.recv(65536)
        if not c: raise ConnectionError("closed")
        body += c
    return int(head.split()[1])

stop = threading.Event()
probe, perr = [], [0]
def prober():
    nxt = time.perf_counter()
    while not stop.is_set():
        t = time.perf_counter(); ok = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /probe.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                got = b""
                while True:
                    c = s.recv(65536)
                    if not c: break
                    got += c
            ok = got.startswith(b"HTTP/1.1 200 ")
        except OSError:
            pass
        probe.append((time.perf_counter() - t) * 1000)
        if not ok: perr[0] += 1
        nxt = max(nxt + 0.05, time.perf_counter())
        stop.wait(max(0.0, nxt - time.perf_counter()))

# The names as the tree was made (not os.walk: listing the folders from this
# unthrottled process would bring their blocks and inodes into memory).
nfiles = int(sys.argv[7])
files = [f"a{i // 200:02d}/b{i // 20 % 10:02d}/c{i % 20:02d}.html" for i in range(nfiles)]
random.Random(seed).shuffle(files)
walk, werr = [], [0]
def walker():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        for f in files:
            if stop.is_set(): break
            t = time.perf_counter()
            if get(s, "/" + f) != 200: werr[0] += 1
            walk.append((time.perf_counter() - t) * 1000)
        s.close()
    except OSError:
        werr[0] += 1

ths = []
if "probe" in mode: ths.append(threading.Thread(target=prober))
if "walk" in mode: ths.append(threading.Thread(target=walker))
t0 = time.perf_counter()
for t in ths: t.start()
stop.wait(secs); stop.set()
for t in ths: t.join(15)
with open(lat_out, "w") as f:
    f.write("".join(f"probe {x:.3f}\n" for x in probe) + "".join(f"walk {x:.3f}\n" for x in walk))
print(json.dumps({"probes": len(probe), "probe_errors": perr[0], "probe_p50_ms": pct(probe, .5),
                  "probe_p99_ms": pct(probe, .99), "probe_max_ms": round(max(probe), 3) if probe else None,
                  "walked": len(walk), "walk_errors": werr[0], "walk_files_s": round(len(walk) / (time.perf_counter() - t0), 1),
                  "walk_p50_ms": pct(walk, .5), "walk_p99_ms": pct(walk, .99),
                  "walk_max_ms": round(max(walk), 3) if walk else None}))
PY

# strace -T lines -> per-syscall count/p50/p99/max/total (ms), tree files only
cat > "$work/strace_sum.py" <<'PY'
import json, math, re, sys
d = {}
pat = re.compile(r'^\s*\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)[^<]*<([\d.]+)>\s*$')
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line)
    if not m or "probe.html" in m.group(2): continue
    key, dur = m.group(1), float(m.group(4)) * 1000
    d.setdefault(key, []).append(dur)
def pct(xs, q):
    s = sorted(xs); return round(s[min(len(s), max(1, math.ceil(len(s) * q))) - 1], 3)
print(json.dumps({k: {"n": len(v), "p50_ms": pct(v, .5), "p99_ms": pct(v, .99), "max_ms": round(max(v), 3),
                      "total_ms": round(sum(v), 1), "over_1ms": sum(1 for x in v if x > 1)} for k, v in sorted(d.items())}))
PY

res=$out/results.jsonl
: > "$res"
echo "servers: $servers; $rounds round(s) of 3 x $secs s per server"
for r in $(seq "$rounds"); do
  for s in $servers; do
    start "$s"
    # warm: the probe alone
    st0=$(steal)
    w=$(timeout $((secs + 40)) taskset -c 1 python3 "$work/client.py" "${port[$s]}" "$root" "$secs" probe 0 "$out/$s.$r.warm.lat" "$nfiles")
    echo "{\"server\":\"$s\",\"round\":$r,\"phase\":\"warm\",\"steal_ticks\":$(( $(steal) - st0 )),\"client\":$w}" >> "$res"
    # cold: probe + walker, every tree file cold
    drop; d0=$(disk); i0=$(ios); v0=$(devios); st0=$(steal)
    c=$(timeout $((secs + 40)) taskset -c 1 python3 "$work/client.py" "${port[$s]}" "$root" "$secs" probe+walk "$r" "$out/$s.$r.cold.lat" "$nfiles")
    echo "{\"server\":\"$s\",\"round\":$r,\"phase\":\"cold\",\"steal_ticks\":$(( $(steal) - st0 )),\"disk_read_bytes\":$(( $(disk) - d0 )),\"disk_read_ios\":$(( $(ios) - i0 )),\"device_read_ios\":$(( $(devios) - v0 )),\"client\":$c}" >> "$res"
    # strace: the walker alone, traced, on a fresh server (an empty
    # open-file cache: localserver's and nginx's would otherwise serve the
    # files of the cold phase from the descriptors they kept)
    stop; drop; start "$s"
    timeout $((secs + 20)) strace -f -T -e trace=openat,openat2,open,statx,newfstatat,fstat -p "$spid" -o "$out/$s.$r.strace" 2>/dev/null &
    tpid=$!; pids+=("$tpid"); sleep 0.5
    c=$(timeout $((secs + 40)) taskset -c 1 python3 "$work/client.py" "${port[$s]}" "$root" "$secs" walk "$((r + 100))" "$out/$s.$r.strace.lat" "$nfiles")
    kill "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true
    t=$(python3 "$work/strace_sum.py" "$out/$s.$r.strace" "$root")
    echo "{\"server\":\"$s\",\"round\":$r,\"phase\":\"strace\",\"client\":$c,\"syscalls\":$t}" >> "$res"
    stop
    echo "round $r $s: $(tail -3 "$res" | cut -c1-400 | tr '\n' ' ' | head -c 900)"
    echo
  done
done

python3 - "$res" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
servers = list(dict.fromkeys(r["server"] for r in rows))
med = lambda xs: round(st.median(xs), 3) if xs else None
print("\n| server | probe warm p50 / p99 / max ms | probe with cold walker p50 / p99 / max ms | walker files/s, per-file p50 / p99 ms | read IOs in the cold phase: cgroup / whole disk | steal ticks |")
print("|---|--:|--:|--:|--:|--:|")
for s in servers:
    w = [r["client"] for r in rows if r["server"] == s and r["phase"] == "warm"]
    c = [r["client"] for r in rows if r["server"] == s and r["phase"] == "cold"]
    stl = [r["steal_ticks"] for r in rows if r["server"] == s and "steal_ticks" in r]
    f = lambda xs, k: med([x[k] for x in xs if x[k] is not None])
    print(f"| {s} | {f(w,'probe_p50_ms')} / {f(w,'probe_p99_ms')} / {f(w,'probe_max_ms')} | "
          f"{f(c,'probe_p50_ms')} / {f(c,'probe_p99_ms')} / {f(c,'probe_max_ms')} | "
          f"{f(c,'walk_files_s')}, {f(c,'walk_p50_ms')} / {f(c,'walk_p99_ms')} | "
          f"{med([r['disk_read_ios'] for r in rows if r['server'] == s and r['phase'] == 'cold'])} / "
          f"{med([r.get('device_read_ios', 0) for r in rows if r['server'] == s and r['phase'] == 'cold'])} | {sum(stl)} |")
print("\nstrace -T of the server while the walker ran alone (medians over rounds; times include strace's own cost):")
print("| server | syscall | calls | p50 ms | p99 ms | max ms | total ms | calls > 1 ms |")
print("|---|---|--:|--:|--:|--:|--:|--:|")
for s in servers:
    t = [r["syscalls"] for r in rows if r["server"] == s and r["phase"] == "strace"]
    for k in sorted({k for x in t for k in x}):
        v = [x[k] for x in t if k in x]
        print(f"| {s} | {k} | {med([x['n'] for x in v])} | {med([x['p50_ms'] for x in v])} | {med([x['p99_ms'] for x in v])} | "
              f"{med([x['max_ms'] for x in v])} | {med([x['total_ms'] for x in v])} | {med([x['over_1ms'] for x in v])} |")
PY
echo "raw: $res"
