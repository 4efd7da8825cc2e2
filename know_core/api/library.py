"""Films in a notebook: ``import know_core as know``.

A :class:`Film` is a sequence of whole networks Θ0, Θ1, …, Θ_{S−1} (Θ0 the one trained on the most data, or the latest
checkpoint of a training run) with the parameter group of every tensor. Make one from checkpoint files, or open a
stored run; then predict, backtest, look and export::

    import know_core as know

    film = know.Film.from_checkpoints(["ckpt/epoch-4.pt", "ckpt/epoch-3.pt", "ckpt/epoch-2.pt"])
    predicted = film.predict("taskvector", scales=(2, 4, 8))   # {2.0: state_dict, 4.0: …, 8.0: …}
    print(film.backtest(["naive", "taskvector", "expfit"]))       # hide Θ0, predict it back
    film.plot().write_html("film.html")                         # the film and the predictions in one PCA plane
    run_id = film.save("runs")                                  # an ``imported`` run: the dashboard opens it
    film.export("taskvector", 8, "predicted-x8")                # in the checkpoints' own layout

    same = know.open_run(run_id, runs_dir="runs")               # forget, imported and experiment runs alike

Every method runs the code the CLI and the dashboard run (:mod:`know_core.imports`, ``extrapolate``,
:mod:`know_core.experiment.backtest`, ``pca_view``, :mod:`know_core.api.figures`); bad input raises a one-line
:class:`KnowError` and nothing is written half-way. The table of calls, and why ``know_core.Film`` is imported on
first use (PEP 562), are in docs/library.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import plotly.graph_objects as go

from know_core.api.record import record_forgetting  # the library records films on your model too
from know_core.common.errors import KnowError
from know_core.common.hooks import Hooks
from know_core.engine.extrapolate import MAX_STEPS, extrapolate, save_predictions
from know_core.experiment.backtest import BacktestRow, backtest_states
from know_core.experiment.pca import pca_view
from know_core.experiment.seedweights import SeedWeights, load_seed
from know_core.imports.export import export_prediction
from know_core.imports.film import KIND as IMPORTED
from know_core.imports.film import ReadFilm, read_film, store_film
from know_core.imports.groups import group_table
from know_core.models import predicted_groups
from know_core.predictors import default_predictors, get_predictor
from know_core.store.runstore import DEFAULT_RUNS_DIR, RunStore

from .figures import curves_figure, pca_figure
from .filmparts import (  # noqa: F401  (Backtest, FilmError, FilmPCA: the library's public names)
    Backtest,
    FilmError,
    FilmPCA,
    StateDict,
    _forget,
    _imported,
    _Loaded,
    _Rolled,
    _stored_predictions,
)
from .results import experiment_result

RUN_KINDS = ("forget", IMPORTED, "experiment")
PLOTS = ("pca", "curves")


class Film:
    """A film Θ0, Θ1, …, Θ_{S−1} of whole networks (Θ0 first) and its parameter groups.

    Make one with :meth:`from_checkpoints` or :meth:`from_run` (:func:`open_run`); a run's weights are read on first
    use of :attr:`states`, :attr:`groups` or a method."""

    def __init__(self, load: Callable[[], _Loaded], *, r: float, kind: str = "forgetting",
                 source: ReadFilm | None = None, run_id: str | None = None, runs_dir: str | os.PathLike | None = None,
                 run_kind: str | None = None, seed: int | None = None,
                 overrides: list[tuple[str, str]] | None = None):
        self._load, self._loaded = load, None
        self._overrides = overrides  # the group overrides a film from checkpoints was read with, stored with it
        self.r = float(r)
        self.kind = kind  #: "forgetting" (Θ0 = most data) or "training" (Θ0 = the latest checkpoint)
        self.source = source  #: the checked checkpoints a film came from (None for a run)
        self.run_id = run_id  #: the run holding this film (None until :meth:`save`)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.run_kind = run_kind  #: forget, imported or experiment
        self.seed = seed  #: the experiment seed read (None for other runs)

    # -- making one ---------------------------------------------------------------------------------------------

    @classmethod
    def from_checkpoints(cls, paths: str | os.PathLike | Sequence[str | os.PathLike], kind: str = "forgetting",
                         order: str | None = None, r: float = 0.5, reverse: bool = False,
                         groups: dict[str, str] | None = None, hooks: Hooks | None = None) -> Film:
        """A film from checkpoint files or folders, read and checked as ``python -m know_core import`` does.

        ``paths``: files in film order (``.safetensors``, ``.pt``/``.pth``/``.bin``, Lightning ``.ckpt``, Hugging
        Face folders) or one folder of them. ``kind="forgetting"``: Θ0 first (most data); ``kind="training"``:
        checkpoints along training, earliest first (the film is stored latest first, so predictions run forward).
        ``order``: ``"name"``, ``"mtime"`` or ``"step"`` to sort them. ``r``: the data ratio per stage, which labels
        Θ̂_{−k} as scale ×(1/r)^k. ``groups``: ``{"PATTERN": "GROUP"}`` overrides of the group rule.

        >>> film = Film.from_checkpoints(["theta0.pt", "theta1.pt", "theta2.pt"])  # doctest: +SKIP
        >>> len(film), film.groups["0.weight"]  # doctest: +SKIP
        (3, 'fc')
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        overrides = [(str(k), str(v)) for k, v in groups.items()] if groups else None
        source = read_film([os.fspath(p) for p in paths], kind, order, reverse, r, overrides, hooks)
        return cls(lambda: _Loaded(SeedWeights(0, source.groups, source.states, {}, {})), r=r, kind=kind,
                   source=source, overrides=overrides)

    @classmethod
    def from_run(cls, run_id: str, runs_dir: str | os.PathLike | None = None, seed: int | None = None) -> Film:
        """The film of a stored run: an ``imported`` run, a ``forget`` run (with its warm oracles and control film),
        or one seed of an ``experiment`` run (``seed``: default its first) with its predictions and oracles.
        Predictions stored in the run (``predict --run``) come with it.

        >>> film = Film.from_run("forget-20250101-120000-ab12", runs_dir="runs")  # doctest: +SKIP
        """
        runs_dir = Path(runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR)
        store = RunStore(runs_dir, create=False)
        run = store.open(run_id)
        if run.kind == IMPORTED:
            cfg = run.config()
            return cls(lambda: _imported(store, run_id), r=cfg.r, kind=cfg.kind, run_id=run_id, runs_dir=runs_dir,
                       run_kind=IMPORTED)
        if run.kind == "forget":
            cfg = run.config()
            return cls(lambda: _forget(store, run_id), r=cfg.r, run_id=run_id, runs_dir=runs_dir, run_kind="forget")
        if run.kind == "experiment":
            res = experiment_result(run.results())
            if seed is None:
                seed = res.seeds[0]
            if seed not in res.seeds:
                raise FilmError(f"run {run_id} has no seed {seed!r}; its seeds: {', '.join(map(str, res.seeds))}")
            chosen = seed
            return cls(lambda: _Loaded(load_seed(run, chosen)), r=res.r, run_id=run_id, runs_dir=runs_dir,
                       run_kind="experiment", seed=seed)
        raise FilmError(f"run {run_id} is a {run.kind} run; a film is read from {', '.join(RUN_KINDS)} runs")

    # -- what it holds --------------------------------------------------------------------------------------------

    def _data(self) -> _Loaded:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @property
    def states(self) -> list[StateDict]:
        """Θ0, Θ1, …, Θ_{S−1} as CPU state dicts (read from the run on first use)."""
        return self._data().weights.stages

    @property
    def groups(self) -> dict[str, str]:
        """Tensor name -> group: ``conv``, ``fc``, ``bias`` are predicted; ``norm``, ``embed`` copied from Θ0; a
        tensor not listed (integer buffers) is carried untouched."""
        return self._data().weights.groups

    @property
    def predictions(self) -> dict[str, dict[float, StateDict]]:
        """Method -> scale -> predicted state dict: the run's stored predictions and those made by :meth:`predict`."""
        return self._data().weights.predictions

    def group_table(self) -> list[dict[str, Any]]:
        """Per group: how many tensors and scalars, and example names (what ``import`` prints)."""
        shapes = {n: (tuple(t.shape), t.dtype) for n, t in self.states[0].items()}
        return group_table(shapes, self.groups)

    def scales(self, steps: int = MAX_STEPS) -> list[float]:
        """The scales a prediction can be asked for: ×(1/r)^k for k = 1 … ``steps``."""
        return [(1 / self.r) ** k for k in range(1, steps + 1)]

    def __len__(self) -> int:
        return len(self.states)

    def __repr__(self) -> str:
        where = f"run {self.run_id}" if self.run_id else "not stored"
        size = f"{len(self.states)} networks" if self._loaded is not None else "not read yet"
        return f"<Film {self.kind}, r={self.r:g}, {size}, {where}>"

    # -- predicting -----------------------------------------------------------------------------------------------

    def _steps(self, scales: Sequence[float]) -> list[int]:
        if isinstance(scales, (int, float)):
            scales = [scales]
        if not scales:
            raise FilmError("scales: name at least one, e.g. scales=(2, 4, 8)")
        steps = []
        for scale in scales:
            s = float(scale) if isinstance(scale, (int, float)) and not isinstance(scale, bool) else float("nan")
            k = round(math.log(s) / math.log(1 / self.r)) if math.isfinite(s) and s > 1 else 0
            if not 1 <= k <= MAX_STEPS or not math.isclose((1 / self.r) ** k, s, rel_tol=1e-6):
                held = ", ".join(f"{x:g}" for x in self.scales(4))
                raise FilmError(f"scale {scale!r} is not (1/r)^k for this film's r = {self.r:g} and k = 1 … "
                                f"{MAX_STEPS} (e.g. {held})")
            steps.append(k)
        return steps

    def predict(self, method: str, scales: Sequence[float] = (2, 4, 8), *, reset_norm: bool = False,
                include_embed: bool = False, **options: Any) -> dict[float, StateDict]:
        """Θ̂ at each scale (×(1/r)^k data) predicted by ``method`` (any registered predictor: ``naive``,
        ``taskvector``, ``expfit``, ``known``, ``nino_mlp``, ``nino``; ``options`` go to it, e.g. ``lam=0.5``).
        Normalisation layers are kept from Θ0 (``reset_norm=True``: reset, as the official release does); embeddings
        too unless ``include_embed``. The predictions are kept with the film for :meth:`pca`, :meth:`plot` and
        :meth:`save`.

        >>> predicted = film.predict("taskvector", scales=(2, 4))  # doctest: +SKIP
        >>> model.load_state_dict(predicted[4.0])  # doctest: +SKIP
        """
        steps = self._steps(scales)
        predictor = get_predictor(method, **options)
        states = extrapolate(self.states, predicted_groups(self.groups, include_embed), predictor, max(steps),
                             reset_norm=reset_norm)
        data = self._data()
        data.rolled[method] = _Rolled(states, predictor.describe(), reset_norm)
        data.weights.predictions[method] = {(1 / self.r) ** (k + 1): s for k, s in enumerate(states)}
        return {(1 / self.r) ** k: states[k - 1] for k in steps}

    def backtest(self, methods: Sequence[str] | None = None, steps: int = 1, *,
                 include_embed: bool = False) -> Backtest:
        """Hide Θ0 (``steps=2``: Θ0 and Θ1), predict it back from the older stages with each method, and compare per
        group and per parameter (:class:`Backtest`). ``methods``: default the product's default predictors; one that
        cannot run on this film gets a note instead of rows.

        >>> print(film.backtest(["naive", "taskvector"]))  # doctest: +SKIP
        """
        if steps not in (1, 2):
            raise FilmError(f"steps {steps!r}: a backtest hides 1 or 2 stages")
        methods = list(default_predictors() if methods is None else ([methods] if isinstance(methods, str)
                                                                    else methods))
        if not methods:
            raise FilmError("methods: name at least one predictor")
        groups = predicted_groups(self.groups, include_embed)
        rows: list[BacktestRow] = []
        notes: dict[str, str] = {}
        for method in methods:
            try:
                rows += backtest_states(self.states, groups, get_predictor(method), steps, method)[0]
            except (KnowError, FileNotFoundError) as exc:  # one method's limits never hide the others' results
                notes[method] = str(exc)
        return Backtest(steps, rows, notes)

    # -- looking --------------------------------------------------------------------------------------------------

    def pca(self, layer: str | None = None, k: int = 3) -> FilmPCA:
        """One PCA basis over the film and every prediction (and a run's oracles, warm oracles and control film):
        the Trajectory page's numbers. ``layer``: one module path (``"0"``, ``"layer1.0.conv1"``), default every
        predicted parameter.

        >>> view = film.pca(); view.explained[0]  # doctest: +SKIP
        """
        points, pca = pca_view(self._data().weights, self.r, layer, k)
        return FilmPCA(points, list(pca.explained), pca)

    def plot(self, kind: str = "pca", layer: str | None = None, n: int = 6, title: str | None = None) -> go.Figure:
        """A Plotly figure: ``"pca"`` (the film and its predictions in one PCA plane) or ``"curves"`` (``n`` sampled
        weights through the film and each method's rollout, as on the Trajectory page).

        >>> film.plot().write_html("film.html")  # doctest: +SKIP
        """
        if kind not in PLOTS:
            raise FilmError(f"plot {kind!r}: use one of {', '.join(PLOTS)}")
        if kind == "pca":
            view = self.pca(layer, k=2)
            return pca_figure(view.points, view.explained, title)
        scales = sorted({s for by in self.predictions.values() for s in by})
        fig = curves_figure(self._data().weights, self.r, n, layer, self.seed or 0, scales)
        if title:
            fig.update_layout(title=title)
        return fig

    # -- storing and exporting ------------------------------------------------------------------------------------

    def save(self, runs_dir: str | os.PathLike | None = None, name: str | None = None) -> str:
        """Store the film as a run of kind ``imported`` (a film from checkpoints) with every prediction made so far,
        and return its id; a film read from a run gets its new predictions added to that run. The dashboard and the
        CLI (``predict``, ``export``, ``runs show``) then open it.

        >>> run_id = film.save("runs", name="my film")  # doctest: +SKIP
        """
        data = self._data()
        if self.run_id is None:
            if self.source is None:
                raise FilmError("this film has no checkpoints to store")
            store = RunStore(runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR)
            store.require_writable()
            self.run_id = store_film(store, self.source, name, self._overrides)
            self.runs_dir, self.run_kind = store.root, IMPORTED
        else:
            if runs_dir is not None and Path(runs_dir).resolve() != self.runs_dir.resolve():
                raise FilmError(f"this film is run {self.run_id} in {self.runs_dir}; it is not copied to {runs_dir}")
            store = RunStore(self.runs_dir, create=False)
        pending = {m: p for m, p in data.rolled.items() if not p.saved}
        if pending and self.run_kind == "experiment":
            raise FilmError(f"run {self.run_id} is an experiment: its seeds' predictions are not changed here; "
                            "import the film's checkpoints to store predictions of your own")
        if pending:
            store.require_writable()
            run = store.open(self.run_id)
            for method, rolled in pending.items():
                save_predictions(run, method, rolled.states, rolled.description, rolled.reset_norm)
                rolled.saved = True
        return self.run_id

    def export(self, method: str, scale: float | str, out: str | os.PathLike, format: str | None = None) -> Path:
        """Write Θ̂ at ``scale`` predicted by ``method`` into the new folder ``out``, in the layout and key names of
        the checkpoints the film came from (``format``: ``safetensors``, ``pt`` or ``hf``; default the source's),
        with ``know-export.json`` beside it; returns the folder. The film must be stored (:meth:`save`); predictions
        not yet stored are stored first.

        >>> film.export("taskvector", 4, "predicted-x4")  # doctest: +SKIP
        """
        if self.run_id is None:
            raise FilmError("export writes a stored film's predictions: call film.save(runs_dir) first")
        if self.run_kind != IMPORTED:
            raise FilmError(f"run {self.run_id} is a {self.run_kind} run; export writes an imported film's "
                            "predictions back in its checkpoints' layout")
        self.save()
        folder, _ = export_prediction(RunStore(self.runs_dir, create=False), self.run_id, method, str(scale), out,
                                      format)
        return folder


def open_run(run_id: str, runs_dir: str | os.PathLike | None = None, seed: int | None = None) -> Film:
    """The film of a stored run (:meth:`Film.from_run`): ``imported``, ``forget`` or one seed of an ``experiment``.

    >>> film = open_run("imported-20250101-120000-ab12", runs_dir="runs")  # doctest: +SKIP
    """
    return Film.from_run(run_id, runs_dir, seed)


__all__ = ["Backtest", "Film", "FilmError", "FilmPCA", "KnowError", "StateDict", "open_run", "record_forgetting"]
