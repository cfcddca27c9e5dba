"""Embedding the MLflow UI in a portal on another origin: allowed by --frame-ancestors, refused for any other."""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, UI_MODES


@pytest.mark.parametrize("ui_auth", UI_MODES)
def test_portal_iframe_allowed_origin_renders_other_origin_refused(emulator, proxy_for, portals, seeded, tab, ui_auth):
    p = proxy_for("tracking_server", ui_auth)
    page = tab.page
    src = f"{p.url}/mlflow/#/experiments"
    label = f"embed-{ui_auth}"

    # The CSP the proxy sends names the allowed portal, and the upstream's X-Frame-Options is gone.
    r = requests.get(f"{p.url}/mlflow/", timeout=30)
    assert r.status_code == 200
    csp = r.headers.get("content-security-policy", "")
    assert f"frame-ancestors 'self' {portals.allowed}" in csp, csp
    assert portals.denied not in csp
    assert "x-frame-options" not in {k.lower() for k in r.headers}, r.headers

    # Allowed portal: the frame shows the real UI with the seeded experiment.
    page.goto(portals.page(portals.allowed, src))
    expect(page.get_by_role("heading", name="Portal on port")).to_be_visible()
    frame = page.frame_locator("#mlflow")
    expect(frame.get_by_role("link", name=seeded.experiment_name, exact=True)).to_be_visible()
    expect(frame.get_by_role("heading", name="Experiments")).to_be_visible()
    child = page.frame(name="mlflow")
    assert child is not None and child.url.startswith(f"{p.url}/mlflow/"), child and child.url
    tab.shot(f"{label}-1-allowed-origin-experiments")
    # An in-frame navigation works too (the UI's own links, inside the iframe).
    frame.get_by_role("link", name=seeded.experiment_name, exact=True).click()
    main = frame.get_by_role("main")
    expect(main.get_by_role("link", name=seeded.experiment_name, exact=True)).to_be_visible()  # breadcrumb
    expect(main.get_by_role("heading", name="Overview")).to_be_visible()
    expect(main.get_by_role("tabpanel", name="Usage")).to_contain_text("Traces")
    assert f"#/experiments/{seeded.experiment_id}" in page.frame(name="mlflow").url
    tab.shot(f"{label}-2-allowed-origin-in-frame-navigation")
    assert not [c for c in tab.console if "frame-ancestors" in c], tab.console

    # Another portal: Chromium refuses to render the proxy's page in the frame.
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=TIMEOUT_MS) as blocked:
        page.goto(portals.page(portals.denied, src))
    msg = blocked.value.text
    assert "violates the following Content Security Policy directive" in msg and portals.allowed in msg, msg
    expect(page.get_by_role("heading", name="Portal on port")).to_be_visible()
    deadline = time.monotonic() + 10
    child = page.frame(name="mlflow")
    while (child is None or not child.url.startswith("chrome-error://")) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        child = page.frame(name="mlflow")
    assert child is not None and child.url.startswith("chrome-error://"), \
        f"the refused frame shows {child and child.url!r}, not Chromium's error page"
    page.wait_for_timeout(1500)  # give a (wrongly) rendered UI time to show up
    denied_frame = page.frame_locator("#mlflow")
    expect(denied_frame.get_by_text(seeded.experiment_name)).to_have_count(0)
    expect(denied_frame.locator(".js-plotly-plot, [data-testid], #root > *")).to_have_count(0)
    tab.shot(f"{label}-3-other-origin-refused")
