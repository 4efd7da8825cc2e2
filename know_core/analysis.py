"""Numbers behind the dashboard's pictures: one PCA basis over a run's weights, per-weight curves, loss surfaces.

An experiment run stores, per seed, the forgetting trajectory Θ0 … Θ_{S−1}, every method's predictions Θ̂ at each
scale and the real larger-data models (oracles) in ``seeds/seed-N.safetensors``. This module reads them back and
turns them into plain arrays and records; it draws nothing.

PCA is fitted on *all* those points together (trajectory, predictions, cold and warm oracles, the control film), so
distances in the picture compare like with like. A "layer" is a module path (``"3"``, ``"layer1.0.conv1"``); ``None``
means every predicted parameter (conv, fc, bias — normalisation layers are not predicted and are left out).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import KnowError, RunStoreError
from .models import GROUPS
from .store import Run
from .windows import flatten


@dataclass
class SeedWeights:
    """Every stored state dict of one seed of an experiment run, by role."""

    seed: int
    groups: dict[str, str]
    stages: list[dict[str, torch.Tensor]]  # Θ0 first
    predictions: dict[str, dict[float, dict[str, torch.Tensor]]]  # method -> scale -> state
    oracles: dict[float, dict[str, torch.Tensor]]
    info: dict[str, Any] = field(default_factory=dict)  # the seed's json: rows, stage sizes, source accuracy …
    warm: dict[float, dict[str, torch.Tensor]] = field(default_factory=dict)  # scale -> warm oracle Θ_{−k}
    control: list[dict[str, torch.Tensor]] = field(default_factory=list)  # C_1, C_2 …: Θ0 trained on D0 itself


def load_seed(run: Run, seed: int) -> SeedWeights:
    """Read one seed's weights (checksums verified by the store); a missing file is a RunStoreError naming it."""
    from .loaders import Damaged
    from .schemas import check_seed_record, check_states

    file = f"seeds/seed-{seed}.safetensors"
    try:
        info = check_seed_record(run.read_json(f"seeds/seed-{seed}.json"), f"seeds/seed-{seed}.json")
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    tensors, _ = run.read_tensors(file)
    stages: dict[int, dict[str, torch.Tensor]] = {}
    preds: dict[str, dict[float, dict[str, torch.Tensor]]] = {}
    oracles: dict[float, dict[str, torch.Tensor]] = {}
    warm: dict[float, dict[str, torch.Tensor]] = {}
    control: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, tensor in tensors.items():
            kind, rest = key.split("/", 1)
            if kind == "traj":
                stage, name = rest.split("/", 1)
                stages.setdefault(int(stage), {})[name] = tensor
            elif kind == "pred":
                method, scale, name = rest.split("/", 2)
                preds.setdefault(method, {}).setdefault(float(scale), {})[name] = tensor
            elif kind == "oracle":
                scale, name = rest.split("/", 1)
                oracles.setdefault(float(scale), {})[name] = tensor
            elif kind == "warm":
                scale, name = rest.split("/", 1)
                warm.setdefault(float(scale), {})[name] = tensor
            elif kind == "control":
                step, name = rest.split("/", 1)
                control.setdefault(int(step), {})[name] = tensor
    except ValueError as exc:
        raise RunStoreError(f"run {run.id}: seeds/seed-{seed}.safetensors has a malformed key ({exc})") from exc
    if not stages:
        raise RunStoreError(f"run {run.id}: seed {seed} holds no trajectory (was the run made with save_weights off?)")
    try:
        if sorted(stages) != list(range(len(stages))):
            raise Damaged(file, f"trajectory stages {sorted(stages)[:10]} are not 0, 1, 2, …")
        stage_list = [stages[s] for s in sorted(stages)]
        check_states(stage_list, info["groups"], file)
        controls = [control[c] for c in sorted(control)]
        for state in [s for by in preds.values() for s in by.values()] + list(oracles.values()) \
                + list(warm.values()) + controls:
            check_states([stage_list[0], state], {}, file)
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    return SeedWeights(seed, info["groups"], stage_list, preds, oracles, info, warm, controls)


def layers(groups: dict[str, str]) -> dict[str, list[str]]:
    """Predicted parameters by module path, in state-dict order: ``{"0": ["0.weight", "0.bias"], …}``."""
    out: dict[str, list[str]] = {}
    for name, group in groups.items():
        if group in GROUPS:
            out.setdefault(name.rpartition(".")[0] or name, []).append(name)
    return out


