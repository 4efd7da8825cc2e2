"""``nino`` (NiNo's GNN) against NiNo's own code: golden predictions made by tests/golden/make_nino_gnn_golden.py on
four real forgetting films (simple_cnn_narrow ×2, simple_cnn, mlp) at k = 1, 2, 3; its graph encodings; its
refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from know_core.engine.extrapolate import extrapolate
from know_core.models import create_model, param_groups
from know_core.predictors import get_predictor, predictor_entry
from know_core.predictors.base import PredictorInputError
from know_core.predictors.nino import NiNoGNN
from know_core.predictors.nino_checkpoint import NiNoCheckpointError, checkpoint_path, load_nino_checkpoint
from know_core.predictors.nino_graph import DENSE_BELOW, build_graph

GOLDEN = Path(__file__).parent / "golden"
TOLERANCE = 1e-5


def _read(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(GOLDEN / name), "pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata()


GOLD, META = _read("nino_gnn_golden.safetensors")
FILMS, _ = _read(META["films_from"])
PREDICTOR = get_predictor("nino")


def _film(i: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, str], list[str]]:
    names = META[f"film{i}.params"].split(",")
    src = FILMS if i < int(META["stored_films"]) else GOLD
    stages = sorted({int(k.split("/")[1][5:]) for k in src if k.startswith(f"film{i}/stage")})
    film = [{name: src[f"film{i}/stage{s}/{name}"] for name in names} for s in stages]
    groups = param_groups(create_model(META[f"film{i}"].split()[0], (1, 8, 8), 10))
    return film, groups, names


def relative_error(ours: torch.Tensor, gold: torch.Tensor) -> float:
    return float((ours.double() - gold.double()).abs().max() / gold.double().abs().max().clamp_min(1e-30))


def _compare(i: int, predicted: list[dict[str, torch.Tensor]], film, names) -> tuple[float, float]:
    worst = worst_move = 0.0
    for k in (1, 2, 3):
        for name in names:
            gold, ours, base = GOLD[f"film{i}/k{k}/{name}"], predicted[k - 1][name], film[0][name]
            worst = max(worst, relative_error(ours, gold))
            worst_move = max(worst_move, relative_error(ours - base, gold - base))
    return worst, worst_move


@pytest.mark.parametrize("i", range(4))
def test_matches_nino_own_code_given_its_encodings(i):
    """Graph, scaling, message passing, horizon slice and unscaling, with NiNo's own positional encodings."""
    film, groups, names = _film(i)
    params = [(name, tuple(film[0][name].shape)) for name in names]
    window = torch.stack([torch.cat([s[n].reshape(-1) for n in names]) for s in reversed(film[:5])], 1)
    out = PREDICTOR.predict_params(params, window, 3, lpe=GOLD[f"film{i}/lpe"])
    sizes = [film[0][n].numel() for n in names]
    predicted = [{n: part.view_as(film[0][n]) for n, part in zip(names, out[:, k].split(sizes))} for k in range(3)]
    worst, worst_move = _compare(i, predicted, film, names)
    assert worst <= TOLERANCE, f"{META[f'film{i}']}: {worst:.2e}"
    assert worst_move <= 1e-4, f"{META[f'film{i}']}: move {worst_move:.2e}"  # the move alone, small beside θ0
    assert any(((GOLD[f"film{i}/k1/{n}"] - film[0][n]).abs() > 1e-5).any() for n in names)  # NiNo did move


@pytest.mark.parametrize("i", [0, 1])
def test_end_to_end_on_dense_graphs_is_nino_seeded_run(i):
    """Below 100 neurons NiNo's encodings come from the dense solver and are reproducible: ours are the same numbers
    (with NiNo's sign draw after torch.manual_seed(0)), so the pipeline's own path matches NiNo end to end."""
    film, groups, names = _film(i)
    params = [(name, tuple(film[0][name].shape)) for name in names]
    graph, lpe = PREDICTOR.graph(params)
    assert graph.num_nodes < DENSE_BELOW
    assert torch.equal(lpe, GOLD[f"film{i}/lpe"])
    worst, worst_move = _compare(i, extrapolate(film, groups, PREDICTOR, 3), film, names)
    assert worst <= TOLERANCE and worst_move <= 1e-4, (worst, worst_move)


