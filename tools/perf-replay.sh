#!/usr/bin/env bash
# Profile the server while it answers the slowest requests of its log.
#
# Usage: tools/perf-replay.sh PID LOG [N] [PORT] [SECONDS]
#   PID      the localserver (worker) process to profile
#   LOG      an access log with $request_time (see tools/request-times.py)
#   N        how many of the slowest GET targets to replay (default 10)
#   PORT     where the server listens on 127.0.0.1 (default 8080)
#   SECONDS  how long to replay them, round after round (default 10)
#
# Records with `perf record -e cpu-clock -g` (these VMs have no hardware
# counters) on PID only, replays the targets with curl to 127.0.0.1 until
# SECONDS pass, then prints the top of `perf report`. perf.data is left in
# the current folder for `perf report -g` by hand. Stops by itself; stops
# only the perf it started.
set -euo pipefail
pid=${1:?PID}
log=${2:?LOG}
n=${3:-10}
port=${4:-8080}
secs=${5:-10}
here=$(cd "$(dirname "$0")" && pwd)
command -v perf >/dev/null || { echo "perf is needed (apt install linux-perf)" >&2; exit 1; }
kill -0 "$pid" 2>/dev/null || { echo "no process $pid" >&2; exit 1; }

mapfile -t uris < <("$here/request-times.py" --uris --top "$n" "$log")
[ ${#uris[@]} -gt 0 ] || { echo "no GET with a request time in $log" >&2; exit 1; }
echo "replaying ${#uris[@]} targets for ${secs}s:"
printf '  %s\n' "${uris[@]}"

perf record -e cpu-clock -g -p "$pid" -o perf.data 2>/dev/null &
perf_pid=$!
sleep 0.5
end=$((SECONDS + secs))
requests=0
while [ $SECONDS -lt $end ]; do
  for u in "${uris[@]}"; do
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port$u" || true
    requests=$((requests + 1))
  done
done
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
echo "$requests requests replayed; perf.data written"
perf report -i perf.data --stdio --no-children 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
