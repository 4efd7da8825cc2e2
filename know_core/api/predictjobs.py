"""Predictions for a stored film from the dashboard: which methods a film can take, and a background job that stores
one method's Θ̂_{−1..−K} in an imported film or a forget run (what ``predict --run`` does), with progress and Cancel."""

from __future__ import annotations

import os
from typing import Any

from know_core.engine.extrapolate import MAX_STEPS
from know_core.experiment.methods import BASELINE, label, missing_checkpoints
from know_core.jobs import folderjobs as jobs
from know_core.predictors import available_predictors, predictor_entry, predictor_trait

Root = str | os.PathLike
MAX_PREDICT_STEPS = MAX_STEPS


def predict_choices(stages: int) -> list[dict[str, Any]]:
    """Every registered predictor but the baseline, for a film of ``stages`` stages: ``method``, ``label``,
    ``reason`` (None where it can run; else why not: the film is too short, its checkpoint is missing),
    ``missing_checkpoint`` (that reason, which a path option naming other weights lifts) and ``options``: what it
    takes, each with ``name``, ``kind`` (float, int, str or path), ``help`` and ``default`` (the registry's; None
    where it names none), for a form to draw one input each."""
    out = []
    for method in available_predictors():
        if method == BASELINE:
            continue
        entry = predictor_entry(method)
        need, reason, missing = entry.min_stages, None, bool(missing_checkpoints([method]))
        if stages < need:
            reason = f"needs a film of at least {need} stages; this one has {stages}"
        elif missing:
            reason = f"its checkpoint {predictor_trait(method, 'checkpoint')()} is not there"
        options = [{"name": o.name, "kind": o.kind, "help": o.help, "default": o.default} for o in entry.options]
        out.append({"method": method, "label": label(method), "reason": reason, "missing_checkpoint": missing,
                    "options": options})
    return out


def start_predict(root: Root, run_id: str, method: str, steps: int = 3, reset_norm: bool = False,
                  include_embed: bool = False, drift_correct: bool = False,
                  options: dict[str, Any] | None = None) -> str:
    """Store ``method``'s predictions ×(1/r) … ×(1/r)^steps in the imported film or forget run ``run_id`` from a
    background worker; returns the job's key for :func:`predict_status`. ``options`` (option name -> value, as
    :func:`predict_choices` lists them; None or left out: the registry's default) build the predictor, as the
    ``predict`` command's ``--lam``, ``--weights`` … do. A request that cannot run (unknown method, steps outside
    1..MAX_PREDICT_STEPS, another kind of run, a film too short for the method, an option the method does not take,
    a value of the wrong kind, a weights path that is not there, drift correction without a control film) is refused
    here in one line (KnowError), and no job is started."""
    return jobs.launch_predict(root, run_id, method, steps, reset_norm, include_embed, drift_correct, options)


def predict_status(root: Root, key: str) -> dict[str, Any]:
    """The predict job's ``state``: running (with ``phase``/``done``/``total``), done (with ``run_id``, ``method``,
    ``file``, ``scales`` and the ``lines`` the CLI prints), failed or cancelled (with ``error``), missing."""
    return jobs.predict_status(root, key)


def cancel_predict(root: Root, key: str) -> None:
    """Ask the predict job to stop; it stops at the next tensor or group and stores nothing."""
    jobs.cancel_predict(root, key)


__all__ = ["MAX_PREDICT_STEPS", "cancel_predict", "predict_choices", "predict_status", "start_predict"]
