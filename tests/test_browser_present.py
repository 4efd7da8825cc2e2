"""Presentation mode and the Present page's step-through in a real browser (Streamlit on 127.0.0.1, Debian's headless
Chromium via Playwright): ``/present?run=ID&present=1`` shows large type and one plotly figure per step; Next walks
every step (the indicator and the URL follow), Previous goes back one. Screenshots go under build/ (a failing step
leaves one beside the test's temporary folder)."""

import re
import shutil

import pytest
from browser import CHROMIUM, REPO, browser_page, streamlit_server, wait_for_app
from test_present import FIGURES

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")

FONT_PX = "e => parseFloat(getComputedStyle(e).fontSize)"


def test_present_mode_walks_every_step_of_a_run(tmp_path):
    from experiment_helpers import tiny_experiment
    from playwright.sync_api import expect

    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path / "runs"
    run_id = record_experiment(tiny_experiment(), RunStore(root), name="lecture run")
    shots = REPO / "build" / "present"
    shots.mkdir(parents=True, exist_ok=True)
    with streamlit_server(root) as url, browser_page(width=1600, height=1000) as page:
        try:
            page.goto(f"{url}/present?run={run_id}&present=1")
            wait_for_app(page)
            expect(page.get_by_text(re.compile(r"Step 1/5 · The film · lecture run"))).to_be_visible(timeout=20_000)
            page.wait_for_function("() => document.querySelector('style#know-present') !== null", timeout=20_000)
            main = page.get_by_test_id("stMainBlockContainer")
            assert main.locator("[data-testid=stMarkdownContainer] p").first.evaluate(FONT_PX) >= 22  # large type
            assert main.locator("h2").first.evaluate(FONT_PX) >= 30
            expect(page.get_by_role("switch", name="Presentation mode")).to_be_checked()
            for step in range(1, 6):
                if step > 1:
                    page.get_by_role("button", name=re.compile("Next")).click()
                    page.wait_for_url(re.compile(rf"[?&]step={step}(&|$)"), timeout=20_000)
                    wait_for_app(page)
                expect(page.get_by_text(f"Step {step}/5")).to_be_visible(timeout=20_000)
                charts = page.get_by_test_id("stPlotlyChart")
                expect(charts).to_have_count(1, timeout=20_000)  # one figure per screen
                expect(charts.first.locator(".main-svg").first).to_be_visible()
                expect(charts.first.locator(".gtitle")).to_have_text(re.compile("^" + re.escape(FIGURES[step])))
                expect(page.get_by_test_id("stHeading").filter(has=page.locator("h2"))).to_have_count(1)
                box = charts.first.bounding_box()
                assert box["y"] + box["height"] <= 1000  # the whole figure fits the screen: one figure per screen
                page.screenshot(path=str(shots / f"step-{step}.png"))
            expect(page.get_by_role("button", name=re.compile("Next"))).to_be_disabled()
            assert "present=1" in page.url  # presentation mode stayed on through every step
            page.get_by_role("button", name=re.compile("Back")).click()
            page.wait_for_url(re.compile(r"[?&]step=4(&|$)"), timeout=20_000)
            wait_for_app(page)
            expect(page.get_by_text("Step 4/5")).to_be_visible(timeout=20_000)
            expect(page.get_by_test_id("stPlotlyChart").first.locator(".gtitle")).to_have_text(
                re.compile("^" + re.escape(FIGURES[4])))
            page.get_by_role("link", name="Scaling").click()  # presentation mode survives a page switch
            page.wait_for_url(re.compile(r"/scaling\?.*present=1"), timeout=20_000)
            wait_for_app(page)
            expect(page.get_by_role("switch", name="Presentation mode")).to_be_checked()
            expect(page.locator("style#know-present")).to_have_count(1)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
