"""Issue 9's engine: stage budgets, the measured verdict, warm oracles, the control film and drift correction."""

import dataclasses

import pytest
import torch

import know_core.engine.continuation as continuation
import know_core.engine.forgetting as forgetting
from know_core.engine.filmcontext import Continuation
from know_core.engine.forgetting import run_forgetting, source_split
from know_core.engine.measure import measure_film
from know_core.experiment.retrodiction import drift_corrected_film, extrapolate_dc, score
from know_core.predictors import get_predictor


def record_stages(monkeypatch):
    """Wrap train_stage where forgetting.py and continuation.py call it; returns the list of (phase, n, steps)."""
    calls = []
    real = forgetting.train_stage

    def spy(members, optimizer, subsets, budget, gens, phase, step=0, total=0):
        results, step = real(members, optimizer, subsets, budget, gens, phase, step, total)
        calls.append((phase, members.x[subsets[0]].detach().clone(), results[0].steps))
        return results, step

    monkeypatch.setattr(forgetting, "train_stage", spy)
    monkeypatch.setattr(continuation, "train_stage", spy)
    return calls


def pooled(cfg, **changes):
    """``cfg`` with D0 a quarter of the pool (so warm oracles up to ×4 fit) and batches small enough for S = 4."""
    return dataclasses.replace(cfg, d0_fraction=0.25, optim=dataclasses.replace(cfg.optim, batch_size=8), **changes)


def test_steps_budget_gives_every_stage_the_same_steps(tiny_cfg, monkeypatch):
    calls = record_stages(monkeypatch)
    traj, _ = run_forgetting(pooled(tiny_cfg, stage_budget="steps:7"))
    assert traj.stage_steps == [0, 7, 7, 7]
    film = [c for c in calls if c[0] == "forgetting"]
    control = [c for c in calls if c[0] == "control film"]
    warm = [c for c in calls if c[0] == "warm oracles"]
    # the control film's budget equals the forgetting stages': same steps per stage, on D0 itself
    assert [c[2] for c in control] == [7] * len(control) and len(control) == max(len(film), len(warm))
    assert all(len(c[1]) == traj.stage_sizes[0] for c in control)
    assert [c[2] for c in warm] == [7] * len(warm) == [7, 7]


