"""The operator dashboard at / (React, embedded in the binary), driven like a user would, against a tracking-server
proxy in presigned-session mode (the default for tracking servers)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from playwright.sync_api import expect

from .conftest import proxy_status, svg_path_points


@pytest.fixture
def dash(proxy_for):
    return proxy_for("tracking_server", "presigned-session")


def _nav(page, label: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()


def test_create_experiment_then_see_it_in_the_mlflow_ui_page(dash, tab):
    page = tab.page
    name = f"dash-created-{uuid.uuid4().hex[:6]}"
    page.goto(f"{dash.url}/experiments")
    expect(page.get_by_role("heading", name="Experiments", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create", exact=True).click()
    status = page.get_by_role("status").filter(has_text="Created")
    expect(status).to_contain_text(re.compile(rf"Created {re.escape(name)} \(ID \d+\)"))
    new_id = re.search(r"\(ID (\d+)\)", status.inner_text()).group(1)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(row).to_be_visible()
    expect(row).to_contain_text(new_id)
    expect(row).to_contain_text("active")
    tab.shot("dashboard-experiments")
    # It exists upstream, not only in the page.
    r = requests.get(f"{dash.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": new_id}, timeout=30)
    assert r.status_code == 200 and r.json()["experiment"]["name"] == name, r.text[:300]

    # The MLflow UI page: the real UI in an iframe lists it on its home page ...
    _nav(page, "MLflow UI")
    expect(page).to_have_url(f"{dash.url}/ui")
    frame = page.frame_locator("iframe[title='MLflow UI']")
    expect(frame.get_by_role("link", name=name, exact=True)).to_be_visible()
    tab.shot("dashboard-ui")
    # ... and on its experiments page, opened with the page's deep-link box.
    page.get_by_label("Page", exact=True).fill("#/experiments")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(frame.get_by_role("heading", name="Experiments")).to_be_visible()
    expect(frame.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert page.frame_locator("iframe[title='MLflow UI']").owner.get_attribute("src").startswith("/mlflow/")
    tab.shot("dashboard-ui-experiments")


def test_runs_page_charts_the_selected_runs_metric_history(dash, seeded, tab):
    page = tab.page
    page.goto(f"{dash.url}/experiments")
    page.get_by_role("link", name=seeded.experiment_name, exact=True).click()
    expect(page).to_have_url(f"{dash.url}/experiments/{seeded.experiment_id}/runs")
    expect(page.get_by_role("heading", level=1)).to_contain_text(seeded.experiment_name)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=seeded.run_name, exact=True))
    expect(row).to_contain_text("finished")
    expect(row).to_contain_text("0.125")  # latest loss
    expect(page.get_by_text("No runs selected")).to_be_visible()
    page.get_by_role("checkbox", name=f"Select run {seeded.run_name}").check()
    history = page.locator("section.card").filter(has=page.get_by_role("heading", name="Metric history"))
    chart = history.get_by_role("img", name=f"{seeded.metric_key} by step, one line per run")
    expect(chart.or_(history.get_by_role("alert")).first).to_be_visible()
    alerts = history.get_by_role("alert")
    assert alerts.count() == 0, f"the Metric history panel shows an error instead of the chart: " \
                                f"{alerts.all_inner_texts()}; failed requests: {tab.bad_responses}"
    expect(chart).to_be_visible()
    line = chart.locator("path").first
    expect(line).to_have_attribute("d", re.compile(r"^M"))
    assert svg_path_points(line.get_attribute("d")) == seeded.metric_steps
    expect(chart.locator("circle")).to_have_count(seeded.metric_steps)
    expect(page.get_by_role("list", name="Legend")).to_contain_text(f"{seeded.run_name}{seeded.metric_steps} points")
    tab.shot("dashboard-runs", full_page=True)


def test_models_page_shows_versions_and_aliases(dash, seeded, tab):
    page = tab.page
    page.goto(f"{dash.url}/models")
    expect(page.get_by_role("heading", name="Models", level=1)).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("button", name=seeded.model_name, exact=True))
    expect(row).to_contain_text("v1")
    expect(row).to_contain_text(f"@{seeded.model_alias} → v1")
    row.get_by_role("button", name=seeded.model_name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/models\?name={re.escape(seeded.model_name)}$"))
    detail = page.locator("section.card").filter(has=page.get_by_role("heading", name=f"Model {seeded.model_name}"))
    expect(detail).to_contain_text("seeded by the browser tests")
    expect(detail.get_by_role("heading", name="Versions")).to_be_visible()
    expect(detail).to_contain_text(seeded.model_alias)
    tab.shot("dashboard-models")


def test_api_console_shows_formatted_json(dash, seeded, tab):
    page = tab.page
    page.goto(f"{dash.url}/console")
    expect(page.get_by_role("heading", name="API console", level=1)).to_be_visible()
    path = "/api/2.0/mlflow/experiments/search?max_results=5"
    page.get_by_label("Method").select_option("GET")
    page.get_by_label("Path").fill(path)
    expect(page.get_by_test_id("curl")).to_contain_text(f"{dash.url}{path}")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("response-status")).to_have_text("200")
    body = page.get_by_label("Response body")
    expect(body).to_contain_text('"experiments": [')
    text = body.inner_text()
    doc = json.loads(text)
    assert 1 <= len(doc["experiments"]) <= 5, doc
    assert text == json.dumps(doc, indent=2, ensure_ascii=False), "the body is not shown pretty-printed"
    assert "\n  \"experiments\": [\n    {" in text
    tab.shot("dashboard-console", full_page=True)


def test_embed_page_lists_frame_ancestors_and_builds_a_snippet(dash, seeded, portals, tab):
    page = tab.page
    page.goto(f"{dash.url}/embed")
    expect(page.get_by_role("heading", name="Embed", level=1)).to_be_visible()
    allowed = page.get_by_role("list", name="Allowed embedding origins")
    expect(allowed).to_contain_text(portals.allowed)
    expect(allowed).to_contain_text("'self'")
    expect(page.get_by_text(f"frame-ancestors 'self' {portals.allowed}")).to_be_visible()
    page.get_by_label("Experiment ID").fill(seeded.experiment_id)
    snippet = page.get_by_test_id("embed-snippet")
    expect(snippet).to_contain_text(f'src="{dash.url}/mlflow/#/experiments/{seeded.experiment_id}"')
    expect(snippet).to_contain_text("<iframe")
    tab.shot("dashboard-embed")


def test_overview_shows_status_identity_session_and_traffic(dash, emulator, tab):
    # Use the UI once so that the proxy holds an upstream UI session, whatever ran before.
    assert requests.get(f"{dash.url}/mlflow/", timeout=30).status_code == 200
    assert proxy_status(dash)["ui_session"]["state"] == "active"
    page = tab.page
    page.goto(f"{dash.url}/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    card = lambda title: page.locator("section.card").filter(has=page.get_by_role("heading", name=title, exact=True))  # noqa: E731
    expect(card("Readiness")).to_contain_text("Ready")
    expect(card("Upstream")).to_contain_text(emulator.info["tracking_server_arn"])
    expect(card("Upstream")).to_contain_text("presigned-session")
    expect(card("Upstream")).to_contain_text("sagemaker-mlflow")
    expect(card("AWS identity")).to_contain_text(emulator.info["account_id"])
    expect(card("AWS identity")).to_contain_text(emulator.info["user_arn"])
    expect(card("UI session")).to_contain_text("active")
    expect(card("UI session")).to_contain_text(re.compile(r"Expires\s*in \d+m"))
    expect(card("Live traffic")).to_contain_text(re.compile(r"Requests\s*[1-9]\d*"))
    expect(card("Artifact store")).to_contain_text(emulator.info["artifact_root"])
    expect(card("Artifact store")).to_contain_text("reachable")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_count(6)
    tab.shot("dashboard-overview", full_page=True)


def test_run_link_mlflow_prints_opens_the_run_in_the_mlflow_ui(dash, tab, monkeypatch, capsys):
    """MLflow prints `<tracking URI>/#/experiments/ID/runs/RUN` when a run ends; with the proxy as tracking URI
    that is the dashboard's root. The dashboard sends it on to the MLflow UI at /mlflow/#/..."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")
    c = MlflowClient(tracking_uri=dash.url, registry_uri=dash.url)
    exp_id = c.create_experiment(f"printed-link-{uuid.uuid4().hex[:6]}")
    run = c.create_run(exp_id, run_name="printed-link-run")
    capsys.readouterr()
    c.set_terminated(run.info.run_id)
    printed = capsys.readouterr().out
    m = re.search(r"View run printed-link-run at: (\S+)", printed)
    assert m, f"MLflow printed no run link: {printed!r}"
    link = m.group(1)
    assert link == f"{dash.url}/#/experiments/{exp_id}/runs/{run.info.run_id}", link

    page = tab.page
    page.goto(link)
    expect(page).to_have_url(f"{dash.url}/mlflow/#/experiments/{exp_id}/runs/{run.info.run_id}")
    expect(page.get_by_role("heading", name="printed-link-run")).to_be_visible()
    tab.shot("printed-run-link")
