"""Experiments page defects: thirty fields before the job's progress, cut checkbox labels, an overall fraction frozen
through pre-training, stale metrics while fine-tuning, and a finished job without its verdict."""

import json

import pytest
from experiment_helpers import tiny_experiment
from page_helpers import order, page
from test_hostile_pages import run_page

INPUTS = {"text_input", "number_input", "selectbox", "multiselect", "checkbox", "radio", "slider", "text_area"}


def visible_inputs(at) -> list[str]:
    """Labels of the input widgets a reader sees before the Jobs section, outside collapsed expanders."""
    seen: list[str] = []

    def walk(node, hidden=False):
        kind = getattr(node, "type", "")
        label = getattr(node, "label", None)
        if kind == "expander":
            hidden = hidden or not node.proto.expanded
        if kind == "subheader" and str(getattr(node, "value", "")) == "Jobs":
            raise StopIteration
        if kind in INPUTS and not hidden:
            seen.append(label)
        for key in sorted(getattr(node, "children", {}) or {}):
            walk(node.children[key], hidden)

    try:
        walk(at.main)
    except StopIteration:
        pass
    return seen


def test_a_newcomer_sees_a_handful_of_fields_before_launch_and_the_jobs(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path, "experiments")
    assert not at.exception, at.exception
    shown = visible_inputs(at)
    assert "Preset" in shown and "Source dataset" in shown and "Methods" in shown
    assert len(shown) <= 10, shown  # the other ~25 options wait in collapsed "Advanced" sections
    assert len(at.number_input) >= 10  # … and are all still there
    texts = [text for kind, text in order(at)]
    launch, jobs = texts.index("Launch"), texts.index("Jobs")
    assert launch < jobs and not [k for k, _ in order(at)[launch + 1:jobs] if k in INPUTS]  # progress right below


def test_checkbox_labels_are_short_and_explained(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path, "experiments")
    assert at.checkbox
    for box in at.checkbox:
        assert len(box.label) <= 30, box.label  # long labels were cut in their column
        assert box.help, box.label  # the detail lives in the help


@pytest.fixture
def writer(tmp_path, monkeypatch):
    from know_core.jobs import progress

    monkeypatch.setattr(progress, "WRITE_EVERY_S", 0.0)  # write on every event
    return progress.ProgressWriter(tmp_path, tiny_experiment(seeds=[0, 1]))


def fraction(path) -> float:
    return json.loads((path / ".progress.json").read_text())["fraction"]


def test_overall_progress_moves_during_pre_training(writer, tmp_path):
    from know_core.common.hooks import ProgressEvent

    seen = []
    for step in range(1, 11):
        writer(ProgressEvent("pre-training", step, 10, {"epoch": step}))
        seen.append(fraction(tmp_path))
    assert seen[0] > 0 and all(b > a for a, b in zip(seen, seen[1:])), seen  # it stood still at one value
    writer(ProgressEvent("forgetting", 1, 50))
    assert fraction(tmp_path) >= seen[-1]  # the next phase starts where pre-training ended
    assert fraction(tmp_path) < 1 / 2  # still inside the first of two seeds


def test_fine_tuning_shows_its_own_metrics_not_the_last_stages(writer, tmp_path):
    from know_core.common.hooks import ProgressEvent

    writer(ProgressEvent("forgetting", 5, 10, {"stage": 3, "source_loss": 0.7}))
    writer(ProgressEvent("fine-tuning", 1, 20))
    report = json.loads((tmp_path / ".progress.json").read_text())
    assert report["phase"] == "fine-tuning" and report["metrics"] == {}  # not stage 3's source loss
    writer(ProgressEvent("fine-tuning", 2, 20, {"acc": 0.5}))
    writer(ProgressEvent("fine-tuning", 3, 20))
    assert json.loads((tmp_path / ".progress.json").read_text())["metrics"] == {"acc": 0.5}  # kept within a phase


def test_a_finished_job_shows_its_verdict(monkeypatch, tmp_path):
    from know_core.api import load_experiment, run_headline
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    run_id = record_experiment(tiny_experiment(scales=[2.0]), RunStore(tmp_path), name="finished")
    at = run_page(monkeypatch, tmp_path, "experiments")  # through the router: the page links to Trajectory
    assert not at.exception, at.exception
    verdict = run_headline(load_experiment(tmp_path, run_id))
    assert verdict.startswith("The film ")
    assert any(s.value.replace("\\", "") == verdict for s in at.success), [s.value for s in at.success]


def test_a_running_job_comes_before_the_form(monkeypatch, tmp_path):
    """start.sh launches the quick demo in the background: the first thing a newcomer sees is that run happening
    (its job card above the form), not a form with the progress below the fold. With nothing running the form comes
    first and the jobs right below Launch (the test above)."""
    from know_core.engine.config import to_dict
    from know_core.store.runstore import RunStore

    RunStore(tmp_path).create_in_place("experiment", to_dict(tiny_experiment()), name="quick demo")  # owned by us
    at = page(monkeypatch, tmp_path, "experiments")
    assert not at.exception, at.exception
    texts = [text for _, text in order(at)]
    assert texts.index("Jobs") < texts.index("Preset") < texts.index("Launch")
    assert any("quick demo" in t for t in texts[texts.index("Jobs"):texts.index("Preset")]), texts
