import pytest
import torch
from conftest import tiny_config

from know_core.cli import main
from know_core.common.errors import ConfigError
from know_core.engine.extrapolate import extrapolate
from know_core.experiment.seedweights import layers
from know_core.models import check_model, create_model, param_groups, predicted_groups, training_bytes
from know_core.predictors import get_predictor


@pytest.mark.parametrize("shape, patch", [((1, 8, 8), 2), ((1, 28, 28), 7), ((3, 32, 32), 8)])
def test_vit_is_sized_from_the_image(shape, patch):
    model = create_model("vit_tiny", shape, 7)
    assert model.patch == patch and model(torch.randn(3, *shape)).shape == (3, 7)
    assert model.pos_embed.shape[1] == (shape[1] // patch) ** 2 + 1  # tokens + class token
    assert create_model("vit_tiny:patch=4,depth=3", shape[:1] + (16, 16), 5).patch == 4


def test_vit_groups():
    model = create_model("vit_tiny", (1, 8, 8), 10)
    groups = param_groups(model)
    assert set(groups) == {n for n, _ in model.named_parameters()}
    assert groups["cls_token"] == groups["pos_embed"] == "embed"
    assert groups["patch_proj.weight"] == "fc" and groups["patch_proj.bias"] == "bias"
    for block in ("blocks.0", "blocks.1"):
        for layer in ("attn.qkv", "attn.proj", "mlp.0", "mlp.2"):
            assert groups[f"{block}.{layer}.weight"] == "fc" and groups[f"{block}.{layer}.bias"] == "bias"
        for norm in ("norm1", "norm2"):
            assert groups[f"{block}.{norm}.weight"] == groups[f"{block}.{norm}.bias"] == "norm"
    assert sum(p.numel() for p in model.parameters()) == 18218
    included = predicted_groups(groups, include_embed=True)
    assert included["pos_embed"] == "fc" and predicted_groups(groups) is groups
    by_layer = layers(groups)
    assert set(by_layer["blocks.0"]) == {n for n, g in groups.items() if n.startswith("blocks.0.") and g != "norm"}


def test_embeddings_are_copied_unless_included():
    torch.manual_seed(0)
    model = create_model("vit_tiny", (1, 8, 8), 4)
    groups = param_groups(model)
    states = [{k: v + 0.1 * s for k, v in model.state_dict().items()} for s in range(3)]  # a drifting film
    copied = extrapolate(states, groups, get_predictor("taskvector"), 1)[0]
    included = extrapolate(states, predicted_groups(groups, True), get_predictor("taskvector"), 1)[0]
    assert torch.equal(copied["pos_embed"], states[0]["pos_embed"])
    assert torch.allclose(included["pos_embed"], states[0]["pos_embed"] - 0.1)
    assert torch.allclose(copied["head.weight"], included["head.weight"])


def test_memory_estimate_grows_with_the_batch_and_refuses_a_giant():
    with torch.device("meta"):
        model = create_model("vit_tiny", (1, 28, 28), 10)
    assert training_bytes(model, (1, 28, 28), 256) > training_bytes(model, (1, 28, 28), 1) > 16 * 19658
    assert check_model("vit_tiny", (1, 28, 28), 10, 64, torch.device("cpu")) < 2**30
    with pytest.raises(ConfigError, match="parameters\\) needs about .* GiB to train with batch 64"):
        check_model("vit_tiny:width=8192,depth=64,heads=8", (1, 28, 28), 10, 64, torch.device("cpu"))


@pytest.mark.parametrize("model, message", [
    ("vit_huge", "unknown model 'vit_huge'"),
    ("vit_tiny:patch=3", "vit_tiny patch size 3 does not divide the 8×8 image"),
    ("vit_tiny:heads=3", "width 32 is not a multiple of heads 3"),
    ("vit_tiny:depth=0", "vit_tiny option depth must be an integer >= 1"),
    ("vit_tiny:wdith=8", "model 'vit_tiny' has no option 'wdith'"),
    ("vit_tiny:patch", "is not key=value"),
    ("vit_tiny:width=8192,depth=64,heads=8", "GiB to train with batch"),
])
def test_bad_vit_exits_2_naming_the_problem_and_records_nothing(tmp_path, capsys, model, message):
    assert main(["forget", "--quiet", "--dataset", "digits", "--model", model, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name not in ("index.sqlite", "index.sqlite-wal",
                                                                  "index.sqlite-shm", ".staging")]


def test_vit_film_predicts_and_backtests(tmp_path, capsys):
    from know_core.experiment.backtest import backtest_run
    from know_core.experiment.films import open_forget_run
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path)
    run_id = record_forgetting(tiny_config(model="vit_tiny", stages=5), store)
    _, cfg, traj = open_forget_run(store, run_id)
    assert traj.groups["pos_embed"] == "embed"
    result = backtest_run(cfg, traj, {"taskvector": get_predictor("taskvector")})
    assert {r["group"] for r in result["rows"]} == {"fc", "bias"}
    assert main(["predict", "--run", run_id, "--method", "expfit", "--include-embed", "--runs-dir", str(tmp_path)]) == 0
    assert main(["backtest", "--run", run_id, "--methods", "taskvector", "--include-embed",
                 "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    fc_rows = [line for line in out.splitlines() if line.startswith("taskvector") and " fc " in line]
    assert fc_rows and int(fc_rows[0].split()[3]) > sum(r["n"] for r in result["rows"]
                                                        if r["level"] == "group" and r["group"] == "fc")
