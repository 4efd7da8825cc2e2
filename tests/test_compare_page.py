"""The Compare page as a teacher would project it: its answer first, no ``None``, no ``± std`` for one seed, one
verdict per kind, KNOWN kept in the backtest chart with the reason it is missing, and figures whose tick labels and
legends cannot collide (AppTest sees the specs; tests/test_browser_layout.py measures the rendered page)."""

import dataclasses

import pytest
from experiment_helpers import tiny_experiment
from page_helpers import chart, charts
from test_hostile_pages import run_page

from know_core.api import (
    BASELINE,
    SHRINK_PREFIX,
    base_name,
    load_experiment,
    method_label,
    predicted_methods,
    retrodiction_headline,
)
from know_core.experiment.methods import DC_SUFFIX


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(runs dir, one-seed run with KNOWN on a film too short for KNOWN's backtest, a second plain run)."""
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-compare")
    store = RunStore(root)
    cfg = tiny_experiment(methods=["naive", "taskvector", "known"], scales=[2.0])
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, stages=5, d0_fraction=0.5))
    known = record_experiment(cfg, store, name="with KNOWN")
    plain = record_experiment(tiny_experiment(scales=[2.0]), store, name="plain")
    return root, known, plain


def test_the_headline_comes_first(monkeypatch, runs):
    root, known, _ = runs
    at = run_page(monkeypatch, root, "compare", runs=known)
    assert not at.exception, at.exception
    expected = retrodiction_headline(load_experiment(root, known))
    assert at.markdown[0].value.replace("\\", "") == f"**{expected}**"
    assert expected.startswith(("No predictor got closer", "KNOWN got closer", "TaskVector got closer",
                                "KNOWN and TaskVector got closer", "TaskVector and KNOWN got closer"))


def test_no_none_and_no_std_for_one_seed(monkeypatch, runs):
    root, known, _ = runs
    at = run_page(monkeypatch, root, "compare", runs=known)
    tables = [d.value for d in at.dataframe]
    assert len(tables) == 2  # the retrodiction table and all the numbers
    for table in tables:
        assert not table.isna().any().any(), table  # shown as "None" in the browser
        assert not table.astype(str).apply(lambda c: c.str.contains("None|±|nan")).any().any()
        assert "± std" not in table.columns
    for name in ("Target accuracy", "Source accuracy"):
        bars = [t for t in chart(at, name)["data"] if t["type"] == "bar"]  # the naive line's legend entry has none
        assert bars
        for trace in bars:
            assert trace["error_y"]["visible"] is False  # one seed: no error bar (a std of one value is 0)
            assert all("±" not in text for text in trace["customdata"])


def test_repeated_verdicts_collapse_to_one_per_kind(monkeypatch, runs):
    root, known, _ = runs
    verdicts = load_experiment(root, known).verdicts
    assert sum("one seed" in v for v in verdicts) >= 3  # known, taskvector, oracle-warm ×2: the same "no evidence"
    at = run_page(monkeypatch, root, "compare", runs=known)
    bullets = [m.value for m in at.markdown if m.value.startswith("- ")]
    one_seed = [b for b in bullets if "one seed" in b.lower()]
    assert len(one_seed) == 1 and all(m in one_seed[0] for m in ("known", "taskvector", "oracle\\-warm"))


def test_known_keeps_its_place_in_the_backtest_chart(monkeypatch, runs):
    root, known, _ = runs
    at = run_page(monkeypatch, root, "compare", runs=known)
    spec = chart(at, "Backtest: error recovering")
    names = [t["name"] for t in spec["data"]]
    assert f"{method_label('known')} — not backtested" in names and method_label("taskvector") in names
    notes = [a["text"] for a in spec["layout"]["annotations"] if "not in this chart" in a["text"]]
    assert len(notes) == 1 and "needs source.stages" in notes[0]  # the reason, inside the chart


