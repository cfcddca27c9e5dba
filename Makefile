# sagemaker-mlflow-proxy: every entry point installs what it needs, so each works on a fresh machine.
#
#   make demo     the product against a local SageMaker MLflow stand-in (real MLflow server)
#   make test     every check: lint, the route table against MLflow, unit, integration, frontend,
#                 end-to-end, browser, container
#   make bench    the performance comparison (docs/benchmarks.md)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
CARGO ?= cargo
DEBUG_BIN := target/debug/sagemaker-mlflow-proxy
# The release binary is linked statically (glibc, +crt-static), so the same file runs on any Linux and
# inside the `FROM scratch` image; the Dockerfile builds it the same way. (musl would work too, but was
# measured slower under load: docs/deploy.md.)
RELEASE_TARGET := x86_64-unknown-linux-gnu
RELEASE_BIN := target/$(RELEASE_TARGET)/release/sagemaker-mlflow-proxy
DEMO_PORT ?= 8080
# Where browser screenshots and other test artifacts go.
ARTIFACTS ?= test-artifacts

.PHONY: help
help:
	@echo "make demo      run the proxy against a local SageMaker MLflow stand-in (Ctrl-C stops it)"
	@echo "make test      install what is missing and run every test suite"
	@echo "make bench     run the benchmarks and write docs/benchmarks.md"
	@echo "make release   build the release binary with the dashboard embedded"

# ---------------------------------------------------------------------------------------------
# Setup (idempotent; stamp files make repeated runs fast)

.PHONY: system-deps
system-deps: .stamps/system-deps
.stamps/system-deps:
	@mkdir -p .stamps
	@missing=""; \
	for pkg in chromium buildah openssl; do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt tests/browser/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -r tests/requirements.txt -r tests/browser/requirements.txt
	@touch $@

.PHONY: frontend
frontend: frontend/dist/index.html
frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@
frontend/dist/index.html: frontend/node_modules/.installed $(shell find frontend/src frontend/index.html frontend/vite.config.ts -type f 2>/dev/null)
	cd frontend && npm run build

# ---------------------------------------------------------------------------------------------
# Builds (one per profile; every test stage reuses them)

.PHONY: build
build: frontend
	$(CARGO) build --locked

.PHONY: release
release: frontend
	RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --locked --release --target $(RELEASE_TARGET)
	@ls -l $(RELEASE_BIN)

# ---------------------------------------------------------------------------------------------
# Tests

.PHONY: lint
lint: frontend
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The route table against MLflow itself: tests/route_coverage.rs reads tests/routes/mlflow-<version>.json,
# which tests/routes/extract.py writes from each MLflow version's own Flask and FastAPI apps (each version
# installed once, with uv, into .cache/mlflow-routes/<version>/). `make routes` rewrites the files after a
# change to the matrix; `make routes-check` fails when they differ from what MLflow registers (about
# 45 s from a fresh clone, 35 s with the venvs in place).
.PHONY: routes
routes: venv
	$(VENV_PY) tests/routes/extract.py

.PHONY: routes-check
routes-check: venv
	$(VENV_PY) tests/routes/extract.py --check

.PHONY: test-rust
test-rust: build
	$(CARGO) test --locked

.PHONY: test-frontend
test-frontend: frontend
	cd frontend && npm test

.PHONY: test-e2e
test-e2e: build venv
	PROXY_BIN=$(DEBUG_BIN) $(VENV)/bin/pytest -q -p no:cacheprovider --timeout 300 -rf tests/e2e

# The stand-in and the official-plugin cross-check only (no proxy binary needed).
.PHONY: test-emulator
test-emulator: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider --timeout 120 tests/e2e/test_emulator_contract.py tests/e2e/test_plugin_crosscheck.py

# Run the stand-in alone; prints and writes its JSON description.
.PHONY: emulator
emulator: venv
	mkdir -p $(ARTIFACTS)
	$(VENV_PY) -m tests.emulator --state-file $(ARTIFACTS)/emulator.json

# Every shipped deployment configuration (ECS template and task definition, compose files with .env.example,
# systemd unit) started with the real binary against the stand-in: tests/deploy.
.PHONY: test-deploy
test-deploy: build venv
	PROXY_BIN=$(DEBUG_BIN) $(VENV)/bin/pytest -q -p no:cacheprovider --timeout 300 -rf tests/deploy

.PHONY: test-browser
test-browser: build venv system-deps
	PROXY_BIN=$(DEBUG_BIN) ARTIFACTS=$(ARTIFACTS) $(VENV)/bin/pytest -q -p no:cacheprovider --timeout 300 -rf tests/browser

.PHONY: test-container
test-container: release venv system-deps
	PROXY_BIN=$(RELEASE_BIN) bash tests/container/check.sh

.PHONY: test
test: lint routes-check test-rust test-frontend test-e2e test-deploy test-browser test-container fuzz
	@echo "make test: all suites passed"

# Fuzzing: ARN parsing, path classification and ALB token parsing, each for a bounded time. Built
# without a sanitizer (`-s none`), which the stable toolchain supports; the targets' own assertions and
# Rust's bounds checks catch what they look for.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 20
.PHONY: fuzz
fuzz: frontend
	cargo fuzz --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)" || $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)
	$(CARGO) fuzz build -s none
	mkdir -p fuzz/artifacts
	for target in arn_parse path_classify jwt_parse; do \
	  log=fuzz/artifacts/$$target.log; \
	  $(CARGO) fuzz run -s none $$target -- -max_total_time=$(FUZZ_SECONDS) > $$log 2>&1 \
	    || { tail -n 60 $$log; echo "fuzz target $$target failed"; exit 1; }; \
	  echo "fuzz $$target: $$(tail -n 1 $$log)"; \
	done

# ---------------------------------------------------------------------------------------------
# Demo and benchmarks

.PHONY: demo
demo: release venv
	$(VENV_PY) -m tests.emulator.demo --proxy-bin $(RELEASE_BIN) --port $(DEMO_PORT)

.PHONY: bench
bench: release venv
	PROXY_BIN=$(RELEASE_BIN) bash benches/run.sh

.PHONY: clean
clean:
	rm -rf target frontend/dist frontend/node_modules $(VENV) .stamps .cache $(ARTIFACTS)
