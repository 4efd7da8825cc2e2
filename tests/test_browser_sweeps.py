"""The Sweeps page in a real browser (Streamlit on 127.0.0.1, Debian's headless Chromium via Playwright): a tiny sweep
run inline shows its progress counts and its heatmap; clicking a cell offers that cell's runs, and its Trajectory link
opens the run. A failing step leaves a screenshot beside the test's temporary folder."""

import re
import shutil

import pytest
from browser import CHROMIUM, browser_page, streamlit_server, wait_for_app

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")


def test_the_sweeps_page_shows_progress_and_a_clickable_heatmap(tmp_path):
    from playwright.sync_api import expect
    from sweep_helpers import run_tiny

    import know_core.api as api
    from know_core.executors import make_executor

    root = tmp_path / "runs"
    sweep_id, _ = run_tiny(root, make_executor("inline"))
    cells = api.watch_sweep(root, sweep_id)["cells"]  # source.stages = 3, then 4
    with streamlit_server(root) as url, browser_page() as page:
        try:
            page.goto(f"{url}/sweeps")
            wait_for_app(page)
            expect(page.get_by_text("4 of 4 units finished · 4 done · 0 running · 0 failed")).to_be_visible(
                timeout=20_000)
            chart = page.get_by_test_id("stPlotlyChart").first
            expect(chart.locator(".js-plotly-plot .heatmaplayer")).to_have_count(1, timeout=20_000)
            expect(chart.locator(".gtitle")).to_have_text(re.compile(r"^vs_naive: mean over seeds by source\.stages"))
            points = chart.locator(".scatterlayer .point")  # one clickable marker per cell with data
            expect(points).to_have_count(4)
            points.nth(3).click(force=True)  # the cell source.stages = 4, k = 2
            expect(page.get_by_role("combobox", name=re.compile("^Cell"))).to_have_value(
                "source.stages = 4 · k = 2", timeout=20_000)
            run_id = cells[1]["run_id"]
            expect(page.locator(f"a[href$='compare?runs={run_id}']")).to_have_count(1)
            page.get_by_role("link", name=f"Trajectory of {run_id[-6:]}").click()
            page.wait_for_url(re.compile(rf"/trajectory\?run={run_id}$"), timeout=20_000)
            wait_for_app(page)
            expect(page.get_by_role("combobox", name="Run")).to_have_value(re.compile("source.stages=4"),
                                                                            timeout=20_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
