"""``nino_mlp`` against NiNo's own code: golden predictions made by tests/golden/make_nino_golden.py on three real
forgetting films, for both released WNN+ checkpoints and horizons k = 1, 2, 3; plus its refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from know_core.engine.extrapolate import extrapolate
from know_core.predictors import get_predictor, predictor_entry
from know_core.predictors.base import PredictorInputError
from know_core.predictors.nino_checkpoint import (
    LICENSE,
    RELEASED,
    NiNoCheckpointError,
    checkpoint_path,
    load_nino_checkpoint,
)
from know_core.predictors.nino_mlp import CONTEXT, layer_type

GOLDEN = Path(__file__).parent / "golden" / "nino_golden.safetensors"
TOLERANCE = 1e-5


def _golden() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(GOLDEN), "pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata()


GOLD, META = _golden()


def _film(i: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, str], list[str]]:
    names = META[f"film{i}.params"].split(",")
    groups = dict(zip(names, META[f"film{i}.groups"].split(",")))
    stages = sorted({int(k.split("/")[1][5:]) for k in GOLD if k.startswith(f"film{i}/stage")})
    film = [{name: GOLD[f"film{i}/stage{s}/{name}"] for name in names} for s in stages]
    return film, groups, names


def relative_error(ours: torch.Tensor, gold: torch.Tensor) -> float:
    """max |ours − gold| over the tensor, relative to the tensor's largest |gold| value."""
    return float((ours.double() - gold.double()).abs().max() / gold.double().abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("checkpoint", ["nino_mlp", "nino_mlp_h32"])
def test_matches_nino_own_code_on_real_films(checkpoint):
    predictor = get_predictor("nino_mlp", checkpoint=checkpoint)
    horizons = [int(k) for k in META["horizons"].split(",")]
    worst, moved = 0.0, 0
    for i in range(int(META["films"])):
        film, groups, names = _film(i)
        predicted = extrapolate(film, groups, predictor, max(horizons))  # the pipeline's own path
        for k in horizons:
            for name in names:
                gold = GOLD[f"film{i}/{checkpoint}/k{k}/{name}"]
                ours = predicted[k - 1][name]
                worst = max(worst, relative_error(ours, gold))
                moved += int(bool(((gold - film[0][name]).abs() > 1e-6).any()))
    assert worst <= TOLERANCE, f"{checkpoint}: largest relative error {worst:.2e}"
    assert moved > 0  # the golden predictions do differ from Θ0, so matching them is not trivial


def test_move_matches_to_tolerance():
    """The predicted move θ̂ − θ0 alone (a stricter test: it is small beside θ0) stays within 1e-4 relative."""
    predictor = get_predictor("nino_mlp")
    film, groups, names = _film(0)
    predicted = extrapolate(film, groups, predictor, 3)
    for k in (1, 2, 3):
        for name in names:
            move = GOLD[f"film0/nino_mlp/k{k}/{name}"] - film[0][name]
            assert relative_error(predicted[k - 1][name] - film[0][name], move) < 1e-4, (k, name)


def test_horizon_k_is_the_stage_and_not_a_rollout():
    """Stage 2 is NiNo's k = 2 on the same 5 states; rolling k = 1 twice gives something else."""
    predictor = get_predictor("nino_mlp")
    film, groups, names = _film(1)
    name = names[0]
    window = torch.stack([s[name].reshape(-1) for s in reversed(film)], dim=1)
    tensors = [(name, film[0][name].shape)]
    direct = predictor.predict(window, 2, groups[name], tensors=tensors)
    once = predictor.predict(window, 1, groups[name], tensors=tensors)[:, 0]
    rolled = predictor.predict(torch.cat([window[:, 1:], once[:, None]], 1), 1, groups[name], tensors=tensors)
    assert torch.equal(direct[:, 0], once)
    assert not torch.allclose(direct[:, 1], rolled[:, 0])


def test_layer_types_follow_nino():
    assert [layer_type("a.weight", (3, 4)), layer_type("a.bias", (3,)), layer_type("c.weight", (2, 1, 3, 3)),
            layer_type("bn.weight", (8,)), layer_type("pos_embed", (1, 17, 32))] == [1, 2, 3, 4, 2]


def test_min_stages_is_nino_context_and_shorter_films_are_refused():
    assert predictor_entry("nino_mlp").min_stages == CONTEXT == 5
    with pytest.raises(PredictorInputError, match="4 stages; this predictor needs at least 5"):
        get_predictor("nino_mlp").predict(torch.zeros(10, 4), 1, "fc")


def test_nan_in_the_film_is_refused_naming_the_parameter():
    film, groups, names = _film(0)
    film[2] = dict(film[2])
    film[2][names[1]] = film[2][names[1]].clone()
    film[2][names[1]].view(-1)[3] = float("nan")
    with pytest.raises(PredictorInputError, match=f"non-finite value in window for parameter '{names[1]}'"):
        extrapolate(film, groups, get_predictor("nino_mlp"), 1)


def test_unknown_checkpoint_and_far_horizon_are_refused():
    with pytest.raises(PredictorInputError, match="nino_mlp checkpoint must be one of"):
        get_predictor("nino_mlp", checkpoint="nino_no_posw")
    with pytest.raises(PredictorInputError, match="at most 40 steps"):
        get_predictor("nino_mlp").predict(torch.zeros(3, 5), 41, "fc")


def test_vendored_files_are_the_release(tmp_path):
    total = sum(checkpoint_path(name).stat().st_size for name in RELEASED)
    assert total < 10_000_000
    assert "MIT License" in LICENSE.read_text() and "Samsung" in LICENSE.read_text()
    state, args = load_nino_checkpoint("nino_mlp_h32")
    assert args == {"gnn": False, "hid": 32} and state["layer_embed.weight"].shape == (15, 32)

    altered = tmp_path / "nino_mlp_h32.pt"
    shutil.copyfile(checkpoint_path("nino_mlp_h32"), altered)
    with altered.open("r+b") as f:
        f.seek(-10, 2)
        f.write(b"\x00")
    with pytest.raises(NiNoCheckpointError, match="SHA-256 .* is not the released"):
        load_nino_checkpoint("nino_mlp_h32", altered)
    with pytest.raises(NiNoCheckpointError, match="missing"):
        load_nino_checkpoint("nino_mlp", tmp_path / "absent.pt")


def test_model_args_mismatch_is_refused():
    from know_core.predictors.nino_checkpoint import check_contents

    state, _ = load_nino_checkpoint("nino_mlp_h32")
    sha, args, size = RELEASED["nino_mlp_h32"]
    with pytest.raises(NiNoCheckpointError, match=r"model_args \{'gnn': False, 'hid': 64\} differ"):
        check_contents("nino_mlp_h32", {"state_dict": state, "model_args": {"gnn": False, "hid": 64}}, args, size)
    with pytest.raises(NiNoCheckpointError, match="must hold state_dict and model_args"):
        check_contents("nino_mlp_h32", state, args, size)
