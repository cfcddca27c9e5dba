# Container image for sagemaker-mlflow-proxy.
#
# Targets (stages are ordered so that building an early target never touches a later one):
#
#   runtime            (default, last stage) full build: the React dashboard (Node), then the static
#                      release binary with the dashboard embedded (Rust, as `make release` builds it),
#                      copied into an empty image.
#                        docker build -t sagemaker-mlflow-proxy .
#   runtime-prebuilt   the same runtime image from files already in the build context, pulling no base
#                      image at all (CI builds it offline with buildah):
#                        dist/sagemaker-mlflow-proxy   a static x86_64 (or aarch64) Linux binary
#                        dist/ca-certificates.crt      a PEM CA bundle (e.g. the host's /etc/ssl/certs/ca-certificates.crt)
#                        buildah build --isolation chroot --format docker --target runtime-prebuilt -t sagemaker-mlflow-proxy .
#                      (--format docker: the OCI image format has no HEALTHCHECK)
#
# The runtime image is FROM scratch: the binary, a CA bundle, /etc/passwd and /etc/group naming the
# non-root user 65532 ("proxy", home /home/proxy), an empty /tmp owned by that user, nothing else (no
# shell, no curl: the HEALTHCHECK is the binary's own `healthcheck` subcommand). Nothing in the image
# is writable by the user except /tmp and /home/proxy, so it runs with a read-only root filesystem;
# give it a writable /tmp (tmpfs or volume) for spooled request bodies:
#   docker run --read-only --tmpfs /tmp:uid=65532,gid=65532,mode=0700 -p 8080:8080 sagemaker-mlflow-proxy
# /tmp is declared a VOLUME so that a plain `docker run --read-only`, and an ECS task (Fargate too) that
# mounts a task volume at /tmp, get a writable /tmp owned by the user without any extra flag.

ARG NODE_VERSION=22
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

# ---------------------------------------------------------------------------------------------------
# The runtime image's common part. Needs only files from the build context (deploy/rootfs/etc/*).
FROM scratch AS runtime-base
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="sagemaker-mlflow-proxy" \
      org.opencontainers.image.description="SigV4-signing proxy that gives MLflow clients, browsers and portals plain HTTPS access to Amazon SageMaker managed MLflow, with the MLflow UI under /mlflow/ and an operator dashboard at /" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deploy.md" \
      org.opencontainers.image.base.name="scratch"
# passwd/group give the numeric user a name and a home so that libraries that look up the user or
# $HOME (the AWS SDK's ~/.aws files) work; they are plain text files kept in deploy/rootfs/etc.
COPY deploy/rootfs/etc/passwd deploy/rootfs/etc/group /etc/
# WORKDIR creates a missing directory owned by the current USER (BuildKit and buildah alike): /home
# as root, then, as the non-root user, /tmp for spooled request bodies and /home/proxy as $HOME (the
# mount point for a read-only ~/.aws).
WORKDIR /home
USER 65532:65532
WORKDIR /tmp
WORKDIR /home/proxy
VOLUME ["/tmp"]
ENV HOME=/home/proxy \
    TMPDIR=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    MLFLOW_PROXY_LISTEN=0.0.0.0:8080 \
    MLFLOW_PROXY_SPOOL_DIR=/tmp \
    MLFLOW_PROXY_LOG_FORMAT=json
EXPOSE 8080
# SIGTERM (the runtime default) makes the proxy stop accepting and drain in-flight requests for up to
# --drain-timeout (30s by default): give the container a stop timeout a little longer than that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/sagemaker-mlflow-proxy", "healthcheck"]
ENTRYPOINT ["/sagemaker-mlflow-proxy"]

# ---------------------------------------------------------------------------------------------------
# Runtime image from a prebuilt binary in the build context (no base image, no network).
FROM runtime-base AS runtime-prebuilt
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/sagemaker-mlflow-proxy /sagemaker-mlflow-proxy

# ---------------------------------------------------------------------------------------------------
# Dashboard: Vite production build into /src/frontend/dist. The output is platform independent, so
# this stage always runs on the build host's own platform, even in a cross-platform build.
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS frontend
WORKDIR /src/frontend
ENV CI=true \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
COPY frontend/package.json frontend/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ---------------------------------------------------------------------------------------------------
# Static release binary with the dashboard embedded (rust-embed reads frontend/dist at compile time):
# exactly the build of `make release` (glibc, linked statically with +crt-static), the binary that CI
# tests inside this image's filesystem (tests/container/check.sh) and that `make bench` measures.
# Not musl: the same proxy built for musl served 13-45% fewer requests per second with 1.2-2x the CPU
# per request (its allocator and system calls; figures and command in docs/deploy.md), and one binary
# tested, measured and shipped beats two. glibc's static build
# resolves names itself (files and DNS are built into libc since glibc 2.34), which the container
# check exercises by reaching its upstream through /etc/hosts.
# Builds natively for the platform it runs on (x86_64 or aarch64; for arm64 images build on an arm64
# host or under emulation).
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
COPY --from=frontend /src/frontend/dist ./frontend/dist
ENV CARGO_TERM_COLOR=never \
    CARGO_NET_RETRY=5
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "${target}" --bin sagemaker-mlflow-proxy \
 && install -D -m 0555 "target/${target}/release/sagemaker-mlflow-proxy" /out/sagemaker-mlflow-proxy \
 && /out/sagemaker-mlflow-proxy --version

# ---------------------------------------------------------------------------------------------------
# Default target: the runtime image with the binary built above.
FROM runtime-base AS runtime
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/sagemaker-mlflow-proxy /sagemaker-mlflow-proxy
