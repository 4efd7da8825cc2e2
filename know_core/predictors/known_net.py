"""KNOWN, the paper's hyper-model (docs/method.md, "KNOWN"): the trainable network, written to be read.

``KNOWN.forward`` is the reference: meta-training differentiates it, the tests check the official outputs against it,
and :mod:`.known_fast` computes the same function faster for inference. The layer names here are the ones the Keras
importer (:mod:`.keras_import`) maps the authors' files onto.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGES = 5
EXP_CLAMP = 30.0  # e⊙h is clamped here before exp: far above anything the official nets produce, below overflow
INPUT_MODES = ("raw", "range")
RANGE_EPS = 1e-12  # floor of the per-window range in "range" mode (constant windows)
LEAKY_SLOPE = 0.3


class KNOWNStream(nn.Module):
    """One input stream: projection, ReLU bottleneck, gated exponential, LeakyReLU out-projection."""

    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.inp, self.squeeze = nn.Linear(n_in, 64), nn.Linear(64, 8)
        self.base, self.gate, self.scale = nn.Linear(8, 64), nn.Linear(8, 64), nn.Linear(8, 64)
        self.out = nn.Linear(64, 32)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.inp(v)
        z = F.relu(self.squeeze(h))
        t = self.base(z) + self.gate(z) * torch.exp(torch.clamp(self.scale(z) * h, max=EXP_CLAMP))
        return F.leaky_relu(self.out(t), LEAKY_SLOPE)


class KNOWN(nn.Module):
    """Next value of each 5-stage window (most-forgotten first): x[4] + Δ, with Δ = tanh(head([A(x), B(diff x)])).

    ``input_mode`` "raw" is the official convention. "range" makes the network scale-invariant: each window is
    shifted to x[4] = 0 and divided by its range s, and the prediction is x[4] + s·out_scale·Δ. ``out_scale`` (a
    buffer, 1.0 by default) multiplies Δ in both modes. Windows longer than 5 use their last 5 columns.
    """

    def __init__(self, input_mode: str = "raw") -> None:
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"KNOWN input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.input_mode = input_mode
        self.x_stream, self.d_stream = KNOWNStream(STAGES), KNOWNStream(STAGES - 1)
        self.head = nn.Linear(64, 1)
        self.register_buffer("out_scale", torch.tensor(1.0))

    @staticmethod
    def check_stages(window: torch.Tensor) -> None:
        if window.ndim != 2 or window.shape[1] < STAGES:
            raise ValueError(f"KNOWN needs 5 stages per window (rows, 5); got shape {tuple(window.shape)}")

    def inputs(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, d) as the streams see them, plus the anchor x[4] and the factor that turns Δ into a step."""
        self.check_stages(window)
        x = window[:, -STAGES:].to(self.head.weight.dtype)
        anchor, step = x[:, -1], self.out_scale.expand(x.shape[0])
        if self.input_mode == "range":
            s = (x.amax(dim=1) - x.amin(dim=1)).clamp_min(RANGE_EPS).unsqueeze(1)
            x, step = (x - anchor.unsqueeze(1)) / s, step * s.squeeze(1)
        return x, x.diff(dim=1), anchor, step

    def _delta(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(torch.cat([self.x_stream(x), self.d_stream(d)], dim=1))).squeeze(1)

    def delta(self, window: torch.Tensor) -> torch.Tensor:
        """The tanh head's output Δ, (N,)."""
        x, d, _, _ = self.inputs(window)
        return self._delta(x, d)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """Predicted next value, (N,): the reference implementation (and the one to train)."""
        x, d, anchor, step = self.inputs(window)
        return anchor + step * self._delta(x, d)
