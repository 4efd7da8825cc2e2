"""The Compare page as the browser draws it, at 1400 px wide: under 2,500 px tall with one run (whatever tab is open),
and with two runs no x tick label touches a subplot title, an annotation or the legend, and no legend is cut.
AppTest sees only the chart specs; these are the rendered boxes."""

import dataclasses
import shutil

import pytest
from browser import CHROMIUM, browser_page, streamlit_server, wait_for_app
from experiment_helpers import tiny_experiment

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")

HEIGHT = "() => document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect().height"
# Per visible chart: its title, x tick labels that intersect a subplot title, annotation, the figure title or the
# legend, and whether the legend lies inside the figure.
COLLISIONS = """() => {
  const box = e => e.getBoundingClientRect();
  const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  return [...document.querySelectorAll('[data-testid=stPlotlyChart]')].filter(c => box(c).height > 0).map(c => {
    const svg = box(c.querySelector('.main-svg'));
    const ticks = [...c.querySelectorAll('g[class^="x"][class$="tick"] text')].map(box).filter(b => b.width > 0);
    const others = [...c.querySelectorAll('.annotation, .gtitle, .legend')].map(box);
    const legend = c.querySelector('.legend');
    const l = legend && box(legend);
    return {title: (c.querySelector('.gtitle') || {}).textContent,
            hits: ticks.filter(t => others.some(o => meet(t, o))).length, ticks: ticks.length,
            legendInside: !l || (l.top >= svg.top - 1 && l.bottom <= svg.bottom + 1 && l.left >= svg.left - 1
                                 && l.right <= svg.right + 1)};
  });
}"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-browser-compare")
    store = RunStore(root)
    cfg = tiny_experiment(methods=["naive", "taskvector", "expfit", "known"])
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, stages=5, d0_fraction=0.5))
    return root, record_experiment(cfg, store, name="with KNOWN"), record_experiment(
        tiny_experiment(seeds=[0, 1]), store, name="a second run with a longer name")


def tabs(page) -> list:
    found = page.get_by_role("tab")
    return [found.nth(i) for i in range(found.count())] or [None]


def test_compare_is_under_2500_px_tall_with_one_run(runs):
    root, one, _ = runs
    with streamlit_server(root) as url, browser_page(1400, 1000) as page:
        page.goto(f"{url}/compare?runs={one}")
        wait_for_app(page)
        heights = {}
        for tab in tabs(page):
            if tab is not None:
                tab.click()
            page.wait_for_timeout(800)
            heights[tab.inner_text() if tab is not None else "page"] = page.evaluate(HEIGHT)
        assert max(heights.values()) < 2500, heights
        assert len(heights) >= 5  # every tab measured


def test_tick_labels_never_touch_titles_or_legends_with_two_runs(runs):
    root, one, two = runs
    with streamlit_server(root) as url, browser_page(1400, 1000) as page:
        page.goto(f"{url}/compare?runs={one},{two}")
        wait_for_app(page)
        seen = []
        for tab in tabs(page):
            if tab is not None:
                tab.click()
            page.locator("[data-testid=stPlotlyChart] .main-svg").first.wait_for(state="attached", timeout=20_000)
            page.wait_for_timeout(1500)  # plotly lays a chart out after it becomes visible
            seen += page.evaluate(COLLISIONS)
        assert {s["title"] for s in seen} >= {"Retrodiction against the warm oracle, per method and parameter group",
                                              "Backtest: error recovering the hidden Θ0, per parameter group"}
        assert all(s["ticks"] for s in seen), seen
        bad = [s for s in seen if s["hits"] or not s["legendInside"]]
        assert not bad, bad
