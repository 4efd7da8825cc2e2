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

from know_core.common.errors import KnowError, RunStoreError
from know_core.experiment.methods import BASELINE
from know_core.models import GROUPS
from know_core.store.legacy import read, seed_films
from know_core.store.loaders import Damaged
from know_core.store.runstore import Run
from know_core.store.schemas import check_seed_record, check_states
from know_core.store.snapshots import HEADER, unpack

StateDict = dict[str, torch.Tensor]
PRED_PREFIX, PRED_SUFFIX = "pred-", ".safetensors"  # pred-<method>.safetensors, as ``predict --run`` stores them


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
    damaged: dict[str, str] = field(default_factory=dict)  # method -> why its stored predictions cannot be read


def load_seed(run: Run, seed: int) -> SeedWeights:
    """Read one seed's weights (checksums verified by the store); a missing file is a RunStoreError naming it."""
    file = f"seeds/seed-{seed}.safetensors"
    try:
        info = check_seed_record(run.read_json(f"seeds/seed-{seed}.json"), f"seeds/seed-{seed}.json")
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    tensors, header = run.read_tensors(file)
    preds: dict[str, dict[float, dict[str, torch.Tensor]]] = {}
    oracles: dict[float, dict[str, torch.Tensor]] = {}
    warm: dict[float, dict[str, torch.Tensor]] = {}
    try:
        films = unpack(tensors, header, file)[0] if HEADER in header else seed_films(tensors, file)
        for name, states in films.items():
            kind, *rest = name.split(":")
            if kind == "pred" and len(rest) == 2:
                preds.setdefault(rest[0], {})[float(rest[1])] = states[0]
            elif kind in ("oracle", "warm") and len(rest) == 1:
                (oracles if kind == "oracle" else warm)[float(rest[0])] = states[0]
            elif name not in ("traj", "control"):
                raise Damaged(file, f"unknown film {name[:80]!r}")
    except ValueError as exc:
        raise Damaged(file, f"malformed film name ({exc})", run.id) from None
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    if "traj" not in films:
        raise RunStoreError(f"run {run.id}: seed {seed} holds no trajectory (was the run made with save_weights off?)")
    stage_list, controls = films["traj"], films.get("control", [])
    try:
        check_states(stage_list, info["groups"], file)
        for state in [s for by in preds.values() for s in by.values()] + list(oracles.values()) \
                + list(warm.values()) + controls:
            check_states([stage_list[0], state], {}, file)
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    return SeedWeights(seed, info["groups"], stage_list, preds, oracles, info, warm, controls)


@dataclass
class StoredRollout:
    """One method's predictions as ``predict --run`` stored them in a film run (an imported film or a forget run):
    Θ̂_{−1} … Θ̂_{−K}, with the predictor's description and whether normalisation layers were reset."""

    method: str
    states: list[StateDict]
    description: str
    reset_norm: bool

    def by_scale(self, r: float) -> dict[float, StateDict]:
        """Θ̂_{−k} by its scale ×(1/r)^k."""
        return {(1 / r) ** (k + 1): state for k, state in enumerate(self.states)}


def is_prediction(name: str) -> bool:
    """Whether a run's file is one method's stored predictions, ``pred-<method>.safetensors``."""
    return name.startswith(PRED_PREFIX) and name.endswith(PRED_SUFFIX) and "/" not in name


def stored_predictions(run: Run, theta0: StateDict, damaged: dict[str, str] | None = None) \
        -> dict[str, StoredRollout]:
    """Every ``pred-<method>.safetensors`` of a film run, by method: read through the store (checksummed, no
    pickle) and checked against Θ0 (the same tensors and shapes, all finite). A damaged file is one Damaged error
    naming the run and the file; given a ``damaged`` dict, it is left out and its reason put there (method -> why)
    instead, so one bad prediction does not hide the film and the others."""
    out: dict[str, StoredRollout] = {}
    for name in sorted(run.manifest.get("files", {})):
        if not is_prediction(name):
            continue
        method = name[len(PRED_PREFIX):-len(PRED_SUFFIX)]
        try:
            films, meta = read(*run.read_tensors(name), name, "predictions")
            states = films.get("predictions") or []
            if not states:
                raise Damaged(name, "holds no predictions")
            if str(meta.get("method") or method) != method:
                raise Damaged(name, f"holds the predictions of {str(meta['method'])[:80]!r}, not {method!r}")
            check_states([theta0, *states], {}, name)
        except Damaged as exc:
            if damaged is None:
                raise exc.for_run(run.id) from None
            damaged[method] = str(exc)
            continue
        out[method] = StoredRollout(method, states, str(meta.get("description") or method),
                                    bool(meta.get("reset_norm")))
    return out


def damaged_predictions(run: Run) -> dict[str, str]:
    """The stored predictions of a film run whose file no longer matches its checksum: file -> why."""
    out = {}
    for name in filter(is_prediction, run.manifest.get("files", {})):
        try:
            run.verify([name])
        except Damaged as exc:
            out[name] = exc.reason
    return out


def layers(groups: dict[str, str]) -> dict[str, list[str]]:
    """Predicted parameters by module path, in state-dict order: ``{"0": ["0.weight", "0.bias"], …}``; a module
    inside a numbered block (``blocks.0.attn.qkv``, ``layer1.0.conv1``) also counts towards the block's own entry
    (``blocks.0``), listed before its members."""
    out: dict[str, list[str]] = {}
    for name, group in groups.items():
        if group in GROUPS:
            module = name.rpartition(".")[0] or name
            parts = module.split(".")
            for i, part in enumerate(parts[:-1]):
                if part.isdigit() and i > 0:
                    out.setdefault(".".join(parts[:i + 1]), []).append(name)
            out.setdefault(module, []).append(name)
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
    return {m: by for m, by in sw.predictions.items() if m != BASELINE}
