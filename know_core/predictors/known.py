"""The ``known`` predictor: KNOWN retrodiction with one network per parameter group (docs/method.md, "KNOWN").

The network, its inference path, its checkpoint format and the Keras importer each have their own module
(:mod:`.known_net`, :mod:`.known_fast`, :mod:`.known_checkpoint`, :mod:`.keras_import`); this one picks the weights
and runs them. The names callers have always imported from here are re-exported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from know_core.predictors import known_checkpoint

from ..models import GROUPS
from . import Option, register_predictor
from .base import Predictor, PredictorInputError
from .keras_import import KERAS_LAYERS, OFFICIAL_FILES, load_official_folder
from .known_checkpoint import DEFAULT_CHECKPOINT, KNOWNWeightsMissing, load_known_checkpoint, save_known_checkpoint
from .known_fast import predict_fast
from .known_net import KNOWN, STAGES

__all__ = ["DEFAULT_CHECKPOINT", "KERAS_LAYERS", "KNOWN", "KNOWNPredictor", "KNOWNWeightsMissing", "OFFICIAL_FILES",
           "load_known_checkpoint", "save_known_checkpoint"]


class KNOWNPredictor(Predictor):
    """KNOWN retrodiction, one network per group, from official Keras files, a checkpoint, or networks in memory."""

    name = "known"
    min_stages = STAGES
    chunk_rows = 65_536  # each worker's predict_fast call then runs single-threaded over 16 cache-sized chunks

    def __init__(self, weights: str | Path | Mapping[str, KNOWN] | None = None) -> None:
        if isinstance(weights, Mapping):
            if not weights or any(g not in GROUPS or not isinstance(n, KNOWN) for g, n in weights.items()):
                raise PredictorInputError(f"weights must map some of {GROUPS} to KNOWN networks, got {dict(weights)}")
            self.nets, self.source = dict(weights), "networks in memory"
            return
        path = DEFAULT_CHECKPOINT if weights is None else Path(weights)
        if weights is None and not path.is_file():
            raise KNOWNWeightsMissing(
                f"the default KNOWN checkpoint is missing ({path}): `python -m know_core metatrain` makes it, "
                f"or pass weights=FOLDER holding the official {', '.join(OFFICIAL_FILES.values())}")
        if path.is_dir():
            self.nets, self.source = load_official_folder(path), f"official Keras weights in {path}"
        else:
            self.nets, _ = load_known_checkpoint(path)
            self.source = f"checkpoint {path.name}"

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        """The group's network, moved to the window's device if needed, through its fast path."""
        net = self.nets.get(group)
        if net is None:
            raise PredictorInputError(f"this KNOWN ({self.source}) has no network for group {group!r}; "
                                      f"it has {', '.join(self.nets)}")
        if net.out_scale.device != window.device:
            net.to(window.device)
        return predict_fast(net, window).to(window.dtype)

    def describe(self) -> str:
        modes = ", ".join(f"{group}: {net.input_mode}" for group, net in self.nets.items())
        return f"known: KNOWN hyper-model, {self.source} (input mode {modes})"


def default_checkpoint() -> Path:
    """The default checkpoint file, looked up when asked (a test may point the module elsewhere)."""
    return known_checkpoint.DEFAULT_CHECKPOINT


def checkpoint_identity() -> dict | None:
    """Which default KNOWN produced a run's ``known`` rows: its card's hash and command (None when it is missing)."""
    card = default_checkpoint().with_suffix(".json")
    if not card.exists():
        return None
    data = json.loads(card.read_text(encoding="utf-8"))
    return {"sha256": data.get("sha256"), "command": data.get("command")}


register_predictor("known", KNOWNPredictor, label="KNOWN", colour="#2ca02c", order=30,
                   help="the learned hyper-model: one network per parameter group on a 5-stage window",
                   extra={"checkpoint": default_checkpoint, "checkpoint_identity": checkpoint_identity,
                          "makes_checkpoint": "`python -m know_core metatrain`", "meta_trained": True,
                          "official_weights": True},
                   options=[Option("weights", "path", None, "a folder with KNOWN_{Conv,FC,Bias}.h5 (the official "
                                   "networks) or a .safetensors checkpoint; default: the project's own checkpoint")])
