import dataclasses
import json

import pytest
import torch

from know_core.cli import main
from know_core.common.errors import ConfigError, DataError
from know_core.engine.config import PretrainConfig
from know_core.engine.finetune import FinetuneConfig
from know_core.experiment.pipeline import preflight_experiment, run_experiment
from know_core.experiment.seed import shrinkage_control
from know_core.experiment.spec import preset
from know_core.experiment.stats import summarise_rows, t_interval, verdicts
from know_core.predictors.base import Predictor


def tiny(**overrides):
    """The quick preset shrunk to a few seconds: digits instead of Fashion-MNIST, short pre-training, 20 steps per
    stage, 3 fine-tuning epochs."""
    cfg = preset("quick", methods=["naive", "taskvector", "expfit"], scales=[2.0, 4.0], target_dataset="digits:5-9")
    cfg.source = dataclasses.replace(
        cfg.source,
        dataset="digits:0-4",
        d0_fraction=1.0,
        stages=4,
        stage_budget="steps:20",
        optim=dataclasses.replace(cfg.source.optim, batch_size=16),
        pretrain=PretrainConfig(max_epochs=6, patience=2),
    )
    cfg.finetune = FinetuneConfig(epochs=3, batch_size=16)
    return dataclasses.replace(cfg, **overrides)


def test_rows_cover_every_method_scale_and_control(tmp_path):
    results = run_experiment(tiny(), tmp_path)
    rows = results["rows"]
    keys = {(r["method"], r["scale"]) for r in rows}
    for method in ("taskvector", "expfit"):
        for scale in (2.0, 4.0):
            assert (method, scale) in keys and (f"shrink:{method}", scale) in keys
    assert ("naive", 1.0) in keys and ("scratch", 1.0) in keys
    for r in rows:
        assert {"method", "scale", "seed", "target_acc", "source_acc", "valid"} <= set(r)
        assert 0 <= r["target_acc"] <= 1
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(rows)) and on_disk["config"]["preset"] == "quick"
    assert {"summary", "verdicts", "timings", "backtest", "trajectories"} <= set(on_disk)
    assert {b["method"] for b in on_disk["backtest"]} >= {"taskvector", "expfit"}


def test_oracles_are_trained_and_compared(tmp_path):
    cfg = tiny(oracles="on", scales=[2.0], methods=["taskvector"])
    cfg.source = dataclasses.replace(cfg.source, d0_fraction=0.5, stages=3)
    rows = run_experiment(cfg, tmp_path)["rows"]
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert len(oracle) == 1 and oracle[0]["norm_ratio"] > 0 and "dist_to_oracle" not in oracle[0]
    tv = next(r for r in rows if r["method"] == "taskvector")
    assert tv["dist_to_oracle"] > 0 and -1 <= tv["cos_to_oracle"] <= 1
    with pytest.raises(ConfigError, match="oracle ×4 needs"):
        cfg4 = dataclasses.replace(cfg, scales=[4.0])
        run_experiment(cfg4, tmp_path / "b")


def test_resume_skips_finished_seeds(tmp_path, monkeypatch):
    first = run_experiment(tiny(), tmp_path)
    import know_core.experiment.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run_seed", lambda *a, **k: pytest.fail("a finished seed was recomputed"))
    again = run_experiment(tiny(), tmp_path)
    assert again["rows"] == first["rows"]


class _Broken(Predictor):
    name = "broken"

    def step(self, window, group):
        return torch.full_like(window[:, -1], float("nan"))


def test_non_finite_method_is_marked_invalid_and_others_complete(tmp_path, monkeypatch):
    import know_core.predictors as predictors

    monkeypatch.setattr(predictors._REGISTRY, "_entries", dict(predictors._REGISTRY._entries))
    predictors.register_predictor("expfit-broken", _Broken)
    results = run_experiment(tiny(methods=["taskvector", "expfit-broken"]), tmp_path)
    bad = [r for r in results["rows"] if r["method"] == "expfit-broken"]
    assert bad and all(not r["valid"] and "non-finite" in r["reason"] for r in bad)
    assert any(r["method"] == "taskvector" and r["valid"] for r in results["rows"])


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(methods=["magic"]), ConfigError, "unknown method 'magic'"),
        (dict(scales=[3.0]), ConfigError, "scale 3 is not a power of 1/r = 2"),
        (dict(seeds=[0, 0]), ConfigError, "seeds must be distinct"),
        (dict(target_dataset="cifar10"), DataError, "not on disk"),
    ],
)
def test_bad_experiment_config(tmp_path, change, error, message):
    with pytest.raises(error, match=message):  # the boundary's check; the engine behind it trusts the config
        preflight_experiment(tiny(**change))


