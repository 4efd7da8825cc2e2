"""The executor seam on the self-check task ``probe``: skip finished units, report errors, retry a crashed worker
once, cancel pending and running units; bad executor choices are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from know_core.common.errors import ConfigError
from know_core.executors import Unit, make_executor


def probes(tmp_path, n, **payload):
    return [Unit(f"u{i}", "probe", {"name": f"u{i}", "value": i, **payload}, str(tmp_path)) for i in range(n)]


@pytest.mark.parametrize("name", ["inline", "local"])
def test_units_run_once_and_finished_ones_are_skipped(tmp_path, name):
    ex = make_executor(name, 2)
    first = ex.execute(probes(tmp_path, 3))
    assert [o.status for o in first] == ["done"] * 3
    assert [o.record["value"] for o in first] == [0, 1, 2]
    assert all(o.record["wall_s"] >= 0 and o.record["cpu_s"] >= 0 for o in first)
    again = ex.execute(probes(tmp_path, 4))
    assert [o.status for o in again] == ["skipped"] * 3 + ["done"]


def test_local_runs_units_in_other_processes(tmp_path):
    out = make_executor("local", 2).execute(probes(tmp_path, 2))
    import os

    assert all(o.record["pid"] != os.getpid() for o in out)


@pytest.mark.parametrize("name", ["inline", "local"])
def test_a_failing_unit_is_reported_and_the_others_finish(tmp_path, name):
    units = probes(tmp_path, 2) + [Unit("bad", "probe", {"name": "bad", "fail": "the data is gone"}, str(tmp_path))]
    out = {o.key: o for o in make_executor(name, 2).execute(units)}
    assert out["bad"].status == "failed" and out["bad"].error == "the data is gone"
    assert out["u0"].status == out["u1"].status == "done"


def test_a_crashed_worker_is_retried_once(tmp_path):
    marker = tmp_path / "crashed-once"
    units = [Unit("flaky", "probe", {"name": "flaky", "crash_once": str(marker)}, str(tmp_path)),
             Unit("doomed", "probe", {"name": "doomed", "crash": True}, str(tmp_path))]
    out = {o.key: o for o in make_executor("local", 2).execute(units)}
    assert marker.exists()
    assert out["flaky"].status == "done" and out["flaky"].attempts == 2
    assert out["doomed"].status == "failed" and "crashed twice" in out["doomed"].error


def test_a_unit_that_crashes_again_does_not_take_an_innocent_one_with_it(tmp_path):
    """A crash breaks the whole pool, so the unit beside it is retried too; on that retry it must not share a pool with
    the crashing unit again (it did, and failed "crashed twice" whenever the other's second crash came first)."""
    units = [Unit("innocent", "probe", {"name": "innocent", "sleep": 2.0}, str(tmp_path)),
             Unit("doomed", "probe", {"name": "doomed", "crash": True}, str(tmp_path))]
    out = {o.key: o for o in make_executor("local", 2).execute(units)}
    assert out["innocent"].status == "done", out["innocent"]
    assert out["doomed"].status == "failed" and "crashed twice" in out["doomed"].error


def test_cancel_drops_pending_and_stops_running_units(tmp_path):
    units = probes(tmp_path, 6, sleep=30)
    stop = threading.Event()
    seen = []

    def listen(key, status, outcome):
        seen.append((key, status))
        if status == "running":
            stop.set()

    t0 = time.monotonic()
    out = make_executor("local", 2).execute(units, listen, stop.is_set)
    assert time.monotonic() - t0 < 25, "running units did not stop on cancel"
    assert [o.status for o in out] == ["cancelled"] * 6
    assert not list(tmp_path.glob("probe-*.json"))


def test_bad_executor_choices_are_refused():
    with pytest.raises(ConfigError, match="unknown executor 'spark'"):
        make_executor("spark")
    with pytest.raises(ConfigError, match="needs --executor ray"):
        make_executor("local", ray_address="auto")
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        make_executor("local", 0)


def test_unit_keys_must_be_unique(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        make_executor("inline").execute(probes(tmp_path, 1) + probes(tmp_path, 1))


def test_ray_is_imported_only_for_the_ray_executor(tmp_path):
    code = ("import sys, know_core.cli, know_core.executors, know_core.sweep; "
            "from know_core.executors import make_executor; make_executor('local', 1); "
            "print(json.dumps('ray' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False


def test_an_experiments_seeds_give_the_same_rows_in_parallel_as_inline(tmp_path):
    from experiment_helpers import tiny_experiment

    from know_core.experiment.pipeline import run_experiment

    cfg = tiny_experiment(seeds=[0, 1])
    inline = run_experiment(cfg, tmp_path / "inline")
    local = run_experiment(cfg, tmp_path / "local", executor=make_executor("local", 2))
    key = lambda r: (r["seed"], r["method"], r["scale"])  # noqa: E731
    for a, b in zip(sorted(inline["rows"], key=key), sorted(local["rows"], key=key), strict=True):
        assert key(a) == key(b) and abs(a["target_acc"] - b["target_acc"]) <= 1e-6
    assert inline["verdicts"] == local["verdicts"]


def test_units_carry_typed_configs_and_cross_processes_as_json():
    """A unit made in this process holds the typed config (no re-check, no cache); sent to another process it goes
    as to_json text, which the task there reads back with from_json."""
    from know_core.engine.config import from_json
    from know_core.executors.tasks import Unit, portable
    from know_core.experiment.spec import ExperimentConfig, preset

    cfg = preset("paper")
    unit = Unit("seed-0", "experiment-seed", {"config": cfg, "seed": 0}, "out")
    sent = portable(unit)
    assert isinstance(sent.payload["config"], str) and sent.payload["seed"] == 0
    assert from_json(ExperimentConfig, sent.payload["config"]) == cfg
    plain = Unit("p", "probe", {"name": "x"}, "out")
    assert portable(plain) is plain
