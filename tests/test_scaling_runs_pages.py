"""Scaling and Runs as a person reads them: the answer first; labelled columns, ``—`` for missing, three significant
digits, scales as ``×k``; no ``±`` or error bar for one seed; a confirmation that survives the rerun after a rename
or a delete."""

import json

import pytest
from conftest import tiny_config
from experiment_helpers import tiny_experiment
from test_hostile_pages import run_page

from know_core.api import downstream_headline, load_experiment, stored_headline


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(runs dir, one-seed experiment id, forget run id)."""
    from know_core.jobs.lifecycle import record_experiment, record_forgetting
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-scaling-runs")
    store = RunStore(root)
    forget = record_forgetting(tiny_config(), store, name="a forget run")
    return root, record_experiment(tiny_experiment(scales=[2.0]), store, name="one seed"), forget


def test_scaling_opens_with_its_headline(monkeypatch, runs):
    root, exp, _ = runs
    at = run_page(monkeypatch, root, "scaling", runs=exp)
    assert not at.exception, at.exception
    expected = downstream_headline(load_experiment(root, exp))
    assert at.markdown[0].value.replace("\\", "") == f"**{expected}**"
    assert expected.startswith("With one seed no initialisation can be shown to beat naive")


def test_scaling_shows_no_spread_for_one_seed(monkeypatch, runs):
    root, exp, _ = runs
    at = run_page(monkeypatch, root, "scaling", runs=exp)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    specs = [s for s in specs if "by scaling factor" in s["layout"]["title"]["text"]
             or "Source accuracy of the initial weights" in s["layout"]["title"]["text"]]
    assert len(specs) == 2
    for spec in specs:
        for trace in spec["data"]:
            if "error_y" in trace:
                assert trace["error_y"]["visible"] is False, trace["name"]
                assert all("±" not in d[2] and d[1].startswith("×") for d in trace["customdata"])


def shown_values(table) -> set[str]:
    return {str(v) for col in table.columns for v in table[col]}


def test_runs_tables_are_labelled_and_formatted(monkeypatch, runs):
    root, exp, _ = runs
    at = run_page(monkeypatch, root, "runs", run=exp)
    assert not at.exception, at.exception
    listing, results = at.dataframe[0].value, at.dataframe[1].value
    assert {"id", "name", "status", "forgot"} <= set(listing.columns)
    assert set(listing["forgot"]) <= {"yes", "no"} and set(listing["stages"]) == {"4"}
    assert {"source accuracy", "target accuracy", "scale"} <= set(results.columns)
    assert "source_acc" not in results.columns and set(results["scale"]) == {"×1", "×2"}
    for table in (listing, results):
        assert not table.isna().any().any()
        assert not {"None", "nan"} & shown_values(table)
    accuracies = [v for v in results["target accuracy"] if v != "—"]
    assert accuracies and all(len(v.lstrip("0.").replace(".", "")) <= 3 for v in accuracies)  # 3 significant digits
    assert "—" in set(results["source accuracy"])  # scratch: no source accuracy


def test_each_run_shows_its_headline(monkeypatch, runs):
    root, exp, forget = runs
    for run_id in (exp, forget):
        at = run_page(monkeypatch, root, "runs", run=run_id)
        texts = [m.value.replace("\\", "") for m in at.markdown]
        assert f"**{stored_headline(root, run_id)}**" in texts


def test_rename_is_confirmed(monkeypatch, tmp_path):
    """(The delete dialog's button reruns only the dialog, which AppTest cannot do: tests/test_browser_runs.py.)"""
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    keep = record_forgetting(tiny_config(), RunStore(tmp_path), name="old name")
    at = run_page(monkeypatch, tmp_path, "runs", run=keep)
    next(t for t in at.text_input if t.label == "Name").set_value("new name")  # not the import form's name
    at.button[0].click().run()  # the form's Rename
    assert not at.exception, at.exception
    assert [s.value.replace("\\", "") for s in at.success][:1] == ["Renamed old name to new name."]
    assert RunStore(tmp_path).info(keep).name == "new name"
    at.run()  # shown once: the next rerun no longer repeats it
    assert not any("Renamed" in s.value for s in at.success)
