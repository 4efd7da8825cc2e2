import json

import pytest
import torch
from conftest import tiny_config

from know_core.cli import main
from know_core.common.errors import KnowError
from know_core.engine.extrapolate import NonFinitePrediction, extrapolate, prediction_file
from know_core.engine.forgetting import Trajectory
from know_core.experiment.backtest import backtest_run, backtest_weights, format_table
from know_core.experiment.films import open_forget_run
from know_core.models import create_model, param_groups
from know_core.predictors import Predictor, get_predictor
from know_core.store.runstore import RunStore
from know_core.store.snapshots import unpack


def linear_trajectory(model_name="small_resnet", stages=5, seed=0) -> Trajectory:
    """θ_s = θ0 − s·δ for predicted groups (exactly linear forgetting); norm layers and buffers stay as in Θ0."""
    torch.manual_seed(seed)
    model = create_model(model_name, (1, 8, 8), 4)
    groups = param_groups(model)
    theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    delta = {k: 0.01 * torch.randn_like(v) for k, v in theta0.items() if groups.get(k) in ("conv", "fc", "bias")}
    states = [{k: (v - s * delta[k]) if k in delta else v.clone() for k, v in theta0.items()} for s in range(stages)]
    n = stages
    return Trajectory(states, groups, [2 ** (n - s) for s in range(n)], [0.0] * n, [0.5] * n, [1.0] * n)


def test_naive_keeps_theta0_and_norm_layers():
    traj = linear_trajectory()
    out = extrapolate(traj.states, traj.groups, get_predictor("naive"), 3)
    assert len(out) == 3
    for state in out:
        assert all(torch.equal(state[k], traj.states[0][k]) for k in state)


def test_taskvector_continues_a_linear_trajectory():
    traj = linear_trajectory()
    out = extrapolate(traj.states, traj.groups, get_predictor("taskvector"), 2)
    for k, t0 in traj.states[0].items():
        if traj.groups.get(k) in ("conv", "fc", "bias"):
            step = t0 - traj.states[1][k]
            torch.testing.assert_close(out[0][k], t0 + step, rtol=0, atol=1e-6)
            torch.testing.assert_close(out[1][k], t0 + 2 * step, rtol=0, atol=1e-6)
        else:
            assert torch.equal(out[1][k], t0)  # norm parameters and buffers copied from Θ0


def test_reset_norm_mirrors_the_release():
    traj = linear_trajectory()
    for state in traj.states:
        state["stem.1.weight"].fill_(3.0)
        state["stem.1.running_var"].fill_(5.0)
    out = extrapolate(traj.states, traj.groups, get_predictor("naive"), 1, reset_norm=True)[0]
    assert torch.equal(out["stem.1.weight"], torch.ones_like(out["stem.1.weight"]))
    assert torch.equal(out["stem.1.bias"], torch.zeros_like(out["stem.1.bias"]))
    assert torch.equal(out["stem.1.running_var"], torch.ones_like(out["stem.1.running_var"]))
    assert torch.equal(out["stem.1.running_mean"], torch.zeros_like(out["stem.1.running_mean"]))
    assert torch.equal(out["head.weight"], traj.states[0]["head.weight"])


def test_non_finite_input_names_the_parameter():
    traj = linear_trajectory()
    traj.states[2]["blocks.1.conv2.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(KnowError, match="blocks.1.conv2.weight"):
        extrapolate(traj.states, traj.groups, get_predictor("taskvector"), 1)


class _Exploding(Predictor):
    name = "exploding"

    def step(self, window, group):
        out = window[:, -1].clone()
        if group == "bias":
            out[:3] = float("inf")
        return out


def test_non_finite_prediction_is_reported_per_parameter():
    traj = linear_trajectory("simple_cnn")
    with pytest.raises(NonFinitePrediction, match=r"1 parameter\(s\): 0.bias \(3\)") as info:
        extrapolate(traj.states, traj.groups, _Exploding(), 1)
    assert info.value.bad == {"0.bias": 3}


def test_backtest_figures_on_known_answers():
    traj = linear_trajectory("simple_cnn", stages=5)
    naive_rows, _ = backtest_weights(traj, get_predictor("naive"), 1)
    assert all(r.rel_error == pytest.approx(1.0) and r.cosine is None for r in naive_rows)
    tv_rows, recovered = backtest_weights(traj, get_predictor("taskvector"), 2)
    assert all(r.rel_error < 1e-4 and r.cosine > 0.9999 for r in tv_rows)
    assert {r.level for r in tv_rows} == {"group", "layer"}
    for k, v in traj.states[0].items():
        torch.testing.assert_close(recovered[k], v, rtol=0, atol=1e-5)
    with pytest.raises(KnowError, match="needs at least 5 stages"):
        backtest_weights(linear_trajectory("simple_cnn", stages=4), get_predictor("naive"), 3)


def test_backtest_run_reports_accuracy_and_limits(stored_run):
    root, run_id = stored_run
    _, cfg, traj = open_forget_run(RunStore(root), run_id)
    result = backtest_run(cfg, traj, {"naive": get_predictor("naive"), "expfit": get_predictor("expfit")}, 1)
    acc = {a["method"]: a for a in result["accuracy"]}
    assert acc["naive"]["source_acc"] == acc["keep Θ1"]["source_acc"]
    assert 0 <= acc["expfit"]["source_acc"] <= 1 and acc["true Θ0"]["source_acc"] == pytest.approx(traj.source_acc[0])
    assert "expfit" in format_table(result) and "rel. error" in format_table(result)


def test_cli_predict_stores_weights_and_backtest_json(tmp_path, capsys):
    store = RunStore(tmp_path)
    from know_core.jobs.lifecycle import record_forgetting

    run_id = record_forgetting(tiny_config(model="simple_cnn", stages=4), store)
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "3",
                 "--runs-dir", str(tmp_path)]) == 0
    films, meta = unpack(*store.open(run_id).read_tensors(prediction_file("taskvector")), "pred")
    assert len(films["predictions"]) == 3 and meta["method"] == "taskvector" and meta["reset_norm"] is False
    _, _, traj = open_forget_run(store, run_id)
    assert films["predictions"][0].keys() == traj.states[0].keys()
    capsys.readouterr()
    assert main(["backtest", "--run", run_id, "--methods", "naive,taskvector", "--json",
                 "--runs-dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in result["rows"]} == {"naive", "taskvector"}
    assert main(["predict", "--run", run_id, "--method", "oracle", "--runs-dir", str(tmp_path)]) == 2
    assert "unknown predictor 'oracle'" in capsys.readouterr().err
    assert main(["predict", "--run", run_id, "--method", "naive", "--lam", "2", "--runs-dir", str(tmp_path)]) == 2
    assert "--lam applies to the taskvector method only" in capsys.readouterr().err
