#!/usr/bin/env python3
"""Side by side: several proxy binaries (and nginx) on one workload, in interleaved rounds.

For decisions between builds (allocator, libc, runtime settings) where `make bench`'s full table is more
than is needed. Uses bench.py's upstream, nginx configuration, proxy settings and wrk script; prints
the median requests per second and the median CPU per request (user and system, from /proc) of each.

  python3 benches/compare.py [--method GET|POST] [--conns 64] [--seconds 3] [--rounds 5] \
      nginx glibc=target/x86_64-unknown-linux-gnu/release/sagemaker-mlflow-proxy \
      musl=target/x86_64-unknown-linux-musl/release/sagemaker-mlflow-proxy

A proxy is NAME=BINARY, optionally followed by ,ENV=VALUE pairs for its environment
(`one-worker=BINARY,MLFLOW_PROXY_WORKER_THREADS=1`). Needs wrk and nginx (benches/run.sh installs
them) and the bench upstream (UPSTREAM_BIN, or target/bench-upstream/release/bench-upstream).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of these processes."""
    user = system = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / bench.CLK_TCK, system / bench.CLK_TCK


def start(spec: str, work: Path, upstream_port: int) -> tuple[str, bench.Target]:
    if spec == "nginx":
        target, _ = bench.start_nginx(work, upstream_port)
        return "nginx", target
    name, _, rest = spec.partition("=")
    binary, *env_pairs = rest.split(",")
    env = bench.proxy_env()
    env.update(pair.split("=", 1) for pair in env_pairs)
    saved_env, saved_bin = bench.proxy_env, bench.PROXY_BIN
    bench.proxy_env = lambda: env
    bench.PROXY_BIN = Path(binary).resolve()
    try:
        target, _ = bench.start_proxy(work, upstream_port)
    finally:
        bench.proxy_env, bench.PROXY_BIN = saved_env, saved_bin
    return name, target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=["GET", "POST"], default="GET")
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("targets", nargs="+", help="nginx, or NAME=BINARY[,ENV=VALUE...]")
    args = parser.parse_args()
    path, body = (bench.SEARCH, "") if args.method == "GET" else (bench.LOG_METRIC, bench.LOG_METRIC_BODY)
    work = Path(tempfile.mkdtemp(prefix="mlflow-proxy-compare-"))
    try:
        upstream = bench.start_upstream(work)
        targets = dict(start(spec, work, upstream.port) for spec in args.targets)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
        for round_no in range(args.rounds):
            for name in bench.rotate(list(targets), round_no):
                target = targets[name]
                user0, sys0 = cpu_split(target.pids)
                out = bench.wrk(target.port, args.method, path, body, args.conns, args.seconds)
                user1, sys1 = cpu_split(target.pids)
                requests = max(out["requests"], 1)
                rps = requests / (out["duration_us"] / 1e6)
                results[name].append((rps, 1e6 * (user1 - user0) / requests, 1e6 * (sys1 - sys0) / requests))
        print(f"{args.method} at {args.conns} connections, {args.rounds} rounds of {args.seconds} s (medians):")
        print(f"{'':14s} {'req/s':>8s} {'CPU us/req':>11s} {'user':>6s} {'system':>7s}")
        for name, rows in results.items():
            rps = statistics.median(r[0] for r in rows)
            user = statistics.median(r[1] for r in rows)
            system = statistics.median(r[2] for r in rows)
            print(f"{name:14s} {rps:8.0f} {user + system:11.1f} {user:6.1f} {system:7.1f}")
        return 0
    finally:
        bench.PROCS.stop_all()


if __name__ == "__main__":
    sys.exit(main())
