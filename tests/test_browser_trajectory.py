"""The Trajectory page's PCA views in a real browser (what AppTest cannot see): the legend never covers the colour
bar, and playing the animation keeps the plot at its full width. A failing check leaves screenshots in the test's
temporary folder."""

import shutil

import pytest
from browser import CHROMIUM, browser_page, streamlit_server, wait_for_app
from experiment_helpers import record_cnn_experiment

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")

BOXES = """() => {
    const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                        return {x: r.x, y: r.y, w: r.width, h: r.height}; };
    const plot = document.querySelector('.js-plotly-plot');
    return {plot: box(plot && plot.querySelector('.nsewdrag, .bglayer rect, .scene')),
            figure: box(plot), legend: box(plot && plot.querySelector('g.legend')),
            colorbar: box(plot && plot.querySelector('g.colorbar'))};
}"""


def overlap(a: dict, b: dict) -> float:
    """Area shared by two boxes (0 when they do not touch)."""
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(w, 0) * max(h, 0)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs-browser-traj")
    return root, record_cnn_experiment(root)


@pytest.mark.parametrize("view", ["2-D", "3-D", "Animation"])
def test_legend_clear_of_colour_bar_and_play_keeps_the_width(cnn_run, tmp_path, view):
    root, run_id = cnn_run
    with streamlit_server(root) as url, browser_page(width=1400, height=1100) as page:
        try:
            page.goto(f"{url}/trajectory?run={run_id}&view={view}")
            wait_for_app(page)
            for part in ("g.colorbar", "g.legend"):
                page.locator(f".js-plotly-plot {part}").first.wait_for(state="attached", timeout=30_000)
            page.wait_for_timeout(1000)
            before = page.evaluate(BOXES)
            if view != "Animation":
                assert before["legend"] and before["colorbar"], before
                assert overlap(before["legend"], before["colorbar"]) == 0, before
                return
            assert before["plot"]["w"] >= 0.6 * before["figure"]["w"], before  # the plot fills its figure
            page.locator(".js-plotly-plot .updatemenu-button").first.click()  # ▶ play
            page.wait_for_timeout(6 * 700 + 1500)  # every frame, then a little
            after = page.evaluate(BOXES)
            assert after["plot"]["w"] >= 0.95 * before["plot"]["w"], (before, after)  # not squeezed to a third
            assert after["legend"] and overlap(after["legend"], after["colorbar"]) == 0, after
            assert before["legend"] == after["legend"], (before, after)  # the full legend from the first frame
            controls = page.evaluate("""() => ['.updatemenu-container', '.slider-container'].map(s => {
                const r = document.querySelector('.js-plotly-plot ' + s).getBoundingClientRect();
                return {x: r.x, y: r.y, w: r.width, h: r.height}; })""")
            buttons, slider = controls
            assert buttons["x"] + buttons["w"] <= slider["x"] + 20, controls  # play buttons beside the slider
        except BaseException:
            page.screenshot(path=str(tmp_path / f"trajectory-{view}.png"), full_page=True)
            raise
