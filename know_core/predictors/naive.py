"""The "naïve" baseline: keep Θ0. Every comparison in the product is made against it (docs/method.md)."""

from __future__ import annotations

import torch

from . import register_predictor
from .base import Predictor


class NaivePredictor(Predictor):
    """θ̂_{−k} = θ0 for every k: fine-tuning starts from the pre-trained weights themselves."""

    name = "naive"
    min_stages = 2  # only Θ0 is used, but a trajectory of one stage is always a caller's mistake

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        return window[:, -1].clone()

    def describe(self) -> str:
        return "naive: θ0 unchanged"


register_predictor("naive", NaivePredictor, label="Naive (Θ0)", colour="#7f7f7f", order=0,
                   help="keep Θ0: the baseline every comparison is made against")
