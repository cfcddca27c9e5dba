#!/usr/bin/env python3
"""The performance comparison behind `make bench` (run by benches/run.sh, which installs wrk, nginx and
curl and builds the bench upstream first).

One fast local upstream (benches/upstream), three paths to it, every scenario run side by side on the
three paths in the same run, interleaved and repeated (the order rotates each round, the median is kept):

- direct: the client talks to the upstream itself (the physical limit);
- nginx:  Debian's nginx as a plain reverse proxy (what an operator would use otherwise; no signing);
- proxy:  this proxy, signing every request with SigV4.

Scenarios ("forwarding"): small GET and small POST JSON at 1, 64 and 256 connections (wrk: throughput, p50,
p99, CPU per request of the middle hop), a 1 GiB download and a 1 GiB upload (curl: throughput, peak RSS),
idle RSS, RSS with 512 open keep-alive connections, time from start to ready, release binary size.

Scenarios ("gateway"): the artifact gateway against the bench upstream's S3 endpoint, a 1 GiB upload and
download through the gateway (curl, as MLflow's HTTP artifact client: one streamed PUT, one streamed GET)
against the same transfers straight to the endpoint with boto3 (benches/s3_direct.py, needs boto3 from
the project's venv): throughput, the proxy's peak RSS, the largest file the proxy held open.

Writes docs/benchmarks.md (and target/bench/results.json) and prints the tables. Standard library only (the direct boto3 side runs as a subprocess).
Every load is bounded in time; every process started here is stopped on exit, by its own id.

Settings (environment): BENCH_DURATION (seconds per measured wrk run, default 2), BENCH_WARMUP (1),
BENCH_ROUNDS (5), BENCH_LARGE_ROUNDS (2), BENCH_LARGE_BYTES (1 GiB), BENCH_WRK_THREADS (2),
BENCH_OUT (docs/benchmarks.md), BENCH_SCENARIOS (forwarding,gateway), PROXY_BIN, UPSTREAM_BIN, BENCH_STARTED_AT (epoch seconds when
`make bench` began, to report the whole run's duration), BENCH_COMMAND (the command to document).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"

DURATION = int(os.environ.get("BENCH_DURATION", "2"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LARGE_ROUNDS = int(os.environ.get("BENCH_LARGE_ROUNDS", "2"))
LARGE_BYTES = int(os.environ.get("BENCH_LARGE_BYTES", str(1 << 30)))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "docs" / "benchmarks.md"))
PROXY_BIN = Path(
    os.environ.get(
        "PROXY_BIN", ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "sagemaker-mlflow-proxy"
    )
)
UPSTREAM_BIN = Path(
    os.environ.get("UPSTREAM_BIN", ROOT / "target" / "bench-upstream" / "release" / "bench-upstream")
)
COMMAND = os.environ.get("BENCH_COMMAND", "make bench")
SCENARIOS = set(os.environ.get("BENCH_SCENARIOS", "forwarding,gateway").split(","))
STARTED_AT = float(os.environ.get("BENCH_STARTED_AT", time.time()))

CONCURRENCY = (1, 64, 256)
HELD_CONNECTIONS = 512
STARTS = 5
PATHS = ("direct", "nginx", "proxy")
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=10"
LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
LOG_METRIC_BODY = (
    '{"run_id":"4f1c2a9e8b7d4c3fa0e1d2c3b4a59687","key":"loss","value":0.125,'
    '"timestamp":1700000000000,"step":3}'
)
ARTIFACT = "/api/2.0/mlflow-artifacts/artifacts/bench/{name}"
ARN = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/bench"
MIB = 1 << 20

# Targets from the issue.
T_THROUGHPUT_VS_NGINX = 0.8
T_ADDED_P50_MS = 0.2
T_IDLE_RSS_MIB = 20
T_RSS_512_MIB = 80
T_DOWNLOAD_VS_DIRECT = 0.8
T_DOWNLOAD_GROWTH_MIB = 16
T_UPLOAD_PEAK_MIB = 64
T_GATEWAY_VS_DIRECT = 0.8
T_GATEWAY_PEAK_MIB = 64
# The gateway's S3 endpoint: the bench upstream's one bucket, path-style.
S3_BUCKET = "bench-artifacts"
GATEWAY_STORE = f"s3://{S3_BUCKET}/gateway"
T_BINARY_MB = 25
T_RUN_MINUTES = 10


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------
# Processes: every one started here is recorded and stopped on exit by its own id.


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            try:
                self.stop(proc)
            except Exception as e:  # keep stopping the others
                print(f"could not stop pid {proc.pid}: {e}", file=sys.stderr)


PROCS = Processes()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------------
# /proc readings


def proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_mib(pids: list[int]) -> float:
    return sum(proc_status_kib(p, "VmRSS") for p in pids) / 1024


def hwm_mib(pids: list[int]) -> float:
    return sum(proc_status_kib(p, "VmHWM") for p in pids) / 1024


def reset_hwm(pids: list[int]) -> bool:
    """Resets the peak RSS (VmHWM) to the current RSS (Linux: `echo 5 > /proc/PID/clear_refs`)."""
    try:
        for p in pids:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        return True
    except OSError:
        return False


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores, not idle or iowait), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU time of this script and of every process it started and waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(entry))
        except OSError:
            pass
    return kids


# ---------------------------------------------------------------------------------------------------
# Small HTTP helpers (raw sockets: no client library between us and the figures)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        rest += chunk
    return status, rest[:length]


def http(port: int, method: str, path: str, body: bytes = b"", timeout: float = 5) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + body)
        return read_response(s)


def wait_ready(proc: subprocess.Popen, port: int, path: str, t0: float, limit: float = 20) -> float:
    """Polls `path` until it answers 200; returns seconds since t0."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before it was ready")
        try:
            status, _ = http(port, "GET", path, timeout=1)
            if status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        if time.perf_counter() - t0 > limit:
            raise RuntimeError(f"{proc.args[0]} not ready on port {port} after {limit}s")
        time.sleep(0.0005)


