"""Fixtures for the browser suite: a real Chromium (Playwright) against the proxy in front of the SageMaker stand-in.

Run:  PROXY_BIN=target/debug/sagemaker-mlflow-proxy .venv/bin/pytest -q tests/browser

Environment:
  PROXY_BIN         proxy binary (default target/debug/sagemaker-mlflow-proxy)
  ARTIFACTS         where screenshots go (default test-artifacts/; this suite writes into ARTIFACTS/browser/)
  CHROMIUM_BIN      the browser (default /usr/bin/chromium, Debian's package; Playwright never downloads one)
  BROWSER_TIMEOUT_MS  how long a page may take to show what a test waits for (default 45000)
  BROWSER_MLFLOW_SERVER  "uvicorn" (default: what `mlflow server` runs, every route the UI uses) or "gunicorn"
  BROWSER_HEADED    set to 1 to watch the browser (needs a display)

The emulator, the proxy processes and the "no unexpected refusals" check come from tests/e2e (imported, not
copied). The emulator starts once per session; one proxy per (ARN kind, UI mode) is started on first use and shared.
When a test fails, the page it was on is saved as ARTIFACTS/browser/FAILED-<test>.png and the failure report gets a
"browser" section: the URL, the visible text, console errors, failed responses and the proxy's log tail.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

# Importing the e2e conftest also makes this process a *stock* MLflow client (no AWS_* variables, the SageMaker
# plugin's header provider switched off). Its fixtures imported here are registered for this directory too and
# resolve `emulator` to the fixture below.
from tests.e2e.conftest import (  # noqa: F401  (fixtures are used by name)
    ProxyProcess,
    _no_unexpected_refusals,
    format_refusals,
    proxy_binary,
    proxy_factory,
    refusals_since,
)

try:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, expect, sync_playwright
except ImportError as e:  # pragma: no cover - a setup problem, said plainly
    raise ImportError("the browser suite needs Playwright: .venv/bin/pip install -r tests/browser/requirements.txt "
                      f"({e})") from e

ARTIFACTS = Path(os.environ.get("ARTIFACTS", "test-artifacts")) / "browser"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = int(os.environ.get("BROWSER_TIMEOUT_MS", "45000"))
VIEWPORT = {"width": 1400, "height": 900}

UI_MODES = ["sigv4", "presigned-session"]
ARN_KINDS = ["tracking_server", "app"]

expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    # The same markers as tests/e2e (its pytest_configure is not a hook here: only its fixtures are imported).
    config.addinivalue_line("markers", "expect_refusals: the test provokes emulator refusals on purpose")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(240))


# ------------------------------------------------------------------------------------------------ failure reports


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        tab = getattr(item, "funcargs", {}).get("tab")
        if isinstance(tab, Tab):
            report.sections.append(("browser", tab.diagnose(item.name)))
    return report


# ------------------------------------------------------------------------------------------------ emulator, data


@pytest.fixture(scope="session")
def emulator():
    from tests import emulator as emu_mod

    t0 = time.monotonic()
    emu = emu_mod.start(mlflow_server=os.environ.get("BROWSER_MLFLOW_SERVER", "uvicorn"))
    print(f"\n[browser] emulator ready in {time.monotonic() - t0:.1f}s: data plane {emu.info['data_plane_url']}")
    try:
        yield emu
    finally:
        emu.stop()


@dataclass
class Seeded:
    experiment_name: str
    experiment_id: str
    run_name: str
    run_id: str
    metric_key: str
    metric_steps: int
    artifact_name: str
    artifact_text: str
    model_name: str
    model_alias: str


@pytest.fixture(scope="session")
def seeded(proxy_cache, tmp_path_factory) -> Seeded:
    """One experiment with one finished run (a metric history, a param, a text artifact) and a registered model
    with one version and an alias, all written through the proxy by the stock MLflow client."""
    from mlflow import MlflowClient

    p = proxy_cache("tracking_server", "presigned-session")
    c = MlflowClient(tracking_uri=p.url, registry_uri=p.url)
    tag = uuid.uuid4().hex[:6]
    s = Seeded(experiment_name=f"browser-seed-{tag}", experiment_id="", run_name="seed-run", run_id="",
               metric_key="loss", metric_steps=8, artifact_name="notes.txt",
               artifact_text="hello from the browser tests", model_name=f"browser-model-{tag}", model_alias="champion")
    s.experiment_id = c.create_experiment(s.experiment_name)
    run = c.create_run(s.experiment_id, run_name=s.run_name)
    s.run_id = run.info.run_id
    for step in range(s.metric_steps):
        c.log_metric(s.run_id, s.metric_key, 1.0 / (step + 1), step=step)
    c.log_param(s.run_id, "learning_rate", "0.01")
    d = tmp_path_factory.mktemp("artifact")
    (d / s.artifact_name).write_text(f"{s.artifact_text}\nsecond line\n")
    c.log_artifact(s.run_id, str(d / s.artifact_name))
    c.set_terminated(s.run_id)
    c.create_registered_model(s.model_name, description="seeded by the browser tests")
    mv = c.create_model_version(s.model_name, source=f"runs:/{s.run_id}/{s.artifact_name}", run_id=s.run_id)
    c.set_registered_model_alias(s.model_name, s.model_alias, mv.version)
    return s


# ------------------------------------------------------------------------------------------------ portal pages


class _PortalHandler(BaseHTTPRequestHandler):
    """`/?src=URL` answers a page that iframes URL (a stand-in for a portal on another origin)."""

    def do_GET(self) -> None:  # noqa: N802
        src = (parse_qs(urlsplit(self.path).query).get("src") or [""])[0]
        body = (f'<!doctype html><html><head><meta charset="utf-8"><title>Portal {self.server.server_address[1]}'
                f'</title></head><body style="margin:8px;font-family:sans-serif"><h1>Portal on port '
                f'{self.server.server_address[1]}</h1><iframe id="mlflow" title="MLflow" src="{html.escape(src)}" '
                f'style="width:1340px;height:760px;border:2px solid #888"></iframe></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


@dataclass
class Portals:
    allowed: str  # origin listed in --frame-ancestors
    denied: str  # origin not listed
    servers: list = field(default_factory=list)

    def page(self, origin: str, src: str) -> str:
        from urllib.parse import quote

        return f"{origin}/?src={quote(src, safe='')}"


@pytest.fixture(scope="session")
def portals() -> Portals:
    servers = []
    for _ in range(2):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _PortalHandler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True, name="portal").start()
        servers.append(srv)
    origins = [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    yield Portals(allowed=origins[0], denied=origins[1], servers=servers)
    for s in servers:
        s.shutdown()
        s.server_close()


# ------------------------------------------------------------------------------------------------ proxies


def ui_proxy_args(emulator, kind: str, ui_auth: str, frame_ancestors: str) -> list[str]:
    arn = emulator.info["tracking_server_arn" if kind == "tracking_server" else "app_arn"]
    return ["--arn", arn, "--upstream-url", emulator.info["data_plane_url"], "--ui-auth", ui_auth,
            "--frame-ancestors", frame_ancestors, "--ui-session-duration", "30m"]


@pytest.fixture(scope="session")
def proxy_cache(emulator, proxy_factory, portals) -> Callable[[str, str], ProxyProcess]:
    """One proxy per (ARN kind, UI mode), started on first use, with the allowed portal in --frame-ancestors."""
    cache: dict[tuple[str, str], ProxyProcess] = {}

    def get(kind: str, ui_auth: str) -> ProxyProcess:
        key = (kind, ui_auth)
        if key not in cache:
            cache[key] = proxy_factory(kind, name=f"browser-{kind}-{ui_auth}",
                                       args=ui_proxy_args(emulator, kind, ui_auth, portals.allowed))
        return cache[key]

    return get


@pytest.fixture
def proxy_for(proxy_cache, tab) -> Callable[[str, str], ProxyProcess]:
    """Like proxy_cache, and the proxy's log tail goes into the failure report."""

    def get(kind: str, ui_auth: str) -> ProxyProcess:
        p = proxy_cache(kind, ui_auth)
        tab.proxies.append(p)
        return p

    return get


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def proxy_log_lines(p: ProxyProcess) -> list[str]:
    try:
        return ANSI.sub("", p.log_path.read_text(errors="replace")).splitlines()
    except OSError:
        return []


