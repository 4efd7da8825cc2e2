"""Whole-model extrapolation: Θ̂_{−1} … Θ̂_{−K} as state dicts, from a trajectory and a predictor.

conv / fc / bias parameters are predicted group by group; normalisation parameters and buffers are copied from Θ0
(the default, said in the UI) or reset to their initial values (``reset_norm``, the official release's behaviour).
Every prediction is checked: a non-finite value is reported per parameter and never used.

:func:`stream_predictions` does the same one parameter at a time, reading the film from its file and writing the
predictions tensor by tensor, for films larger than memory (an imported network's).
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from safetensors.torch import save_file

from know_core.common.errors import KnowError
from know_core.common.finite import all_finite
from know_core.common.hooks import Hooks
from know_core.engine.windows import from_vectors, group_layout, row_owner, to_windows
from know_core.models import GROUPS
from know_core.predictors import Predictor
from know_core.store.runstore import Run
from know_core.store.snapshots import SnapshotWriter, pack


class NonFinitePrediction(KnowError):
    """A predictor produced NaN or Inf; ``bad`` maps parameter name -> number of non-finite values."""

    def __init__(self, method: str, bad: dict[str, int]):
        self.bad = bad
        listed = ", ".join(f"{name} ({n})" for name, n in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        super().__init__(f"{method} predicted non-finite values for {len(bad)} parameter(s): {listed}{more}")


def predict_groups(states: list[dict[str, torch.Tensor]], groups: dict[str, str], predictor: Predictor,
                   steps: int, hooks: Hooks | None = None) -> dict[str, torch.Tensor]:
    """Per group, the (N, steps) rolled predictions for the trajectory ``states`` (Θ_newest first in the list);
    ``hooks`` hear one step per group and may stop it between groups."""
    hooks = hooks or Hooks()
    base = states[0]
    preds: dict[str, torch.Tensor] = {}
    # a predictor that reads the whole network at once (nino: its neural graph) gets the film, not group windows
    whole = predictor.predict_film(states, groups, steps) if getattr(predictor, "whole_model", False) else None
    windows = to_windows(states, groups)
    for n, (group, window) in enumerate(windows.items()):
        hooks.check()
        hooks.report("predict groups", n, len(windows))
        if whole is not None:
            preds[group] = whole[group]
        else:
            if not bool(torch.isfinite(window).all()):  # find the parameter a NaN/Inf came from, to name it
                for name, lo, hi in row_owner(groups, base, group):
                    predictor.predict(window[lo:hi], 1, group, param_name=name)
            # a predictor that scales or types each parameter tensor on its own (nino_mlp) is told where they lie
            per_tensor = {"tensors": group_layout(groups, base)[group]} if getattr(predictor, "per_tensor", False) \
                else {}
            preds[group] = predictor.predict(window, steps, group, **per_tensor)
        bad = {name: int((~torch.isfinite(preds[group][lo:hi])).sum())
               for name, lo, hi in row_owner(groups, base, group)}
        bad = {name: n for name, n in bad.items() if n}
        if bad:
            raise NonFinitePrediction(predictor.describe(), bad)
    hooks.report("predict groups", len(windows), len(windows))
    return preds


def reset_norm_layers(state: dict[str, torch.Tensor], groups: dict[str, str]) -> dict[str, torch.Tensor]:
    """Normalisation layers back to their initial values (weight 1, bias 0, running statistics 0/1)."""
    modules = {name.rsplit(".", 1)[0] for name, group in groups.items() if group == "norm"}
    out = dict(state)
    for name, tensor in state.items():
        module, _, leaf = name.rpartition(".")
        if module not in modules:
            continue
        fill = {"weight": 1, "running_var": 1}.get(leaf, 0)
        out[name] = torch.full_like(tensor, fill)
    return out


def extrapolate(states: list[dict[str, torch.Tensor]], groups: dict[str, str], predictor: Predictor, steps: int,
                reset_norm: bool = False, hooks: Hooks | None = None) -> list[dict[str, torch.Tensor]]:
    """[Θ̂_{−1}, …, Θ̂_{−steps}] for the trajectory [Θ0, Θ1, …] (``states[0]`` is Θ0)."""
    preds = predict_groups(states, groups, predictor, steps, hooks)
    out = []
    for k in range(steps):
        state = from_vectors(states[0], groups, {g: p[:, k] for g, p in preds.items()})
        out.append(reset_norm_layers(state, groups) if reset_norm else state)
    return out


def prediction_file(method: str) -> str:
    return f"pred-{method}.safetensors"


def save_predictions(run: Run, method: str, predicted: list[dict[str, torch.Tensor]], description: str,
                     reset_norm: bool) -> str:
    """Store Θ̂_{−1..−K} in the run as ``pred-<method>.safetensors``: snapshot film ``predictions`` (index k−1 is
    Θ̂_{−k}) with the method, its description and ``reset_norm`` in the header."""
    tensors, meta = pack({"predictions": predicted}, {"method": method, "description": description,
                                                       "reset_norm": reset_norm})
    name = prediction_file(method)
    run.write_artifact(name, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return name


MAX_STEPS = 10  # rolled prediction steps: ×(1/r)^10 virtual data is already far beyond any meaning


def _norm_fill(name: str, norm_modules: set[str]) -> int | None:
    """The value :func:`reset_norm_layers` gives ``name`` (None: not a normalisation tensor)."""
    module, _, leaf = name.rpartition(".")
    return {"weight": 1, "running_var": 1}.get(leaf, 0) if module in norm_modules else None


def stream_predictions(path: str | os.PathLike, get: Callable[[int, str], torch.Tensor], stages: int,
                       shapes: dict[str, tuple[tuple, torch.dtype]], groups: dict[str, str], predictor: Predictor,
                       steps: int, meta: dict, reset_norm: bool = False, hooks: Hooks | None = None) -> None:
    """Θ̂_{−1..−steps} written to the snapshot file ``path`` (film ``predictions``, as :func:`save_predictions`),
    one parameter at a time: ``get(i, name)`` reads Θi's tensor, so memory holds one parameter's window (its S
    stages) and its K predictions. For predictors that treat each row of a window on its own (every one but the
    whole-model ``nino``) the result equals :func:`extrapolate`'s."""
    if getattr(predictor, "whole_model", False):
        raise KnowError(f"{predictor.describe()} reads the whole network at once; it cannot predict one tensor at "
                        "a time")
    hooks = hooks or Hooks()
    norm_modules = {name.rsplit(".", 1)[0] for name, group in groups.items() if group == "norm"}
    with SnapshotWriter(path, {"predictions": steps}, shapes, meta) as writer:
        # in name order: Θ̂_{−1}'s tensors then reach the writer in the order of the file's digest, which hashes
        # them as they are written instead of reading them back at the end
        for n, name in enumerate(sorted(shapes)):
            shape, dtype = shapes[name]
            hooks.check()
            hooks.report("predict tensors", n, len(shapes))
            group = groups.get(name)
            if group in GROUPS:
                window = torch.stack([get(i, name).reshape(-1).float() for i in reversed(range(stages))], dim=1)
                per_tensor = {"tensors": [(name, torch.Size(shape))]} if getattr(predictor, "per_tensor", False) \
                    else {}
                # the predictor checks the window (a NaN/Inf in it is reported with the parameter's name)
                pred = predictor.predict(window, steps, group, param_name=name, **per_tensor)
                del window
                bad = 0 if all_finite(pred) else int((~torch.isfinite(pred)).sum())
                if bad:
                    raise NonFinitePrediction(predictor.describe(), {name: bad})
                for k in range(steps):
                    writer.put("predictions", k, name, pred[:, k].reshape(shape).to(dtype))
                continue
            fill = _norm_fill(name, norm_modules) if reset_norm else None
            theta0 = get(0, name)
            value = theta0 if fill is None else torch.full_like(theta0, fill)
            for k in range(steps):
                writer.put("predictions", k, name, value)
        hooks.report("predict tensors", len(shapes), len(shapes))


def stream_to_run(run: Run, method: str, get: Callable[[int, str], torch.Tensor], stages: int,
                  shapes: dict[str, tuple[tuple, torch.dtype]], groups: dict[str, str], predictor: Predictor,
                  steps: int, reset_norm: bool = False, hooks: Hooks | None = None) -> str:
    """:func:`stream_predictions` into the run's ``pred-<method>.safetensors``; returns the file name."""
    meta = {"method": method, "description": predictor.describe(), "reset_norm": reset_norm}
    name = prediction_file(method)
    run.write_artifact(name, lambda tmp: stream_predictions(tmp, get, stages, shapes, groups, predictor, steps, meta,
                                                            reset_norm, hooks))
    return name