# ---------------------------------------------------------------------------------------------------
# The three paths


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen | None = None
    pids: list[int] = field(default_factory=list)  # processes whose RSS/CPU count (none for direct)


NGINX_CONF = """\
# A production-style plain reverse proxy in front of MLflow (no signing).
worker_processes auto;
worker_rlimit_nofile 65536;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;                 # the proxy runs with --log-level warn: no access log on either
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    client_max_body_size 5g;        # the proxy's --max-body-size default
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;

    upstream mlflow {{
        server 127.0.0.1:{upstream};
        keepalive 256;              # idle upstream connections kept per worker
        keepalive_requests 100000;
        keepalive_timeout 90s;      # the proxy's --idle-timeout default
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-Id $request_id;
        proxy_connect_timeout 5s;
        proxy_send_timeout 300s;
        proxy_read_timeout 300s;

        location = /readyz {{
            return 200 "ok\\n";
        }}

        location / {{
            proxy_pass http://mlflow;
        }}

        # Artifacts: stream both ways instead of buffering whole bodies to disk, in 256 KiB reads
        # (nginx's default 4 KiB reads halve its large-file throughput).
        location /api/2.0/mlflow-artifacts/ {{
            proxy_pass http://mlflow;
            proxy_request_buffering off;
            proxy_buffering off;
            client_body_buffer_size 256k;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 512k;
        }}
    }}
}}
"""


def start_upstream(workdir: Path) -> Target:
    out = open(workdir / "upstream.log", "w+")
    proc = PROCS.start(
        [str(UPSTREAM_BIN), "--listen", "127.0.0.1:0", "--large-bytes", str(LARGE_BYTES)],
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"bench upstream did not start: {line!r}")
    port = int(line.rsplit(":", 1)[1])
    wait_ready(proc, port, "/readyz", time.perf_counter())
    return Target("upstream", port, proc, [proc.pid])


