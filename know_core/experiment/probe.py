"""What a predictor does to a network that never moved: the KNOWN page's flat-window response, for predictors that
read more than one weight's window.

KNOWN, TaskVector and ExpFit answer one weight's window, so their response to a flat window θ0·[1, 1, 1, 1, 1] is a
curve over θ0. NiNo reads tensors: WNN+ (``nino_mlp``) scales each parameter tensor by its mean and spread over the
window, and its GNN (``nino``) reads the whole network's neural graph. Their flat-window response is asked the same
way they are asked on an experiment's film: a film of a real network whose every weight stayed where it started
(Θ0 = Θ1 = … = Θ4 = a seeded fresh ``simple_cnn`` on 28×28 inputs, 5 classes: the quick preset's network), through
:func:`know_core.engine.extrapolate.predict_groups` as in an experiment. Each weight's Δ = θ̂_{−1} − θ0 is binned by
θ0 (mean Δ per bin), one curve per group. A predictor that returns Θ0 on a still film draws Δ = 0.
"""

from __future__ import annotations

import torch

from know_core.engine.extrapolate import predict_groups
from know_core.engine.windows import to_windows
from know_core.models import GROUPS, create_model, param_groups, predicted_groups
from know_core.predictors import Predictor

FROZEN_MODEL = "simple_cnn"
FROZEN_INPUT = (1, 28, 28)
FROZEN_CLASSES = 5
FROZEN_STAGES = 5


def reads_tensors(predictor: Predictor) -> bool:
    """True for a predictor that reads a whole parameter tensor (``per_tensor``) or network (``whole_model``) rather
    than one weight's window: its answer to a lone window is not what it does on a film."""
    return bool(getattr(predictor, "whole_model", False) or getattr(predictor, "per_tensor", False))


def frozen_film(seed: int = 0) -> tuple[list[dict[str, torch.Tensor]], dict[str, str]]:
    """(states, groups): the still film of :data:`FROZEN_MODEL` at its seeded initialisation, Θ0 first."""
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(seed)
        net = create_model(FROZEN_MODEL, FROZEN_INPUT, FROZEN_CLASSES)
    groups = predicted_groups(param_groups(net))
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return [state] * FROZEN_STAGES, groups


def frozen_response(predictor: Predictor, bins: int = 41, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Per group: ``theta0`` (bin centres), ``delta`` (mean Δ = θ̂_{−1} − θ0 of the weights in the bin) and ``n``
    (weights in the bin; empty bins left out), on :func:`frozen_film`."""
    states, groups = frozen_film(seed)
    preds = predict_groups(states, groups, predictor, 1)
    windows = to_windows(states, groups)
    out = {}
    for group in GROUPS:
        if group not in preds:
            continue
        theta0 = windows[group][:, -1].double()
        delta = preds[group][:, 0].double() - theta0
        lo, hi = float(theta0.min()), float(theta0.max())
        width = (hi - lo) / bins or 1.0
        index = ((theta0 - lo) / width).long().clamp(0, bins - 1)
        count = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(theta0))
        total = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, delta)
        kept = count > 0
        centres = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * width
        out[group] = {"theta0": centres[kept].tolist(), "delta": (total[kept] / count[kept]).tolist(),
                      "n": count[kept].long().tolist()}
    return out
