#!/usr/bin/env python3
"""Turn the raw results of bench/run.sh into bench/RESULTS.md (on stdout).

Usage: summarize.py RESULTS.jsonl META.json

RESULTS.jsonl has one line per (case, server, round): the server's CPU time
over the run ("ticks" of utime+stime from /proc/PID/stat, "sched_ns" from
/proc/PID/schedstat; the figures use sched_ns) and what the load tool reported. The table shows the
median over rounds of each figure, every round's value, and per case two
ratio rows: localserver / nginx and localserver / lighttpd (of the medians).
"""
import json
import re
import statistics
import sys
from collections import defaultdict

# nginx-aio (nginx with `aio threads;`) runs in the cold case only.
SERVERS = ["localserver", "nginx", "nginx-aio", "lighttpd"]
OTHERS = ["nginx", "nginx-aio", "lighttpd"]
# id -> (title, throughput unit, CPU unit)
CASES = {
    "ka50": ("1. keep-alive 1 KiB, 50 conns (wrk)", "req/s", "µs/req"),
    "ka1000": ("2. keep-alive 1 KiB, 1000 conns (wrk)", "req/s", "µs/req"),
    "close50": ("3. Connection: close 1 KiB, 50 conns (wrk)", "req/s", "µs/req"),
    "100k": ("4. 100 KiB, 10 conns (wrk)", "MB/s", "ms/MB"),
    "10m": ("5. 10 MiB, 10 conns (wrk)", "MB/s", "ms/MB"),
    "1g": ("6. 1 GiB, back to back on one curl connection", "MB/s", "ms/MB"),
    "siege": ("7. siege -b -c 255, 1 KiB", "trans/s", "µs/trans"),
    "idle": ("8. 10,000 idle keep-alive conns: RSS growth", "B/conn", ""),
    "syscalls": ("9. syscalls per keep-alive 1 KiB request (strace, wrk -c10 3 s)", "calls/req", ""),
    "rate200": ("11. limit_rate 256k, 200 conns downloading at once", "MB/s", "ms/conn·s"),
    "cold": ("10. cold disk: 4 downloads of 256 MiB + a fresh 1 KiB client every 50 ms (p50, p99: the client's)",
             "MB/s", "ms/MB"),
    "ranges": ("11. multipart ranges: 10 parts of 1,000 B of the 10 MiB file, 50 conns (wrk)",
               "req/s", "µs/req"),
}
MB = 1e6


def fmt(v, unit=""):
    """A figure with as many digits as it deserves."""
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return f"{s} {unit}".strip()


def ms(us):
    return None if us is None else us / 1000


