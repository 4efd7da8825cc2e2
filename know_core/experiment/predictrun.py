"""Predictions for a stored film: Θ̂_{−1..−K} of an imported film or a forget run, written into the run as
``pred-<method>.safetensors``. One place for the ``predict`` command and the dashboard's background predict job.

An imported film with a per-window predictor is predicted one tensor at a time from its file (films larger than
memory); a whole-model predictor (NiNo's GNN), drift correction and forget runs read the whole film. Progress goes to
the hooks (phase, done/total), a cancel is ``hooks.check()`` between tensors or groups, and the file is written
atomically with the run's manifest (:meth:`~know_core.store.runfolder.Run.write_artifact`): a cancel or an error
leaves the run as it was. A stored prediction moves the run's ``updated`` time, so cached reads of it are redone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from know_core.common.errors import KnowError
from know_core.common.hooks import Hooks
from know_core.engine.extrapolate import MAX_STEPS, extrapolate, save_predictions, stream_to_run
from know_core.experiment.films import film_length, open_forget_run
from know_core.experiment.methods import BASELINE, DC_SUFFIX, missing_checkpoints
from know_core.experiment.retrodiction import extrapolate_dc
from know_core.imports.film import KIND as IMPORTED
from know_core.imports.film import open_imported_film, open_imported_run
from know_core.models import predicted_groups
from know_core.predictors import Predictor, available_predictors, get_predictor, predictor_entry, predictor_trait
from know_core.store.loaders import check_user_file
from know_core.store.runstore import RunStore

PREDICTABLE = (IMPORTED, "forget")  # the run kinds a prediction is stored into (an experiment predicts its own)


@dataclass
class StoredPrediction:
    """What :func:`predict_run` stored: the file, the method's name in it (``<m>+dc`` with drift correction), the
    scales ×(1/r)^k, and what was done with normalisation layers and embeddings."""

    path: Path
    method: str
    description: str
    steps: int
    scales: list[float]
    reset_norm: bool
    has_embed: bool
    include_embed: bool
    streamed: bool

    @property
    def name(self) -> str:
        return self.path.name

    def lines(self) -> list[str]:
        """The lines the ``predict`` command prints."""
        scales = ", ".join(f"×{s:g}" for s in self.scales)
        out = [f"stored {self.steps} predicted models ({scales} data) from {self.description} in {self.path}"
               + (", one tensor at a time" if self.streamed else ""),
               "normalisation layers: " + ("reset (as released)" if self.reset_norm else "kept from Θ0")]
        if self.has_embed:
            out.append("embeddings (positional, class token): "
                       + ("predicted with fc" if self.include_embed else "kept from Θ0"))
        return out


def check_memory(traj, steps: int) -> None:
    """The K predicted models (plus working copies) must fit in the memory that is free now."""
    per_model = sum(t.numel() * t.element_size() for t in traj.states[0].values())
    need = per_model * (steps + len(traj.states)) * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return
    if need > free // 2:
        raise KnowError(
            f"--steps {steps} needs about {need / 1e9:.1f} GB for this model, more than half of the "
            f"{free / 1e9:.1f} GB free; use fewer steps"
        )


def predictor_options(method: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` (option name -> value; a None value: the registry's default) checked against what ``method``
    declares: an option it does not take (the ones it takes are listed), a value of the wrong kind, a path that is
    not there. Returns the options to build it with; one-line KnowError otherwise."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise KnowError(f"options must map option names to values, got {options!r}")
    declared = {o.name: o for o in predictor_entry(method).options}
    chosen: dict[str, Any] = {}
    for name, value in options.items():
        option = declared.get(name)
        if option is None:
            raise KnowError(f"{method} has no option {name!r}; its options: {', '.join(declared) or 'none'}")
        if value is None:
            continue
        what = f"{method} option {name}"
        if option.kind in ("float", "int"):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or (option.kind == "int" and not isinstance(value, int)):
                kind = "an integer" if option.kind == "int" else "a finite number"
                raise KnowError(f"{what} must be {kind}, got {value!r}")
        elif not isinstance(value, str):
            raise KnowError(f"{what} must be {'a path' if option.kind == 'path' else 'text'}, got {value!r}")
        elif option.kind == "path":
            check_user_file(value, what)
        chosen[name] = float(value) if option.kind == "float" else value
    return chosen


def check_predict_request(store: RunStore, run_id: str, method: str, steps: int, drift_correct: bool,
                          options: dict[str, Any] | None = None) -> Predictor:
    """Refuse, in one line, a prediction that cannot run: an unknown method (or the baseline, which predicts
    nothing), steps outside 1..MAX_STEPS, a run that is not a finished imported film or forget run, a film shorter
    than the method needs, options the method does not take or of the wrong kind (:func:`predictor_options`), a
    predictor whose default checkpoint is missing (and no path option names other weights), drift correction without
    a control film (its length read from the control file's header, no tensor loaded), a predictor that cannot be
    built with these options (the words of ``get_predictor``, as the ``predict`` command says them). Returns the
    predictor, built once."""
    methods = [m for m in available_predictors() if m != BASELINE]
    if method not in methods:
        raise KnowError(f"unknown method {method!r}; available: {', '.join(methods)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise KnowError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    info = store.info(run_id)
    if info.kind not in PREDICTABLE or info.status != "done":
        raise KnowError(f"run {run_id} is a {info.status} {info.kind} run; predictions are stored into a finished "
                        "imported film or forget run")
    stages, need = int(info.config.get("stages") or 0), predictor_entry(method).min_stages
    if stages < need:
        raise KnowError(f"{method} needs a film of at least {need} stages; this one has {stages}")
    chosen = predictor_options(method, options)
    other_weights = any(predictor_entry(method).option(name).kind == "path" for name in chosen)
    if missing_checkpoints([method]) and not other_weights:
        raise KnowError(f"{method} needs its checkpoint {predictor_trait(method, 'checkpoint')()}, which is not there")
    if drift_correct and info.kind == IMPORTED:
        raise KnowError(f"run {run_id} is an imported film: it has no control film, so no drift correction")
    if drift_correct and film_length(store.open(run_id), "control") < stages - 1:
        raise KnowError(f"run {run_id} has no control film long enough for drift correction (recorded with warm "
                        "oracles off, or before control films existed)")
    return get_predictor(method, **chosen)


def predict_run(store: RunStore, run_id: str, method: str, predictor: Predictor, steps: int, reset_norm: bool = False,
                include_embed: bool = False, drift_correct: bool = False, hooks: Hooks | None = None) \
        -> StoredPrediction:
    """Predict Θ̂_{−1..−steps} of the stored film ``run_id`` with ``predictor`` (registered as ``method``) and store
    them in the run; returns what was stored. Nothing is written on a cancel or an error."""
    hooks = hooks or Hooks()
    store.require_writable()
    whole = getattr(predictor, "whole_model", False)
    if store.info(run_id).kind == IMPORTED and not whole and not drift_correct:
        return _streamed(store, run_id, method, predictor, steps, reset_norm, include_embed, hooks)
    hooks.report("read the film", 0, 1)
    opener = open_imported_run if store.info(run_id).kind == IMPORTED else open_forget_run
    run, cfg, traj = opener(store, run_id)
    has_embed = "embed" in traj.groups.values()
    traj.groups = predicted_groups(traj.groups, include_embed)
    check_memory(traj, steps)
    hooks.check()
    if drift_correct:
        if traj.control is None or len(traj.control.states) < len(traj.states) - 1:
            raise KnowError(
                f"run {run_id} has no control film long enough for drift correction (recorded with "
                "warm oracles off, or before control films existed); re-run forget with --oracles auto"
            )
        predicted = extrapolate_dc(traj.states, traj.control, traj.groups, predictor, steps, reset_norm, hooks)
        method += DC_SUFFIX
    else:
        predicted = extrapolate(traj.states, traj.groups, predictor, steps, reset_norm=reset_norm, hooks=hooks)
    hooks.check()
    hooks.report("store the predictions", 0, 1)
    name = save_predictions(run, method, predicted, predictor.describe(), reset_norm)
    store.touch(run_id)
    hooks.report("store the predictions", 1, 1)
    return StoredPrediction(run.path / name, method, predictor.describe(), steps, _scales(cfg.r, steps), reset_norm,
                            has_embed, include_embed, False)


def _scales(r: float, steps: int) -> list[float]:
    return [(1 / r) ** k for k in range(1, steps + 1)]


def _streamed(store: RunStore, run_id: str, method: str, predictor: Predictor, steps: int, reset_norm: bool,
              include_embed: bool, hooks: Hooks) -> StoredPrediction:
    """An imported film, predicted one parameter at a time from its file (films larger than memory)."""
    run, cfg, film = open_imported_film(store, run_id)
    try:
        has_embed = "embed" in film.groups.values()
        groups = predicted_groups(film.groups, include_embed)
        name = stream_to_run(run, method, film.get, film.stages, film.shapes, groups, predictor, steps, reset_norm,
                             hooks)
    finally:
        film.snapshots.close()
    store.touch(run_id)
    return StoredPrediction(run.path / name, method, predictor.describe(), steps, _scales(cfg.r, steps), reset_norm,
                            has_embed, include_embed, True)
