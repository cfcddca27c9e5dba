#!/usr/bin/env bash
# `make bench`: the performance comparison (direct vs nginx vs this proxy with SigV4 signing, and the
# artifact gateway vs boto3 straight to S3), written to docs/benchmarks.md. Needs the release binary
# (`make release`) and boto3 from the project's venv (`make venv`); `make bench` makes both first.
# BENCH_SCENARIOS=gateway (or forwarding) runs one part only.
#
# Installs what it needs (wrk, nginx, curl from Debian), builds the bench upstream (benches/upstream,
# its own crate, into target/bench-upstream), then runs benches/bench.py, which starts everything on
# free loopback ports, runs the scenarios and stops every process it started. Loopback only.
set -euo pipefail

export BENCH_STARTED_AT="${BENCH_STARTED_AT:-$(date +%s.%N)}"
export BENCH_COMMAND="${BENCH_COMMAND:-make bench}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# `make bench` passes the Makefile's RELEASE_BIN; otherwise the first release binary found.
if [[ -z "${PROXY_BIN:-}" ]]; then
  for candidate in "$ROOT/target/x86_64-unknown-linux-gnu/release/sagemaker-mlflow-proxy" \
    "$ROOT/target/release/sagemaker-mlflow-proxy"; do
    if [[ -x "$candidate" ]]; then PROXY_BIN="$candidate"; break; fi
  done
fi
PROXY_BIN="$(realpath -m "${PROXY_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/release/sagemaker-mlflow-proxy}")"
if [[ ! -x "$PROXY_BIN" ]]; then
  echo "benches/run.sh: $PROXY_BIN is missing: run 'make bench' (or 'make release' first)" >&2
  exit 2
fi

SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO=sudo

# --- tools ---------------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  echo "benches/run.sh: installing ${missing[*]}"
  # Keep Debian's nginx service from starting on port 80 during the install (the bench runs its own).
  made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -z "$made_policy" ]] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

# --- the bench upstream (a separate small crate; never touches the main build) ---------------------
UPSTREAM_TARGET="$ROOT/target/bench-upstream"
CARGO_TARGET_DIR="$UPSTREAM_TARGET" cargo build --quiet --locked --release \
  --manifest-path "$ROOT/benches/upstream/Cargo.toml"
export UPSTREAM_BIN="$UPSTREAM_TARGET/release/bench-upstream"
export PROXY_BIN

# Enough descriptors for 512 client connections plus the proxies' upstream connections.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PYTHON="${PYTHON:-python3}"
[[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"

# bench.py stops what it started; this trap stops bench.py itself if this script is interrupted.
bench_pid=""
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$PYTHON" "$ROOT/benches/bench.py" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"