def test_epochs_budget_scales_with_the_subset(tiny_cfg):
    traj, _ = run_forgetting(dataclasses.replace(tiny_cfg, stage_budget="epochs:2"))
    batch = tiny_cfg.optim.batch_size
    assert traj.stage_steps[1:] == [2 * -(-n // batch) for n in traj.stage_sizes[1:]]


def test_converge_stops_on_a_plateau_or_reports_the_cap(tiny_cfg):
    traj, _ = run_forgetting(dataclasses.replace(tiny_cfg, stage_budget="converge:1"))
    assert all(traj.cap_hit[1:])  # one epoch can never show a plateau: the cap is reported
    traj, _ = run_forgetting(dataclasses.replace(tiny_cfg, stage_budget="converge:40"))
    batch = tiny_cfg.optim.batch_size
    for n, steps, hit in zip(traj.stage_sizes[1:], traj.stage_steps[1:], traj.cap_hit[1:]):
        assert steps % -(-n // batch) == 0 and (hit or steps < 40 * -(-n // batch))


def test_warm_oracles_train_on_nested_supersets_of_d0(tiny_cfg, monkeypatch):
    calls = record_stages(monkeypatch)
    cfg = pooled(tiny_cfg, stage_budget="steps:5")
    traj, _ = run_forgetting(cfg)
    n0 = traj.stage_sizes[0]
    assert traj.warm.sizes == [2 * n0, 4 * n0] and len(traj.warm.states) == 2
    d0 = next(c[1] for c in calls if c[0] == "control film")  # the control film trains on D0 itself
    warm = [c[1] for c in calls if c[0] == "warm oracles"]
    rows = lambda t: {tuple(v.tolist()) for v in t.reshape(len(t), -1)}  # noqa: E731
    assert rows(d0) < rows(warm[0]) < rows(warm[1])  # strictly nested supersets from the same pool
    film = [c[1] for c in calls if c[0] == "forgetting"]
    assert rows(film[0]) < rows(d0)
    # the pool order is the one D0 came from
    from know_core.data import load_dataset

    ds = load_dataset(cfg.dataset)
    pool = source_split(ds, cfg).pool
    assert rows(ds.x_train[pool[:4 * n0]]) == rows(warm[1])


def test_recording_warm_oracles_does_not_change_the_film(tiny_cfg):
    cfg = pooled(tiny_cfg, stage_budget="steps:5")
    with_warm, _ = run_forgetting(cfg)
    without, _ = run_forgetting(dataclasses.replace(cfg, warm="off"))
    assert without.warm is None and without.control is None
    for a, b in zip(with_warm.states, without.states):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_warm_on_is_refused_when_the_pool_is_too_small(tiny_cfg):
    from know_core.common.errors import ConfigError

    with pytest.raises(ConfigError, match="warm oracles: ×8 needs"):
        run_forgetting(pooled(tiny_cfg, warm="on"))


def _losses(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g, dtype=torch.float64) * 0.6


def _correct(n=2000):
    return torch.ones(n, dtype=torch.bool)


def _report(deltas, seed=0):
    base = _losses(seed=seed)
    def noise(s):
        return (torch.rand(len(base), generator=torch.Generator().manual_seed(s), dtype=torch.float64) - 0.5) * 0.02

    losses = [base] + [base + d + noise(s) for s, d in enumerate(deltas, start=1)]
    flat = [torch.full((10,), float(s)) for s in range(len(losses))]
    return measure_film(losses, [_correct()] * len(losses), [None] + [0.9] * len(deltas), 0.95, flat)


def test_verdict_on_a_film_that_dips_and_recovers():
    report = _report([0.01, 0.2, 0.05, 0.0])
    assert report.pattern == "dips and recovers" and not report.forgot
    assert "dips and recovers" in report.verdict() and "stage 2" in report.verdict()


def test_verdict_on_steady_forgetting_and_on_a_learning_film():
    forgets = _report([0.05, 0.1, 0.15, 0.2])
    assert forgets.forgot and forgets.p_value < 1e-6 and forgets.smoothness == pytest.approx(1.0, abs=0.05)
    assert forgets.strength > 10 and "forgetting (p = " in forgets.verdict()
    learns = _report([-0.05, -0.1, -0.15, -0.2])
    assert not learns.forgot and learns.pattern == "learns" and learns.smoothness < 0.05
    flat = _report([0.0, 0.0, 0.0, 0.0])
    assert not flat.forgot and flat.pattern == "no forgetting"


def test_accuracy_verdict_is_mcnemar_on_disagreements():
    base = _losses()
    correct0 = _correct()
    worse = correct0.clone()
    worse[:60] = False  # 60 samples lost, none gained
    report = measure_film([base, base + 0.1], [correct0, worse], [None, 0.5], 0.95, [torch.zeros(3), torch.ones(3)])
    assert report.forgot_acc and report.p_value_acc < 1e-10
    assert report.kind == "erasure"  # the removed samples fell from .95 to .5: far below the test accuracy edge


def _synthetic_film(n=400, stages=5, seed=0):
    """Θ_s = Θ0 + s·δ + data(s), with the control film C_s = Θ0 + s·δ and data(s) exponential in the window index."""
    g = torch.Generator().manual_seed(seed)
    groups = {"w": "fc", "b": "bias"}
    a = {k: torch.randn(n if k == "w" else 8, generator=g) for k in groups}
    b = {k: torch.randn(n if k == "w" else 8, generator=g) for k in groups}
    drift = {k: 0.3 * torch.randn(n if k == "w" else 8, generator=g) for k in groups}
    q = 0.6
    j = lambda s: stages - 1 - s  # noqa: E731  (window index: most-forgotten first, Θ0 at stages-1)
    data = lambda s: {k: a[k] + b[k] * q ** j(s) for k in groups}  # noqa: E731
    theta0 = data(0)
    film = [{k: theta0[k] + s * drift[k] + (data(s)[k] - theta0[k]) for k in groups} for s in range(stages)]
    control = Continuation([{k: theta0[k] + s * drift[k] for k in groups} for s in range(1, stages + 2)], [], [], [])
    warm = [{k: theta0[k] + s * drift[k] + (data(-s)[k] - theta0[k]) for k in groups} for s in (1, 2)]
    return film, control, warm, groups


def test_drift_correction_recovers_the_data_effect():
    film, control, warm, groups = _synthetic_film()
    corrected = drift_corrected_film(film, control, groups)
    assert torch.allclose(corrected[2]["w"] - corrected[0]["w"], film[2]["w"] - control.states[1]["w"])
    expfit = get_predictor("expfit")
    dc = extrapolate_dc([{k: v.float() for k, v in s.items()} for s in film], control, groups, expfit, 2)
    for k, truth in enumerate(warm):
        rows = score(dc[k], truth, control.states[k], film[0], groups, drift_corrected=True)
        group_rows = [r for r in rows if r["layer"] == ""]
        assert all(r["rel_error"] < 1e-3 and r["cosine"] > 0.9999 for r in group_rows), group_rows
        assert all(r["rel_error_data"] < 1e-3 and r["cosine_data"] > 0.9999 for r in group_rows)
    from know_core.engine.extrapolate import extrapolate

    plain = extrapolate(film, groups, expfit, 1)[0]  # the same predictor on the raw film is fooled by the drift
    rows = score(plain, warm[0], control.states[0], film[0], groups)
    assert min(r["rel_error"] for r in rows if r["layer"] == "") > 0.1


def test_score_rows_have_group_and_layer_levels():
    film, control, warm, groups = _synthetic_film()
    rows = score(film[0], warm[0], control.states[0], film[0], groups)  # keeping Θ0
    assert {r["layer"] for r in rows} == {"", "w", "b"}
    assert all(r["rel_error"] == pytest.approx(1.0) and r["cosine"] is None for r in rows)


def test_experiment_records_warm_oracles_and_retrodiction(tmp_path):
    from experiment_helpers import tiny_experiment

    from know_core.experiment.pipeline import run_experiment

    cfg = tiny_experiment(drift_correct=True, oracles="off")
    results = run_experiment(cfg, tmp_path)
    retro = results["retrodiction"]
    assert {r["method"] for r in retro} == {"taskvector", "expfit", "taskvector+dc", "expfit+dc", "control"}
    keys = {"seed", "method", "scale", "group", "layer", "rel_error", "cosine", "rel_error_data", "cosine_data"}
    assert all(keys <= set(r) for r in retro) and {r["scale"] for r in retro} == {2.0, 4.0}
    assert any(r["layer"] == "" for r in retro) and any(r["layer"] for r in retro)
    methods = {r["method"] for r in results["rows"]}
    assert {"oracle-warm", "taskvector+dc", "shrink:expfit+dc"} <= methods and "oracle" not in methods
    traj = results["trajectories"][0]
    assert traj["forgetting"]["p_value"] is not None and len(traj["warm"]["sizes"]) == 2
    assert traj["stage_steps"] == [0, *traj["stage_steps"][1:]]
    from safetensors import safe_open

    with safe_open(str(tmp_path / "seeds" / "seed-0.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("warm:2/0/") for k in keys) and any(k.startswith("control/2/") for k in keys)


def test_predict_drift_corrected_from_a_stored_run(tmp_path, tiny_cfg, capsys):
    from know_core.cli import main
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path)
    with_control = record_forgetting(pooled(tiny_cfg, stage_budget="steps:5"), store)
    assert (
        main(
            [
                "predict",
                "--run",
                with_control,
                "--method",
                "taskvector",
                "--steps",
                "2",
                "--drift-correct",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / with_control / "pred-taskvector+dc.safetensors").exists()
    without = record_forgetting(pooled(tiny_cfg, stage_budget="steps:5", warm="off"), store)
    capsys.readouterr()
    assert (
        main(["predict", "--run", without, "--method", "taskvector", "--drift-correct", "--runs-dir", str(tmp_path)])
        == 2
    )
    assert "no control film" in capsys.readouterr().err
