"""The Sweeps page in-process (AppTest): the form refuses a bad grid without recording anything, every sweep gets a
progress bar with its unit counts, and the heatmap shows a metric's mean with its 95 % interval over seeds."""

import json

import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(runs dir, sweep id, sweep state): the tiny sweep (source.stages 3, 4 × seeds 0, 1) run inline."""
    from sweep_helpers import run_tiny

    import know_core.api as api
    from know_core.executors import make_executor

    root = tmp_path_factory.mktemp("sweeps")
    sweep_id, _ = run_tiny(root, make_executor("inline"))
    return root, sweep_id, api.watch_sweep(root, sweep_id)


@pytest.fixture
def page(monkeypatch):
    def make(runs_dir, **params):
        monkeypatch.setenv("KNOW_RUNS_DIR", str(runs_dir))
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page("screens/sweeps.py")
        return at.run()
    return make


def heatmaps(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_an_empty_store_explains_sweeps_and_a_bad_grid_is_refused(page, tmp_path):
    at = page(tmp_path)
    assert not at.exception and not heatmaps(at)
    assert at.markdown[0].value.count(".") >= 2
    assert any("No sweep yet" in i.value for i in at.info)
    at.text_area[0].input("source.nope=1")
    (launch,) = [b for b in at.button if b.label == "Launch sweep"]
    launch.click().run()
    assert any(e.value.startswith("Not launched") and "nope" in e.value for e in at.error), [e.value for e in at.error]
    from know_core.api import list_sweeps
    assert list_sweeps(tmp_path) == []  # nothing recorded


def test_progress_and_heatmap_of_a_finished_sweep(page, swept):
    root, sweep_id, state = swept
    at = page(root)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    (bar,) = at.get("progress")
    assert bar.proto.text.startswith("4 of 4 units finished · 4 done · 0 running · 0 failed")
    (spec,) = heatmaps(at)
    assert spec["layout"]["title"]["text"].startswith("vs_naive: mean over seeds by source.stages × k")
    heat, cells = spec["data"]
    assert heat["type"] == "heatmap" and heat["x"] == ["3", "4"] and heat["y"] == ["1", "2"]
    assert all(isinstance(v, float) for row in heat["z"] for v in row)
    assert all("n = 2" in h and "[" in h for h in cells["hovertext"])  # two seeds: a mean with its interval
    # the default cell's runs open on Trajectory and Compare
    links = [str(p.proto) for p in at.get("page_link")]  # the link protos carry their query parameters
    c000 = state["cells"][0]["run_id"]
    assert any(f"run={c000}" in text for text in links) and any(f"runs={c000}" in text for text in links)


def test_a_film_metric_counts_each_seed_once_and_the_view_comes_from_the_url(page, swept):
    root, sweep_id, _ = swept
    at = page(root, sweep=sweep_id, metric="strength", x="seed", y="source.stages")
    (spec,) = heatmaps(at)
    heat, cells = spec["data"]
    assert heat["x"] == ["0", "1"] and heat["y"] == ["3", "4"]
    assert all("n = 1" in h for h in cells["hovertext"])  # one film per seed, not one per method row
    assert not any(s.label.startswith("method") for s in at.selectbox)


def test_a_damaged_sweep_says_why_and_names_stay_text(page, tmp_path):
    from sweep_helpers import tiny_spec
    from test_hostile_pages import EVIL, assert_no_markdown_from_names

    from know_core.store.runstore import RunStore
    from know_core.sweep import create_sweep

    store = RunStore(tmp_path)
    evil = create_sweep(store, tiny_spec(), EVIL)
    broken = create_sweep(store, tiny_spec(), "broken")
    (tmp_path / broken / "sweep.json").write_text("{not json")
    for shown in (evil, broken):
        at = page(tmp_path, sweep=shown)
        assert not at.exception, at.exception
        assert any("broken" in e.value and "cannot be read" in e.value for e in at.error)
        assert assert_no_markdown_from_names(at) >= 1  # the healthy sweep's card names it, as text
        assert any(p.proto.text.startswith("0 of 4 units finished") for p in at.get("progress"))
    assert any(e.value.startswith("Cannot read sweep") for e in at.error)  # picked by URL: the reason, no heatmap


def test_one_heatmap_per_facet_value_on_one_colour_scale(page, swept):
    root, sweep_id, _ = swept
    at = page(root, sweep=sweep_id, facet="seed")
    specs = heatmaps(at)
    assert [s["layout"]["title"]["text"].rsplit("— ", 1)[1] for s in specs] == ["seed = 0", "seed = 1"]
    assert all("n = 1" in h for s in specs for h in s["data"][1]["hovertext"])  # one seed per facet
    assert specs[0]["data"][1]["customdata"] == [0, 1, 2, 3] and specs[1]["data"][1]["customdata"] == [4, 5, 6, 7]
    assert len({(s["data"][0]["zmin"], s["data"][0]["zmax"]) for s in specs}) == 1
    assert not any(s.label.startswith("seed (filter)") for s in at.selectbox)
    cell = at.selectbox(key=f"sweep-cell-{sweep_id}")
    assert cell.value == "seed = 0 · source.stages = 3 · k = 1" and len(cell.options) == 8


def test_a_sweep_without_axes_still_draws_a_film_metric(page, tmp_path):
    from experiment_helpers import tiny_experiment
    from sweep_helpers import run_tiny

    from know_core.executors import make_executor
    from know_core.sweep import SweepSpec

    run_tiny(tmp_path, make_executor("inline"), SweepSpec(tiny_experiment(), [], [0], ["forgetting"]), "base only")
    at = page(tmp_path, metric="strength")
    assert not at.exception, at.exception
    (spec,) = heatmaps(at)
    assert spec["layout"]["title"]["text"].startswith("strength: mean over seeds by")
    assert all("n = 1" in h for h in spec["data"][1]["hovertext"])


def test_cancel_asks_a_running_sweep_to_stop_and_a_cancelled_one_offers_resume(page, tmp_path):
    from sweep_helpers import tiny_spec

    from know_core.store.runstore import RunStore
    from know_core.sweep import create_sweep

    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(), "to stop")
    at = page(tmp_path)
    assert not any(b.label == "Resume" for b in at.button)
    at.button(key=f"cancel-sweep-{sweep_id}").click().run()
    assert (tmp_path / sweep_id / ".cancel").exists() and not at.error
    store.mark(sweep_id, "cancelled", "cancelled with 0 of 4 units done")
    at = page(tmp_path)
    assert [b.label for b in at.button if b.label in ("Cancel", "Resume")] == ["Resume"]
    assert any("cancelled with 0 of 4" in c.value for c in at.caption)


def test_the_page_opens_with_the_sweeps_answer(page, swept):
    """Before the form, the progress and the heatmap: one sentence on the chosen sweep — how many of its films forgot
    and whether any predictor got closer than keeping Θ0 to the real larger-data network — as on every page."""
    import know_core.api as api

    root, sweep_id, state = swept
    at = page(root)
    assert not at.exception, at.exception
    first = at.markdown[0].value.replace("\\", "")
    expected = api.sweep_headline(api.read_sweep_table(root, sweep_id), state["name"])
    assert first == "#### " + expected
    assert "the film forgot on" in expected and "of 4 films (2 cells × 2 seeds)" in expected


def test_a_sweep_headline_for_an_empty_table_and_for_one_predictor_closer():
    import pandas as pd

    from know_core.api import sweep_headline

    assert sweep_headline(pd.DataFrame(), "s") == "s has no finished cell yet."
    table = pd.DataFrame({"cell": ["c000"] * 3, "seed": [0] * 3, "forgot": [True] * 3,
                          "method": ["known", "taskvector", "control"], "warm_conv": [0.8, 1.4, 0.5]})
    text = sweep_headline(table, "s")
    assert text.startswith("s: the film forgot on 1 of 1 films (1 cells × 1 seeds)")
    assert "closer than keeping Θ0 in 1 of 2 rows" in text and "KNOWN was nearest (median 0.8" in text  # not control


def test_methods_read_by_their_labels_on_the_heatmap_in_key_order(page, swept):
    from know_core.api import method_label, read_sweep_table

    root, sweep_id, _ = swept
    keys = sorted(read_sweep_table(root, sweep_id)["method"].dropna().unique())
    assert any(method_label(k) != k for k in keys)  # the sweep has methods whose labels differ from their keys
    at = page(root, sweep=sweep_id, x="method", y="k")
    assert not at.exception, at.exception
    (spec,) = heatmaps(at)
    shown = spec["data"][0]["x"]
    by_label = {method_label(k): k for k in keys}
    assert shown and set(shown) <= set(by_label), shown  # labels, never "taskvector" or "shrink:…"
    assert [by_label[s] for s in shown] == sorted(by_label[s] for s in shown)  # in the keys' order, as before
    hovers = [h.split("<br>")[0] for h in spec["data"][1]["hovertext"]]  # "method = <label>" first
    assert hovers and all(h.startswith("method = ") and h[len("method = "):] in by_label for h in hovers), hovers
    at = page(root, sweep=sweep_id, x="source.stages", y="k", facet="method")
    titles = [s["layout"]["title"]["text"].rsplit("— ", 1)[1] for s in heatmaps(at)]
    assert titles and all(t.startswith("method = ") and t[len("method = "):] in by_label for t in titles), titles
