"""One PCA basis over all the networks of a seed, and per-weight curves: the numbers behind the Trajectory page.

PCA is fitted on *all* the stored points together (trajectory, predictions, cold and warm oracles, the control film),
so distances in the picture compare like with like. This module returns plain arrays and records; it draws nothing.
:func:`gram_pca` gives the same coordinates for films too large to hold, one parameter at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from know_core.engine.config import steps_of_scale
from know_core.engine.windows import flatten
from know_core.experiment.seedweights import SeedWeights, predicted, selected_params


def _accuracy(rows: list[dict], method: str, scale: float) -> float | None:
    for row in rows:
        if row["method"] == method and abs(row["scale"] - scale) < 1e-9 and row.get("valid", True):
            return row.get("source_acc")
    return None


def weight_points(sw: SeedWeights, r: float) -> list[dict[str, Any]]:
    """One record per stored state (no tensors): kind, method, scale (data ×|D0|), stage, source accuracy, label."""
    rows = sw.info.get("rows", [])
    accs, sizes = sw.info.get("source_acc_stages", []), sw.info.get("stage_sizes", [])
    points = []
    for s in range(len(sw.stages)):
        points.append({"kind": "trajectory", "method": "trajectory", "stage": s, "scale": r ** s,
                       "data_size": sizes[s] if s < len(sizes) else None,
                       "source_acc": accs[s] if s < len(accs) else None, "label": f"Θ{s}"})
    n0 = sizes[0] if sizes else None
    for method, by_scale in predicted(sw).items():
        for scale in sorted(by_scale):
            points.append({"kind": "prediction", "method": method, "stage": None, "scale": scale,
                           "data_size": round(n0 * scale) if n0 else None,
                           "source_acc": _accuracy(rows, method, scale), "label": f"{method} ×{scale:g}"})
    for scale in sorted(sw.oracles):
        points.append({"kind": "oracle", "method": "oracle", "stage": None, "scale": scale,
                       "data_size": round(n0 * scale) if n0 else None,
                       "source_acc": _accuracy(rows, "oracle", scale), "label": f"oracle ×{scale:g}"})
    warm_acc = (sw.info.get("warm") or {}).get("source_acc", [])
    for scale in sorted(sw.warm):
        k = steps_of_scale(scale, r)
        acc = warm_acc[k - 1] if 0 < k <= len(warm_acc) else _accuracy(rows, "oracle-warm", scale)
        points.append({"kind": "warm", "method": "oracle-warm", "stage": -k, "scale": scale,
                       "data_size": round(n0 * scale) if n0 else None, "source_acc": acc,
                       "label": f"warm oracle Θ−{k} (×{scale:g})"})
    control_acc = (sw.info.get("control") or {}).get("source_acc", [])
    for c in range(1, len(sw.control) + 1):
        points.append({"kind": "control", "method": "control", "stage": c, "scale": 1.0, "data_size": n0,
                       "source_acc": control_acc[c - 1] if c <= len(control_acc) else None,
                       "label": f"control C{c} (Θ0 + {c} stage{'s' if c > 1 else ''} on D0)"})
    return points


def _states_in_point_order(sw: SeedWeights) -> list[dict[str, torch.Tensor]]:
    """The state dicts in the order :func:`weight_points` lists them."""
    states = list(sw.stages)
    for by_scale in predicted(sw).values():
        states += [by_scale[s] for s in sorted(by_scale)]
    states += [sw.oracles[s] for s in sorted(sw.oracles)]
    states += [sw.warm[s] for s in sorted(sw.warm)]
    return states + list(sw.control)


@dataclass
class PCA:
    mean: torch.Tensor  # (P,)
    components: torch.Tensor  # (k, P), unit rows
    explained: list[float]  # share of the variance per component
    coords: torch.Tensor  # (n, k) of the fitted points


def fit_pca(matrix: torch.Tensor, k: int = 3) -> PCA:
    """PCA of the rows of ``matrix`` (n points × P weights) by an SVD of the centred matrix; n is small here."""
    mean = matrix.mean(dim=0)
    u, s, vh = torch.linalg.svd(matrix - mean, full_matrices=False)
    k = min(k, len(s))
    total = float((s ** 2).sum()) or 1.0
    # A sign convention, so the picture never flips: the first point (Θ0) has non-negative coordinates.
    signs = torch.sign(u[0, :k] * s[:k])
    signs[signs == 0] = 1
    coords = u[:, :k] * s[:k] * signs
    return PCA(mean, vh[:k] * signs.unsqueeze(1), [float(x ** 2) / total for x in s[:k]], coords)


def pca_view(sw: SeedWeights, r: float, layer: str | None = None, k: int = 3) -> tuple[list[dict[str, Any]], PCA]:
    """The points of :func:`weight_points` with their PCA coordinates ``pc1`` … in one basis fitted on all of them."""
    params = selected_params(sw.groups, layer)
    points = weight_points(sw, r)
    matrix = torch.stack([flatten(state, params) for state in _states_in_point_order(sw)])
    pca = fit_pca(matrix, k)
    for point, row in zip(points, pca.coords.tolist()):
        point.update({f"pc{i + 1}": v for i, v in enumerate(row)})
        for i in range(len(row), k):
            point[f"pc{i + 1}"] = 0.0
    return points, pca


def weight_curves(sw: SeedWeights, r: float, n: int = 6, layer: str | None = None,
                  sample_seed: int = 0) -> list[dict[str, Any]]:
    """For ``n`` scalar weights sampled at random (seeded) among those that moved: the window (value at each stage,
    with its data size relative to |D0|), every method's rollout at its scales, and the oracle values where they
    exist."""
    params = selected_params(sw.groups, layer)
    sizes = [sw.stages[0][name].numel() for name in params]
    total = sum(sizes)
    flat_stages = [flatten(state, params) for state in sw.stages]
    stacked = torch.stack(flat_stages)
    moving = ((stacked.amax(0) - stacked.amin(0)) > 0).nonzero().flatten()  # weights that never move tell nothing
    pool = moving if len(moving) else torch.arange(total)
    gen = torch.Generator().manual_seed(sample_seed)
    picks = sorted(pool[torch.randperm(len(pool), generator=gen)[:n]].tolist())
    flat_preds = {m: {s: flatten(st, params) for s, st in by.items()} for m, by in predicted(sw).items()}
    flat_oracles = {s: flatten(st, params) for s, st in sw.oracles.items()}
    flat_warm = {s: flatten(st, params) for s, st in sw.warm.items()}
    curves = []
    for index in picks:
        offset, owner = index, params[-1]
        for name, size in zip(params, sizes):
            if offset < size:
                owner = name
                break
            offset -= size
        curves.append(
            {
                "param": owner,
                "index": offset,
                "group": sw.groups[owner],
                "window": [{"scale": r**s, "value": float(v[index])} for s, v in enumerate(flat_stages)],
                "methods": {
                    m: [{"scale": s, "value": float(by[s][index])} for s in sorted(by)] for m, by in flat_preds.items()
                },
                "oracle": [{"scale": s, "value": float(flat_oracles[s][index])} for s in sorted(flat_oracles)],
                "warm": [{"scale": s, "value": float(flat_warm[s][index])} for s in sorted(flat_warm)],
            }
        )
    return curves


def gram_pca(get: Callable[[int, str], torch.Tensor], count: int, names: list[str], k: int = 3) -> PCA:
    """PCA of ``count`` networks too large to stack: the (count × count) Gram matrix of the centred points is summed
    one parameter at a time (``get(i, name)`` reads point i's tensor, so memory holds one parameter of every
    point), and its eigenvectors give the same coordinates and shares as :func:`fit_pca` (to float rounding, with
    the same sign convention). ``mean`` and ``components`` (P-long) are left empty: only the coordinates are
    kept."""
    gram = torch.zeros(count, count, dtype=torch.float64)
    for name in names:
        rows = torch.stack([get(i, name).reshape(-1).double() for i in range(count)])
        gram += rows @ rows.T
        del rows
    centre = torch.eye(count, dtype=torch.float64) - 1.0 / count
    values, vectors = torch.linalg.eigh(centre @ gram @ centre)
    values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    k = min(k, count)
    s = values[:k].sqrt()
    total = float(values.sum()) or 1.0
    signs = torch.sign(vectors[0, :k] * s)
    signs[signs == 0] = 1
    coords = vectors[:, :k] * s * signs
    return PCA(torch.empty(0), torch.empty(k, 0), [float(v) / total for v in values[:k]], coords)
