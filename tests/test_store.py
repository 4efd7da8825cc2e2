import json
import multiprocessing as mp

import pytest
import torch
from conftest import tiny_config

from know_core.common.errors import Cancelled, ConfigError, RunStoreError
from know_core.common.hooks import Hooks
from know_core.experiment.films import load_trajectory, open_forget_run
from know_core.jobs.lifecycle import record_forgetting
from know_core.store.runstore import RunStore


def test_reloaded_run_is_bit_identical(tmp_path, tiny_cfg):
    from know_core.engine.forgetting import run_forgetting

    store = RunStore(tmp_path)
    run_id = record_forgetting(tiny_cfg, store)
    _, cfg, traj = open_forget_run(store, run_id)
    fresh, _ = run_forgetting(tiny_cfg)  # deterministic, so this is the same trajectory recomputed
    assert cfg == tiny_cfg
    for a, b in zip(traj.states, fresh.states):
        assert a.keys() == b.keys()
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    assert traj.source_acc == fresh.source_acc and traj.stage_sizes == fresh.stage_sizes
    assert traj.groups == fresh.groups
    info = store.info(run_id)
    assert info.status == "done" and info.summary["source_acc"] == fresh.source_acc


def test_listing_rename_delete(stored_run):
    root, run_id = stored_run
    store = RunStore(root)
    assert [r.id for r in store.list_runs(status="done")] == [run_id]
    assert store.list_runs(status="failed") == []


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "trajectory.safetensors").unlink(), "damaged: trajectory.safetensors: missing"),
        (
            lambda p: (p / "trajectory.safetensors").write_bytes(b"garbage"),
            "damaged: trajectory.safetensors: checksum mismatch",
        ),
        (lambda p: (p / "metrics.csv").write_text("stage,size\n"), "damaged: metrics.csv: checksum mismatch"),
        (lambda p: (p / "manifest.json").write_text("{"), "damaged: manifest.json: not valid JSON"),
        (lambda p: (p / "manifest.json").unlink(), "damaged: manifest.json: missing"),
    ],
)
def test_damaged_run_is_named_and_others_unaffected(tmp_path, tiny_cfg, damage, message):
    store = RunStore(tmp_path)
    good, bad = record_forgetting(tiny_cfg, store), record_forgetting(tiny_cfg, store)
    damage(tmp_path / bad)
    with pytest.raises(RunStoreError, match=message):
        open_forget_run(store, bad)
    open_forget_run(store, good)


def test_failed_and_cancelled_runs_leave_nothing_half_written(tmp_path, tiny_cfg):
    store = RunStore(tmp_path)
    good = record_forgetting(tiny_cfg, store)
    with pytest.raises(Cancelled):
        record_forgetting(tiny_cfg, store, Hooks(should_stop=lambda: True))
    with pytest.raises(ConfigError):
        record_forgetting(tiny_config(stages=12), store)  # refused before anything is written
    statuses = {r.id: r.status for r in store.list_runs()}
    assert sorted(statuses.values()) == ["cancelled", "done"]
    cancelled = next(i for i, s in statuses.items() if s == "cancelled")
    assert not (tmp_path / cancelled).exists()
    assert list((tmp_path / ".staging").iterdir()) == []
    with pytest.raises(RunStoreError, match="is cancelled"):
        store.open(cancelled)
    open_forget_run(store, good)


def test_unwritable_runs_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunStoreError, match="not writable"):
        RunStore(blocker / "runs")


def test_unknown_run(tmp_path):
    with pytest.raises(RunStoreError, match="no run 'nope'"):
        RunStore(tmp_path).open("nope")


def _reader(root: str, run_id: str, queue) -> None:
    store = RunStore(root)
    sums = []
    for _ in range(5):
        store.list_runs()
        _, _, traj = open_forget_run(store, run_id)
        sums.append(float(sum(t.double().sum() for t in traj.states[-1].values())))
    queue.put(sums)


def _writer(root: str, seed: int) -> None:
    record_forgetting(tiny_config(seed=seed), RunStore(root))


def test_concurrent_readers_and_writers(stored_run, tmp_path):
    root, run_id = stored_run
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(str(root), run_id, queue)) for _ in range(3)]
    procs += [ctx.Process(target=_writer, args=(str(root), seed)) for seed in (5, 6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(3)]
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert len({s for r in results for s in r}) == 1  # every reader saw the same bits every time
    store = RunStore(root)
    assert len(store.list_runs(status="done")) >= 3
    for r in store.list_runs(status="done"):
        load_trajectory(store.open(r.id))
    for r in store.list_runs(status="done"):
        if r.id != run_id:
            store.delete(r.id)
    assert [r.id for r in store.list_runs()] == [run_id]


def test_config_is_saved_beside_the_run(stored_run):
    root, run_id = stored_run
    saved = json.loads((root / run_id / "config.json").read_text())
    assert saved["model"] == "simple_cnn" and saved["optim"]["batch_size"] == 32
