"""Meta-training KNOWN: the job grid, resumable collection, the meta-dataset's split and bad files, a miniature
training recipe, and the shipped default checkpoint against its own card."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import save_file

from know_core.cli import main
from know_core.common.errors import DataError, KnowError
from know_core.common.fsio import sha256_file
from know_core.engine.config import OptimConfig, PretrainConfig
from know_core.metatrain.collection import collect, is_done, read_trajectory_file, run_job
from know_core.metatrain.metadataset import load_metadataset, split_ids
from know_core.metatrain.plan import list_jobs, make_job
from know_core.metatrain.training import Recipe, metatrain, sample_figures
from know_core.predictors import load_known_checkpoint
from know_core.predictors.known import DEFAULT_CHECKPOINT, KNOWNPredictor


def tiny_job(seed: int, model: str = "mlp"):
    """A 7-stage synthetic run that takes well under a second."""
    return make_job(tiny_config(model=model, stages=7, r=0.7, seed=seed, optim=OptimConfig(batch_size=16),
                                pretrain=PretrainConfig(max_epochs=3, patience=2)), "test")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    out = tmp_path_factory.mktemp("meta")
    jobs = [tiny_job(s) for s in range(5)] + [tiny_job(9, "simple_cnn_narrow")]
    summary = collect(jobs, out, workers=1)
    return out, jobs, summary


def test_grid_is_deterministic_feasible_and_listed_as_json():
    a, b = list_jobs("mini"), list_jobs("mini")
    assert [j.id for j in a] == [j.id for j in b] and len({j.id for j in a}) == len(a)
    for job in a:
        cfg = job.forget_config()
        assert cfg.stages >= 7 and 0.3 <= cfg.r <= 0.9
    with pytest.raises(KnowError, match="unknown grid"):
        list_jobs("nope")


def test_cli_list_then_run_one_job(tmp_path, capsys):
    assert main(["collect", "--grid", "mini", "--list"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [j.id for j in list_jobs("mini")]
    assert main(["collect", "--job", "0123456789abcdef", "--out", str(tmp_path)]) == 2  # unknown id: a clear error


def test_collection_is_resumable(collection):
    out, jobs, summary = collection
    assert summary["trajectories"] == len(jobs) and summary["history"][-1]["ran"] == len(jobs)
    assert summary["windows"] > 0 and summary["bytes"] > 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    again = collect(jobs, out, workers=1)
    assert again["history"][-1]["ran"] == 0 and again["history"][-1]["already_done"] == len(jobs)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")} == mtimes
    assert run_job(jobs[0], out)["status"] == "skipped"
    states, meta = read_trajectory_file(out / f"{jobs[0].id}.safetensors")
    assert len(states) == 7 and meta["job"]["id"] == jobs[0].id and isinstance(meta["forgot"], bool)


def test_parallel_workers_write_the_same_files(tmp_path):
    jobs = [tiny_job(20), tiny_job(21)]
    summary = collect(jobs, tmp_path, workers=2)
    assert summary["trajectories"] == 2 and summary["history"][-1]["failed"] == 0


def test_split_is_by_trajectory_never_by_weight(collection):
    out, jobs, _ = collection
    meta = load_metadataset(out, val_fraction=0.34, seed=0)
    assert meta.val_ids and not set(meta.train_ids) & set(meta.val_ids)
    shared = set(meta.val) & set(meta.train)  # a group one split alone holds (conv of the one CNN) has nothing to mix
    assert shared
    for group in shared:
        train_traj = set((meta.train[group].block // 8).tolist())
        val_traj = set((meta.val[group].block // 8).tolist())
        assert not train_traj & val_traj
    assert split_ids(meta.train_ids + meta.val_ids, 0.34, 0) == (meta.train_ids, meta.val_ids)


def test_corrupt_and_truncated_files_are_skipped_with_a_warning(collection, tmp_path):
    out, jobs, _ = collection
    for path in out.glob("*.safetensors"):
        shutil.copy(path, tmp_path / path.name)
    victims = sorted(tmp_path.glob("*.safetensors"))[:2]
    data = victims[0].read_bytes()
    victims[0].write_bytes(data[: len(data) // 2])  # truncated body
    victims[1].write_bytes(b"\x00garbage")  # not a safetensors file
    with pytest.warns(UserWarning, match="skipping"):
        meta = load_metadataset(tmp_path, val_fraction=0.34)
    assert sorted(meta.skipped) == sorted(v.name for v in victims)
    assert len(meta.train_ids) + len(meta.val_ids) == len(jobs) - 2
    with pytest.warns(UserWarning, match="redoing"):
        assert not is_done(victims[1])


def test_empty_metadataset_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(DataError, match="empty meta-dataset"):
        load_metadataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_metadataset(tmp_path / "missing")
    assert main(["metatrain", "--data", str(tmp_path), "--out", str(tmp_path / "k.safetensors")]) == 2
    assert "empty meta-dataset" in capsys.readouterr().err


def test_wrong_shape_checkpoint_is_a_clear_error(tmp_path):
    from know_core.predictors.known import KNOWN

    state = {f"fc.{k}": v.clone() for k, v in KNOWN().state_dict().items()}
    state["fc.head.weight"] = torch.zeros(1, 63)
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="shape"):
        load_known_checkpoint(tmp_path / "bad.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_known_checkpoint(tmp_path / "junk.safetensors")


def test_miniature_recipe_loss_falls_and_writes_checkpoint_and_card(collection, tmp_path):
    out, _, _ = collection
    ck = tmp_path / "k.safetensors"
    # the epoch cap, not the clock, ends this run: a time cap would make the curve depend on the machine's load
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good folder trains without any warning
        card = metatrain(
            out,
            ck,
            Recipe(
                minutes=5,
                max_epochs=6,
                patience=6,
                workers=1,
                val_fraction=0.34,
                epoch_rows=20_000,
                batch_size=256,
                sample_rows=200,
            ),
        )
    assert ck.is_file() and ck.with_suffix(".json").is_file()
    assert card["sha256"] == sha256_file(ck) and card["time"]["train_s"] > 0
    for group, curves in card["curves"].items():
        for mode, curve in curves.items():
            losses = [p["train_loss"] for p in curve[1:]]
            assert losses[-1] < losses[0], (group, mode, losses)
        assert card["validation"][group]["mode"] in ("raw", "range")
    nets, _ = load_known_checkpoint(ck)
    assert all(sum(p.numel() for p in n.parameters()) == 9425 for n in nets.values())
    KNOWNPredictor(ck)  # the predictor loads what metatrain writes


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped checkpoint yet")
def test_shipped_checkpoint_reproduces_its_card():
    card = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(DEFAULT_CHECKPOINT)
    sample_path = DEFAULT_CHECKPOINT.with_name(card["sample"]["file"])
    shipped = [DEFAULT_CHECKPOINT, DEFAULT_CHECKPOINT.with_suffix(".json"), sample_path]
    assert sum(os.path.getsize(p) for p in shipped) < 2_000_000
    from safetensors.torch import load_file

    got = sample_figures(load_known_checkpoint(DEFAULT_CHECKPOINT)[0], load_file(str(sample_path)))
    for group, figs in card["sample"]["figures"].items():
        for name, value in figs.items():
            assert got[group][name] == pytest.approx(value, rel=1e-5, abs=1e-7), (group, name)
    for group, v in card["validation"].items():
        assert v["mode"] == min(v["by_mode"], key=lambda m: v["by_mode"][m]["median_rel_l2"])


def test_default_grid_mixes_budgets_and_records_them():
    from know_core.engine.stages import parse_budget

    jobs = list_jobs("default")
    kinds = {parse_budget(j.forget_config().stage_budget).kind for j in jobs}
    assert {"epochs", "steps"} <= kinds
    for job in jobs:
        cfg = job.forget_config()
        assert cfg.stages == 7 and 0.3 <= cfg.r <= 0.9
        if cfg.stage_budget == "epochs:1":
            assert cfg.carry_optimizer and cfg.protocol == "release"
        elif cfg.stage_budget.kind == "steps":
            assert not cfg.carry_optimizer and cfg.protocol == "equal-steps"
    held = list_jobs("heldout")
    assert {j.config["protocol"] for j in held} == {"release", "equal-steps"}
    assert all(j.config["warm"] != "off" and j.config["d0_fraction"] < 1 for j in held)
    train_seeds = {j.config["seed"] for j in jobs}
    assert not train_seeds & {j.config["seed"] for j in held}


def test_collected_file_round_trips_budget_warm_oracles_and_control(tmp_path):
    from know_core.metatrain.trajfile import CorruptTrajectory, read_metadata

    job = make_job(
        tiny_config(
            model="mlp",
            stages=7,
            r=0.75,
            seed=3,
            d0_fraction=0.5,
            stage_budget="steps:6",
            carry_optimizer=False,
            optim=OptimConfig(batch_size=16),
            pretrain=PretrainConfig(max_epochs=3, patience=2),
        ),
        "test",
    )
    run_job(job, tmp_path)
    path = tmp_path / f"{job.id}.safetensors"
    states, meta, warm, control = read_trajectory_file(path, films=True)
    assert meta["budget"] == "steps:6" and meta["job"]["config"]["stage_budget"] == "steps:6"
    assert meta["stage_steps"] == [0] + [6] * 6
    assert warm is not None and len(warm.states) == 2 and warm.sizes[0] > meta["stage_sizes"][0]
    assert control is not None and len(control.states) == 6 and control.sizes == [meta["stage_sizes"][0]] * 6
    assert set(warm.states[0]) == set(states[0])
    assert any(not torch.equal(warm.states[0][k], states[0][k]) for k in states[0])  # Θ_{−1} moved away from Θ0
    plain, meta2 = read_trajectory_file(path)  # the film alone, as the meta-dataset reads it
    assert len(plain) == 7 and meta2["n_warm"] == 2 and meta2["n_control"] == 6
    assert read_metadata(path)["format"] == "know_core.metatraj/3"
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:  # a tampered tensor is refused by the snapshot digest
        tensors, raw = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118
    tampered = f"trajectory/1/{next(iter(states[1]))}"
    tensors[tampered] = tensors[tampered] + 1
    save_file(tensors, str(tmp_path / "tampered.safetensors"), metadata=raw)
    with pytest.raises(CorruptTrajectory, match="does not match its sha256 digest"):
        read_trajectory_file(tmp_path / "tampered.safetensors")
    # the metatraj/2 layout (its writer, inline) is still read
    old = {f"{s}/{k}": t for s, state in enumerate(states) for k, t in state.items()}
    old.update(
        {
            f"{n}/{k}/{name}": t
            for n, film in (("warm", warm), ("control", control))
            for k, state in enumerate(film.states, start=1)
            for name, t in state.items()
        }
    )
    computed = ("format", "stages", "n_tensors", "budget", "n_warm", "n_control")
    save_file(
        old,
        str(tmp_path / "v2.safetensors"),
        metadata={
            "format": "know_core.metatraj/2",
            "stages": str(len(states)),
            **{k: json.dumps(v) for k, v in meta.items() if k not in computed},
        },
    )
    states2, meta2, warm2, control2 = read_trajectory_file(tmp_path / "v2.safetensors", films=True)
    assert (
        meta2["format"] == "know_core.metatraj/2" and meta2["budget"] == "steps:6" and control2.sizes == control.sizes
    )
    assert all(torch.equal(states2[s][k], states[s][k]) for s in range(7) for k in states[0])
    assert all(torch.equal(warm2.states[1][k], warm.states[1][k]) for k in states[0])


def test_old_format_files_stay_readable_and_unknown_formats_are_refused(tmp_path):
    from know_core.metatrain.trajfile import CorruptTrajectory, read_metadata

    state = {"w": torch.ones(3, 2), "b": torch.zeros(3)}
    job = {"id": "x", "grid": "old", "config": {"dataset": "digits", "epochs": 1}}
    meta = {
        "format": "know_core.metatraj/1",
        "job": json.dumps(job),
        "groups": json.dumps({"w": "fc", "b": "bias"}),
        "stages": "2",
        "stage_sizes": "[10, 5]",
        "source_acc": "[0.9, 0.8]",
        "forgot": "true",
        "pretrain_epochs": "3",
        "timings": "{}",
    }
    save_file(
        {f"{s}/{k}": v * (s + 1) for s in range(2) for k, v in state.items()},
        str(tmp_path / "old.safetensors"),
        metadata=meta,
    )
    states, m, warm, control = read_trajectory_file(tmp_path / "old.safetensors", films=True)
    assert len(states) == 2 and m["budget"] == "epochs:1" and warm is None and control is None
    save_file(
        {"0/w": torch.ones(1)},
        str(tmp_path / "future.safetensors"),
        metadata={**meta, "format": "know_core.metatraj/9"},
    )
    with pytest.raises(CorruptTrajectory, match="metatraj/9"):
        read_metadata(tmp_path / "future.safetensors")


def test_metadataset_targets_warm_oracle_and_drift_corrected(tmp_path):
    jobs = [
        make_job(
            tiny_config(
                model="mlp",
                stages=7,
                r=0.75,
                seed=s,
                d0_fraction=0.5,
                optim=OptimConfig(batch_size=16),
                pretrain=PretrainConfig(max_epochs=3, patience=2),
            ),
            "test",
        )
        for s in (4, 5)
    ]
    collect(jobs, tmp_path, workers=1)
    back = load_metadataset(tmp_path, val_fraction=0.5)
    warm = load_metadataset(tmp_path, val_fraction=0.5, target="warm")
    dc = load_metadataset(tmp_path, val_fraction=0.5, target="dc")
    for g in back.train:
        assert len(warm.train[g]) * 2 == len(back.train[g])  # one window per trajectory (ending at Θ0) instead of two
        assert len(dc.train[g]) == len(back.train[g])
        # the warm target's window ends at Θ0, the backward target's first window at Θ1
        assert not torch.equal(warm.train[g].y, back.train[g].y[: len(warm.train[g])])
    with pytest.raises(DataError, match="target"):
        load_metadataset(tmp_path, target="nope")
