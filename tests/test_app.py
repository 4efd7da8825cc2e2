"""AppTest runs the dashboard script in-process: widgets, state and chart specs (not the browser's rendering).

Every page is checked on an empty store and on a store holding a finished experiment (plus a forgetting run).
"""

import pytest
from conftest import REPO, tiny_config
from experiment_helpers import tiny_experiment
from streamlit.testing.v1 import AppTest

from know_core.api import method_label, method_short_label

PAGES = ["experiments", "trajectory", "compare", "scaling", "sweeps", "known", "runs", "present"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(runs dir, experiment run id, forget run id): a finished tiny experiment with two seeds and oracles."""
    from know_core.jobs.lifecycle import record_experiment, record_forgetting
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    forget_id = record_forgetting(tiny_config(model="simple_cnn"), store, name="a forgetting run")
    exp_id = record_experiment(tiny_experiment(seeds=[0, 1]), store, name="tiny experiment")
    return root, exp_id, forget_id


@pytest.fixture(scope="module")
def stored_without_warm(tmp_path_factory):
    """(runs dir, run id): a finished experiment recorded without warm oracles or a control film (warm null, no
    retrodiction rows), as every run made before they existed."""
    import dataclasses

    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-old")
    cfg = tiny_experiment()
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, warm="off"))
    return root, record_experiment(cfg, RunStore(root), name="no warm oracles")


WARM = "warm oracles (Θ0 → Θ₋₁ → …: the real continuation)"
CONTROL = "control film (Θ0 → C₁ → …: same data, more training)"


def protocol_shown(at) -> bool:
    return any(c.value.startswith("protocol ") or ": protocol " in c.value for c in at.caption)


@pytest.fixture
def app(monkeypatch):
    def make(runs_dir, page=None, **params):
        monkeypatch.setenv("KNOW_RUNS_DIR", str(runs_dir))
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        if page:
            at.switch_page(f"screens/{page}.py")
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
    if page in ("trajectory", "compare", "scaling", "runs"):
        assert protocol_shown(at), [c.value for c in at.caption]  # every page that shows a run says how it was made


def test_scaling_has_one_trace_per_method_plus_oracle(app, stored):
    root, exp_id, _ = stored
    at = app(root, "scaling")
    target = charts(at)[0]
    assert [t["name"] for t in target["data"]] == [method_label(m) for m in ("taskvector", "expfit", "oracle",
                                                                              "oracle-warm")] \
        + [method_short_label("scratch")]  # the from-scratch reference line, named in the legend
    assert target["data"][0]["x"][0] == 1.0 and target["data"][0]["error_y"]["visible"]
    warm = target["data"][3]
    assert warm["x"] == [1.0, 2.0, 4.0] and len(warm["y"]) == 3  # the warm oracles' line starts at Θ0
    assert target["layout"]["xaxis"]["ticktext"] == ["×1", "×2", "×4"]
    at = app(root, "scaling", shrink="1")  # the view comes from the URL
    assert len(charts(at)[0]["data"]) == 7  # 4 lines, 2 shrinkage controls, scratch's reference line


def test_trajectory_puts_trajectory_predictions_and_oracle_in_one_plot(app, stored):
    root, exp_id, _ = stored
    at = app(root, "trajectory", run=exp_id, seed="1")
    assert at.selectbox(key="traj-seed").value == 1
    pca = chart(at, "one PCA plane")
    assert [t["name"] for t in pca["data"]] == ["trajectory (Θ₃ → Θ0)", "TaskVector", "ExpFit",  # by their labels
                                                "oracle (really trained on more data)", WARM, CONTROL]
    assert len(pca["data"][0]["x"]) == 4  # four stages
    assert len(pca["data"][4]["x"]) == 3 and len(pca["data"][5]["x"]) == 4  # Θ0, Θ−1, Θ−2; Θ0, C1 … C3
    assert pca["data"][4]["x"][0] == pca["data"][0]["x"][-1]  # the continuation starts at Θ0, in the same basis
    assert any(c.value == "protocol custom: stage budget epochs:1, adam (carried), Θ0 until val acc"
               for c in at.caption)
    (table,) = [d.value for d in at.dataframe if "cosine" in d.value.columns]  # does it point along the continuation?
    assert set(table["method"]) == {method_label(m) for m in ("taskvector", "expfit", "control")}  # by label
    assert list(table["scale"][:1]) == ["×2"]
    assert table["cosine"].between(-1, 1).all()


def test_trajectory_forgetting_panel(app, stored):
    root, exp_id, _ = stored
    at = app(root, "trajectory", run=exp_id)
    film = chart(at, "Forgetting panel")
    names = [t["name"] for t in film["data"]]
    assert names.count("forgetting film Θ0 → Θ₃") == 2  # loss and accuracy
    assert names.count("warm oracles Θ₋ₖ (more data)") == 2 and names.count(
        "control Cₖ (same data, more training)") == 2
    assert "accuracy on the removed samples D0 \\ D_s" in names
    loss = film["data"][0]
    assert loss["x"] == [0, 1, 2, 3] and all(isinstance(v, float) for v in loss["y"])
    assert film["data"][1]["x"] == [0, -1, -2]  # warm oracles continue the film to the left of Θ0
    assert film["layout"]["xaxis"]["ticktext"][0] == "-2<br>×4"  # ticks from r: stage −2 holds 4×|D0|
    steps = chart(at, "Step sizes")
    assert steps["data"][0]["x"] == [1, 2, 3]
    verdicts = [m.value for m in list(at.success) + list(at.warning)]
    assert any("p = " in v for v in verdicts)
    assert {"p (loss)", "p (accuracy)", "strength", "smoothness", "pattern"} <= {m.label for m in at.metric}
    for view, kind in (("3-D", "scatter3d"), ("Animation", "scatter")):
        at.selectbox(key="traj-view").set_value(view).run()
        assert not at.exception
        assert chart(at, view if view == "Animation" else "3-D")["data"][0]["type"] == kind
    at.selectbox(key="traj-view").set_value("Per-weight curves").run()
    curves = chart(at, "Per-weight curves")
    assert not at.exception and any(t["name"] == "warm oracles" for t in curves["data"])
    assert curves["layout"]["xaxis"]["ticktext"] == ["×1/8", "×1/4", "×1/2", "×1", "×2", "×4"]  # from r
    layer = at.selectbox(key="traj-layer").options[1]
    at.selectbox(key="traj-layer").set_value(layer).run()
    assert not at.exception


def test_compare_shows_controls_backtests_oracle_distances_and_a_table(app, stored):
    root, exp_id, _ = stored
    at = app(root, "compare")
    titles = [s["layout"]["title"]["text"] for s in charts(at)]
    assert len(titles) == 5 and any("Backtest" in t for t in titles) and any("oracle" in t for t in titles)
    names = [t["name"] for t in charts(at)[0]["data"]]
    assert names == [method_label(m) for m in ("taskvector", "expfit", "shrink:taskvector", "shrink:expfit",
                                               "naive")]  # the last: naive's reference line, named in the legend
    (table,) = [d.value for d in at.dataframe if "target acc" in d.value.columns]
    assert {method_label(m) for m in ("naive", "taskvector", "shrink:expfit", "oracle")} <= set(table["method"])
    at.toggle(key="compare-layers").set_value(True).run()
    assert not at.exception
    layers = chart(at, "Backtest per layer")
    assert [t["name"] for t in layers["data"]] == [method_label("taskvector"), method_label("expfit"),
                                                   "1.0 = keep Θ1"]
    assert len(layers["data"][0]["x"]) > 2


def test_compare_scores_retrodiction_against_the_warm_oracle(app, stored):
    root, exp_id, _ = stored
    at = app(root, "compare", runs=exp_id)
    retro = chart(at, "Retrodiction against the warm oracle")
    assert retro["data"] and {t["name"] for t in retro["data"]} <= {"conv", "fc", "bias"}  # one colour per group
    axes = {t.get("yaxis", "y") for t in retro["data"]}
    assert len(axes) == 4  # error and cosine, whole move and data part
    assert f"{method_label('taskvector')} ×2" in retro["data"][0]["x"]
    assert f"{method_short_label('control')} ×4" in retro["data"][0]["x"]  # an axis category: the short label
    (table,) = [d.value for d in at.dataframe if "cosine (data part)" in d.value.columns]
    assert {method_label(m) for m in ("taskvector", "expfit", "control")} == set(table["method"])
    assert {"×2", "×4"} == set(table["scale"]) and table["seeds"].eq(2).all()
    assert table["backtest rel. error"][table["method"] != method_label("control")].notna().all()
    assert table["cosine (data part)"].notna().all()


def test_a_run_without_warm_oracles_still_renders(app, stored_without_warm):
    root, run_id = stored_without_warm
    at = app(root, "trajectory", run=run_id)
    assert not at.exception, at.exception
    names = [t["name"] for t in chart(at, "one PCA plane")["data"]]
    assert WARM not in names and CONTROL not in names
    assert any("no warm oracles" in i.value for i in at.info)
    film = chart(at, "Forgetting panel")
    assert {t["name"] for t in film["data"]} == {"forgetting film Θ0 → Θ₃",
                                                  "accuracy on the removed samples D0 \\ D_s"}
    at = app(root, "compare", runs=run_id)
    assert not at.exception and any("no warm oracles" in i.value for i in at.info)
    assert not [s for s in charts(at) if "warm oracle" in s["layout"]["title"]["text"]]
    at = app(root, "scaling", runs=run_id)
    assert not at.exception and method_label("oracle-warm") not in [t["name"] for t in charts(at)[0]["data"]]
    for view in ("3-D", "Animation", "Per-weight curves"):
        at = app(root, "trajectory", run=run_id, view=view)
        assert not at.exception, (view, at.exception)


def test_two_runs_overlay_on_scaling(app, stored):
    root, exp_id, _ = stored
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    other = record_experiment(tiny_experiment(source=tiny_experiment().source.__class__(
        **{**tiny_experiment().source.__dict__, "r": 0.5, "seed": 0}), seeds=[2]), RunStore(root), name="second")
    try:
        at = app(root, "scaling", runs=f"{exp_id},{other}")
        assert len(charts(at)[0]["data"]) == 10  # 4 lines a run, and each run's from-scratch reference line
        scratch = [t for t in charts(at)[0]["data"] if t["name"].startswith(method_short_label("scratch"))]
        assert len({t["line"]["dash"] for t in scratch}) == 2  # the two runs' reference lines told apart
        names = [t["name"] for t in charts(at)[0]["data"]]
        assert any("second" in n for n in names)
        assert f"{method_short_label('oracle-warm')} · second" in names  # beside a run's name: the short label
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
    from know_core.store.runstore import RunStore

    assert RunStore(tmp_path).list_runs() == []  # nothing launched


def test_form_offers_the_protocols_and_launches_what_it_shows(app, tmp_path, monkeypatch):
    from know_core.jobs import launch as jobs

    launched = []
    monkeypatch.setattr(jobs, "launch", lambda cfg, runs_dir, name=None: launched.append(cfg) or "fake-run")
    at = app(tmp_path, "experiments")
    protocol = at.selectbox(key="protocol-quick")
    assert protocol.value == "equal-steps" and protocol.options[0].startswith("release")  # release: one choice away
    budget = next(t for t in at.text_input if t.label == "Stage budget")
    assert budget.value.startswith("steps:")
    assert any(c.value.startswith("protocol equal-steps: stage budget steps:") for c in at.caption)
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.error, [e.value for e in at.error]
    cfg = launched[-1]
    assert cfg.source.protocol == "equal-steps" and cfg.source.stage_budget == budget.value

    at.selectbox(key="protocol-quick").set_value("release").run()
    assert next(t for t in at.text_input if t.label == "Stage budget").value == "epochs:1"
    next(b for b in at.button if b.label == "Launch").click().run()
    cfg = launched[-1]
    assert (cfg.source.protocol, cfg.source.stage_budget, cfg.source.carry_optimizer) == ("release", "epochs:1", True)

    next(s for s in at.selectbox if s.label == "Optimizer").set_value("adamw")
    next(c for c in at.checkbox if c.label.startswith("Drift correction")).check()
    next(b for b in at.button if b.label == "Launch").click().run()
    cfg = launched[-1]
    assert cfg.source.protocol == "release+custom" and cfg.source.optim.optimizer == "adamw" and cfg.drift_correct
    assert "taskvector+dc" in cfg.method_names


@pytest.mark.parametrize("field, value, message", [
    ("Stage budget", "steps:abc", "stage_budget 'steps:abc'"),
    ("Stage budget", "epochs:-1", "stage_budget 'epochs:-1'"),
    ("Stage budget", "converge:x", "stage_budget 'converge:x'"),
])
def test_form_refuses_a_bad_stage_budget_naming_the_field(app, tmp_path, monkeypatch, field, value, message):
    from know_core.jobs import launch as jobs
    from know_core.store.runstore import RunStore

    monkeypatch.setattr(jobs, "_spawn", lambda *a, **k: pytest.fail("a refused form must launch nothing"))
    at = app(tmp_path, "experiments")
    next(t for t in at.text_input if t.label == field).set_value(value)
    next(b for b in at.button if b.label == "Launch").click().run()
    shown = [e.value.replace("\\", "") for e in at.error]  # messages are Markdown-escaped on screen
    assert any(message in e and "allowed" in e for e in shown), shown
    assert RunStore(tmp_path).list_runs() == []


def test_form_refuses_warm_oracles_the_pool_cannot_hold(app, tmp_path, monkeypatch):
    from know_core.jobs import launch as jobs

    monkeypatch.setattr(jobs, "_spawn", lambda *a, **k: pytest.fail("a refused form must launch nothing"))
    at = app(tmp_path, "experiments")
    next(n for n in at.number_input if n.label.startswith("D0 share")).set_value(0.5)
    next(s for s in at.selectbox if s.label.startswith("Warm oracles")).set_value("on")
    next(b for b in at.button if b.label == "Launch").click().run()
    assert any("warm oracles" in e.value and "pool holds" in e.value for e in at.error), [e.value for e in at.error]


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
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    run_id = record_forgetting(tiny_cfg, RunStore(tmp_path))
    (tmp_path / run_id / "trajectory.safetensors").write_bytes(b"xx")
    at = app(tmp_path, "runs")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["status"]) == ["damaged"] and "corrupt" in table["note"][0]
    assert any("damaged" in e.value for e in at.error)
    for page in ("trajectory", "scaling"):  # analysis pages skip it without crashing
        assert not app(tmp_path, page).exception


def test_first_open_launches_the_quick_demo_in_one_click(app, tmp_path):
    from know_core.jobs import launch as jobs
    from know_core.store.runstore import RunStore

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


def test_runs_page_resume_button_resumes_a_failed_run(app, tmp_path, monkeypatch):
    from know_core.jobs import launch as jobs
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path)
    run_id = record_forgetting(tiny_config(), store)
    store.mark(run_id, "failed", "made to fail by the test")
    calls = []
    monkeypatch.setattr(jobs, "resume", lambda root, rid: calls.append(rid))
    at = app(tmp_path, "runs", run=run_id)
    next(b for b in at.button if b.label == "Resume").click().run()
    assert calls == [run_id] and not at.exception
