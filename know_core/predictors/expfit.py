"""ExpFit: fit θ(j) = a + b·q^j to each row of the window and evaluate it one stage further.

The window is indexed j = 0 … L−1, most-forgotten first, Θ0 at j = L−1; the prediction is the curve at j = L.
Either orientation of an exponential (growing or decaying towards Θ0) is again of this form, with q or 1/q.

Closed form, vectorised over rows, computed in float64 (float32 on devices without it):

1. Differences d_j = x_{j+1} − x_j of an exact sequence satisfy d_{j+1} = q·d_j, so q is the least-squares ratio
   q = Σ d_j·d_{j+1} / Σ d_j² over the L−2 successive pairs (exact on exact sequences).
2. Given q, x_j = α + β·s_j with s_j = Σ_{i<j} q^i = (q^j − 1)/(q − 1) (α = a + b, β = b(q − 1)), so α and β are an
   ordinary linear least-squares fit of x on s, and the prediction is α + β·s_L. The basis comes from the recurrence
   s_{j+1} = 1 + q·s_j, never from dividing by q − 1, so q → 1 turns smoothly into the least-squares straight line
   (s_j = j): the linear limit needs no special case and there is no cancellation near it.

Degenerate windows follow fixed rules, so the result is always finite:

- A row whose differences are not all of one strict sign (constant, a zero step, a sign flip — i.e. no q > 0 could
  explain it) takes the TaskVector step θ0 + (θ0 − θ1) (θ0 itself when the last step is zero).
- q is capped at ``q_max`` (default 2): a fitted growth faster than doubling per stage is treated as noise, which
  bounds a 3-step rollout at 2 + 4 + 8 times the last step. Exactness holds for every q ≤ q_max.
- Any non-finite result (only reachable with inputs near the float range) falls back to θ0.
"""

from __future__ import annotations

import math

import torch

from . import Option, register_predictor
from .base import Predictor, PredictorInputError


class ExpFitPredictor(Predictor):
    """Per-weight exponential-with-offset extrapolation; exact on a + b·q^k for 0 < q ≤ q_max."""

    name = "expfit"
    min_stages = 3  # two differences are the least that determine q
    chunk_rows = 16_384  # its float64 temporaries then stay in cache: ~2× the throughput of larger chunks

    def __init__(self, q_max: float = 2.0) -> None:
        if isinstance(q_max, bool) or not isinstance(q_max, (int, float)) or not (math.isfinite(q_max) and q_max > 1):
            raise PredictorInputError(f"expfit option q_max must be a finite number > 1, got {q_max!r}")
        self.q_max = float(q_max)

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        work = torch.float32 if window.device.type == "mps" else torch.float64
        x = window.to(work).t().contiguous()  # (L, n): stage-major, so every operation runs along long rows
        length = x.shape[0]
        d = x[1:] - x[:-1]
        monotone = (d > 0).all(dim=0) | (d < 0).all(dim=0)
        ratio = (d[:-1] * d[1:]).sum(dim=0) / d[:-1].square().sum(dim=0)
        q = torch.where(monotone, ratio, torch.ones_like(ratio)).clamp(max=self.q_max)

        s = torch.zeros(length + 1, x.shape[1], dtype=work, device=x.device)  # s_0 … s_L
        for j in range(length):
            torch.mul(s[j], q, out=s[j + 1]).add_(1.0)  # s_{j+1} = 1 + q·s_j
        s_mean, x_mean = s[:length].mean(dim=0), x.mean(dim=0)
        s_c, x_c = s[:length] - s_mean, x - x_mean
        beta = (s_c * x_c).sum(dim=0) / s_c.square().sum(dim=0)
        fitted = x_mean + beta * (s[length] - s_mean)

        pred = torch.where(monotone, fitted, 2 * x[-1] - x[-2]).to(window.dtype)
        return torch.where(torch.isfinite(pred), pred, window[:, -1])

    def describe(self) -> str:
        return f"expfit: least-squares a + b·q^k per weight, q ≤ {self.q_max:g}, TaskVector step where no q > 0 fits"


register_predictor("expfit", ExpFitPredictor, label="ExpFit", colour="#ff7f0e", order=20,
                   help="fit a + b·q^j to each weight and evaluate it one stage further",
                   options=[Option("q_max", "float", 2.0, "largest growth ratio q fitted per stage (default 2)",
                                   low=1.0)])
