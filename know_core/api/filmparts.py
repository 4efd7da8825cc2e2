"""The parts a notebook :class:`~know_core.api.library.Film` is made of: its errors, the records its backtest and
PCA return, and the readers that load a stored run's film (imported and forget runs) with its stored predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from know_core.common.errors import KnowError
from know_core.experiment.backtest import BacktestRow
from know_core.experiment.films import open_forget_run
from know_core.experiment.pca import PCA
from know_core.experiment.seedweights import SeedWeights, stored_predictions
from know_core.imports.film import open_imported_run
from know_core.store.runfolder import Run
from know_core.store.runstore import RunStore

StateDict = dict[str, torch.Tensor]


class FilmError(KnowError):
    """A film asked for something it cannot do (a scale it cannot predict, a plot that does not exist, an export
    before the film is stored); the message is one line."""


@dataclass
class Backtest:
    """Backtest figures of a film: Θ0 (and Θ1 for ``steps=2``) hidden and predicted back from the older stages.

    ``rows``: one per method and group (``level="group"``) and per method and parameter (``level="layer"``), with
    ``rel_error`` = ‖θ̂0 − θ0‖ / ‖θ_v − θ0‖ (θ_v the newest visible stage: 1.0 = no better than keeping it, below 1 a
    real recovery) and ``cosine`` of the predicted and the true change. ``notes``: the methods that could not run on
    this film, with the reason (KNOWN needs 5 visible stages, say)."""

    steps: int
    rows: list[BacktestRow]
    notes: dict[str, str] = field(default_factory=dict)

    def frame(self, level: str = "group") -> pd.DataFrame:
        """The rows of one level (``"group"`` or ``"layer"``) as a table."""
        if level not in ("group", "layer"):
            raise FilmError(f"level {level!r}: use 'group' or 'layer'")
        rows = [vars(r) for r in self.rows if r.level == level]
        return pd.DataFrame(rows, columns=list(BacktestRow.__dataclass_fields__))

    def rel_error(self, method: str, group: str) -> float | None:
        """The relative error of ``method`` on ``group`` (None where the true change is zero)."""
        for r in self.rows:
            if r.level == "group" and r.method == method and r.group == group:
                return r.rel_error
        raise FilmError(f"no backtest row for method {method!r} and group {group!r}")

    def __str__(self) -> str:
        lines = [f"{'method':<14}{'group':>7}{'weights':>10}{'rel. error':>12}{'cosine':>9}"]
        for r in self.rows:
            if r.level == "group":
                rel = "-" if r.rel_error is None else f"{r.rel_error:.3f}"
                cos = "-" if r.cosine is None else f"{r.cosine:.3f}"
                lines.append(f"{r.method:<14}{r.group:>7}{r.n:>10}{rel:>12}{cos:>9}")
        lines += [f"{m}: {why}" for m, why in self.notes.items()]
        return "\n".join(lines + ["rel. error: 1.0 = no better than keeping the newest visible stage; lower is better"])


@dataclass
class FilmPCA:
    """One PCA basis fitted on every network of the film and its predictions (the Trajectory page's numbers).

    ``points``: one record per network (``kind``, ``method``, ``stage``, ``scale``, ``label``, ``pc1`` …);
    ``explained``: each component's share of the variance; ``pca``: the basis (mean, components, coordinates)."""

    points: list[dict[str, Any]]
    explained: list[float]
    pca: PCA

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.points)


@dataclass
class _Rolled:
    """One method's rolled predictions Θ̂_{−1} … Θ̂_{−K} as :func:`extrapolate` makes them, and how."""

    states: list[StateDict]
    description: str
    reset_norm: bool
    saved: bool = False


@dataclass
class _Loaded:
    """What a film holds once read: its networks, groups and what came with them (a run's oracles and films)."""

    weights: SeedWeights
    rolled: dict[str, _Rolled] = field(default_factory=dict)


def _stored_predictions(run: Run, r: float, theta0: StateDict) \
        -> tuple[dict[str, dict[float, StateDict]], dict[str, _Rolled]]:
    """The predictions ``predict --run`` stored in a forget or imported run (``pred-<method>.safetensors``)."""
    stored = stored_predictions(run, theta0)
    return ({m: p.by_scale(r) for m, p in stored.items()},
            {m: _Rolled(p.states, p.description, p.reset_norm, True) for m, p in stored.items()})


def _imported(store: RunStore, run_id: str) -> _Loaded:
    run, cfg, film = open_imported_run(store, run_id)
    preds, rolled = _stored_predictions(run, cfg.r, film.states[0])
    return _Loaded(SeedWeights(0, film.groups, film.states, preds, {}), rolled)


def _forget(store: RunStore, run_id: str) -> _Loaded:
    run, cfg, traj = open_forget_run(store, run_id)
    preds, rolled = _stored_predictions(run, cfg.r, traj.states[0])
    warm = {(1 / cfg.r) ** (k + 1): s for k, s in enumerate(traj.warm.states)} if traj.warm else {}
    info = {"stage_sizes": traj.stage_sizes, "source_acc_stages": traj.source_acc,
            "warm": {"source_acc": traj.warm.source_acc} if traj.warm else {},
            "control": {"source_acc": traj.control.source_acc} if traj.control else {}}
    return _Loaded(SeedWeights(0, traj.groups, traj.states, preds, {}, info, warm,
                               list(traj.control.states) if traj.control else []), rolled)