def test_tick_labels_and_legends_have_room(monkeypatch, runs):
    root, known, plain = runs
    at = run_page(monkeypatch, root, "compare", runs=f"{known},{plain}")
    assert not at.exception, at.exception
    for spec in charts(at):  # every legend wraps horizontally in the bottom margin: never cut, never on the ticks
        legend = spec["layout"]["legend"]
        assert (legend["orientation"], legend["yref"], legend["yanchor"]) == ("h", "container", "bottom"), spec[
            "layout"]["title"]
    retro = chart(at, "Retrodiction against the warm oracle")
    layout = retro["layout"]
    top = [k for k in ("xaxis3", "xaxis4") if layout[k].get("showticklabels") is False]
    assert len(top) == 2  # the upper panels carry no tick labels, so none can run into the panel titles below
    assert layout["xaxis"]["title"]["text"] and layout["xaxis2"]["title"]["text"]
    assert all(" · " not in x for t in retro["data"] for x in t["x"])  # two runs: hatching, not longer labels
    assert len({t.get("marker", {}).get("pattern", {}).get("shape", "") for t in retro["data"]}) == 2


def test_the_runs_naive_lines_are_named_in_the_legend_not_on_the_bars(monkeypatch, runs):
    """Two runs with close naive accuracies wrote "Naive (Θ0) · run" labels on top of each other, and a reference
    label inside the plot sat on the bars near the line's end: each naive line is a legend entry of its own (its own
    dash), and no reference label is written inside the plotting area."""
    root, known, plain = runs
    at = run_page(monkeypatch, root, "compare", runs=f"{known},{plain}")
    assert not at.exception, at.exception
    spec = chart(at, "Target accuracy")
    naive = [t for t in spec["data"] if t.get("name", "").startswith(method_label(BASELINE))]
    assert len(naive) == 2 and len({t["line"]["dash"] for t in naive}) == 2, naive
    dashes = {s["line"]["dash"] for s in spec["layout"]["shapes"]}
    assert {t["line"]["dash"] for t in naive} <= dashes  # the legend entry draws as its line does
    assert not [a for a in spec["layout"].get("annotations", []) if a["text"].startswith(method_label(BASELINE))]
    backtest = chart(at, "Backtest")
    assert any(t.get("name") == "1.0 = keep Θ1" for t in backtest["data"])
    assert not [a for a in backtest["layout"].get("annotations", []) if "keep Θ1" in a["text"]]


def test_no_chart_or_table_names_a_predicted_method_by_its_registry_key(monkeypatch, runs):
    """The page is projected in lectures: every legend entry, bar category, hover name and ``method`` cell reads
    "TaskVector" or "shrinkage control of KNOWN", never the registry's ``taskvector`` or ``shrink:known``."""
    root, known, plain = runs
    at = run_page(monkeypatch, root, "compare", runs=f"{known},{plain}")
    at.toggle(key="compare-layers").set_value(True).run()  # the per-layer backtest too
    assert not at.exception, at.exception
    rows = [r["method"] for run in (known, plain) for r in load_experiment(root, run).rows]
    keys = {m for m in rows if base_name(m) in predicted_methods()}
    assert {"taskvector", "shrink:taskvector", "known"} <= keys  # the run really has them to name

    def raw(name) -> bool:
        head = str(name).split(" · ")[0].split(" — ")[0].split(" ×")[0]  # "<method> ×2 · <run> — not backtested"
        return head in keys or head.startswith(SHRINK_PREFIX) or head.endswith(DC_SUFFIX)

    names = []
    for spec in charts(at):
        for trace in spec["data"]:
            names.append(trace.get("name") or "")
            names += [x for x in trace.get("x") or [] if isinstance(x, str)]  # bar categories ("TaskVector ×2")
            names.append(trace.get("hovertemplate") or "")
    assert len(charts(at)) >= 6 and not [n for n in names if raw(n)], [n for n in names if raw(n)]
    tables = [d.value for d in at.dataframe if "method" in d.value.columns]
    assert len(tables) == 2  # all the numbers, the retrodiction table
    for table in tables:
        assert not [m for m in table["method"] if raw(m)], list(table["method"])
        assert method_label("taskvector") in set(table["method"])
