"""The weights of one seed of an experiment run, read back by role: trajectory, predictions, oracles, control.

An experiment run stores, per seed, the forgetting trajectory Θ0 … Θ_{S−1}, every method's predictions Θ̂ at each
scale, the real larger-data models (cold and warm oracles) and the control film in ``seeds/seed-N.safetensors``
(see :mod:`.seed`). A "layer" is a module path (``"3"``, ``"layer1.0.conv1"``); ``None`` means every predicted
parameter (conv, fc, bias — normalisation layers are not predicted and are left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import KnowError, RunStoreError
from .models import GROUPS
from .store import Run


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


def predicted(sw: SeedWeights) -> dict[str, dict[float, dict[str, torch.Tensor]]]:
    """Predictions other than naive's (naive is Θ0 at every scale, already the trajectory's first point)."""
    return {m: by for m, by in sw.predictions.items() if m != "naive"}
