"""presigned-session mode while a user browses: the upstream UI session expires between two clicks, the proxy gets
a new one by itself, and the user never sees an error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import format_refusals, plotly_line_points, proxy_status, refusals_since, ui_proxy_args

SESSION_TTL = 6.0  # seconds the stand-in lets each UI session live (instead of --ui-session-duration)
VISIBLE_ERRORS = re.compile(r"unauthori[sz]ed|access ?denied|session expired|request failed|went wrong|"
                            r"missing authentication", re.I)


def _sessions_created(emulator, seq: int) -> list[dict]:
    return [e for e in emulator.log_since(seq) if e.get("outcome") == "session-created"]


def _expire_sessions(emulator) -> None:
    """Makes every upstream UI session so far older than its (shortened) lifetime, without waiting."""
    emulator.age(SESSION_TTL + 1.0)


@pytest.mark.expect_refusals  # the stand-in refusing the expired session is the point; checked below
def test_ui_session_renewed_between_clicks(emulator, proxy_factory, portals, seeded, tab):
    p = proxy_factory("tracking_server", name="browser-renewal",
                      args=ui_proxy_args(emulator, "tracking_server", "presigned-session", portals.allowed))
    tab.proxies.append(p)
    page = tab.page
    seq = emulator.last_seq
    try:
        page.goto(f"{p.url}/mlflow/#/experiments")
        exp_link = page.get_by_role("link", name=seeded.experiment_name, exact=True)
        expect(exp_link).to_be_visible()
        tab.shot("renewal-1-experiments-first-session")
        st = proxy_status(p)["ui_session"]
        assert st["state"] == "active" and st["renewals"] == 1, st
        assert len(_sessions_created(emulator, seq)) == 1

        # From now on every upstream UI session (the current one too) lives SESSION_TTL seconds.
        emulator.set_config(session_ttl=SESSION_TTL)
        _expire_sessions(emulator)

        # Click 1: experiments -> the experiment (its overview POSTs trace queries: bodies replayed on renewal).
        exp_link.click()
        main = page.get_by_role("main")
        expect(main.get_by_role("heading", name="Overview")).to_be_visible()
        expect(main.get_by_role("link", name=seeded.experiment_name, exact=True)).to_be_visible()
        expect(main.get_by_role("tabpanel", name="Usage")).to_contain_text("Traces")
        assert len(_sessions_created(emulator, seq)) >= 2, "the proxy did not get a new session after expiry"
        tab.shot("renewal-2-experiment-after-first-expiry")

        # Click 2, after the renewed session expired too: the run (hash route, as the UI's own links do).
        _expire_sessions(emulator)
        page.evaluate("h => { window.location.hash = h }", f"#/experiments/{seeded.experiment_id}/runs/{seeded.run_id}")
        expect(page.get_by_role("heading", name=seeded.run_name)).to_be_visible()
        expect(page.get_by_role("cell", name="0.125")).to_be_visible()  # the last loss value, in the metrics table
        page.get_by_role("tab", name="Model metrics").click()
        assert plotly_line_points(page) == seeded.metric_steps
        tab.shot("renewal-3-run-after-second-expiry")

        expect(page.get_by_text(VISIBLE_ERRORS)).to_have_count(0)
    finally:
        emulator.set_config(session_ttl=None)

    created = _sessions_created(emulator, seq)
    assert len(created) >= 3, f"{len(created)} upstream sessions for two expiries"
    st = proxy_status(p)["ui_session"]
    assert st["renewals"] >= 3 and st["state"] == "active" and not st["last_error"], st
    # The browser never saw the upstream's refusals: the proxy renewed and retried each refused request.
    assert not tab.bad_responses_from(p.url), tab.bad_responses_from(p.url)
    assert not [c for c in tab.console if "401" in c or "403" in c], tab.console
    refused = refusals_since(emulator, seq)
    expired = [e for e in refused if str(e.get("reason", "")) == "UI session: session expired"]
    other = [e for e in refused if e not in expired]
    assert expired, "the stand-in never refused an expired session: the test did not exercise renewal"
    assert not other, format_refusals(other)
