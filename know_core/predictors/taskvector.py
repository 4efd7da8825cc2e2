"""TaskVector extrapolation: continue the last forgetting step backwards, θ̂ = θ0 + λ(θ0 − θ1).

With λ = 1 it is exact on linear trajectories and equals KNOW with S = 2 (the paper's ablation). It ignores all but the
last two stages, which is why it is the yardstick the longer-window predictors have to beat.
"""

from __future__ import annotations

import math

import torch

from . import Option, register_predictor
from .base import Predictor, PredictorInputError


class TaskVectorPredictor(Predictor):
    """θ̂ = θ0 + λ(θ0 − θ1); rolled, it walks the same step again each time (a straight line when λ = 1)."""

    name = "taskvector"
    min_stages = 2

    def __init__(self, lam: float = 1.0) -> None:
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam):
            raise PredictorInputError(f"taskvector option lam must be a finite number, got {lam!r}")
        self.lam = float(lam)

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        theta0, theta1 = window[:, -1], window[:, -2]
        return theta0 + self.lam * (theta0 - theta1)

    def describe(self) -> str:
        return f"taskvector: θ0 + λ(θ0 − θ1), λ={self.lam:g}"


register_predictor("taskvector", TaskVectorPredictor, label="TaskVector", colour="#1f77b4", order=10,
                   help="continue the last forgetting step backwards, θ0 + λ(θ0 − θ1)",
                   options=[Option("lam", "float", 1.0, "step multiplier λ (default 1)")])
