"""The dashboard in a real browser: Streamlit on 127.0.0.1, Debian's headless Chromium via Playwright.

One end-to-end story on an empty runs directory: launch the real ``quick`` preset from the Experiments page, watch
it finish, see the PCA plot, the comparison table and the scaling chart with the right number of traces, then cancel
a second job. Also saves what the browser shows of the trajectory page as build/screenshot.png
(``scripts/screenshot.sh`` runs this test to refresh the README's docs/screenshot.png); a failing step leaves a
screenshot beside the test's temporary folder.
"""

import re
import shutil

import pytest
from browser import CHROMIUM, browser_page, screenshot_path, streamlit_server, wait_for_app

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")


def predicted_methods(root):
    """Methods that produced predictions in the finished run (KNOWN only once its checkpoint exists)."""
    from know_core.experiment.analysis import invalid_methods
    from know_core.store.runstore import RunStore

    store = RunStore(root)
    (info,) = store.list_runs(status="done")
    res = store.open(info.id).read_json("results.json")
    bad = invalid_methods(res["rows"])
    return [m for m in res["config"]["methods"] if m != "naive" and m not in bad]


def extra_lines(root):
    """(PCA traces beyond the film and the predictions: warm oracles, control film; scaling lines beyond the
    predictors: the cold and warm oracles) for the finished run."""
    from know_core.store.runstore import RunStore

    store = RunStore(root)
    (info,) = store.list_runs(status="done")
    res = store.open(info.id).read_json("results.json")
    traj = res["trajectories"][0]
    pca = int(bool(traj.get("warm"))) + int(bool(traj.get("control")))
    oracles = len({r["method"] for r in res["rows"] if r["method"] in ("oracle", "oracle-warm")})
    return pca, oracles


def test_launch_watch_explore_and_cancel(tmp_path):
    from playwright.sync_api import expect

    root = tmp_path / "runs"
    with streamlit_server(root) as url, browser_page() as page:
        try:
            page.goto(url)
            wait_for_app(page)
            expect(page.get_by_text("No runs in")).to_be_visible()  # first open explains itself
            expect(page.get_by_role("combobox", name="Preset")).to_have_value("quick")
            page.get_by_role("button", name="Launch", exact=True).click()
            expect(page.get_by_text(re.compile(r"Launched quick demo"))).to_be_visible(
                timeout=20_000)
            expect(page.get_by_test_id("stProgress").first).to_be_visible(timeout=30_000)  # live progress
            done = page.get_by_text("See it on the Trajectory, Compare and Scaling pages")  # under the verdict
            expect(done).to_be_visible(timeout=240_000)
            methods = predicted_methods(root)
            pca_extra, oracle_lines = extra_lines(root)
            assert pca_extra == 2 and oracle_lines == 1  # quick records warm oracles and the control, no cold oracle

            page.goto(f"{url}/trajectory")
            wait_for_app(page)
            pca = page.get_by_test_id("stPlotlyChart").first
            expect(pca.locator(".scatterlayer .trace")).to_have_count(1 + len(methods) + pca_extra, timeout=20_000)
            expect(page.get_by_text("Forgetting trajectory and predictions in one PCA plane")).to_be_visible()
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot_path()), full_page=False)

            page.goto(f"{url}/compare")
            wait_for_app(page)
            # the comparison table and the retrodiction table (against the warm oracle)
            expect(page.get_by_test_id("stDataFrame")).to_have_count(2, timeout=20_000)
            target = page.get_by_test_id("stPlotlyChart").first  # the open tab: each predictor and its control
            expect(target.locator(".barlayer .trace")).to_have_count(2 * len(methods), timeout=20_000)
            page.get_by_role("tab", name="Retrodiction").click()  # one tab per figure
            expect(page.get_by_text("Retrodiction against the warm oracle").first).to_be_visible()

            page.goto(f"{url}/scaling")
            wait_for_app(page)
            # target and source accuracy, then the Cost section: the run's cost against gain and the standard
            # preset's reference run beside it, with its break-even grid
            page.get_by_text("Cost: when would KNOW pay for itself?").click()  # folded below the accuracy charts
            expect(page.get_by_test_id("stPlotlyChart")).to_have_count(4, timeout=20_000)
            scaling = page.get_by_test_id("stPlotlyChart").first
            expect(scaling.locator(".scatterlayer .trace")).to_have_count(len(methods) + oracle_lines + 1,
                                                                          timeout=20_000)  # + scratch's line
            expect(page.get_by_text("Target accuracy after fine-tuning, by scaling factor")).to_be_visible()
            expect(page.get_by_text("Break-even · standard preset (reference, 5 seeds)")).to_be_visible()

            page.goto(url)
            wait_for_app(page)
            page.get_by_role("button", name="Launch", exact=True).click()
            cancel = page.get_by_role("button", name="Cancel")
            expect(cancel).to_be_visible(timeout=30_000)
            cancel.click()
            expect(page.get_by_text("cancelled", exact=False).first).to_be_visible(timeout=60_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
