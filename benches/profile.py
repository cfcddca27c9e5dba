#!/usr/bin/env python3
"""Where does the proxy spend its CPU in one bench scenario? (run by benches/profile.sh)

Starts the bench upstream and the proxy (PROXY_BIN, which should keep its symbols: benches/profile.sh
builds one), puts one bench scenario through it and records the proxy with `perf record -e cpu-clock`
(a software clock, so it works where hardware counters are not exposed), then prints the functions
with the most self time, and the same grouped by crate. Falls back to `valgrind --tool=callgrind`
(instruction counts) when perf cannot record.

Usage: profile.py SCENARIO [SECONDS]   SCENARIO: get | post | get64 | post64 | download | upload
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SCENARIOS = {
    "get": ("GET", bench.SEARCH, "", 1),
    "post": ("POST", bench.LOG_METRIC, bench.LOG_METRIC_BODY, 1),
    "get64": ("GET", bench.SEARCH, "", 64),
    "post64": ("POST", bench.LOG_METRIC, bench.LOG_METRIC_BODY, 64),
}


def crate_of(symbol: str) -> str:
    s = symbol.lstrip("<").replace("_<", "")
    for prefix in ("[k]", "[unknown]"):
        if s.startswith(prefix):
            return "kernel / unknown"
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if m:
        return m.group(1)
    if s.startswith(("__memmove", "__memcpy", "__memset", "malloc", "free", "_int_", "cfree", "realloc")):
        return "libc (malloc, memcpy)"
    return "other: " + s.split("(")[0][:40]


def main() -> int:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "get64"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    work = Path(tempfile.mkdtemp(prefix="mlflow-proxy-profile-"))
    try:
        upstream = bench.start_upstream(work)
        proxy, _ = bench.start_proxy(work, upstream.port)
        data = work / "perf.data"
        perf = bench.PROCS.start(
            ["perf", "record", "-e", "cpu-clock", "-F", "1999", "-p", str(proxy.proc.pid), "-o", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "perf.log", "w"),
        )
        time.sleep(0.5)
        if perf.poll() is not None:
            print("perf record failed:", (work / "perf.log").read_text(), file=sys.stderr)
            return callgrind(upstream, work, scenario, seconds)
        cpu0 = bench.cpu_seconds(proxy.pids)
        requests = load(proxy, scenario, seconds, work)
        cpu1 = bench.cpu_seconds(proxy.pids)
        bench.PROCS.stop(perf, sig=2)
        if requests:
            print(f"{scenario}: {requests} requests, {(cpu1 - cpu0) * 1e6 / requests:.1f} µs proxy CPU each")
        else:
            print(f"{scenario}: proxy CPU {cpu1 - cpu0:.2f} s")
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol", "--stdio",
             "--percent-limit", "0.3", "-q"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = []
        for line in report.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(.*)", line)
            if m:
                sym = re.sub(r"(\s+-)+\s*$", "", m.group(2)).strip()
                rows.append((float(m.group(1)), ("[k] " if "[k]" in line else "") + sym))
        print("\nself time by function (top 40):")
        for pct, sym in rows[:40]:
            print(f"{pct:6.2f}%  {sym[:160]}")
        full = subprocess.run(
            ["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol", "--stdio", "-q"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        by_crate: Counter = Counter()
        for line in full.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+\[([.k])\]\s+(.*)", line)
            if m:
                sym = re.sub(r"(\s+-)+\s*$", "", m.group(3)).strip()
                key = "kernel" if m.group(2) == "k" else crate_of(sym)
                by_crate[key] += float(m.group(1))
        print("\nself time by crate:")
        for key, pct in by_crate.most_common(25):
            print(f"{pct:6.2f}%  {key}")
    finally:
        bench.PROCS.stop_all()
        subprocess.run(["rm", "-rf", str(work)])
    return 0


def load(target: bench.Target, scenario: str, seconds: int, work: Path) -> int:
    if scenario in SCENARIOS:
        method, path, body, conns = SCENARIOS[scenario]
        return bench.wrk(target.port, method, path, body, conns, seconds)["requests"]
    if scenario == "download":
        deadline = time.time() + seconds
        while time.time() < deadline:
            bench.curl_download(target.port, bench.LARGE_BYTES)
        return 0
    if scenario == "upload":
        source = work / "upload.bin"
        bench.write_source(source, bench.LARGE_BYTES)
        deadline = time.time() + seconds
        while time.time() < deadline:
            bench.curl_upload(target.port, source, bench.LARGE_BYTES)
        return 0
    raise SystemExit(f"unknown scenario {scenario}")


def callgrind(upstream: bench.Target, work: Path, scenario: str, seconds: int) -> int:
    """Instruction counts instead of samples: slow (about 50×), so keep `seconds` short."""
    port = bench.free_port()
    out = work / "callgrind.out"
    proc = bench.PROCS.start(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        + bench.proxy_cmd(port, upstream.port, work),
        env=bench.proxy_env(),
        stdout=subprocess.DEVNULL,
        stderr=open(work / "valgrind.log", "w"),
    )
    bench.wait_ready(proc, port, "/readyz", time.perf_counter(), limit=120)
    target = bench.Target("proxy", port, proc, [proc.pid])
    load(target, scenario, seconds, work)
    bench.PROCS.stop(proc)
    print(subprocess.run(["callgrind_annotate", str(out)], capture_output=True, text=True).stdout[:12000])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("BENCH_LARGE_BYTES", str(1 << 30))
    sys.exit(main())
