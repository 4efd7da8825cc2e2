"""Loss and accuracy landscapes: the source task evaluated on a lattice over a seed's (pc1, pc2) plane."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch

from know_core.common.errors import KnowError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig, from_dict
from know_core.engine.train import evaluate
from know_core.experiment.pca import pca_view
from know_core.experiment.seedweights import load_seed, selected_params
from know_core.models import create_model
from know_core.store.runstore import Run


def contour_key(seed: int, layer: str | None, grid: int) -> str:
    tag = hashlib.sha256((layer or "*all*").encode()).hexdigest()[:8]
    return f"seed{seed}-g{grid}-{tag}"


def contour_grid(run: Run, seed: int, layer: str | None, grid: int, samples: int = 1000,
                 margin: float = 0.25) -> dict[str, Any]:
    """Source loss and accuracy of the models on a ``grid`` × ``grid`` lattice over the (pc1, pc2) plane.

    A lattice point (a, b) is the model whose selected parameters are ``mean + a·v1 + b·v2`` and whose other
    parameters (other layers, normalisation, buffers) are Θ0's; each is evaluated on the first ``samples`` images of
    the source test set. The lattice covers every point of the picture plus ``margin`` of its extent on each side.
    """
    if not isinstance(grid, int) or not 3 <= grid <= 60:
        raise KnowError(f"grid must be an integer between 3 and 60, got {grid!r}")
    source = from_dict(ForgetConfig, run.read_json("config.json")["source"])
    sw = load_seed(run, seed)
    points, pca = pca_view(sw, source.r, layer, k=2)
    params = selected_params(sw.groups, layer)
    xs, ys = [p["pc1"] for p in points], [p["pc2"] for p in points]
    axes = []
    for values in (xs, ys):
        lo, hi = min(values), max(values)
        pad = margin * (hi - lo) or 1.0
        axes.append(torch.linspace(lo - pad, hi + pad, grid, dtype=torch.float64))
    ds = load_dataset(source.dataset, source.data_root)
    x, y = ds.x_test[:samples], ds.y_test[:samples]
    model = create_model(source.model, ds.input_shape, ds.num_classes)
    base = {k: v.clone() for k, v in sw.stages[0].items()}
    shapes = [(name, base[name].shape, base[name].numel()) for name in params]
    loss = [[math.nan] * grid for _ in range(grid)]
    acc = [[math.nan] * grid for _ in range(grid)]
    v1 = pca.components[0]
    v2 = pca.components[1] if len(pca.components) > 1 else torch.zeros_like(v1)
    for j, b in enumerate(axes[1].tolist()):
        for i, a in enumerate(axes[0].tolist()):
            vec, offset = pca.mean + a * v1 + b * v2, 0
            for name, shape, size in shapes:
                base[name] = vec[offset:offset + size].reshape(shape).to(sw.stages[0][name].dtype)
                offset += size
            model.load_state_dict(base)
            lval, aval = evaluate(model, x, y)
            loss[j][i] = lval if math.isfinite(lval) else None
            acc[j][i] = aval
    return {"seed": seed, "layer": layer, "grid": grid, "samples": len(y), "pc1": axes[0].tolist(),
            "pc2": axes[1].tolist(), "loss": loss, "accuracy": acc, "explained": pca.explained}
