#!/usr/bin/env bash
# Profile the proxy in one bench scenario: `bash benches/profile.sh get64 5` (scenarios: get, post,
# get64, post64, download, upload). Builds a release binary that keeps its symbols (same profile and
# flags as `make release`, plus strip=false and line tables) into target/bench-profile, so the shipped
# build is untouched; PROXY_BIN=... skips the build. Needs perf (Debian's linux-perf) or valgrind.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TRIPLE=x86_64-unknown-linux-gnu

if ! command -v perf >/dev/null 2>&1 && ! command -v valgrind >/dev/null 2>&1; then
  SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq linux-perf >/dev/null
fi
if [[ -z "${PROXY_BIN:-}" ]]; then
  RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_STRIP=false \
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR="$ROOT/target/bench-profile" \
    cargo build --locked --release --target "$TRIPLE"
  PROXY_BIN="$ROOT/target/bench-profile/$TRIPLE/release/sagemaker-mlflow-proxy"
fi
CARGO_TARGET_DIR="$ROOT/target/bench-upstream" cargo build --quiet --locked --release \
  --manifest-path "$ROOT/benches/upstream/Cargo.toml"
export PROXY_BIN UPSTREAM_BIN="$ROOT/target/bench-upstream/release/bench-upstream"
ulimit -n 65536 2>/dev/null || true
exec "${PYTHON:-python3}" "$ROOT/benches/profile.py" "$@"