def figures(rec, clk_tck):
    """(throughput, p50 ms, p99 ms, errors, CPU per unit, note) of one record."""
    # Time on CPU from schedstat, in ns: a 1 GiB download lasts ~0.4 s, ~40
    # clock ticks, where one tick either way would be 2.5 %. Ticks if absent.
    cpu_s = rec["sched_ns"] / 1e9 if rec.get("sched_ns") else rec["ticks"] / clk_tck
    case, tool = rec["case"], rec["tool"]
    if tool == "wrk" and case in ("ka50", "ka1000", "close50", "ranges"):
        w = rec["wrk"]
        secs = w["duration_us"] / 1e6
        errors = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout", "err_status"))
        cpu = cpu_s * 1e6 / w["requests"] if w["requests"] else None
        return w["requests"] / secs, ms(w["lat_p50_us"]), ms(w["lat_p99_us"]), errors, cpu, ""
    if tool == "wrk":
        w = rec["wrk"]
        secs = w["duration_us"] / 1e6
        errors = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout", "err_status"))
        mb = w["bytes"] / MB
        cpu = cpu_s * 1e3 / mb if mb else None
        return mb / secs, ms(w["lat_p50_us"]), ms(w["lat_p99_us"]), errors, cpu, ""
    if tool == "curl":
        c = rec["curl"]
        ok = c["http_code"] == 200 and c["size"] == rec["expect"]
        mb = c["size"] / MB
        cpu = cpu_s * 1e3 / mb if mb else None
        # run.sh reads the file into the page cache before each download;
        # a run that started with part of it on disk is named.
        cached, size = rec.get("cached"), rec.get("file_size", rec["expect"])
        note = "" if cached is None or cached >= 0.995 * size else \
            f"started with {100 * max(cached, 0) / size:.0f} % of the file cached"
        return c["speed"] / MB, None, None, 0 if ok else 1, cpu, note
    if tool == "siege":
        s = rec["siege"]
        if "failed" in s:
            return None, None, None, 1, None, s["failed"]
        trans = s.get("transactions", 0)
        cpu = cpu_s * 1e6 / trans if trans else None
        errors = s.get("failed_transactions", 0)
        note = f"availability {s.get('availability', 0):.2f} %"
        return s.get("transaction_rate"), s.get("response_time", 0) * 1000, s.get("longest_transaction", 0) * 1000, errors, cpu, note
    if tool == "idle":
        i = rec["idle"]
        errors = i["errors"] + (i["conns"] - i["alive"])
        note = f"RSS {i['rss_before_kib']:,} → {i['rss_after_kib']:,} KiB"
        return i["bytes_per_conn"], None, None, errors, None, note
    if tool == "cold":
        c = rec["cold"]
        if "failed" in c:
            return None, None, None, 1, None, c["failed"]
        failed = sum(1 for d in c["downloads"] if d["http_code"] != 200) + (c["bytes"] != c["expect"])
        mb = c["bytes"] / MB
        cpu = cpu_s * 1e3 / mb if mb else None
        cached = c["cached_at_start"]
        note = "" if cached == 0 else "fincore failed" if cached < 0 else \
            f"{cached / 2**20:.1f} MiB of the files cached at the start"
        return c["mbps"], c["p50_ms"], c["p99_ms"], failed + c["probe_errors"], cpu, note
    if tool == "rate":
        x = rec["rate"]
        cpu = cpu_s * 1e3 / x["conn_secs"] if x["conn_secs"] else None
        note = f"{x['ok']} of {x['conns']} paced (256 KiB/s each: {x['conns'] * 0.262144:.1f} MB/s in all)"
        return x["bytes"] / MB / x["secs"] if x["secs"] else None, None, None, x["errors"], cpu, note
    if tool == "strace":
        w = rec["wrk"]
        total = sum(rec["calls"].values())
        return (total / w["requests"] if w["requests"] else None), None, None, 0, None, ""
    raise ValueError(f"unknown record {rec}")


def parse_ss(text):
    """What `ss -tmiH` says of a server's connections: each one's snd_wnd (the
    window its client advertises), and the data segments and bytes the server
    sent on them, summed."""
    conns = re.split(r"\n(?=\S)", text.strip()) if text.strip() else []
    wnd, segs, sent = [], 0, 0
    for c in conns:
        m = re.search(r"\bsnd_wnd:(\d+)", c)
        if m:
            wnd.append(int(m.group(1)))
        m = re.search(r"\bdata_segs_out:(\d+)", c)
        segs += int(m.group(1)) if m else 0
        m = re.search(r"\bbytes_sent:(\d+)", c)
        sent += int(m.group(1)) if m else 0
    return {"conns": len(conns), "snd_wnd": wnd, "data_segs_out": segs, "bytes_sent": sent}


