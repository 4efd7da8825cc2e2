"""PCA, per-weight curves, contour grids and aggregates over a stored tiny experiment, checked against plain numbers."""

import math

import pytest
import torch
from experiment_helpers import tiny_experiment

from know_core.common.errors import KnowError
from know_core.engine.windows import flatten
from know_core.experiment import analysis, landscape, seedweights
from know_core.experiment.pca import fit_pca, pca_view, weight_curves


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path_factory.mktemp("runs"))
    return store.open(record_experiment(tiny_experiment(seeds=[0, 1]), store))


def test_pca_recovers_a_known_line_and_a_plane():
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    points = torch.stack([t * direction for t in (-2.0, -1.0, 0.5, 3.0)])
    pca = fit_pca(points.double(), k=3)
    assert pca.explained[0] == pytest.approx(1.0)
    assert abs(float(pca.components[0] @ direction.double())) == pytest.approx(1.0)
    # coordinates reproduce the centred points, and the first point lands on the non-negative side
    rebuilt = pca.coords[:, :1] @ pca.components[:1] + pca.mean
    assert torch.allclose(rebuilt, points.double(), atol=1e-9)
    assert float(pca.coords[0, 0]) >= 0


def test_seed_weights_hold_every_role(run):
    sw = seedweights.load_seed(run, 0)
    assert len(sw.stages) == 4
    assert set(sw.predictions) == {"taskvector", "expfit"}  # naive is Θ0 at every scale: not stored twice
    assert set(sw.predictions["expfit"]) == {2.0, 4.0}
    assert set(sw.oracles) == {2.0, 4.0}


def test_pca_view_places_every_network_in_one_basis(run):
    sw = seedweights.load_seed(run, 0)
    points, pca = pca_view(sw, 0.5)
    kinds = [p["kind"] for p in points]
    # 4 stages, 2 predictors × 2 scales (naive is Θ0 itself and left out), 2 oracles
    assert kinds.count("trajectory") == 4 and kinds.count("prediction") == 4 and kinds.count("oracle") == 2
    assert 0 < sum(pca.explained) <= 1.0 + 1e-9
    theta0 = next(p for p in points if p["label"] == "Θ0")
    assert theta0["pc1"] >= 0 and theta0["source_acc"] is not None
    # a projection never lengthens a distance
    params = seedweights.selected_params(sw.groups, None)
    a, b = flatten(sw.stages[0], params), flatten(sw.oracles[4.0], params)
    oracle = next(p for p in points if p["label"] == "oracle ×4")
    pca_dist = math.dist([theta0[f"pc{i}"] for i in (1, 2, 3)], [oracle[f"pc{i}"] for i in (1, 2, 3)])
    assert pca_dist <= float(torch.linalg.vector_norm(a - b)) + 1e-9


def test_layer_selection_uses_only_that_layers_weights(run):
    sw = seedweights.load_seed(run, 0)
    by_layer = seedweights.layers(sw.groups)
    assert by_layer and all(sw.groups[p] in ("conv", "fc", "bias") for ps in by_layer.values() for p in ps)
    first = next(iter(by_layer))
    _, pca = pca_view(sw, 0.5, first)
    assert pca.mean.numel() == sum(sw.stages[0][p].numel() for p in by_layer[first])
    with pytest.raises(KnowError, match="no predicted layer"):
        pca_view(sw, 0.5, "nope")


def test_weight_curves_read_the_stored_values(run):
    sw = seedweights.load_seed(run, 0)
    curves = weight_curves(sw, 0.5, n=4)
    assert len(curves) == 4
    for c in curves:
        value = sw.stages[0][c["param"]].reshape(-1)[c["index"]]
        assert c["window"][0] == {"scale": 1.0, "value": pytest.approx(float(value))}
        assert [p["scale"] for p in c["methods"]["expfit"]] == [2.0, 4.0]
        assert len({p["value"] for p in c["window"]}) > 1  # only weights that moved are sampled


def test_contour_grid_evaluates_the_plane(run):
    grid = landscape.contour_grid(run, 0, None, 3, samples=50)
    assert len(grid["pc1"]) == len(grid["pc2"]) == 3
    assert all(0.0 <= a <= 1.0 for row in grid["accuracy"] for a in row)
    with pytest.raises(KnowError, match="grid"):
        landscape.contour_grid(run, 0, None, 1)


def test_aggregate_is_mean_and_std_over_seeds():
    rows = [{"method": "m", "scale": 2.0, "seed": s, "target_acc": v, "valid": True} for s, v in enumerate([.5, .7])]
    rows.append({"method": "k", "scale": 2.0, "seed": 0, "valid": False, "reason": "missing checkpoint"})
    (entry,) = analysis.aggregate(rows, "target_acc")
    assert entry["mean"] == pytest.approx(0.6) and entry["std"] == pytest.approx(math.sqrt(0.02)) and entry["n"] == 2
    assert analysis.invalid_methods(rows) == {"k": "missing checkpoint"}