def start_nginx(workdir: Path, upstream_port: int) -> tuple[Target, float]:
    ndir = workdir / "nginx"
    for sub in ("client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (ndir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(ndir / sub, 0o777)  # workers run as nobody when the master runs as root
    for d in (workdir, ndir):
        os.chmod(d, 0o755)
    port = free_port()
    conf = ndir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=ndir, upstream=upstream_port, port=port))
    t0 = time.perf_counter()
    proc = PROCS.start(
        ["nginx", "-p", str(ndir), "-c", str(conf), "-e", str(ndir / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=open(ndir / "stderr.log", "w"),
    )
    ready = wait_ready(proc, port, "/readyz", t0)
    deadline = time.time() + 5
    workers = children(proc.pid)
    while len(workers) < 1 and time.time() < deadline:
        time.sleep(0.05)
        workers = children(proc.pid)
    return Target("nginx", port, proc, [proc.pid] + workers), ready


def proxy_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MLFLOW_PROXY_", "SAGEMAKER_MLFLOW_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="benchsecret",
        AWS_REGION="us-west-2",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def proxy_cmd(port: int, upstream_port: int, spool: Path, gateway: bool = False) -> list[str]:
    """The forwarding proxy (artifact calls forwarded and signed like any MLflow call), or with `gateway`
    the artifact gateway against the bench upstream's S3 endpoint."""
    artifacts = ["--artifact-store-uri", GATEWAY_STORE] if gateway else ["--artifact-gateway", "false"]
    return [
        str(PROXY_BIN),
        "--listen", f"127.0.0.1:{port}",
        "--arn", ARN,
        "--upstream-url", f"http://127.0.0.1:{upstream_port}",
        "--log-level", "warn",
        "--spool-dir", str(spool),
        *artifacts,
    ]  # fmt: skip


def start_proxy(workdir: Path, upstream_port: int, gateway: bool = False) -> tuple[Target, float]:
    port = free_port()
    spool = workdir / "spool"
    spool.mkdir(exist_ok=True)
    env = proxy_env()
    if gateway:
        env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{upstream_port}"
    t0 = time.perf_counter()
    proc = PROCS.start(
        proxy_cmd(port, upstream_port, spool, gateway),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "proxy.log", "a"),
    )
    ready = wait_ready(proc, port, "/readyz", t0)
    return Target("gateway" if gateway else "proxy", port, proc, [proc.pid]), ready


# ---------------------------------------------------------------------------------------------------
# Measurements


def wrk(port: int, method: str, path: str, body: str, conns: int, seconds: int) -> dict:
    threads = max(1, min(conns, WRK_THREADS))
    cmd = [
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(BENCHES / "wrk.lua"), f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    env = dict(os.environ, BENCH_METHOD=method, BENCH_BODY=body)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"wrk printed no figures: {done.stdout}\n{done.stderr}")


def rotate(seq, r):
    r %= len(seq)
    return list(seq[r:]) + list(seq[:r])


def small_scenarios(targets: dict[str, Target]) -> list[dict]:
    rows = []
    for method, path, body in (("GET", SEARCH, ""), ("POST", LOG_METRIC, LOG_METRIC_BODY)):
        for conns in CONCURRENCY:
            runs = {name: [] for name in PATHS}
            for r in range(ROUNDS):
                for name in rotate(PATHS, r):
                    t = targets[name]
                    if r == 0:  # fills the upstream pools for this concurrency
                        wrk(t.port, method, path, body, conns, WARMUP)
                    cpu0 = cpu_seconds(t.pids) if t.pids else 0.0
                    res = wrk(t.port, method, path, body, conns, DURATION)
                    cpu1 = cpu_seconds(t.pids) if t.pids else 0.0
                    errors = sum(res[k] for k in res if k.startswith("err_"))
                    if res["err_status"] or res["requests"] == 0:
                        raise RuntimeError(f"{name} {method} c={conns}: non-2xx answers: {res}")
                    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
                    res["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / res["requests"] if t.pids else None
                    res["errors"] = errors
                    runs[name].append(res)
            row = {"method": method, "path": path, "conns": conns}
            for name in PATHS:
                rs = runs[name]
                row[name] = {
                    "rps": statistics.median(x["rps"] for x in rs),
                    "p50_ms": statistics.median(x["p50_us"] for x in rs) / 1000,
                    "p99_ms": statistics.median(x["p99_us"] for x in rs) / 1000,
                    "errors": sum(x["errors"] for x in rs),
                    "cpu_us_per_req": (
                        statistics.median(x["cpu_us_per_req"] for x in rs)
                        if rs[0]["cpu_us_per_req"] is not None
                        else None
                    ),
                    "rounds": [round(x["rps"]) for x in rs],
                }
            rows.append(row)
            log(
                f"{method} c={conns}: "
                + ", ".join(f"{n} {row[n]['rps']:.0f} req/s p50 {row[n]['p50_ms']:.3f} ms" for n in PATHS)
            )
    return rows


def hold_connections(port: int, n: int, measure) -> tuple[int, object]:
    """Opens n keep-alive connections, sends one request on each (all in flight at once), reads the
    answers, then calls measure() while every connection is still open."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        request = f"GET {SEARCH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for s in socks:
            s.sendall(request)
        ok = sum(1 for s in socks if read_response(s)[0] == 200)
        time.sleep(1)
        return ok, measure()
    finally:
        for s in socks:
            s.close()


def curl_download(port: int, size: int) -> float:
    url = f"http://127.0.0.1:{port}" + ARTIFACT.format(name=f"{size}.bin")
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", "300", "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True, text=True, timeout=330, check=True,
    ).stdout.split()  # fmt: skip
    if out[0] != "200" or int(out[1]) != size:
        raise RuntimeError(f"download from port {port}: {out}")
    return size / float(out[2])


def curl_upload(port: int, source: Path, size: int) -> float:
    url = f"http://127.0.0.1:{port}" + ARTIFACT.format(name="upload.bin")
    out = subprocess.run(
        ["curl", "-sS", "-X", "PUT", "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
         "-T", str(source), "--max-time", "300", "-w", "\n%{http_code} %{size_upload} %{time_total}", url],
        capture_output=True, text=True, timeout=330, check=True,
    ).stdout.strip().splitlines()  # fmt: skip
    answer, (code, sent, seconds) = out[0], out[-1].split()
    if code != "200" or int(sent) != size or json.loads(answer).get("bytes") != size:
        raise RuntimeError(f"upload to port {port}: {out}")
    return size / float(seconds)


def write_source(path: Path, size: int) -> None:
    """The upload's source file, written for real and read once so that every upload reads it from
    the page cache (a sparse file's first read is several times slower than the next ones)."""
    block = os.urandom(4 * MIB)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass


def large_scenarios(targets: dict[str, Target], source: Path) -> list[dict]:
    rows = []
    for kind in ("download", "upload"):
        runs = {name: [] for name in PATHS}
        for r in range(LARGE_ROUNDS):
            for name in rotate(PATHS, r):
                t = targets[name]
                base = rss_mib(t.pids) if t.pids else None
                reset = reset_hwm(t.pids) if t.pids else False
                if kind == "download":
                    speed = curl_download(t.port, LARGE_BYTES)
                else:
                    speed = curl_upload(t.port, source, LARGE_BYTES)
                peak = hwm_mib(t.pids) if t.pids else None
                runs[name].append({"speed": speed, "base": base, "peak": peak, "hwm_reset": reset})
        row = {"kind": kind}
        for name in PATHS:
            rs = runs[name]
            row[name] = {
                "mib_s": statistics.median(x["speed"] for x in rs) / MIB,
                "base_mib": rs[0]["base"],
                "peak_mib": max(x["peak"] for x in rs) if rs[0]["peak"] is not None else None,
                "growth_mib": (
                    max(x["peak"] - x["base"] for x in rs) if rs[0]["peak"] is not None else None
                ),
                "hwm_reset": all(x["hwm_reset"] for x in rs),
            }
        rows.append(row)
        log(f"{kind}: " + ", ".join(f"{n} {row[n]['mib_s']:.0f} MiB/s" for n in PATHS))
    return rows


# ---------------------------------------------------------------------------------------------------
# The artifact gateway against the bench upstream's S3 endpoint


class OpenFileWatch:
    """While a transfer runs, samples the regular files a process holds open and the files in the given
    directories, keeping the largest seen: a body spooled to a temporary file shows up as one of the body's
    size."""

    def __init__(self, pid: int, dirs: list[Path]) -> None:
        self.pid, self.dirs = pid, dirs
        self.largest: tuple[int, str] = (0, "")
        self.samples = 0
        self._stop = False
        self._thread = None

    def _sample(self) -> None:
        paths = []
        fd_dir = f"/proc/{self.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                paths.append(os.readlink(f"{fd_dir}/{fd}"))
            except OSError:
                pass
        for d in self.dirs:
            paths.extend(str(p) for p in d.rglob("*"))
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.path.isfile(path) and st.st_size > self.largest[0]:
                self.largest = (st.st_size, path)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop:
            self._sample()
            time.sleep(0.02)

    def __enter__(self) -> "OpenFileWatch":
        import threading

        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join(timeout=10)


def curl_put(port: int, path: str, source: Path, size: int) -> float:
    out = subprocess.run(
        ["curl", "-sS", "-X", "PUT", "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
         "-T", str(source), "--max-time", "300", "-w", "\n%{http_code} %{size_upload} %{time_total}",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=330, check=True,
    ).stdout.strip().splitlines()  # fmt: skip
    code, sent, seconds = out[-1].split()
    if code != "200" or int(sent) != size:
        raise RuntimeError(f"PUT {path} on port {port}: {out}")
    return size / float(seconds)


def curl_get(port: int, path: str, size: int) -> float:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", "300", "-w", "%{http_code} %{size_download} %{time_total}",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=330, check=True,
    ).stdout.split()  # fmt: skip
    if out[0] != "200" or int(out[1]) != size:
        raise RuntimeError(f"GET {path} on port {port}: {out}")
    return size / float(out[2])


def boto3_transfer(endpoint: str, kind: str, key: str, source: Path, size: int) -> float:
    """One transfer straight to the S3 endpoint with boto3 (benches/s3_direct.py); bytes per second."""
    arg = str(source) if kind == "upload" else str(size)
    done = subprocess.run(
        [sys.executable, str(BENCHES / "s3_direct.py"), endpoint, S3_BUCKET, key, kind, arg],
        capture_output=True, text=True, timeout=330,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"boto3 {kind} failed (boto3 comes with the venv: make venv): {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["bytes"] != size:
        raise RuntimeError(f"boto3 {kind}: {figures}")
    return size / figures["seconds"]


def wait_store_reachable(port: int, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while True:
        status, body = http(port, "GET", "/api/proxy/status")
        store = json.loads(body).get("artifact_store") or {}
        if status == 200 and store.get("state") == "reachable":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway's store is not reachable: {store}")
        time.sleep(0.05)


def gateway_scenarios(workdir: Path, upstream_port: int, source: Path) -> list[dict]:
    """Upload, then download (of what was uploaded), through the gateway and straight to the endpoint, in
    alternating order, on a fresh gateway proxy."""
    gateway, _ = start_proxy(workdir, upstream_port, gateway=True)
    wait_store_reachable(gateway.port)
    endpoint = f"http://127.0.0.1:{upstream_port}"
    via = "/api/2.0/mlflow-artifacts/artifacts/via/large.bin"
    direct_key = GATEWAY_STORE.split("/", 3)[3] + "/direct/large.bin"
    rows = []
    for kind in ("upload", "download"):
        runs: dict[str, list] = {"direct": [], "gateway": []}
        for r in range(LARGE_ROUNDS):
            for name in rotate(("direct", "gateway"), r):
                if name == "direct":
                    runs[name].append({"speed": boto3_transfer(endpoint, kind, direct_key, source, LARGE_BYTES)})
                    continue
                base = rss_mib(gateway.pids)
                reset = reset_hwm(gateway.pids)
                with OpenFileWatch(gateway.proc.pid, [workdir / "spool"]) as watch:
                    if kind == "upload":
                        speed = curl_put(gateway.port, via, source, LARGE_BYTES)
                    else:
                        speed = curl_get(gateway.port, via, LARGE_BYTES)
                runs[name].append({"speed": speed, "base": base, "peak": hwm_mib(gateway.pids), "hwm_reset": reset,
                                   "largest_file": watch.largest, "samples": watch.samples})
        g = runs["gateway"]
        row = {
            "kind": kind,
            "direct": {"mib_s": statistics.median(x["speed"] for x in runs["direct"]) / MIB,
                       "rounds": [round(x["speed"] / MIB) for x in runs["direct"]]},
            "gateway": {"mib_s": statistics.median(x["speed"] for x in g) / MIB,
                        "rounds": [round(x["speed"] / MIB) for x in g],
                        "base_mib": g[0]["base"], "peak_mib": max(x["peak"] for x in g),
                        "hwm_reset": all(x["hwm_reset"] for x in g),
                        "largest_file_bytes": max(x["largest_file"][0] for x in g),
                        "largest_file": max(x["largest_file"] for x in g)[1],
                        "samples": min(x["samples"] for x in g)},
        }  # fmt: skip
        rows.append(row)
        log(f"gateway {kind}: direct (boto3) {row['direct']['mib_s']:.0f} MiB/s, gateway {row['gateway']['mib_s']:.0f} "
            f"MiB/s, gateway peak RSS {row['gateway']['peak_mib']:.1f} MiB, largest open file "
            f"{row['gateway']['largest_file_bytes']} B")
    PROCS.stop(gateway.proc)
    return rows


# ---------------------------------------------------------------------------------------------------
# The machine


def cmd_out(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def machine() -> dict:
    model = "unknown"
    for line in cmd_out(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    os_name = "unknown"
    if Path("/etc/os-release").exists():
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        os_name = m.group(1) if m else os_name
    commit = cmd_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": cmd_out(["nproc"]),
        "cpu": model,
        "memory_gib": mem_kib / (1 << 20),
        "kernel": platform.release(),
        "os": os_name,
        "rustc": cmd_out(["rustc", "--version"]),
        "nginx": cmd_out(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": cmd_out(["wrk", "-v"]).splitlines()[0].split(" [")[0],
        "curl": cmd_out(["curl", "--version"]).splitlines()[0].split(" (")[0],
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


# ---------------------------------------------------------------------------------------------------
# Report


def size_label() -> str:
    return f"{LARGE_BYTES / (1 << 30):g} GiB" if LARGE_BYTES >= 1 << 30 else f"{LARGE_BYTES / MIB:g} MiB"


def conns_label(n: int) -> str:
    return "1 connection" if n == 1 else f"{n} connections"


def binary_name() -> str:
    try:
        return str(PROXY_BIN.relative_to(ROOT))
    except ValueError:
        return str(PROXY_BIN)


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def report(res: dict) -> str:
    m = res["machine"]
    small = res.get("small", [])
    large = {row["kind"]: row for row in res.get("large", [])}
    mem = res.get("memory", {})
    lines: list[str] = []
    w = lines.append

    w("# Benchmarks")
    w("")
    w("Written by `make bench` (benches/run.sh, benches/bench.py); do not edit by hand, run it again.")
    w("")
    w("A sidecar in front of every MLflow call must add almost nothing. Each scenario runs side by side on "
      "three paths to the same fast local upstream (benches/upstream, a small hyper server answering "
      "MLflow-like JSON and serving or swallowing large artifacts):")
    w("")
    w("- **direct**: the client talks to the upstream itself (the physical limit);")
    w("- **nginx**: Debian's nginx as a plain reverse proxy, no signing (what an operator would use otherwise; "
      "configuration below);")
    w("- **proxy**: this proxy with SigV4 signing on (a static test key; every request is hashed and signed).")
    w("")
    w(f"Small requests: wrk, {DURATION} s per measurement, {ROUNDS} rounds with the order of the paths rotated "
      f"each round (a {WARMUP} s warm-up before the first); the table gives the median of the rounds. "
      f"wrk uses {WRK_THREADS} threads (1 at 1 connection). Large files: curl, {LARGE_ROUNDS} rounds, median "
      "throughput, worst peak RSS. Everything (load generator, proxies, upstream) shares the same "
      f"{m['nproc']} cores, so a hop's own CPU use takes CPU from the others: the CPU column is what the middle "
      "hop itself spent per request (from /proc, user + system).")
    w("")
    w(f"Run: `{res['command']}` — {res['finished_at']}, whole run {res['run_seconds'] / 60:.1f} min "
      f"(bench alone {res['bench_seconds'] / 60:.1f} min). Commit {m['commit']}.")
    w("")

    # Targets
    w("## Targets")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for t in res["targets"]:
        w(f"| {t['target']} | {t['measured']} | {verdict(t['ok'])} |")
    w("")
    w("Added latency is judged at 1 connection, where it is the hop's own cost; at 64 and 256 connections the "
      "p50 on this machine is mostly time queued for a CPU (see the table below).")
    w("")

    # The hand-kept analysis of the profile (what was changed and what the remaining distance is).
    analysis = BENCHES / "analysis.md"
    if analysis.exists():
        w(analysis.read_text().rstrip())
        w("")

    if small:
        # Small
        w("## Small JSON requests")
        w("")
        w("`GET /api/2.0/mlflow/experiments/search` (434-byte JSON answer) and `POST /api/2.0/mlflow/runs/log-metric` "
          f"({len(LOG_METRIC_BODY)}-byte JSON body).")
        w("")
        w("| request | conns | direct req/s | nginx req/s | proxy req/s | proxy ÷ nginx | proxy ÷ direct "
          "| p50 ms direct / nginx / proxy | p99 ms direct / nginx / proxy | proxy p50 − direct | CPU µs/req nginx / proxy |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for row in small:
            d, n, p = row["direct"], row["nginx"], row["proxy"]
            w(
                f"| {row['method']} | {row['conns']} | {fmt(d['rps'])} | {fmt(n['rps'])} | {fmt(p['rps'])} "
                f"| {p['rps'] / n['rps']:.2f}× | {p['rps'] / d['rps']:.2f}× "
                f"| {d['p50_ms']:.3f} / {n['p50_ms']:.3f} / {p['p50_ms']:.3f} "
                f"| {d['p99_ms']:.3f} / {n['p99_ms']:.3f} / {p['p99_ms']:.3f} "
                f"| {(p['p50_ms'] - d['p50_ms']):+.3f} ms "
                f"| {fmt(n['cpu_us_per_req'])} / {fmt(p['cpu_us_per_req'])} |"
            )
        w("")
        w("Throughput of each round (req/s, direct / nginx / proxy): "
          + "; ".join(
              f"{r['method']} c={r['conns']}: "
              + " / ".join(",".join(str(x) for x in r[n]["rounds"]) for n in PATHS)
              for r in small
          ) + ".")
        w("")

        # Large
        w(f"## {size_label()} download and upload")
        w("")
        w(f"`GET` and `PUT /api/2.0/mlflow-artifacts/artifacts/...` with {size_label()} bodies "
          "(curl, body to /dev/null / from a file in the page cache). The proxy hashes an upload for SigV4 while "
          "spooling it to disk, then streams the file upstream, so its upload time covers both passes. Peak RSS is "
          "VmHWM, reset before each transfer (`/proc/PID/clear_refs`); growth is peak minus the RSS just before; "
          "nginx's figures add up its master and workers. Every byte that crosses a hop is copied twice more "
          "(received and sent again) and crosses the loopback TCP stack twice; with the client, the hop and the "
          "upstream sharing the same cores, that bounds any user-space proxy well below direct (compare nginx).")
        w("")
        w("| transfer | direct MiB/s | nginx MiB/s | proxy MiB/s | proxy ÷ direct | proxy ÷ nginx "
          "| proxy RSS before → peak (growth) | nginx RSS before → peak |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|")
        for kind in ("download", "upload"):
            row = large[kind]
            d, n, p = row["direct"], row["nginx"], row["proxy"]
            w(
                f"| {kind} | {fmt(d['mib_s'])} | {fmt(n['mib_s'])} | {fmt(p['mib_s'])} "
                f"| {p['mib_s'] / d['mib_s']:.2f}× | {p['mib_s'] / n['mib_s']:.2f}× "
                f"| {p['base_mib']:.1f} → {p['peak_mib']:.1f} MiB ({p['growth_mib']:+.1f}) "
                f"| {n['base_mib']:.1f} → {n['peak_mib']:.1f} MiB |"
            )
        w("")

        # Memory and start
        w("## Memory, start-up, size")
        w("")
        w("| measure | proxy | nginx (master + workers) |")
        w("|---|--:|--:|")
        w(f"| RSS idle, just started and ready | {mem['proxy_idle_start']:.1f} MiB | {mem['nginx_idle_start']:.1f} MiB |")
        w(f"| RSS idle, after the small-request scenarios | {mem['proxy_idle_after']:.1f} MiB "
          f"| {mem['nginx_idle_after']:.1f} MiB |")
        w(f"| RSS with {HELD_CONNECTIONS} open keep-alive connections (one request each, all in flight at once) "
          f"| {mem['proxy_512']:.1f} MiB | {mem['nginx_512']:.1f} MiB |")
        w(f"| time from start to ready (`/readyz` answers 200), median of {STARTS} starts "
          f"| {res['start']['proxy_ms']:.1f} ms | {res['start']['nginx_ms']:.1f} ms |")
        w(f"| release binary | {res['binary_bytes'] / 1e6:.1f} MB ({res['binary_bytes'] / MIB:.1f} MiB) | – |")
        w("")
        w(f"Start-up of each try (ms): proxy {', '.join(f'{x:.1f}' for x in res['start']['proxy_all'])}; "
          f"nginx {', '.join(f'{x:.1f}' for x in res['start']['nginx_all'])}.")
        w("")

    if "gateway" in res:
        gateway_report(w, res["gateway"])

    # Machine
    w("## Machine")
    w("")
    w(f"- CPU: {m['cpu']}, {m['nproc']} cores (`nproc`)")
    w(f"- memory: {m['memory_gib']:.1f} GiB")
    w(f"- kernel: {m['kernel']}; OS: {m['os']}")
    w(f"- {m['rustc']}; nginx {m['nginx']}; {m['wrk']}; {m['curl']}; Python {m['python']}")
    share = res["cpu_share"]
    w(f"- CPU used during the run: {100 * share['own']:.0f}% of the machine by the bench (load generator, "
      f"proxies, upstream), {100 * share['other']:.0f}% by other work sharing the machine; load average at "
      f"start {' '.join(m['loadavg_start'])}, at end {' '.join(res['loadavg_end'])}. Other work makes every "
      "path slower; the rounds above show how much the figures moved.")
    w("")

    # How
    w("## How to run")
    w("")
    w("```sh")
    w("make bench                   # release build, then bash benches/run.sh")
    w("bash benches/run.sh          # after `make release`: installs wrk, nginx, curl if missing, builds")
    w("                             # benches/upstream (target/bench-upstream), runs, writes this file")
    w("BENCH_DURATION=5 BENCH_ROUNDS=7 bash benches/run.sh   # longer, steadier runs")
    w("BENCH_SCENARIOS=gateway BENCH_LARGE_ROUNDS=1 bash benches/run.sh   # the artifact gateway's part alone")
    w("bash benches/profile.sh get64 5   # where the proxy's CPU goes in one scenario (perf; symbolized build)")
    w("```")
    w("")
    w("The proxy runs as:")
    w("")
    w("```sh")
    w("AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-west-2 \\")
    w("AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \\")
    w(f"{binary_name()} --listen 127.0.0.1:PORT \\")
    w(f"  --arn {ARN} \\")
    w("  --upstream-url http://127.0.0.1:UPSTREAM_PORT --log-level warn --spool-dir BENCH_TMP/spool \\")
    w("  --artifact-gateway false   # artifact calls forwarded; for the gateway scenarios instead:")
    w(f"  # --artifact-store-uri {GATEWAY_STORE}, with AWS_ENDPOINT_URL_S3=http://127.0.0.1:UPSTREAM_PORT")
    w("```")
    w("")
    w("The nginx configuration (ports and paths filled in at run time):")
    w("")
    w("```nginx")
    w(NGINX_CONF.format(dir="BENCH_TMP/nginx", upstream="UPSTREAM_PORT", port="PORT").rstrip())
    w("```")
    w("")
    return "\n".join(lines)


def gateway_report(w, rows: list[dict]) -> None:
    w(f"## Artifact gateway: {size_label()} upload and download")
    w("")
    w("The gateway serves MLflow's artifact API against S3 with the proxy's credentials. Both sides use the same "
      "S3 endpoint: the bench upstream's (benches/upstream/src/s3.rs: PUT, multipart, ranged GET, HEAD, listing; "
      "signatures not checked; it keeps sizes only and regenerates the bytes, so it costs little CPU and no "
      "memory). **direct**: boto3 straight to the endpoint, `upload_file` and a ranged multi-threaded "
      "`download_fileobj` with boto3's default TransferConfig (8 MiB parts, 10 threads) — what MLflow's S3 "
      "artifact repository does for a client with S3 credentials (benches/s3_direct.py). **gateway**: curl "
      "through the proxy (`--artifact-store-uri`, default `--artifact-part-size` 8 MiB), one streamed PUT and "
      "one streamed GET, as MLflow's HTTP artifact client does against an `mlflow-artifacts:` store; the proxy "
      "hashes and signs every part it sends to S3. Downloaded bytes are dropped on both sides. Peak RSS is "
      "VmHWM reset before each transfer; the largest file is the largest regular file the proxy held open or "
      "found in its spool directory, sampled every 20 ms during the transfer.")
    w("")
    w("| transfer | direct (boto3) MiB/s | gateway MiB/s | gateway ÷ direct | gateway RSS before → peak "
      "| largest file held open | rounds MiB/s direct / gateway |")
    w("|---|--:|--:|--:|--:|--:|--:|")
    for row in rows:
        d, g = row["direct"], row["gateway"]
        w(f"| {row['kind']} | {fmt(d['mib_s'])} | {fmt(g['mib_s'])} | {g['mib_s'] / d['mib_s']:.2f}× "
          f"| {g['base_mib']:.1f} → {g['peak_mib']:.1f} MiB | {g['largest_file_bytes']:,} B "
          f"| {','.join(map(str, d['rounds']))} / {','.join(map(str, g['rounds']))} |")
    w("")


def gateway_targets(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        d, g = row["direct"], row["gateway"]
        ratio = g["mib_s"] / d["mib_s"]
        out.append({"target": f"gateway {size_label()} {row['kind']} ≥ {T_GATEWAY_VS_DIRECT}× direct (boto3)",
                    "measured": f"{ratio:.3f}× ({g['mib_s']:,.0f} vs {d['mib_s']:,.0f} MiB/s)",
                    "ok": ratio >= T_GATEWAY_VS_DIRECT})
        out.append({"target": f"gateway {size_label()} {row['kind']} peak RSS ≤ {T_GATEWAY_PEAK_MIB} MiB",
                    "measured": f"{g['peak_mib']:.1f} MiB", "ok": g["peak_mib"] <= T_GATEWAY_PEAK_MIB})
        limit = LARGE_BYTES // 16
        out.append({"target": f"gateway {size_label()} {row['kind']}: no temporary file of the body's size",
                    "measured": f"largest file held open {g['largest_file_bytes']:,} B ({g['samples']}+ samples)",
                    "ok": g["largest_file_bytes"] < limit})
    return out  # fmt: skip


def targets_table(res: dict) -> list[dict]:
    out = gateway_targets(res.get("gateway", []))
    if "small" not in res:
        return out
    for row in res["small"]:
        ratio = row["proxy"]["rps"] / row["nginx"]["rps"]
        out.append({
            "target": f"throughput with signing ≥ {T_THROUGHPUT_VS_NGINX}× nginx: {row['method']}, {conns_label(row['conns'])}",
            "measured": f"{ratio:.3f}× ({row['proxy']['rps']:,.0f} vs {row['nginx']['rps']:,.0f} req/s)",
            "ok": ratio >= T_THROUGHPUT_VS_NGINX,
        })
    for row in res["small"]:
        if row["conns"] != 1:
            continue
        added = row["proxy"]["p50_ms"] - row["direct"]["p50_ms"]
        out.append({
            "target": f"p50 added over direct ≤ {T_ADDED_P50_MS} ms: {row['method']}, 1 connection",
            "measured": f"{added:+.3f} ms ({row['proxy']['p50_ms']:.3f} vs {row['direct']['p50_ms']:.3f} ms)",
            "ok": added <= T_ADDED_P50_MS,
        })
    mem = res["memory"]
    out.append({"target": f"idle RSS ≤ {T_IDLE_RSS_MIB} MiB", "measured": f"{mem['proxy_idle_start']:.1f} MiB "
                f"(after load: {mem['proxy_idle_after']:.1f} MiB)", "ok": mem["proxy_idle_start"] <= T_IDLE_RSS_MIB})
    out.append({"target": f"RSS at {HELD_CONNECTIONS} connections ≤ {T_RSS_512_MIB} MiB",
                "measured": f"{mem['proxy_512']:.1f} MiB", "ok": mem["proxy_512"] <= T_RSS_512_MIB})
    large = {row["kind"]: row for row in res["large"]}
    dl = large["download"]
    ratio = dl["proxy"]["mib_s"] / dl["direct"]["mib_s"]
    out.append({"target": f"{size_label()} download ≥ {T_DOWNLOAD_VS_DIRECT}× direct",
                "measured": f"{ratio:.3f}× ({dl['proxy']['mib_s']:,.0f} vs {dl['direct']['mib_s']:,.0f} MiB/s)",
                "ok": ratio >= T_DOWNLOAD_VS_DIRECT})
    out.append({"target": f"{size_label()} download RSS growth ≤ {T_DOWNLOAD_GROWTH_MIB} MiB",
                "measured": f"{dl['proxy']['growth_mib']:+.1f} MiB", "ok": dl["proxy"]["growth_mib"] <= T_DOWNLOAD_GROWTH_MIB})
    ul = large["upload"]
    out.append({"target": f"{size_label()} upload (hashed for SigV4) peak RSS ≤ {T_UPLOAD_PEAK_MIB} MiB",
                "measured": f"{ul['proxy']['peak_mib']:.1f} MiB", "ok": ul["proxy"]["peak_mib"] <= T_UPLOAD_PEAK_MIB})
    size = res["binary_bytes"]
    out.append({"target": f"release binary ≤ {T_BINARY_MB} MB", "measured": f"{size / 1e6:.1f} MB",
                "ok": size <= T_BINARY_MB * 1_000_000})
    out.append({"target": f"`make bench` under {T_RUN_MINUTES} min (excluding the release build)",
                "measured": f"{res['run_seconds'] / 60:.1f} min", "ok": res["run_seconds"] <= T_RUN_MINUTES * 60})
    return out  # fmt: skip


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    for binary in (PROXY_BIN, UPSTREAM_BIN):
        if not binary.exists():
            print(f"missing {binary}: run `make bench` (or `make release` and benches/run.sh)", file=sys.stderr)
            return 2
    for tool in ("wrk", "nginx", "curl") if "forwarding" in SCENARIOS else ("curl",):
        if shutil.which(tool) is None:
            print(f"missing {tool}: run benches/run.sh, which installs it", file=sys.stderr)
            return 2

    t_bench = time.time()
    busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-proxy-bench-"))
    res: dict = {"command": COMMAND, "machine": machine()}
    try:
        upstream = start_upstream(workdir)
        log(f"upstream on {upstream.port}")
        source = workdir / "upload.bin"
        write_source(source, LARGE_BYTES)
        if "forwarding" in SCENARIOS:
            # Start-up: several starts of each; the last one stays up for the scenarios.
            proxy_starts, nginx_starts = [], []
            for i in range(STARTS):
                proxy, ready = start_proxy(workdir, upstream.port)
                proxy_starts.append(ready * 1000)
                if i < STARTS - 1:
                    PROCS.stop(proxy.proc)
            for i in range(STARTS):
                nginx, ready = start_nginx(workdir, upstream.port)
                nginx_starts.append(ready * 1000)
                if i < STARTS - 1:
                    PROCS.stop(nginx.proc, signal.SIGQUIT)
            res["start"] = {
                "proxy_ms": statistics.median(proxy_starts),
                "nginx_ms": statistics.median(nginx_starts),
                "proxy_all": proxy_starts,
                "nginx_all": nginx_starts,
            }
            log(f"start to ready: proxy {res['start']['proxy_ms']:.1f} ms, nginx {res['start']['nginx_ms']:.1f} ms")
            time.sleep(1)
            memory = {"proxy_idle_start": rss_mib(proxy.pids), "nginx_idle_start": rss_mib(nginx.pids)}
            log(f"idle RSS: proxy {memory['proxy_idle_start']:.1f} MiB, nginx {memory['nginx_idle_start']:.1f} MiB")

            targets = {"direct": Target("direct", upstream.port), "nginx": nginx, "proxy": proxy}

            # The three paths must answer the same.
            for method, path, body in (("GET", SEARCH, b""), ("POST", LOG_METRIC, LOG_METRIC_BODY.encode())):
                answers = {name: http(t.port, method, path, body) for name, t in targets.items()}
                if len({a for a in answers.values()}) != 1 or answers["direct"][0] != 200:
                    raise RuntimeError(f"the paths answer {method} {path} differently: {answers}")

            res["small"] = small_scenarios(targets)

            time.sleep(2)
            memory["proxy_idle_after"] = rss_mib(proxy.pids)
            memory["nginx_idle_after"] = rss_mib(nginx.pids)

            for name in ("proxy", "nginx"):
                t = targets[name]
                ok, rss = hold_connections(t.port, HELD_CONNECTIONS, lambda t=t: rss_mib(t.pids))
                if ok != HELD_CONNECTIONS:
                    raise RuntimeError(f"{name}: only {ok} of {HELD_CONNECTIONS} held connections answered 200")
                memory[f"{name}_512"] = rss
                log(f"{name}: RSS {rss:.1f} MiB with {HELD_CONNECTIONS} open connections")
            res["memory"] = memory

            # Large files, on a fresh proxy so its peak RSS owes nothing to the earlier scenarios.
            PROCS.stop(proxy.proc)
            proxy, _ = start_proxy(workdir, upstream.port)
            targets["proxy"] = proxy
            res["large"] = large_scenarios(targets, source)
        if "gateway" in SCENARIOS:
            res["gateway"] = gateway_scenarios(workdir, upstream.port, source)
        source.unlink()
        res["binary_bytes"] = PROXY_BIN.stat().st_size
    finally:
        PROCS.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    res["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    busy, own = machine_busy_seconds() - busy0, own_cpu_seconds() - own0
    wall = time.time() - t_bench
    ncpu = os.cpu_count() or 1
    res["cpu_share"] = {"own": own / (wall * ncpu), "other": max(0.0, busy - own) / (wall * ncpu)}
    res["bench_seconds"] = time.time() - t_bench
    res["run_seconds"] = time.time() - STARTED_AT
    res["finished_at"] = time.strftime("%Y-%m-%d %H:%M %Z")
    res["targets"] = targets_table(res)
    text = report(res)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    raw = ROOT / "target" / "bench" / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(res, indent=2))
    print()
    print(text)
    log(f"wrote {OUT} and {raw}")
    missed = [t["target"] for t in res["targets"] if not t["ok"]]
    if missed:
        log(f"{len(missed)} target(s) missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