def window_line(case, server, recs):
    """One line on the windows of a download case's connections, or None."""
    recs = [r for r in recs if "win" in r]
    if not recs:
        return None
    wnd = [w for r in recs for w in r["win"]["snd_wnd"]]
    at = recs[0]["win"]["at"]
    if wnd:
        text = (f"snd_wnd {at:g} s in: median {fmt(med(wnd) / MB)} MB "
                f"({fmt(min(wnd) / MB)}–{fmt(max(wnd) / MB)}, {len(wnd)} connection{'s' if len(wnd) > 1 else ''})")
    else:
        text = f"snd_wnd {at:g} s in: no connection open then"
    seg = med([r["win"]["data_segs_out"] / r["win"]["bytes_sent"] * MB
               for r in recs if r["win"]["bytes_sent"]])
    if seg is not None:
        text += f"; the server's data segments per MB so far {fmt(seg)}"
    mb = [sent_mb(r) for r in recs]
    out = med([r["tcp_out_segs"] / m for r, m in zip(recs, mb) if r.get("tcp_out_segs", -1) >= 0 and m])
    if out is not None:
        text += f"; TcpOutSegs per MB over the run {fmt(out)} (nstat, both directions)"
    if case == "1g":
        first = med([r["first"]["speed"] / MB for r in recs if r.get("first", {}).get("http_code") == 200])
        n = med([r["curl"].get("n") for r in recs])
        text += (f"; {n:g} downloads per run"
                 + (f", the first alone (a fresh connection) {fmt(first, 'MB/s')}" if first else ""))
    return f"- {CASES[case][0]}, {server}: {text}"


def cold_round_lines(server, recs):
    """One line per round of the cold case."""
    lines = []
    for r in recs:
        c = r["cold"]
        if "failed" in c:
            lines.append(f"- {server}, round {r['round']}: {c['failed']}")
            continue
        bad = [d for d in c["downloads"] if d["http_code"] != 200]
        lines.append(
            f"- {server}, round {r['round']}: fresh client p50 {fmt(c['p50_ms'], 'ms')}, "
            f"p90 {fmt(c['p90_ms'], 'ms')}, p99 {fmt(c['p99_ms'], 'ms')}, max {fmt(c['max_ms'], 'ms')} "
            f"({c['probes']} probes, {c['probe_errors']} failed); downloads {fmt(c['mbps'], 'MB/s')} "
            f"({fmt(c['bytes'] / MB)} MB in {fmt(c['wall_s'], 's')}"
            + (f", {len(bad)} failed" if bad else "")
            + f"); read from disk {fmt(r.get('disk_read', 0) / MB)} MB; "
            f"cached at the start {c['cached_at_start']} B (before eviction {fmt(c['cached_before_evict'] / 2**20)} MiB)")
    return lines


def cold_targets(by, cold):
    """Issue 13's targets for the cold case, checked on this run's medians."""
    def m(server, key):
        return med([r["cold"].get(key) for r in by.get(("cold", server), []) if "failed" not in r["cold"]])
    ls99, aio99, mbps = m("localserver", "p99_ms"), m("nginx-aio", "p99_ms"), m("localserver", "mbps")
    floor = 0.95 * cold["bps"] / MB
    lines = []
    if ls99 is not None and aio99 is not None:
        lines.append(f"- Target (issue 13): localserver's fresh-client p99 no worse than nginx `aio threads`'s: "
                     f"{fmt(ls99, 'ms')} against {fmt(aio99, 'ms')}: **{'met' if ls99 <= aio99 else 'not met'}**.")
    if mbps is not None:
        lines.append(f"- Target (issue 13): localserver's downloads at ≥ 0.95 × the throttled disk's "
                     f"{fmt(cold['bps'] / MB)} MB/s = {fmt(floor)} MB/s: {fmt(mbps, 'MB/s')}: "
                     f"**{'met' if mbps >= floor else 'not met'}**.")
    return lines


def sent_mb(rec):
    """MB the client read in a download run."""
    if rec["tool"] == "wrk":
        return rec["wrk"]["bytes"] / MB
    return rec["curl"]["size"] / MB