def test_unknown_preset_and_paper_without_data(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")
    assert main(["demo", "--preset", "paper", "--out", str(tmp_path), "--quiet"]) == 2
    assert "cifar100 is not on disk" in capsys.readouterr().err


def test_shrinkage_control_matches_norms_keeps_direction():
    theta0 = {"w": torch.tensor([3.0, 4.0]), "bn": torch.tensor([1.0])}
    pred = {"w": torch.tensor([0.0, 2.5]), "bn": torch.tensor([7.0])}
    out = shrinkage_control(theta0, pred, {"w": "fc", "bn": "norm"})
    assert torch.allclose(out["w"], torch.tensor([1.5, 2.0])) and torch.equal(out["bn"], theta0["bn"])


def test_statistics_and_verdicts():
    rows = [
        {"method": m, "scale": s, "seed": seed, "target_acc": acc, "valid": True}
        for seed, base in enumerate([0.80, 0.82, 0.81])
        for m, s, acc in (
            ("naive", 1, base),
            ("scratch", 1, base - 0.1),
            ("expfit", 2, base + 0.02),
            ("shrink:expfit", 2, base + 0.019),
        )
    ]
    summary = {(e["method"], e["scale"]): e for e in summarise_rows(rows)}
    e = summary[("expfit", 2)]
    assert e["vs_naive"]["mean"] == pytest.approx(0.02) and e["vs_naive"]["ci95"][0] > 0
    assert e["vs_shrink"]["mean"] == pytest.approx(0.001)
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert lo == pytest.approx(2 - 4.302653 / 3**0.5, abs=1e-4) and hi == pytest.approx(2 + 4.302653 / 3**0.5, abs=1e-4)
    text = " ".join(verdicts(list(summary.values()), [True, False, True]))
    assert "NO significant forgetting on 1 of 3 seeds" in text and "expfit ×2 beats naive" in text


def test_experiment_inside_the_run_store_is_resumable(tmp_path, monkeypatch):
    from know_core.common.errors import Cancelled
    from know_core.common.hooks import Hooks
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path)
    cfg = tiny(seeds=[0, 1])
    ticks = []
    hooks = Hooks(
        progress=lambda e: ticks.append(e.phase),
        should_stop=lambda: "fine-tuning naive" in ticks[-1:] and ticks.count("fine-tuning naive") > 40,
    )
    with pytest.raises(Cancelled):
        record_experiment(cfg, store, hooks)
    run = store.list_runs()[0]
    assert run.status == "cancelled" and not (tmp_path / run.id / "results.json").exists()
    run_id = record_experiment(cfg, store, run_id=run.id)
    opened = store.open(run_id)
    assert opened.read_json("results.json")["config"]["seeds"] == [0, 1]
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / run_id / "seeds" / "seed-1.safetensors"))
    assert any(k.startswith("pred:expfit:4/0/") for k in weights) and any(k.startswith("traj/3/") for k in weights)
    assert store.info(run_id).status == "done" and store.info(run_id).summary["preset"] == "quick"


def test_report_prints_markdown_from_results(tmp_path, capsys):
    run_experiment(tiny(methods=["taskvector"], scales=[2.0]), tmp_path)
    assert main(["report", str(tmp_path / "results.json"), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| taskvector | ×2 |" in out and "| shrink:taskvector | ×2 |" in out and "`quick` preset" in out
    (tmp_path / "broken.json").write_text("{")
    assert main(["report", str(tmp_path / "broken.json")]) == 2


def test_results_name_the_known_checkpoint_they_used(tmp_path):
    from know_core.predictors.known import DEFAULT_CHECKPOINT

    cfg = tiny(methods=["known"], scales=[2.0])
    cfg.source = dataclasses.replace(cfg.source, stages=5)  # KNOWN reads 5-stage windows
    results = run_experiment(cfg, tmp_path)
    card = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert results["known_checkpoint"]["sha256"] == card["sha256"]
    assert any(r["method"] == "known" and r["valid"] for r in results["rows"])


@pytest.mark.parametrize("content", ["not json", "[]", '{"config_hash": 5}', "NaN"])
def test_a_damaged_seed_record_is_recomputed_not_trusted(tmp_path, content):
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "seed-0.json").write_text(content)
    results = run_experiment(tiny(methods=["naive"], scales=[2.0], save_weights=False), tmp_path)
    assert results["rows"] and json.loads((tmp_path / "seeds" / "seed-0.json").read_text())["seed"] == 0