@pytest.mark.parametrize("i", [2, 3])
def test_encodings_on_large_graphs_are_the_same_eigenvectors(i):
    """From 100 neurons on, NiNo's eigensolver starts at random and its basis of the degenerate eigenvalue 1 changes
    from call to call; ours is fixed. Both are unit eigenvectors of the same Laplacian with the same eigenvalues."""
    film, _, names = _film(i)
    graph, ours = PREDICTOR.graph([(name, tuple(film[0][name].shape)) for name in names])
    theirs = GOLD[f"film{i}/lpe"]
    assert graph.num_nodes >= DENSE_BELOW and ours.shape == theirs.shape
    pairs = torch.cat([graph.edge_index, graph.edge_index.flip(0)], 1)
    pairs = pairs[:, pairs[0] != pairs[1]].unique(dim=1).double()
    adj = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.float64)
    adj[pairs[0].long(), pairs[1].long()] = 1
    inv = adj.sum(1).rsqrt()
    lap = torch.eye(graph.num_nodes, dtype=torch.float64) - inv[:, None] * adj * inv[None, :]

    def eigenvalues(v):
        v = v.double()
        lam = (v * (lap @ v)).sum(0)
        assert float((lap @ v - v * lam).norm(dim=0).max()) < 1e-3  # they are eigenvectors
        return lam.sort().values

    assert torch.allclose(eigenvalues(ours), eigenvalues(theirs), atol=1e-4)
    spread = [float(x) for x in META[f"film{i}.nino_spread"].split(",")]
    assert spread[1] > 1e-3  # NiNo's own run-to-run spread of the move is real (why this is not an exact test)


def test_graph_structure_of_a_small_cnn():
    """simple_cnn_narrow: 1 input channel, 4-8-16-16 conv channels, dense 32 and 10, one bias node per layer."""
    net = create_model("simple_cnn_narrow", (1, 8, 8), 10)
    graph = build_graph([(n, tuple(p.shape)) for n, p in net.named_parameters()], 9)
    assert graph.num_nodes == 1 + 4 + 8 + 16 + 16 + 32 + 10 + 6 and graph.feat == 9
    n_params = sum(p.numel() for p in net.parameters())
    assert graph.edge_index.shape[1] == sum(p.shape[0] * (p.shape[1] if p.dim() > 1 else 1)
                                            for p in net.parameters()) + graph.num_nodes
    z = torch.randn(n_params, 5)
    back = graph.to_vector(graph.to_edges(z).view(-1, 9, 5)[:, :, -1:])
    assert torch.equal(back[:, 0], z[:, -1])  # edges → parameters is the inverse of parameters → edges


def test_models_without_a_graph_are_refused_in_one_line():
    for model, match in [("small_resnet", "leaves .* neurons unconnected"), ("vit_tiny", "'cls_token'")]:
        net = create_model(model, (1, 8, 8), 10)
        state = {n: p.detach() for n, p in net.named_parameters()}
        with pytest.raises(PredictorInputError, match=match) as info:
            extrapolate([state] * 5, param_groups(net), PREDICTOR, 1)
        assert "\n" not in str(info.value)


def test_short_and_nan_films_are_refused():
    film, groups, names = _film(0)
    assert predictor_entry("nino").min_stages == 5
    with pytest.raises(PredictorInputError, match="film has 4 stages; this predictor needs at least 5"):
        extrapolate(film[:4], groups, PREDICTOR, 1)
    film = list(film)
    film[3] = dict(film[3], **{names[2]: film[3][names[2]].clone()})
    film[3][names[2]].view(-1)[0] = float("nan")
    with pytest.raises(PredictorInputError, match=f"non-finite value in window for parameter '{names[2]}'"):
        extrapolate(film, groups, PREDICTOR, 1)
    with pytest.raises(PredictorInputError, match="at most 40 steps"):
        PREDICTOR.predict_film(film, groups, 41)
    with pytest.raises(PredictorInputError, match="whole network"):
        PREDICTOR.predict(torch.zeros(3, 5), 1, "fc")


def test_checkpoint_refusals(tmp_path):
    with pytest.raises(PredictorInputError, match="nino checkpoint must be one of"):
        get_predictor("nino", checkpoint="nino_mlp")
    state, args = load_nino_checkpoint("nino_no_posw")
    with pytest.raises(NiNoCheckpointError, match="not NiNo's graph model without position embeddings"):
        NiNoGNN.from_release(state, {"wte_pos_enc": True})
    with pytest.raises(NiNoCheckpointError, match="unexpected tensor 'wte_pos_enc_layer.weight'"):
        NiNoGNN.from_release({**state, "wte_pos_enc_layer.weight": torch.zeros(3, 128)}, args)
    altered = tmp_path / "nino_no_posw.pt"
    shutil.copyfile(checkpoint_path("nino_no_posw"), altered)
    with altered.open("r+b") as f:
        f.seek(-10, 2)
        f.write(b"\x01")
    with pytest.raises(NiNoCheckpointError, match="SHA-256 .* is not the released"):
        load_nino_checkpoint("nino_no_posw", altered)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_runs_on_the_film_device_and_keeps_its_dtype(device):
    film, groups, names = _film(0)
    film64 = [{n: t.double().to(device) for n, t in s.items()} for s in film]
    out = PREDICTOR.predict_film(film64, groups, 2)
    assert all(t.device.type == device and t.dtype == torch.float64 for t in out.values())
    ref = PREDICTOR.predict_film(film, groups, 2)
    assert all(relative_error(out[g].cpu(), ref[g]) < 1e-5 for g in ref)
