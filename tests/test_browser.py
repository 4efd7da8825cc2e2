"""The dashboard in a real browser: Streamlit on 127.0.0.1, Debian's headless Chromium via Playwright.

Also writes the README screenshot (docs/screenshot.png) from what the browser shows.
"""

import shutil


import pytest

from browser import CHROMIUM, REPO, browser_page, streamlit_server, wait_for_app

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")


def test_runs_page_renders_the_accuracy_chart(tmp_path):
    """On the start script's default run (digits, simple_cnn), so the README screenshot shows what a user sees."""
    from playwright.sync_api import expect

    from know_core.config import ForgetConfig
    from know_core.runs import forget_run
    from know_core.store import RunStore

    root = tmp_path / "runs"
    forget_run(ForgetConfig(dataset="digits", model="simple_cnn"), RunStore(root), name="digits demo")
    with streamlit_server(root) as url, browser_page() as page:
        try:
            page.goto(url)
            wait_for_app(page)
            expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1, timeout=20_000)
            expect(page.locator(".js-plotly-plot .scatterlayer .trace")).to_have_count(1, timeout=20_000)
            expect(page.get_by_text("Source accuracy along the forgetting stages").first).to_be_visible()
            page.wait_for_timeout(500)
            (REPO / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "docs" / "screenshot.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
