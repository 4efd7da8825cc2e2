"""A sweep launched from the dashboard runs in a detached worker on the local executor; it can be cancelled (and
then resumed) through the façade."""

from __future__ import annotations

import time

from experiment_helpers import tiny_experiment

import know_core.api as api
from know_core.sweep import SweepSpec


def wait_for(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_a_launched_sweep_finishes_in_its_worker(tmp_path):
    spec = SweepSpec(tiny_experiment(), [("source.r", [0.5])], [0], ["forgetting", "downstream"])
    sweep_id = api.start_sweep(spec, tmp_path, "dashboard", workers=1)
    assert api.watch_sweep(tmp_path, sweep_id)["status"] == "running"
    assert wait_for(lambda: api.watch_sweep(tmp_path, sweep_id)["status"] != "running")
    state = api.watch_sweep(tmp_path, sweep_id)
    assert state["status"] == "done", state
    assert state["counts"]["done"] == 1
    table = api.read_sweep_table(tmp_path, sweep_id)
    heat = api.heatmap_data(table, "source.r", "seed", "target_acc", {"method": "naive"})
    assert len(heat) == 1 and 0 <= heat["mean"].iloc[0] <= 1 and heat["runs"].iloc[0] == [state["cells"][0]["run_id"]]


def test_cancel_then_resume_from_the_dashboard(tmp_path):
    spec = SweepSpec(tiny_experiment(), [("source.stages", [3, 4])], [0, 1, 2], ["forgetting"])
    sweep_id = api.start_sweep(spec, tmp_path, "cancel-me", workers=1)
    assert wait_for(lambda: api.watch_sweep(tmp_path, sweep_id)["counts"]["running"] >= 1)
    api.stop_sweep(tmp_path, sweep_id)
    assert wait_for(lambda: api.watch_sweep(tmp_path, sweep_id)["status"] != "running")
    state = api.watch_sweep(tmp_path, sweep_id)
    assert state["status"] == "cancelled" and state["counts"]["cancelled"] >= 1
    done_before = state["counts"]["finished"]
    api.resume_sweep(tmp_path, sweep_id)
    assert wait_for(lambda: api.watch_sweep(tmp_path, sweep_id)["status"] != "running")
    state = api.watch_sweep(tmp_path, sweep_id)
    assert state["status"] == "done" and state["counts"]["finished"] == 6 >= done_before