def foreign_share(rec, clk_tck):
    """Share of CPU 0 used by other processes than the server during a run."""
    if "cpu0_ticks" not in rec or not rec["ticks"]:
        return None
    tool = rec["tool"]
    if tool == "wrk":
        secs = rec["wrk"]["duration_us"] / 1e6
    elif tool == "curl":
        secs = rec["curl"]["time"]
    elif tool == "siege":
        secs = rec["siege"].get("elapsed_time", 0)
    elif tool == "cold":
        secs = rec["cold"].get("wall_s", 0)
    else:
        return None
    if secs <= 0:
        return None
    return max(0, rec["cpu0_ticks"] - rec["ticks"]) / clk_tck / secs


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return None if a is None or not b else a / b


def main():
    results = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    meta = json.load(open(sys.argv[2]))
    clk = meta["clk_tck"]
    by = defaultdict(list)
    for rec in sorted(results, key=lambda r: r["round"]):
        by[rec["case"], rec["server"]].append(rec)

    out = []
    p = out.append
    p("# Benchmark results: localserver, nginx, lighttpd\n")
    p(f"- Date: {meta['date']} · `bench/run.sh{' --quick' if meta['mode'] == 'quick' else ''}` "
      f"({meta['rounds']} round(s), {meta['secs']} s per run, took {meta['elapsed_s'] // 60} min {meta['elapsed_s'] % 60} s)")
    p(f"- Machine: {meta['nproc']} CPUs, {meta['cpu']}, {meta['kernel']}; servers pinned to CPU 0, load generators to CPU 1")
    p(f"- Versions: localserver {meta['localserver']}, nginx {meta['nginx']}, {meta['lighttpd']}, "
      f"{meta['wrk']}, {meta['siege']}, {meta['curl']}, {meta['strace']}")
    p("")
    p("Medians over rounds; the values of every round in brackets. Server CPU = the "
      "server process's utime+stime over the run (for nginx its one worker) divided by "
      "the requests (or MB) served. MB = 10^6 bytes as read by the client, headers "
      "included. Errors are summed over all rounds. The ratio rows divide "
      "localserver's medians by the other server's: above 1 is better for throughput, "
      "below 1 is better for latency, CPU, memory and syscalls. Only figures from one "
      "interleaved run compare (the machine drifts by ±25 %). \"Others on CPU 0\": the "
      "largest share of the server's CPU that other processes took during that row's runs "
      "(should be 0 %: a row above a few % is skewed); a round marked * is one where "
      "others took more than 5 %.")
    p("")
    p("| case | server | throughput | p50 | p99 | errors | server CPU | throughput per round | CPU per round | others on CPU 0 |")
    p("|---|---|--:|--:|--:|--:|--:|---|---|--:|")
    syscall_lines, window_lines, cold_lines = [], [], []
    for case, (title, tunit, cunit) in CASES.items():
        meds = {}
        for s in SERVERS:
            recs = by.get((case, s), [])
            if not recs:
                continue
            figs = [figures(r, clk) for r in recs]
            thr, p50, p99, cpu = (med([f[i] for f in figs]) for i in (0, 1, 2, 4))
            errors = sum(f[3] for f in figs)
            notes = "; ".join(sorted({f[5] for f in figs if f[5]})) if case != "idle" else \
                "; ".join(f[5] for f in figs)
            meds[s] = (thr, p50, p99, cpu)
            lat50 = fmt(p50, "ms") if p50 is not None else "–"
            lat99 = fmt(p99, "ms") if p99 is not None else "–"
            if case == "siege":
                lat50, lat99 = f"{lat50} (mean)", f"{lat99} (max)"
            if case == "cold":
                top = med([r["cold"].get("max_ms") for r in recs if "failed" not in r["cold"]])
                lat99 = f"{lat99} (max {fmt(top, 'ms')})"
                cold_lines.extend(cold_round_lines(s, recs))
            err = fmt(errors) if errors else "0"
            if notes:
                err += f" ({notes})"
            mark = ["*" if (foreign_share(r, clk) or 0) > 0.05 else "" for r in recs]
            rounds_thr = " ".join(fmt(f[0]) + m for f, m in zip(figs, mark))
            rounds_cpu = " ".join(fmt(f[4]) + m for f, m in zip(figs, mark)) if cpu is not None else ""
            others = [x for x in (foreign_share(r, clk) for r in recs) if x is not None]
            others = f"{100 * max(others):.0f} %" if others else ""
            p(f"| {title} | {s} | {fmt(thr, tunit)} | {lat50} | {lat99} | {err} | "
              f"{fmt(cpu, cunit) if cunit else '–'} | [{rounds_thr}] | {f'[{rounds_cpu}]' if rounds_cpu else ''} | {others} |")
            if case in ("10m", "1g"):
                line = window_line(case, s, recs)
                if line:
                    window_lines.append(line)
            if case == "syscalls":
                names = {name for r in recs for name in r["calls"]}
                top = sorted(((med([r["calls"].get(k, 0) / r["wrk"]["requests"] for r in recs]), k)
                              for k in names), reverse=True)
                syscall_lines.append(f"- {s}: " + ", ".join(f"{k} {v:.2f}" for v, k in top if v >= 0.005))
        if "localserver" in meds:
            ls = meds["localserver"]
            for o in OTHERS:
                if o not in meds:
                    continue
                r = [ratio(a, b) for a, b in zip(ls, meds[o])]
                cells = [fmt(x) + "×" if x is not None else "–" for x in r]
                p(f"| {title} | **localserver / {o}** | **{cells[0]}** | {cells[1]} | {cells[2]} | | "
                  f"**{cells[3] if cunit else '–'}** | | | |")
    p("")
    shares = [(foreign_share(r, clk), r) for r in results]
    shares = [(x, r) for x, r in shares if x is not None]
    if shares:
        worst, wr = max(shares, key=lambda t: t[0])
        p(f"Other work on CPU 0 (anything but the server, which should have it alone) during the "
          f"timed runs: median {100 * med([x for x, _ in shares]):.1f} %, worst {100 * worst:.1f} % "
          f"({wr['case']}, {wr['server']}, round {wr['round']})."
          + (" **Warning: the machine was not quiet; these figures are skewed.**" if worst > 0.05 else ""))
        p("")
    cold = meta.get("cold", {})
    if cold.get("wanted") and not cold.get("ran"):
        p(f"Case 10 (cold disk) was skipped: {cold.get('skipped') or 'not set up'}.\n")
    if cold_lines:
        p(f"Case 10, cold disk: reads of disk {cold['dev']} (the files in `{cold['dir']}`) throttled to "
          f"{fmt(cold['bps'] / MB)} MB/s and {cold['iops']} IOPS for the servers (a cgroup v1 blkio group "
          "they were started in); before each run the four files were dropped from the page cache "
          "(`POSIX_FADV_DONTNEED`; the bytes `fincore` still saw are below, and must be 0). Four curl "
          "downloads at once, and meanwhile a fresh connection GETs a 1 KiB file every 50 ms; its "
          "latency is connect to last byte. MB/s = all the downloads' bytes over the time until the "
          "last one ended. Each server started fresh for its run; nginx-aio = nginx with `aio threads;`. "
          "Every run:\n")
        out.extend(cold_lines)
        p("")
        out.extend(cold_targets(by, cold))
        p("")
    if window_lines:
        p("Download cases (medians over rounds; windows over every connection of every round). "
          "`snd_wnd` is the receive window the client advertised, read from the server's sockets "
          "(`ss -tmi`) that far into the run: the server can have at most that much unacknowledged data "
          "in flight. The server's segments per MB come from the same sockets since they opened; "
          "TcpOutSegs counts every TCP segment sent on the machine during the run (data and the "
          "client's ACKs; other work on the machine adds to it).\n")
        out.extend(window_lines)
        p("")
    if syscall_lines:
        p("Syscalls per request (case 9, median over rounds; under strace, so read the counts, not the speed):\n")
        out.extend(syscall_lines)
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