def proxy_log_digest(p: ProxyProcess, warnings: int = 20, last: int = 12) -> str:
    lines = proxy_log_lines(p)
    bad = [ln for ln in lines if " WARN " in ln or " ERROR " in ln][-warnings:]
    return "\n".join([*bad, "  ...", *lines[-last:]])


def proxy_status(p: ProxyProcess) -> dict:
    r = requests.get(f"{p.url}/api/proxy/status", timeout=10)
    r.raise_for_status()
    return r.json()


# ------------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_BIN)", pytrace=False)
    headed = os.environ.get("BROWSER_HEADED") == "1"
    args = [a for a in CHROMIUM_ARGS if not (headed and a == "--headless")]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=not headed)
        try:
            yield b
        finally:
            b.close()


class Tab:
    """One browser context and page for one test, recording what a failure report needs."""

    def __init__(self, context: BrowserContext, page: Page):
        self.context = context
        self.page = page
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.bad_responses: list[tuple[int, str, str]] = []  # (status, method, url)
        self.proxies: list[ProxyProcess] = []
        self.shots: list[Path] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)[:500]))
        page.on("response", self._on_response)

    def _on_console(self, m: ConsoleMessage) -> None:
        if m.type in ("error", "warning"):
            frame = ""
            try:
                frame = m.page.url if m.page else ""
            except Exception:  # noqa: BLE001
                pass
            self.console.append(f"[{m.type}] {m.text[:500]}" + (f"  (page {frame})" if frame else ""))

    def _on_response(self, r: Response) -> None:
        if r.status >= 400:
            self.bad_responses.append((r.status, r.request.method, r.url))

    def shot(self, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path

    def bad_responses_from(self, origin: str) -> list[tuple[int, str, str]]:
        return [r for r in self.bad_responses if r[2].startswith(origin + "/")]

    def diagnose(self, test_name: str) -> str:
        lines = []
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)[:120]
        try:
            lines.append(f"screenshot: {self.shot(f'FAILED-{safe}', full_page=True)}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"screenshot failed: {e}")
        try:
            lines.append(f"url: {self.page.url}")
            text = self.page.locator("body").inner_text(timeout=3000)
            lines.append("visible text (first 3000 chars):\n" + text[:3000])
            for frame in self.page.frames[1:]:
                try:
                    ftext = frame.locator("body").inner_text(timeout=2000)
                except Exception as e:  # noqa: BLE001
                    ftext = f"(unreadable: {e.__class__.__name__})"
                lines.append(f"iframe {frame.url}:\n{ftext[:2000]}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"page unreadable: {e}")
        if self.console:
            lines.append("console errors/warnings:\n  " + "\n  ".join(self.console[-30:]))
        if self.page_errors:
            lines.append("uncaught page errors:\n  " + "\n  ".join(self.page_errors[-10:]))
        if self.bad_responses:
            lines.append("responses >= 400:\n  " + "\n  ".join(f"{s} {m} {u}" for s, m, u in self.bad_responses[-30:]))
        for p in self.proxies:
            lines.append(f"proxy {p.url} log (warnings, then the last lines):\n{proxy_log_digest(p)}")
        return "\n".join(lines)


@pytest.fixture
def tab(browser: Browser) -> Tab:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(max(TIMEOUT_MS, 60000))
    t = Tab(context, context.new_page())
    yield t
    context.close()


# ------------------------------------------------------------------------------------------------ helpers


def plotly_line_points(page_or_frame, timeout: Optional[float] = None) -> int:
    """Number of points of the first plotted line in an MLflow (plotly) chart, once it has been drawn."""
    line = page_or_frame.locator(".js-plotly-plot .scatterlayer path.js-line").first
    expect(line).to_be_attached(timeout=timeout or TIMEOUT_MS)
    d = line.get_attribute("d") or ""
    return len(re.findall(r"[ML]\s*-?[\d.]+\s*,\s*-?[\d.]+", d))


def svg_path_points(d: str) -> int:
    return len(re.findall(r"[ML]\s*-?[\d.]+\s*,\s*-?[\d.]+", d))
