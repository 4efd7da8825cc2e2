"""Presentation mode (``?present=1``: large type, no prose, the headline kept, on every page and across page switches)
and the Present page's step-through of one run (one headline and one figure per step, Previous / Next in the URL)."""

import dataclasses
import json
import sys

import pytest
from conftest import REPO, tiny_config
from experiment_helpers import tiny_experiment
from streamlit.testing.v1 import AppTest

STYLE = '<style id="know-present">'
TRAJECTORY_INTRO = "Every point is a whole network"  # the Trajectory page's intro paragraph
FIGURES = {1: "Forgetting panel", 2: "The forgetting film in the PCA plane", 3: "Predictions ×2, ×4",
           4: "Predictions beside the warm oracles", 5: "Target accuracy after fine-tuning"}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(runs dir, {"warm": experiment with warm oracles, "cold": one with no oracle at all, "forget": a forget run})."""
    from know_core.jobs.lifecycle import record_experiment, record_forgetting
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-present")
    store = RunStore(root)
    cfg = tiny_experiment()
    no_warm = dataclasses.replace(cfg, oracles="off", source=dataclasses.replace(cfg.source, warm="off"))
    return root, {"forget": record_forgetting(tiny_config(), store, name="a forget run"),
                  "cold": record_experiment(no_warm, store, name="no oracles"),
                  "warm": record_experiment(cfg, store, name="with warm oracles")}


def open_page(monkeypatch, root, page: str, **params) -> AppTest:
    monkeypatch.setenv("KNOW_RUNS_DIR", str(root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(f"screens/{page}.py")
    return run(at, monkeypatch)


def run(at: AppTest, monkeypatch) -> AppTest:
    """Run (or rerun) through app.py's router, as a real server does (its sidebar toggle, its CSS), with
    screens._common imported afresh as in a new server process."""
    monkeypatch.delitem(sys.modules, "screens._common", raising=False)
    at.run()
    assert not at.exception, at.exception
    return at


def styled(at: AppTest) -> bool:
    return any(STYLE in m.value for m in at.markdown)


def shows(at: AppTest, text: str) -> bool:
    return any(text in m.value for m in [*at.markdown, *at.caption])


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def step_shown(at: AppTest) -> int:
    (indicator,) = [m.value for m in at.markdown if m.value.startswith("**Step ")]
    return int(indicator.split("/")[0].removeprefix("**Step "))


def test_presentation_mode_gives_large_type_hides_prose_and_keeps_the_headline(monkeypatch, stored):
    root, runs = stored
    plain = open_page(monkeypatch, root, "trajectory", run=runs["warm"])
    assert not styled(plain) and shows(plain, TRAJECTORY_INTRO)
    assert plain.toggle(key="present-mode").value is False and "present" not in plain.query_params
    at = open_page(monkeypatch, root, "trajectory", run=runs["warm"], present="1")
    assert styled(at)
    css = next(m.value for m in at.markdown if STYLE in m.value)
    assert "html { font-size: 22px; }" in css
    assert not shows(at, TRAJECTORY_INTRO)
    assert at.title[0].value == "Trajectory"
    assert [h.value for h in at.subheader][:1] == [h.value for h in plain.subheader][:1]  # the page's headline stays
    assert at.subheader[0].value.startswith("The film")
    assert all(spec["layout"]["font"]["size"] >= 20 for spec in charts(at))  # figures get large type too
    assert all(spec["layout"].get("font", {}).get("size") is None for spec in charts(plain))


def test_the_toggle_writes_the_url_and_survives_a_page_switch(monkeypatch, stored):
    root, runs = stored
    at = open_page(monkeypatch, root, "scaling", runs=runs["warm"])
    at.toggle(key="present-mode").set_value(True)
    run(at, monkeypatch)
    assert at.query_params["present"] == "1" and styled(at)
    del at.query_params["present"]  # a page switch in the browser drops the old page's query string
    run(at.switch_page("screens/compare.py"), monkeypatch)
    assert at.title[0].value == "Compare"
    assert at.query_params["present"] == "1" and styled(at)
    at.toggle(key="present-mode").set_value(False)
    run(at, monkeypatch)
    assert "present" not in at.query_params and not styled(at)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5])
def test_each_step_shows_a_headline_and_its_figure(monkeypatch, stored, step):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["warm"], step=str(step), present="1")
    assert step_shown(at) == step
    (spec,) = charts(at)  # one figure per screen
    assert spec["layout"]["title"]["text"].startswith(FIGURES[step])
    assert len(at.header) == 1 and at.header[0].value  # the headline
    assert not at.caption or not any("Every point is a whole network" in c.value for c in at.caption)
    assert not at.warning


def test_next_and_previous_move_the_step_and_the_url_within_bounds(monkeypatch, stored):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["warm"])
    assert step_shown(at) == 1 and at.query_params["step"] == "1" and at.query_params["run"] == runs["warm"]
    assert at.button(key="present-prev").disabled and not at.button(key="present-next").disabled
    for expected in range(2, 6):
        at.button(key="present-next").click()
        run(at, monkeypatch)
        assert step_shown(at) == expected and at.query_params["step"] == str(expected)
    assert at.button(key="present-next").disabled and not at.button(key="present-prev").disabled  # the last step
    at.button(key="present-prev").click()
    run(at, monkeypatch)
    assert step_shown(at) == 4 and at.query_params["step"] == "4"
    assert any(FIGURES[4] in c for c in (s["layout"]["title"]["text"] for s in charts(at)))


@pytest.mark.parametrize("bad", ["x", "0", "6", "-1", "2.5", ""])
def test_a_bad_step_in_the_url_falls_back_to_the_first_with_a_message(monkeypatch, stored, bad):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["warm"], step=bad)
    assert step_shown(at) == 1 and at.query_params["step"] == "1"
    assert any("There is no step" in w.value for w in at.warning)


def test_an_unknown_run_in_the_url_falls_back_with_a_message(monkeypatch, stored):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run="no-such-run", step="2")
    assert any("There is no finished run no\\-such\\-run here" in w.value for w in at.warning)
    assert at.query_params["run"] in runs.values() and step_shown(at) == 2
    assert len(charts(at)) == 1


def test_a_run_without_warm_oracles_says_so_on_that_step(monkeypatch, stored):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["cold"], step="4")
    assert not charts(at)
    assert any("no real continuation" in i.value for i in at.info)
    at = open_page(monkeypatch, root, "present", run=runs["cold"], step="5")
    assert len(charts(at)) == 1  # downstream does not need them


def test_a_forgetting_only_run_shows_its_film_then_says_what_it_lacks(monkeypatch, stored):
    """The steps a forget run has (its film, its PCA picture, its warm oracles) are drawn; with no prediction stored
    in it, the predictions step says how to add one, and downstream says it needs an experiment run."""
    from know_core.api import load_seed_weights

    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["forget"], step="1")
    assert at.selectbox(key="present-run").value == runs["forget"]
    (spec,) = charts(at)
    assert spec["layout"]["title"]["text"].startswith(FIGURES[1])
    at = open_page(monkeypatch, root, "present", run=runs["forget"], step="2")
    (spec,) = charts(at)
    assert spec["layout"]["title"]["text"].startswith(FIGURES[2])
    assert not load_seed_weights(root, runs["forget"], 0).warm  # drawn for a run that has them: test_record_user.py
    at = open_page(monkeypatch, root, "present", run=runs["forget"], step="4")
    assert not charts(at) and any("record the film again with warm oracles" in i.value for i in at.info)
    assert at.header[0].value.replace("\\", "").startswith("This run has no warm oracle")
    at = open_page(monkeypatch, root, "present", run=runs["forget"], step="3")
    assert not charts(at) and at.header[0].value.startswith("This forget run holds no prediction yet")
    assert any("Predict form" in i.value for i in at.info)
    at = open_page(monkeypatch, root, "present", run=runs["forget"], step="5")
    assert not charts(at)
    assert any("needs an experiment run" in i.value for i in at.info)


def test_outside_presentation_mode_each_step_explains_itself(monkeypatch, stored):
    root, runs = stored
    at = open_page(monkeypatch, root, "present", run=runs["warm"], step="2")
    assert not styled(at)
    assert any("Every point is a whole network" in c.value for c in at.caption)
    assert "present" not in at.query_params


def intro_of(page: str) -> str:
    """The first words of the paragraph a page writes through prose() right under its title."""
    import ast

    tree = ast.parse((REPO / "screens" / f"{page}.py").read_text(encoding="utf-8"))
    (call,) = [n.value for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
               and getattr(n.value.func, "id", None) == "prose"]
    return ast.literal_eval(call.args[0])[:40]


@pytest.mark.parametrize("page", ["experiments", "trajectory", "compare", "scaling", "sweeps", "known", "runs"])
def test_every_page_hides_its_intro_in_presentation_mode_and_keeps_its_title(monkeypatch, stored, page):
    root, runs = stored
    intro = intro_of(page)
    plain = open_page(monkeypatch, root, page, run=runs["warm"], runs=runs["warm"])
    assert shows(plain, intro) and not styled(plain)
    at = open_page(monkeypatch, root, page, run=runs["warm"], runs=runs["warm"], present="1")
    assert styled(at) and not shows(at, intro)
    assert at.title[0].value == plain.title[0].value


def test_large_type_leaves_the_plot_its_height_beside_a_long_legend():
    """Presentation mode with three runs on Compare: 18 legend entries at 20 px below the plot left it 60 px tall.
    The legend now gets rows of its own, and the plot keeps at least what a figure without legend would."""
    import plotly.graph_objects as go

    from screens._figures import large_fonts, legend_below

    fig = legend_below(go.Figure([go.Bar(x=[1], y=[1], name=f"method {i} · run {i}") for i in range(18)]))
    fig.update_layout(height=450, margin=dict(t=60, b=120))
    large_fonts(fig)
    assert fig.layout.margin.b >= 18 * 28  # a row per long entry at 20 px fits below the axis, not over the plot
    plot = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot >= 300, (fig.layout.height, fig.layout.margin)  # and the plot stays readable (it was 60 px)


def test_large_type_wraps_a_long_figure_title():
    import plotly.graph_objects as go

    from screens._figures import TITLE_CHARS, large_fonts

    title = "Target accuracy after fine-tuning: each predictor beside its shrinkage control"
    fig = large_fonts(go.Figure(layout=dict(title=title, margin=dict(t=60))))
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and " ".join(lines) == title and all(len(line) <= TITLE_CHARS for line in lines)
    assert fig.layout.margin.t > 100  # room for the second line


def test_a_long_run_id_is_elided_in_legends_and_two_runs_stay_apart():
    """An unnamed run is called by its id; "KNOWN · 20261207-131509-forget-user_TensorDataset_user_Tiny-2061f5" was
    cut at a projector's 1024 px. The legend drops the date, time and kind and keeps the id's random end."""
    from know_core.store.index import RunInfo
    from screens._text import LEGEND_NAME, legend_name

    def info(name, rid=None):
        return RunInfo(rid or name, "forget", name, "done", None, 0.0, 0.0, {}, {})

    a, b = (info(f"20261207-131509-forget-user_TensorDataset_user_Tiny-{tail}") for tail in ("2061f5", "9c0e11"))
    short = legend_name(a)
    assert len(short) == LEGEND_NAME and short.startswith("user_Tensor") and short.endswith("Tiny-2061f5")
    assert "…" in short and legend_name(b) != short
    assert legend_name(info("20261207-120839-experiment-quick-1577dc")) == "quick-1577dc"
    assert legend_name(info("fashion standard", "20261207-120839-experiment-quick-1577dc")) == "fashion standard"
    named = info("20261207-120839-experiment-quick-1577dc", "another-id")  # a name that looks like an id is kept
    assert legend_name(named) == "20261207-12…quick-1577dc"
