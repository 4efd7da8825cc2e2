"""AppTest runs the dashboard script in-process: widgets, state and chart specs (not the browser's rendering).

Every page is checked on an empty store and on a store holding a finished experiment (plus a forgetting run).
"""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, tiny_config
from experiment_helpers import tiny_experiment

PAGES = ["experiments", "trajectory", "compare", "scaling", "known", "runs"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(runs dir, experiment run id, forget run id): a finished tiny experiment with two seeds and oracles."""
    from know_core.runs import experiment_run, forget_run
    from know_core.store import RunStore

    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    forget_id = forget_run(tiny_config(model="simple_cnn"), store, name="a forgetting run")
    exp_id = experiment_run(tiny_experiment(seeds=[0, 1]), store, name="tiny experiment")
    return root, exp_id, forget_id


@pytest.fixture
def app(monkeypatch):
    def make(runs_dir, page=None, **params):
        monkeypatch.setenv("KNOW_RUNS_DIR", str(runs_dir))
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        if page:
            at.switch_page(f"pages/{page}.py")
        return at.run()
    return make


def charts(at):
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart(at, title):
    """The one chart whose title contains ``title``."""
    (spec,) = [s for s in charts(at) if title in s["layout"].get("title", {}).get("text", "")]
    return spec


@pytest.mark.parametrize("page", PAGES)
def test_every_page_explains_itself_on_an_empty_store(app, tmp_path, page):
    at = app(tmp_path, page)
    assert not at.exception
    assert at.markdown[0].value.count(".") >= 2  # the two or three sentences each page opens with
    if page != "known":
        assert any("No " in i.value for i in at.info)
        assert any(b.label == "Launch the quick demo" for b in at.button)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_finished_run(app, stored, page):
    root, exp_id, _ = stored
    at = app(root, page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if page in ("trajectory", "compare", "scaling"):
        specs = charts(at)
        assert specs and all(s["layout"]["xaxis"].get("title") for s in specs)  # titled axes


def test_scaling_has_one_trace_per_method_plus_oracle(app, stored):
    root, exp_id, _ = stored
    at = app(root, "scaling")
    target = charts(at)[0]
    assert [t["name"] for t in target["data"]] == ["taskvector", "expfit", "oracle"]
    assert target["data"][0]["x"][0] == 1.0 and target["data"][0]["error_y"]["visible"]
    at = app(root, "scaling", shrink="1")  # the view comes from the URL
    assert len(charts(at)[0]["data"]) == 5


def test_trajectory_puts_trajectory_predictions_and_oracle_in_one_plot(app, stored):
    root, exp_id, _ = stored
    at = app(root, "trajectory", run=exp_id, seed="1")
    assert at.selectbox(key="traj-seed").value == 1
    pca = chart(at, "one PCA plane")
    assert [t["name"] for t in pca["data"]] == ["trajectory (Θ_{S−1} → Θ0)", "taskvector", "expfit", "oracle"]
    assert len(pca["data"][0]["x"]) == 4  # four stages
    assert len(at.warning) + len(at.success) >= 1  # the forgetting verdict beside the plot
    for view, kind in (("3-D", "scatter3d"), ("Animation", "scatter")):
        at.selectbox(key="traj-view").set_value(view).run()
        assert not at.exception
        assert chart(at, view if view == "Animation" else "3-D")["data"][0]["type"] == kind
    at.selectbox(key="traj-view").set_value("Per-weight curves").run()
    assert not at.exception and chart(at, "Per-weight curves")
    layer = at.selectbox(key="traj-layer").options[1]
    at.selectbox(key="traj-layer").set_value(layer).run()
    assert not at.exception


def test_compare_shows_controls_backtests_oracle_distances_and_a_table(app, stored):
    root, exp_id, _ = stored
    at = app(root, "compare")
    titles = [s["layout"]["title"]["text"] for s in charts(at)]
    assert len(titles) == 4 and any("Backtest" in t for t in titles) and any("oracle" in t for t in titles)
    names = [t["name"] for t in charts(at)[0]["data"]]
    assert names == ["taskvector", "expfit", "shrink:taskvector", "shrink:expfit"]
    table = at.dataframe[0].value
    assert {"naive", "taskvector", "shrink:expfit", "oracle"} <= set(table["method"])
    at.toggle(key="compare-layers").set_value(True).run()
    assert not at.exception
    layers = chart(at, "Backtest per layer")
    assert [t["name"] for t in layers["data"]] == ["taskvector", "expfit"] and len(layers["data"][0]["x"]) > 2


def test_two_runs_overlay_on_scaling(app, stored):
    root, exp_id, _ = stored
    from know_core.runs import experiment_run
    from know_core.store import RunStore

    other = experiment_run(tiny_experiment(source=tiny_experiment().source.__class__(
        **{**tiny_experiment().source.__dict__, "r": 0.5, "seed": 0}), seeds=[2]), RunStore(root), name="second")
    try:
        at = app(root, "scaling", runs=f"{exp_id},{other}")
        assert len(charts(at)[0]["data"]) == 6
        assert any("second" in t["name"] for t in charts(at)[0]["data"])
    finally:
        RunStore(root).delete(other)


def test_bad_form_input_names_the_field(app, tmp_path):
    at = app(tmp_path, "experiments")
    launch = next(b for b in at.button if b.label == "Launch")
    fields = {t.label: t for t in at.text_input}
    fields["Scales (powers of 1/r)"].set_value("2 3")
    launch.click().run()
    assert any("scale 3 is not a power" in e.value for e in at.error)
    fields = {t.label: t for t in at.text_input}
    fields["Scales (powers of 1/r)"].set_value("2 4")
    fields["Source dataset"].set_value("cifar1000")
    next(b for b in at.button if b.label == "Launch").click().run()
    assert any("source dataset" in e.value and "unknown dataset" in e.value for e in at.error)
    from know_core.store import RunStore

    assert RunStore(tmp_path).list_runs() == []  # nothing launched


def test_runs_page_lists_renames_and_exports(app, stored):
    root, exp_id, forget_id = stored
    at = app(root, "runs", run=exp_id)
    assert not at.exception
    assert set(at.dataframe[0].value["status"]) == {"done"}
    assert at.selectbox(key="runs-pick").value == exp_id
    labels = [b.label for b in at.get("download_button")]
    assert "Download all result rows (CSV)" in labels and "Download (safetensors)" in labels
    at.selectbox(key="runs-pick").set_value(forget_id).run()
    assert len(at.get("plotly_chart")) == 1  # a forgetting run shows its accuracy along the stages


def test_a_damaged_run_is_listed_as_damaged_with_the_reason(app, tmp_path, tiny_cfg):
    from know_core.runs import forget_run
    from know_core.store import RunStore

    run_id = forget_run(tiny_cfg, RunStore(tmp_path))
    (tmp_path / run_id / "trajectory.safetensors").write_bytes(b"xx")
    at = app(tmp_path, "runs")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["status"]) == ["damaged"] and "corrupt" in table["note"][0]
    assert any("damaged" in e.value for e in at.error)
    for page in ("trajectory", "scaling"):  # analysis pages skip it without crashing
        assert not app(tmp_path, page).exception


def test_first_open_launches_the_quick_demo_in_one_click(app, tmp_path):
    from know_core import jobs
    from know_core.store import RunStore

    at = app(tmp_path, "scaling")
    next(b for b in at.button if b.label == "Launch the quick demo").click().run()
    assert not at.exception
    (info,) = RunStore(tmp_path).list_runs()
    try:
        assert info.name == "quick demo" and info.config["preset"] == "quick" and info.status == "running"
    finally:
        jobs.cancel(tmp_path, info.id)  # the worker stops at its next batch; wait so it does not outlive the test
        import time

        deadline = time.monotonic() + 60
        while jobs.progress(tmp_path, info.id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.3)


def test_known_page_takes_the_official_folder_from_the_environment(app, tmp_path, monkeypatch):
    monkeypatch.setenv("KNOW_OFFICIAL_KNOWN", str(tmp_path))  # a folder without the files: the page must say so
    at = app(tmp_path / "runs", "known")
    assert not at.exception, at.exception
    assert at.text_input(key="known-folder").value == str(tmp_path)
    assert any("known-official" in w.value and "lacks KNOWN_Conv.h5" in w.value for w in at.warning)
