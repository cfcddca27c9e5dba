"""The real MLflow UI (3.10) through the proxy under /mlflow/, in a real browser, for both UI modes and both ARN
kinds: the experiments list, a run's metric chart and a text artifact."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import ARN_KINDS, UI_MODES, plotly_line_points


@pytest.mark.parametrize("kind", ARN_KINDS)
@pytest.mark.parametrize("ui_auth", UI_MODES)
def test_mlflow_ui_experiments_metrics_artifact(emulator, proxy_for, seeded, tab, kind, ui_auth):
    p = proxy_for(kind, ui_auth)
    page = tab.page
    label = f"mlflow-ui-{kind}-{ui_auth}"
    seq = emulator.last_seq

    # Experiments list.
    page.goto(f"{p.url}/mlflow/#/experiments")
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    exp_link = page.get_by_role("link", name=seeded.experiment_name, exact=True)
    expect(exp_link).to_be_visible()
    expect(page.get_by_role("link", name="Default", exact=True)).to_be_visible()
    tab.shot(f"{label}-1-experiments")

    # The run's metric chart (plotly SVG): one line with one point per logged step.
    page.goto(f"{p.url}/mlflow/#/experiments/{seeded.experiment_id}/runs/{seeded.run_id}/model-metrics")
    expect(page.get_by_role("heading", name=seeded.run_name)).to_be_visible()
    expect(page.get_by_role("tab", name="Model metrics")).to_have_attribute("aria-selected", "true")
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    points = plotly_line_points(page)
    assert points == seeded.metric_steps, f"the {seeded.metric_key} chart has {points} points, " \
                                          f"{seeded.metric_steps} steps were logged"
    expect(page.get_by_text(f"{seeded.run_name} ({seeded.metric_key})")).to_be_visible()  # the legend
    tab.shot(f"{label}-2-run-metric-chart")

    # The artifact: open the Artifacts tab, pick the file, its text is shown.
    page.get_by_role("tab", name="Artifacts").click()
    node = page.locator(f'[data-testid="artifact-tree-node"][artifact-name="{seeded.artifact_name}"]')
    expect(node).to_be_visible()
    node.click()
    expect(page.get_by_text(seeded.artifact_text)).to_be_visible()
    expect(page.get_by_text("second line")).to_be_visible()
    tab.shot(f"{label}-3-artifact")

    # What the browser saw: no error answers, no SageMaker cookie.
    assert not tab.bad_responses_from(p.url), tab.bad_responses_from(p.url)
    cookie_name = emulator.emu.config.session_cookie_name
    leaked = [c for c in tab.context.cookies() if c["name"] == cookie_name]
    assert not leaked, f"the browser holds the upstream session cookie: {leaked}"

    # What the stand-in saw: every UI request authenticated the way the mode says, for this ARN kind.
    arn = emulator.info["tracking_server_arn" if kind == "tracking_server" else "app_arn"]
    ui = [e for e in emulator.log_since(seq) if e["listener"] == "data" and e.get("outcome") == "forwarded"]
    assert ui, "the stand-in saw no UI request"
    want = "ui-session" if ui_auth == "presigned-session" else "sigv4"
    assert {e.get("auth") for e in ui} == {want}, sorted({(e.get("auth"), e["target"][:80]) for e in ui})
    assert {e.get("arn") for e in ui} == {arn}
    targets = [e["target"] for e in ui]
    assert any(t.startswith("/ajax-api/") for t in targets), targets
    downloads = [t for t in targets if seeded.artifact_name in t and ("get-artifact" in t or "mlflow-artifacts" in t)]
    assert downloads, f"no artifact download among {targets}"
