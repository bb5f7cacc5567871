#!/usr/bin/env python3
"""Helpers for bench/run (standard library only):

    tool.py ports N                      N free loopback TCP ports
    tool.py wait URL SECONDS [PID]       until URL answers 200 (fails if PID exits)
    tool.py coldstart N URL -- CMD...    start CMD N times; median ms from spawn to URL's 200
    tool.py report RESULTS META OUT      aggregate the rounds into the Markdown report
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse


def ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def get_status(url, timeout=1.0):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("GET", u.path or "/")
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still "exists"; /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return True


def wait(url, seconds, pid=None):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if pid is not None and not alive(int(pid)):
            sys.exit(f"process {pid} exited before {url} answered")
        try:
            if get_status(url) == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit(f"{url}: no 200 within {seconds}s")


def coldstart(n, url, cmd):
    times = []
    for _ in range(int(n)):
        with open(os.devnull, "wb") as null:
            start = time.monotonic()
            p = subprocess.Popen(cmd, stdout=null, stderr=null)
            try:
                while True:
                    if p.poll() is not None:
                        sys.exit(f"{cmd[0]} exited with {p.returncode} during start")
                    try:
                        if get_status(url, timeout=0.5) == 200:
                            break
                    except OSError:
                        time.sleep(0.001)
                    if time.monotonic() - start > 30:
                        sys.exit(f"{url}: no 200 within 30s")
                times.append((time.monotonic() - start) * 1000)
            finally:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    print(f"{statistics.median(times):.1f} {min(times):.1f} {max(times):.1f}")


# ---------------------------------------------------------------------------------------------
# The report

def load_results(path):
    """Rows of `round label requests duration_us non2xx errors p50_us p99_us max_us`."""
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 9:
                continue
            rnd, label = int(parts[0]), parts[1]
            req, dur, non2xx, errs, p50, p99, mx = map(int, parts[2:])
            runs.setdefault(label, {})[rnd] = {
                "rps": req / (dur / 1e6) if dur else 0.0,
                "ok_rps": (req - non2xx) / (dur / 1e6) if dur else 0.0,
                "requests": req, "non2xx": non2xx, "errors": errs,
                "p50": p50 / 1000, "p99": p99 / 1000, "max": mx / 1000,
            }
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{suffix}"


def report(results_path, meta_path, out_path):
    runs = load_results(results_path)
    with open(meta_path) as f:
        meta = json.load(f)
    rounds = sorted({r for per in runs.values() for r in per})

    def stat(label, key):
        return med([runs[label][r][key] for r in runs.get(label, {})])

    def ratio(a, b, key="ok_rps"):
        """Median over rounds of a/b, each round's pair measured back to back."""
        vals = []
        for r in rounds:
            x, y = runs.get(a, {}).get(r), runs.get(b, {}).get(r)
            if x and y and y[key]:
                vals.append(x[key] / y[key])
        return med(vals)

    def spread(label):
        vals = [runs[label][r]["ok_rps"] for r in runs.get(label, {})]
        if len(vals) < 2:
            return "–"
        m = statistics.median(vals)
        return f"±{(max(vals) - min(vals)) / 2 / m * 100:.0f}%" if m else "–"

    def bad(label):
        n = sum(runs[label][r]["non2xx"] + runs[label][r]["errors"] for r in runs.get(label, {}))
        return f" ⚠ {n} failed" if n else ""

    stores = [s for s in meta["stores"]]
    L = []
    w = L.append
    w("# sessiongate benchmarks")
    w("")
    w(f"Generated by `bench/run` on {meta['date']} — {meta['host']}. **Absolute numbers do not carry**: "
      "this is a shared, noisy machine where the load generator, the servers, PostgreSQL and Redis "
      "share the same cores. Read the **ratios**: each is the median over rounds of two runs measured "
      "back to back in the same round.")
    w("")
    w(f"Setup: {meta['cores']} cores; wrk {meta['wrk']} with {meta['threads']} threads and "
      f"{meta['connections']} keep-alive connections, {meta['warmup']} s warm-up then {meta['duration']} s per run, "
      f"{len(rounds)} round(s) (order reversed every other round); {meta['nginx']}; Django {meta['django']} "
      f"under gunicorn {meta['gunicorn']} (2 sync workers); sessiongate {meta['version']} (release build, "
      "default `info` logging). Upstream: nginx answering a static 200 (`return 200`), access logs off "
      "for both nginx servers. Users live in SQLite for every session store.")
    w("")

    w("## Goals")
    w("")
    w("| goal | measured | |")
    w("|---|---|---|")
    goals = []
    for s in stores:
        r = ratio(f"sg-proxy-{s}", "nginx-proxy")
        goals.append((f"authenticated proxying ({s}) ≥ 0.9× nginx proxying", r, 0.9, "×"))
    for s in [s for s in stores if s in ("memory", "sqlite")]:
        r = ratio(f"sg-whoami-{s}", "django-whoami")
        goals.append((f"whoami ({s}) ≥ 30× Django", r, 30, "×"))
    lg = meta.get("logins")
    if lg:
        goals.append(("login throughput ≥ 0.9× Argon2 ceiling (while whoami runs)", lg.get("flood_ratio"), 0.9, "×"))
        goals.append(("whoami p99 < 5 ms while logins flood", lg.get("whoami_p99"), -5, " ms"))
    mem = meta.get("memory")
    if mem:
        goals.append(("RSS idle < 40 MB", mem.get("idle_rss_mb"), -40, " MB"))
    for name, v, target, unit in goals:
        if v is None:
            w(f"| {name} | – | not measured |")
            continue
        ok = v >= target if target > 0 else v < -target
        digits = 2 if unit == "×" and abs(target) < 10 else 1
        w(f"| {name} | {v:.{digits}f}{unit} | {'met' if ok else '**not met**'} |")
    w("")

    w("## Throughput and latency (median of rounds)")
    w("")
    w("| participant | req/s | spread | p50 ms | p99 ms | vs nginx proxy | vs upstream |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    order = ["upstream", "nginx-proxy", "bare-proxy"] + [f"sg-proxy-{s}" for s in stores] + \
            [f"sg-whoami-{s}" for s in stores] + ["django-whoami"]
    names = {"upstream": "1. upstream alone (nginx `return 200`)",
             "nginx-proxy": "2. nginx → upstream (no auth)",
             "bare-proxy": "2b. bare hyper proxy → upstream (sessiongate's HTTP stack alone, no auth)",
             "django-whoami": "5. Django 5.2 whoami (gunicorn, 2 workers)"}
    for s in stores:
        names[f"sg-proxy-{s}"] = f"3. sessiongate → upstream, authenticated ({s})"
        names[f"sg-whoami-{s}"] = f"4. sessiongate whoami ({s})"
    for label in order:
        if label not in runs:
            continue
        vs_np = ratio(label, "nginx-proxy") if label.startswith(("sg-proxy", "nginx", "upstream", "bare")) else None
        w(f"| {names.get(label, label)}{bad(label)} | {fmt(stat(label, 'ok_rps'))} | {spread(label)} | "
          f"{fmt(stat(label, 'p50'), 2)} | {fmt(stat(label, 'p99'), 2)} | "
          f"{fmt(vs_np, 2, '×')} | {fmt(ratio(label, 'upstream'), 2, '×')} |")
    w("")
    if "bare-proxy" in runs:
        w("What sessiongate's own work costs: its authenticated proxying against the bare hyper proxy "
          "(`examples/bench_bare_proxy.rs`: the same hyper server, pooled hyper-util client and tokio "
          "runtime, forwarding with no session, CSRF, header policy or logging), same round:")
        w("")
        w("| store | sessiongate vs bare proxy | bare proxy vs nginx proxy |")
        w("|---|---:|---:|")
        for s in stores:
            w(f"| {s} | {fmt(ratio(f'sg-proxy-{s}', 'bare-proxy'), 2, '×')} | "
              f"{fmt(ratio('bare-proxy', 'nginx-proxy'), 2, '×')} |")
        w("")
    w("whoami against Django, same round:")
    w("")
    w("| store | whoami vs Django | whoami vs proxied request |")
    w("|---|---:|---:|")
    for s in stores:
        w(f"| {s} | {fmt(ratio(f'sg-whoami-{s}', 'django-whoami'), 1, '×')} | "
          f"{fmt(ratio(f'sg-whoami-{s}', f'sg-proxy-{s}'), 2, '×')} |")
    w("")

    if lg:
        w("## Logins against the Argon2 ceiling")
        w("")
        w(f"One Argon2id hash with the default parameters (m=19456 KiB, t=2, p=1) takes "
          f"**{lg['hash_ms']:.1f} ms** here (median of {lg['hash_samples']} `sessiongate hash calibrate` "
          f"runs at nice +10 like the server's hashing threads, timed in each round next to its logins), "
          f"so {meta['cores']} cores can verify at most "
          f"**{lg['ceiling']:.0f} logins/s**. The login pool runs one hash per core and queues a bounded "
          f"number more (`users.hash_queue`); beyond that, 503 `overloaded`.")
        w("")
        w("| run | logins/s accepted | × ceiling | login p99 ms | whoami req/s | whoami p50 ms | whoami p99 ms |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        w(f"| login flood alone ({lg['login_conns']} connections) | {fmt(stat('login-alone', 'ok_rps'))} | "
          f"{fmt(lg.get('alone_ratio'), 2, '×')} | {fmt(stat('login-alone', 'p99'), 1)} | – | – | – |")
        w(f"| login flood + whoami at ≈{lg['paced_rate']} req/s | {fmt(stat('login-flood', 'ok_rps'))} | "
          f"{fmt(lg.get('flood_ratio'), 2, '×')} | {fmt(stat('login-flood', 'p99'), 1)} | "
          f"{fmt(stat('whoami-under-flood', 'ok_rps'))} | {fmt(stat('whoami-under-flood', 'p50'), 2)} | "
          f"{fmt(stat('whoami-under-flood', 'p99'), 2)} |")
        if "whoami-full-under-flood" in runs:
            w(f"| login flood + whoami flat out ({meta['connections']} connections) | "
              f"{fmt(stat('login-flood-full', 'ok_rps'))} | {fmt(lg.get('full_ratio'), 2, '×')} | "
              f"{fmt(stat('login-flood-full', 'p99'), 1)} | {fmt(stat('whoami-full-under-flood', 'ok_rps'))} | "
              f"{fmt(stat('whoami-full-under-flood', 'p50'), 2)} | {fmt(stat('whoami-full-under-flood', 'p99'), 2)} |")
        w("")
        w("Rate limits are raised in the bench configuration (`login_per_ip`, `login_per_account`); "
          "every login here succeeds and opens a session (SQLite store). The ceiling is a slight "
          "underestimate: each `hash calibrate` hash touches 19 MiB of fresh memory (page faults), "
          "which the server's allocator reuses from one login to the next — a ratio a little above "
          "1× means the login path's own cost (user lookup, session insert, cookies) is within that "
          "margin. With whoami flat out, request handling wins the cores over hashing (the hashing "
          "threads run at nice +10) and logins queue, then get 503 `overloaded`, as designed.")
        w("")

    if mem:
        w("## Memory and start-up")
        w("")
        w("| measure | value |")
        w("|---|---:|")
        w(f"| RSS idle, default configuration (SQLite, demo SPA) | {mem['idle_rss_mb']:.1f} MB |")
        if mem.get("mem_idle_rss_mb") is not None:
            w(f"| RSS idle, memory store | {mem['mem_idle_rss_mb']:.1f} MB |")
        if mem.get("sessions"):
            w(f"| RSS with {mem['sessions']:,} sessions, memory store | {mem['mem_full_rss_mb']:.1f} MB "
              f"(≈{mem['bytes_per_session']:.0f} B per session) |")
        for s, v in sorted(mem.get("after_load", {}).items()):
            w(f"| RSS after the throughput rounds ({s} store) | {v:.1f} MB |")
        if mem.get("cold_ms") is not None:
            w(f"| cold start: process start → `/healthz` 200 (SQLite, existing data dir; median of "
              f"{mem['cold_n']}, min–max {mem['cold_min']:.0f}–{mem['cold_max']:.0f}) | {mem['cold_ms']:.0f} ms |")
        w("")
        if mem.get("sessions"):
            w(f"The {mem['sessions']:,} sessions were opened by real logins (`POST /login`, "
              f"{mem.get('sessions_rate', 0):,.0f}/s) against a user hashed with cheap Argon2 parameters "
              "(m=8 KiB, t=1): only the session store's growth is measured, not the hashing.")
            w("")

    for note in meta.get("notes", []):
        w(f"- {note}")
    if meta.get("notes"):
        w("")
    w("## Per round")
    w("")
    w("| participant | " + " | ".join(f"round {r} req/s (p99 ms)" for r in rounds) + " |")
    w("|---|" + "---:|" * len(rounds))
    for label in sorted(runs):
        cells = []
        for r in rounds:
            x = runs[label].get(r)
            cells.append(f"{x['ok_rps']:,.0f} ({x['p99']:.2f})" if x else "–")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")
    fixes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixes.md")
    if os.path.exists(fixes):
        with open(fixes) as f:
            w(f.read().rstrip())
        w("")
    w(f"Reproduce: `{meta['command']}` (see `bench/run --help` for the knobs).")
    w("")
    with open(out_path, "w") as f:
        f.write("\n".join(L))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        ports(int(args[0]))
    elif cmd == "wait":
        wait(*args)
    elif cmd == "coldstart":
        sep = args.index("--")
        coldstart(args[0], args[1], args[sep + 1:])
    elif cmd == "report":
        report(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
