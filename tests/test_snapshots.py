"""Issue 10 item 4: one snapshot format, one checked reader, and the run folders written before it still read."""

import dataclasses
import json

import pytest
import torch
from conftest import tiny_config
from hostile_helpers import rewrite

from know_core.experiment.films import load_trajectory
from know_core.jobs.lifecycle import record_forgetting
from know_core.store.loaders import Damaged
from know_core.store.runstore import RunStore
from know_core.store.snapshots import digest, pack, unpack


def films():
    state = lambda v: {"fc.weight": torch.full((2, 3), float(v)), "fc.bias": torch.arange(2.0) + v}  # noqa: E731
    return {"traj": [state(0), state(1), state(2)], "warm": [state(5)]}


def test_pack_and_unpack_round_trip_films_and_meta():
    tensors, header = pack(films(), {"groups": {"fc.weight": "fc"}, "sizes": [4]})
    assert set(header) == {"snapshots"} and "traj/2/fc.bias" in tensors
    out, meta = unpack(tensors, header, "f")
    assert meta == {"groups": {"fc.weight": "fc"}, "sizes": [4]}
    assert {k: len(v) for k, v in out.items()} == {"traj": 3, "warm": 1}
    assert torch.equal(out["traj"][2]["fc.weight"], films()["traj"][2]["fc.weight"])


def _header(header, **changes):
    return {"snapshots": json.dumps({**json.loads(header["snapshots"]), **changes})}


@pytest.mark.parametrize("damage, message", [
    (lambda t, h: ({**t, "traj/1/fc.bias": torch.zeros(2)}, h), "does not match its sha256 digest"),
    (lambda t, h: (t, {"snapshots": "{"}), "snapshots is missing or not JSON"),
    (lambda t, h: (t, {}), "snapshots is missing or not JSON"),
    (lambda t, h: (t, _header(h, format="other/1")), "not a know-snapshots/1 header"),
    (lambda t, h: (t, _header(h, films={"traj": 3})), "tensors of a film the header does not name"),
    (lambda t, h: (t, _header(h, films={"traj": 9, "warm": 1})), "header says 9 snapshots, 3 stored"),
    (lambda t, h: (t, _header(h, films={"traj": True, "warm": 1})), "films must map names to counts"),
    (lambda t, h: ({**t, "flat": torch.zeros(1)}, h), "is not a snapshot key"),
    (lambda t, h: ({**t, "traj/1/fc.bias": torch.zeros(5)}, h), "snapshot 1 differs from snapshot 0"),
], ids=["tampered-tensor", "header-garbage", "header-missing", "format", "unnamed-film", "count", "count-bool",
        "flat-key", "shape"])
def test_a_damaged_snapshot_file_is_refused_with_a_clear_error(damage, message):
    tensors, header = damage(*pack(films(), {}))
    with pytest.raises(Damaged, match=message):
        unpack(tensors, header, "x.safetensors")


def test_the_digest_covers_dtype_and_shape():
    t = torch.zeros(4)
    assert digest({"a": t}) != digest({"a": t.reshape(2, 2)}) != digest({"a": t.to(torch.float64)})


def _old_writer(run_dir, name, states, meta):
    """The layout before know-snapshots/1 (runs.py's old _film_tensors and save_trajectory), inline."""
    from safetensors.torch import save

    tensors = {f"{s}/{n}": t.contiguous() for s, state in enumerate(states) for n, t in state.items()}
    rewrite(run_dir, name, save(tensors, metadata={"stages": str(len(states)), **meta}))


def test_run_folders_of_the_old_layout_still_load(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny_config(stage_budget="steps:5", d0_fraction=0.25)
    run_id = record_forgetting(dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, batch_size=8)), store)
    new = load_trajectory(store.open(run_id))
    assert new.warm is not None and new.control is not None
    copy = lambda states: [{k: v.clone() for k, v in s.items()} for s in states]  # noqa: E731 (not the mmap)
    films = {"trajectory": copy(new.states), "warm": copy(new.warm.states), "control": copy(new.control.states)}
    _old_writer(tmp_path / run_id, "trajectory.safetensors", films["trajectory"], {"groups": json.dumps(new.groups)})
    for key in ("warm", "control"):
        film = getattr(new, key)
        _old_writer(tmp_path / run_id, f"{key}.safetensors", films[key], {
            "sizes": json.dumps(film.sizes), "source_acc": json.dumps(film.source_acc),
            "source_loss": json.dumps(film.source_loss)})
    old = load_trajectory(RunStore(tmp_path).open(run_id))
    assert old.groups == new.groups and old.warm.sizes == new.warm.sizes and old.control.sizes == new.control.sizes
    for a, b in zip(old.states + old.warm.states + old.control.states,
                    films["trajectory"] + films["warm"] + films["control"], strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _old_writer(tmp_path / run_id, "trajectory.safetensors", films["trajectory"], {"groups": "{"})
    with pytest.raises(Damaged, match="groups is not JSON"):
        load_trajectory(RunStore(tmp_path).open(run_id))


def test_seed_weights_of_the_old_layout_still_load(tmp_path):
    from experiment_helpers import tiny_experiment

    from know_core.experiment.seedweights import load_seed
    from know_core.jobs.lifecycle import record_experiment

    store = RunStore(tmp_path)
    run_id = record_experiment(tiny_experiment(), store)
    new = load_seed(store.open(run_id), 0)
    copy = lambda s: {k: v.clone() for k, v in s.items()}  # noqa: E731 (not the mmap)
    old = {f"traj/{s}/{k}": v for s, state in enumerate(map(copy, new.stages)) for k, v in state.items()}
    for method, by in new.predictions.items():  # pipeline.py / seed.py's old writer, inline
        old.update({f"pred/{method}/{scale:g}/{k}": v for scale, state in by.items() for k, v in copy(state).items()})
    old.update({f"oracle/{scale:g}/{k}": v for scale, state in new.oracles.items() for k, v in copy(state).items()})
    old.update({f"warm/{scale:g}/{k}": v for scale, state in new.warm.items() for k, v in copy(state).items()})
    old.update({f"control/{c}/{k}": v for c, state in enumerate(new.control, start=1) for k, v in copy(state).items()})
    from safetensors.torch import save

    rewrite(tmp_path / run_id, "seeds/seed-0.safetensors", save(old, metadata={"seed": "0"}))
    back = load_seed(RunStore(tmp_path).open(run_id), 0)
    n = len(new.stages)
    assert len(back.stages) == n and back.predictions.keys() == new.predictions.keys()
    assert back.oracles.keys() == new.oracles.keys() and back.warm.keys() == new.warm.keys()
    assert len(back.control) == len(new.control) and back.groups == new.groups
    assert all(torch.equal(back.stages[-1][k], old[f"traj/{n - 1}/{k}"]) for k in back.stages[-1])
