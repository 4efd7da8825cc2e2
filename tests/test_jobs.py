"""Background jobs in real worker processes: launch, live progress, cancel, a worker that dies, bad configs."""

import json
import os
import signal
import time

import pytest
from experiment_helpers import tiny_experiment

from know_core.common.errors import ConfigError
from know_core.engine.config import PretrainConfig
from know_core.jobs import launch as jobs
from know_core.store.runstore import RunStore


def wait_for(runs_dir, run_id, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = jobs.progress(runs_dir, run_id)
        if predicate(report):
            return report
        time.sleep(0.3)
    raise AssertionError(f"timed out; last report: {report}")


def slow_config():
    """Pre-training that runs for minutes unless stopped (no early stop)."""
    cfg = tiny_experiment()
    cfg.source.pretrain = PretrainConfig(max_epochs=100_000, early_stop=False)
    return cfg


def test_a_job_runs_in_the_background_and_reports_its_stages(tmp_path):
    run_id = jobs.launch(tiny_experiment(), tmp_path, "tiny job")
    info = RunStore(tmp_path).info(run_id)
    assert info.status == "running" and info.name == "tiny job"  # listed at once, before the worker has started
    report = wait_for(tmp_path, run_id, lambda r: r["status"] != "running")
    assert report["status"] == "done", report
    assert report["fraction"] == 1.0
    phases = [p["phase"] for p in report["phases"]]
    assert phases[:2] == ["pre-training", "forgetting"] and "fine-tuning naive" in phases
    run = RunStore(tmp_path).open(run_id)  # sealed, checksums verified
    assert run.read_json("results.json")["rows"]
    assert not any(name.startswith(".") for name in run.manifest["files"])  # progress files stay out of the manifest


def test_cancel_stops_the_worker_cleanly(tmp_path):
    run_id = jobs.launch(slow_config(), tmp_path)
    wait_for(tmp_path, run_id, lambda r: r["phase"] == "pre-training")
    jobs.cancel(tmp_path, run_id)
    report = wait_for(tmp_path, run_id, lambda r: r["status"] != "running", timeout=30)
    assert report["status"] == "cancelled"
    assert "cancel" in report["error"]
    with pytest.raises(Exception, match="only a running job"):
        jobs.cancel(tmp_path, run_id)


def test_a_worker_that_dies_is_marked_failed(tmp_path):
    run_id = jobs.launch(slow_config(), tmp_path)
    wait_for(tmp_path, run_id, lambda r: r["phase"] == "pre-training")
    pid = json.loads((tmp_path / run_id / jobs.JOB).read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    report = wait_for(tmp_path, run_id, lambda r: r["status"] != "running", timeout=30)
    assert report["status"] == "failed" and "died" in report["error"]


def test_a_bad_config_is_refused_before_any_run_exists(tmp_path):
    with pytest.raises(ConfigError, match="scale 3 is not a power"):
        jobs.launch(tiny_experiment(scales=[3.0]), tmp_path)
    assert RunStore(tmp_path).list_runs() == []


def test_progress_of_a_run_without_a_worker_report(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_in_place("experiment", {"preset": "x"}).name
    report = jobs.progress(tmp_path, run_id)
    assert report["status"] == "running" and report["phase"] == "starting"
    assert jobs.reconcile(tmp_path) == []  # no pid file: started elsewhere (the CLI), left alone


def test_a_contour_grid_is_computed_once_in_the_background_and_cached(tmp_path):
    from know_core.jobs.lifecycle import record_experiment

    run_id = record_experiment(tiny_experiment(), RunStore(tmp_path))
    key = jobs.launch_contour(tmp_path, run_id, 0, "", 3)
    deadline = time.monotonic() + 60
    while (state := jobs.contour_status(tmp_path, run_id, key))["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert state["state"] == "done", state
    assert len(state["grid"]["accuracy"]) == 3
    assert jobs.launch_contour(tmp_path, run_id, 0, "", 3) == key  # cached: no second worker
    RunStore(tmp_path).open(run_id).read_json("results.json")  # the sealed run is untouched


def test_resume_continues_a_cancelled_experiment_in_a_new_worker(tmp_path):
    """What the Runs page's Resume button calls: a cancelled experiment finishes in a fresh worker."""
    run_id = jobs.launch(tiny_experiment(), tmp_path)
    jobs.cancel(tmp_path, run_id)
    wait_for(tmp_path, run_id, lambda r: r["status"] != "running", timeout=60)
    assert RunStore(tmp_path).info(run_id).status == "cancelled"
    jobs.resume(tmp_path, run_id)
    report = wait_for(tmp_path, run_id, lambda r: r["status"] not in ("running", "cancelled"))
    assert report["status"] == "done", report
    assert RunStore(tmp_path).open(run_id).read_json("results.json")["rows"]
    with pytest.raises(Exception, match="only a failed or cancelled run"):
        jobs.resume(tmp_path, run_id)


def test_resume_reruns_a_failed_forget_run_in_a_worker(tmp_path, tiny_cfg):
    from know_core.jobs.lifecycle import record_forgetting

    store = RunStore(tmp_path)
    first = record_forgetting(tiny_cfg, store)
    store.mark(first, "failed", "made to fail by the test")
    jobs.resume(tmp_path, first)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if [r.status for r in runs] == ["done"] and runs[0].id != first:
            break
        time.sleep(0.5)
    runs = store.list_runs()
    assert [r.status for r in runs] == ["done"] and runs[0].id != first  # the failed row replaced by the new run
