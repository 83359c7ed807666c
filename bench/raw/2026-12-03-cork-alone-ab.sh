#!/usr/bin/env bash
# Lone 1 GiB download A/B: main (cork) vs h13 (no cork alone). Interleaved reps.
reps=${1:-6}
cat /tmp/ab/www/1g.bin > /dev/null
taskset -c 0 /tmp/ls-main -c /tmp/ab/main.conf & A=$!
taskset -c 0 /tmp/ls-h13 -c /tmp/ab/h13.conf & B=$!
sleep 0.5
steal() { awk '/^cpu /{print $9}' /proc/stat; }
for r in $(seq 1 $reps); do
  for v in h13 main; do
    p=$([ $v = main ] && echo 18401 || echo 18402)
    s0=$(steal); rc=$(ps aux | grep -c "[r]ustc")
    t=$( { /usr/bin/time -f %e taskset -c 1 curl -s -o /dev/null -o /dev/null -o /dev/null http://127.0.0.1:$p/1g.bin http://127.0.0.1:$p/1g.bin http://127.0.0.1:$p/1g.bin; } 2>&1 )
    s1=$(steal)
    echo "$r $v $(python3 -c "print(round(3*1073741824/1e6/$t))") MB/s  t=$t steal=$((s1-s0)) rustc=$rc"
  done
done
kill $A $B