def selected_params(groups: dict[str, str], layer: str | None) -> list[str]:
    if layer is None:
        return [name for name, group in groups.items() if group in GROUPS]
    by_layer = layers(groups)
    if layer not in by_layer:
        raise KnowError(f"no predicted layer {layer!r}; layers: {', '.join(by_layer)}")
    return by_layer[layer]


def _accuracy(rows: list[dict], method: str, scale: float) -> float | None:
    for row in rows:
        if row["method"] == method and abs(row["scale"] - scale) < 1e-9 and row.get("valid", True):
            return row.get("source_acc")
    return None


def _predicted(sw: SeedWeights) -> dict[str, dict[float, dict[str, torch.Tensor]]]:
    """Predictions other than naive's (naive is Θ0 at every scale, already the trajectory's first point)."""
    return {m: by for m, by in sw.predictions.items() if m != "naive"}


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
    for method, by_scale in _predicted(sw).items():
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
        k = round(math.log(scale) / math.log(1 / r))
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
    for by_scale in _predicted(sw).values():
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
    with its data size relative to |D0|), every method's rollout at its scales, and the oracle values where they exist."""
    params = selected_params(sw.groups, layer)
    sizes = [sw.stages[0][name].numel() for name in params]
    total = sum(sizes)
    flat_stages = [flatten(state, params) for state in sw.stages]
    stacked = torch.stack(flat_stages)
    moving = ((stacked.amax(0) - stacked.amin(0)) > 0).nonzero().flatten()  # weights that never move tell nothing
    pool = moving if len(moving) else torch.arange(total)
    gen = torch.Generator().manual_seed(sample_seed)
    picks = sorted(pool[torch.randperm(len(pool), generator=gen)[:n]].tolist())
    flat_preds = {m: {s: flatten(st, params) for s, st in by.items()} for m, by in _predicted(sw).items()}
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
        curves.append({
            "param": owner, "index": offset, "group": sw.groups[owner],
            "window": [{"scale": r ** s, "value": float(v[index])} for s, v in enumerate(flat_stages)],
            "methods": {m: [{"scale": s, "value": float(by[s][index])} for s in sorted(by)]
                        for m, by in flat_preds.items()},
            "oracle": [{"scale": s, "value": float(flat_oracles[s][index])} for s in sorted(flat_oracles)],
            "warm": [{"scale": s, "value": float(flat_warm[s][index])} for s in sorted(flat_warm)],
        })
    return curves


def aggregate(rows: list[dict], metric: str) -> list[dict[str, Any]]:
    """Mean, standard deviation (over seeds) and count of ``metric`` per (method, scale), valid rows only."""
    from statistics import mean, stdev

    table: dict[tuple[str, float], list[float]] = {}
    for row in rows:
        if row.get("valid", True) and row.get(metric) is not None:
            table.setdefault((row["method"], float(row["scale"])), []).append(float(row[metric]))
    return [{"method": m, "scale": s, "mean": mean(v), "std": stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
            for (m, s), v in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1]))]


def invalid_methods(rows: list[dict]) -> dict[str, str]:
    """Methods that could not predict (e.g. KNOWN without its checkpoint), with the reason."""
    return {row["method"]: row.get("reason", "") for row in rows if not row.get("valid", True)}


def layer_backtest(sw: SeedWeights, methods: list[str], official_known: str | None = None) -> list[dict[str, Any]]:
    """Backtest rows per layer (hide Θ0, predict it back from the later stages) for each method that can run here;
    a method that cannot (KNOWN without a checkpoint, too few stages) gives one row with a ``note``."""
    from dataclasses import asdict

    from .backtest import backtest_weights
    from .forgetting import Trajectory
    from .methods import make_predictor

    n = len(sw.stages)
    traj = Trajectory(sw.stages, sw.groups, list(sw.info.get("stage_sizes", [0] * n)), [0.0] * n,
                      list(sw.info.get("source_acc_stages", [0.0] * n)), [0.0] * n)
    out: list[dict[str, Any]] = []
    for method in methods:
        try:
            predictor = make_predictor(method, official_known)
            rows, _ = backtest_weights(traj, predictor, 1, method)
        except (KnowError, OSError, ValueError) as exc:
            out.append({"method": method, "note": str(exc)})
            continue
        out += [asdict(r) for r in rows if r.level == "layer"]
    return out


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
    from .config import ForgetConfig, from_dict
    from .data import load_dataset
    from .models import create_model
    from .train import evaluate

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
