"""Provenance: a resumed experiment never mixes package versions or KNOWN checkpoints, and results.json names both."""

import dataclasses
import shutil

from test_pipeline import tiny

import know_core
import know_core.predictors.known_checkpoint as known_checkpoint
from know_core.common import version
from know_core.common.fsio import sha256_file
from know_core.experiment import pipeline
from know_core.experiment.pipeline import config_hash, run_experiment


def _copy_checkpoint(tmp_path, monkeypatch):
    copy = tmp_path / "ck" / "known_default.safetensors"
    copy.parent.mkdir()
    shutil.copy(known_checkpoint.DEFAULT_CHECKPOINT, copy)
    monkeypatch.setattr(known_checkpoint, "DEFAULT_CHECKPOINT", copy)
    return copy


def test_the_resume_hash_names_the_version_and_the_known_checkpoint(tmp_path, monkeypatch):
    copy = _copy_checkpoint(tmp_path, monkeypatch)
    with_known, without = tiny(methods=["naive", "known"]), tiny(methods=["naive"])
    before = config_hash(with_known), config_hash(without)
    copy.write_bytes(copy.read_bytes() + b"\0")  # another checkpoint under the same name
    assert config_hash(with_known) != before[0]
    assert config_hash(without) == before[1]  # a run without KNOWN does not care which checkpoint ships
    monkeypatch.setattr(version, "__version__", "0.0.0-other")
    assert config_hash(without) != before[1]


def test_finished_seeds_of_another_checkpoint_are_recomputed_and_results_name_it(tmp_path, monkeypatch):
    copy = _copy_checkpoint(tmp_path, monkeypatch)
    cfg = tiny(methods=["naive", "known"], scales=[2.0], save_weights=False, seeds=[0])
    cfg.source = dataclasses.replace(cfg.source, stages=5)  # KNOWN reads 5-stage windows
    calls = []
    real = pipeline.run_seed

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_seed", counting)
    out = tmp_path / "run"
    first = run_experiment(cfg, out)
    assert first["provenance"] == {"version": know_core.__version__, "known_checkpoint_sha256": sha256_file(copy)}
    run_experiment(cfg, out)
    assert calls == [0]  # same version, same checkpoint: the finished seed is reused
    copy.write_bytes(copy.read_bytes() + b"\0")
    again = run_experiment(cfg, out)
    assert calls == [0, 0]  # another checkpoint: recomputed, never mixed in
    assert again["provenance"]["known_checkpoint_sha256"] == sha256_file(copy)
