"""An imported film as a run of kind ``imported``: checked, stored in the run store's snapshot format, read back.

Orientation. Predictors read a film Θ0, Θ1, …, Θ_{S−1} with Θ0 the network trained on the most data, and predict
Θ̂_{−1}, Θ̂_{−2}, … beyond Θ0. ``--kind forgetting``: the files are Θ0 … Θ_{S−1} in the order given (``--reverse``
if they were saved the other way). ``--kind training``: the files are checkpoints along training, earliest first;
the run stores them latest first (Θ0 = the last checkpoint), i.e. the training run read backwards is a forgetting
film, so Θ̂_{−k} is the network k checkpoint intervals after the last one (a nowcast forward, as WNN/NiNo do).
Scale labels: Θ̂_{−k} is "×(1/r)^k" with r the film's data ratio per stage (``--r``, default 0.5).

Nothing is recorded until every checkpoint has been read and checked: the same tensor names, shapes and dtypes in
every file (the first difference is named), finite values, at least one float tensor, at least two checkpoints.

One tensor at a time. :func:`read_film` reads the checkpoints' headers (names, shapes, dtypes) and, with
``check_values``, every tensor's values one at a time; :func:`store_film` writes the trajectory file one tensor at a
time (checking the values as it goes, so a NaN found late leaves nothing recorded) and :func:`open_imported_film`
reads it back the same way. Only :attr:`ReadFilm.states` and :func:`open_imported_run` hold the whole film in memory
(the notebook library and the pages on small films).
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from know_core.common.errors import RunStoreError
from know_core.common.finite import all_finite
from know_core.common.hooks import Hooks
from know_core.common.version import __version__
from know_core.imports.checkpoints import ORDERS, Checkpoint, ImportFailed, find_checkpoints
from know_core.imports.groups import Shapes, group_table, infer_groups, rule_lines
from know_core.imports.readers import open_tensors, read_checkpoint
from know_core.store.kinds import register_run_kind
from know_core.store.legacy import read
from know_core.store.loaders import Damaged
from know_core.store.runstore import Run, RunStore
from know_core.store.schemas import check_groups, check_states
from know_core.store.snapshots import SnapshotWriter

KIND = "imported"
FILM_KINDS = ("forgetting", "training")
FORMATS = ("safetensors", "pt", "hf")
TRAJECTORY_FILE = "trajectory.safetensors"
LAYOUT_FILE = "layout.json"
METRICS_FILE = "metrics.csv"  # the --eval hook's loss and accuracy per stage, as a forget run's metrics.csv


@dataclass
class ImportConfig:
    """What an import was asked: the film's kind, its order, its data ratio per stage, the checkpoints' format."""

    kind: str = "forgetting"
    r: float = 0.5
    order: str = "given"
    reverse: bool = False
    format: str = "safetensors"
    model: str = "imported"
    stages: int = 2

    def validate(self) -> ImportConfig:
        if self.kind not in FILM_KINDS:
            raise ImportFailed(f"--kind {self.kind!r}: use one of {', '.join(FILM_KINDS)}")
        if isinstance(self.r, bool) or not isinstance(self.r, (int, float)) or not 0 < self.r < 1:
            raise ImportFailed(f"--r {self.r!r}: the data ratio per stage must lie in (0, 1)")
        if self.order not in (*ORDERS, "given") or self.format not in FORMATS:
            raise ImportFailed(f"order {self.order!r} or format {self.format!r} is not known")
        if not isinstance(self.stages, int) or self.stages < 2:
            raise ImportFailed(f"stages {self.stages!r}: a film has at least 2")
        return self

    @classmethod
    def from_dict(cls, data: Any) -> ImportConfig:
        if not isinstance(data, dict):
            raise TypeError("config is not a mapping")
        return cls(**data).validate()


register_run_kind(KIND, ImportConfig.from_dict, "a film imported from checkpoints (PyTorch, safetensors, Hugging "
                  "Face), with its source files' layout")


def _check_same(first: Shapes, shapes: Shapes, a: Checkpoint, b: Checkpoint) -> None:
    """``shapes`` (checkpoint ``b``) lists exactly the tensors of ``first`` (``a``): names, shapes, dtypes."""
    for name, (shape, dtype) in first.items():
        if name not in shapes:
            raise ImportFailed(f"{b.path} has no tensor {name!r}, which {a.path} has; every checkpoint must hold "
                               "the same tensors")
        if shapes[name] != (shape, dtype):
            raise ImportFailed(f"tensor {name!r} is {shapes[name][0]} {shapes[name][1]} in {b.path} but "
                               f"{shape} {dtype} in {a.path}")
    extra = next((name for name in shapes if name not in first), None)
    if extra is not None:
        raise ImportFailed(f"{b.path} has a tensor {extra!r} that {a.path} has not; every checkpoint must hold the "
                           "same tensors")


def _check_finite(t: torch.Tensor, name: str, ckpt: Checkpoint) -> None:
    if t.is_floating_point() and not all_finite(t):
        raise ImportFailed(f"{ckpt.path}: tensor {name!r} holds NaN or infinite values")


@dataclass
class ReadFilm:
    """Checked checkpoints in film order (Θ0 first), their groups and the layout to write them back; the tensors
    stay in the files (:attr:`states` reads them all into memory)."""

    checkpoints: list[Checkpoint]
    groups: dict[str, str]
    shapes: Shapes
    config: ImportConfig

    def table(self) -> list[dict]:
        return group_table(self.shapes, self.groups)

    @cached_property
    def states(self) -> list[dict[str, torch.Tensor]]:
        """Every checkpoint in memory, Θ0 first (the library's in-memory path)."""
        return [read_checkpoint(ckpt) for ckpt in self.checkpoints]


def read_film(paths: list[str], kind: str, order: str | None = None, reverse: bool = False, r: float = 0.5,
              overrides: list[tuple[str, str]] | None = None, hooks: Hooks | None = None,
              check_values: bool = True) -> ReadFilm:
    """Find and check every checkpoint (names, shapes, dtypes; with ``check_values`` every value too, one tensor at
    a time); nothing is written. Raises ImportFailed (one line) on bad input."""
    hooks = hooks or Hooks()
    ImportConfig(kind=kind, r=r, order=order or "given", reverse=reverse).validate()
    checkpoints = find_checkpoints(paths, order, reverse)
    first: Shapes = {}
    for i, ckpt in enumerate(checkpoints):
        hooks.check()
        hooks.report("read checkpoints", i, len(checkpoints))
        with open_tensors(ckpt) as src:
            if not src.names:
                raise ImportFailed(f"{ckpt.path}: holds no tensors")
            if ckpt.format != checkpoints[0].format:
                raise ImportFailed(f"{ckpt.path} is a {ckpt.format} checkpoint but {checkpoints[0].path} is "
                                   f"{checkpoints[0].format}; a film is saved one way")
            shapes = {name: src.spec(name) for name in src.names}
            if i:
                _check_same(first, shapes, checkpoints[0], ckpt)
            else:
                first = shapes
            if check_values:
                for name in src.names:
                    hooks.check()
                    _check_finite(src.get(name), name, ckpt)
    hooks.report("read checkpoints", len(checkpoints), len(checkpoints))
    if not any(dtype.is_floating_point for _, dtype in first.values()):
        raise ImportFailed(f"{checkpoints[0].path}: the film holds no float tensors, nothing to predict")
    if kind == "training":  # latest checkpoint first: Θ0 is the most-trained network (see the module's docstring)
        checkpoints = checkpoints[::-1]
    groups = infer_groups(first, overrides)
    if not groups:
        raise ImportFailed("every tensor is carried (--groups): nothing to predict")
    model = checkpoints[0].layout.get("json", {}).get("config.json", {}).get("model_type") or checkpoints[0].format
    cfg = ImportConfig(kind=kind, r=float(r), order=order or "given", reverse=reverse, format=checkpoints[0].format,
                       model=str(model)[:60], stages=len(checkpoints)).validate()
    return ReadFilm(checkpoints, groups, first, cfg)


def _write_trajectory(path: Path, film: ReadFilm, hooks: Hooks) -> None:
    """The film as a snapshot file, one checkpoint open and one tensor in memory at a time, values checked."""
    films = {"trajectory": len(film.checkpoints)}
    order = SnapshotWriter.key_order(films, list(film.shapes))  # the digest's order: no second pass over the file
    with SnapshotWriter(path, films, film.shapes, {"groups": film.groups}) as writer:
        for n, i in enumerate(dict.fromkeys(i for _, i, _ in order)):
            ckpt = film.checkpoints[i]
            hooks.report("store checkpoints", n, len(film.checkpoints))
            with open_tensors(ckpt) as src:
                for _, _, name in (key for key in order if key[1] == i):
                    hooks.check()
                    t = src.get(name)
                    _check_finite(t, name, ckpt)
                    writer.put("trajectory", i, name, t)
                    del t
        hooks.report("store checkpoints", len(film.checkpoints), len(film.checkpoints))


def _source_digests(checkpoints: list[Checkpoint], stop: threading.Event) -> list[dict[str, str]]:
    """Each checkpoint's :meth:`Checkpoint.sha256`, in order; stops early (returning fewer) once ``stop`` is set."""
    digests = []
    for ckpt in checkpoints:
        if stop.is_set():
            break
        digests.append(ckpt.sha256())
    return digests


def store_film(store: RunStore, film: ReadFilm, name: str | None = None,
               overrides: list[tuple[str, str]] | None = None, metrics: list[dict[str, float]] | None = None,
               eval_spec: str | None = None, hooks: Hooks | None = None) -> str:
    """The checked film as a new run of kind ``imported``, written one tensor at a time; returns its id.
    ``metrics``: the ``--eval`` hook's ``{"loss", "acc"}`` per stage (Θ0 first), stored as ``metrics.csv`` (stage,
    source_loss, source_acc)."""
    hooks = hooks or Hooks()
    if metrics is not None and len(metrics) != film.config.stages:
        raise ImportFailed(f"--eval gave {len(metrics)} results for {film.config.stages} snapshots")
    store.require_writable()
    # the trajectory is written (and its values checked) before the run exists, so a bad value records nothing
    staging = store.root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    written = staging / f".import-{secrets.token_hex(6)}.safetensors"
    stop = threading.Event()
    try:
        # the source files' SHA-256 on a thread of its own, while the trajectory is written: that writing mostly
        # waits for the disk (~0.45 GB/s here), so the hashing (~2 s for a 124 M film's 3.5 GB) fits in its waits
        with ThreadPoolExecutor(1, thread_name_prefix="source-sha256") as pool:
            hashing = pool.submit(_source_digests, film.checkpoints, stop)
            try:
                _write_trajectory(written, film, hooks)
            except BaseException:
                stop.set()  # a cancel or an error does not wait for the rest of the hashing
                raise
            digests = hashing.result()
        sources = [{"path": str(c.path.resolve()), "format": c.format, "step": c.step, "sha256": digest}
                   for c, digest in zip(film.checkpoints, digests)]
        layout = {"format": film.config.format, "kind": film.config.kind, "theta0": film.checkpoints[0].layout,
                  "keys": list(film.shapes), "dtypes": {n: str(d) for n, (_, d) in film.shapes.items()},
                  "sources": sources, "group_rule": rule_lines(), "group_overrides": overrides or [],
                  "version": __version__, "eval": eval_spec if metrics is not None else None}
        with store.create(KIND, asdict(film.config), name) as writer:
            writer.write_file(TRAJECTORY_FILE, lambda tmp: os.replace(written, tmp))
            writer.write_json(LAYOUT_FILE, layout)
            writer.write_csv("groups.csv", [{k: (", ".join(v) if isinstance(v, list) else v)
                                             for k, v in row.items()} for row in film.table()])
            if metrics is not None:
                writer.write_csv(METRICS_FILE, [{"stage": s, "source_loss": m["loss"], "source_acc": m["acc"]}
                                                for s, m in enumerate(metrics)])
            writer.summary = {"stages": film.config.stages, "kind": film.config.kind, "format": film.config.format,
                              "parameters": sum(int(math.prod(s)) for s, _ in film.shapes.values())}
    finally:
        written.unlink(missing_ok=True)
    return writer.id


def _layout(run: Run, stages: int) -> dict:
    layout = run.read_json(LAYOUT_FILE)
    if not isinstance(layout, dict) or not isinstance(layout.get("sources"), list) \
            or len(layout["sources"]) != stages or not isinstance(layout.get("theta0"), dict) \
            or not isinstance(layout.get("keys"), list):
        raise Damaged(LAYOUT_FILE, "does not describe the stored film")
    return layout


def open_imported_film(store: RunStore, run_id: str) -> tuple[Run, ImportConfig, SimpleNamespace]:
    """(run, config, film) with the trajectory left in its file: ``film.snapshots`` (a
    :class:`~know_core.store.snapshots.SnapshotFile`; ``film.get(i, name)`` reads Θi's tensor), ``stages``,
    ``shapes`` (name -> (shape, dtype), Θ0's order), ``groups`` and ``layout``. Close ``film.snapshots`` after."""
    run = store.open(run_id)
    if run.kind != KIND or not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} is not an imported film")
    snapshots = run.open_snapshots(TRAJECTORY_FILE)
    try:
        if set(snapshots.films) != {"trajectory"}:
            raise Damaged(TRAJECTORY_FILE, f"holds films {sorted(snapshots.films)}, not 'trajectory'")
        shapes = snapshots.shapes["trajectory"]
        groups = check_groups(snapshots.meta.get("groups"), TRAJECTORY_FILE, "metadata: groups")
        missing = next((n for n in groups if n not in shapes), None)
        if missing is not None:
            raise Damaged(TRAJECTORY_FILE, f"groups: parameter {missing!r} has no tensor")
        stages = snapshots.films["trajectory"]
        if stages < 2:
            raise Damaged(TRAJECTORY_FILE, f"holds {stages} stage(s); a trajectory needs at least 2")
        layout = _layout(run, stages)
    except Damaged as exc:
        snapshots.close()
        raise exc.for_run(run.id) from None
    order = [k for k in layout["keys"] if k in shapes] + [k for k in shapes if k not in layout["keys"]]
    film = SimpleNamespace(snapshots=snapshots, stages=stages, shapes={k: shapes[k] for k in order}, groups=groups,
                           layout=layout, get=lambda i, name: snapshots.get("trajectory", i, name))
    return run, run.config(), film


def open_imported_layout(store: RunStore, run_id: str) -> tuple[Run, ImportConfig, dict]:
    """(run, config, layout) of an imported film without reading its trajectory file (an export writes predictions
    in the source's layout and reads nothing else: checking the trajectory's SHA-256 cost it ~2 s of 6 on a 124 M
    film)."""
    run = store.open(run_id)
    if run.kind != KIND or not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} is not an imported film")
    cfg = run.config()
    try:
        layout = _layout(run, cfg.stages)
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    return run, cfg, layout


def open_imported_run(store: RunStore, run_id: str) -> tuple[Run, ImportConfig, SimpleNamespace]:
    """(run, config, film): the film has ``states`` (Θ0 first), ``groups``, ``layout``, ``metrics`` (the
    ``--eval`` hook's ``{"stage", "source_loss", "source_acc"}`` per stage, or None when the import had no hook) and
    no control film, as the predict command reads a forget run's trajectory."""
    run = store.open(run_id)
    if run.kind != KIND or not run.has(TRAJECTORY_FILE):
        raise RunStoreError(f"run {run_id} is not an imported film")
    try:
        films, meta = read(*run.read_tensors(TRAJECTORY_FILE), TRAJECTORY_FILE, "trajectory")
        if set(films) != {"trajectory"}:
            raise Damaged(TRAJECTORY_FILE, f"holds films {sorted(films)}, not 'trajectory'")
        states = films["trajectory"]
        groups = check_groups(meta.get("groups"), TRAJECTORY_FILE, "metadata: groups")
        check_states(states, groups, TRAJECTORY_FILE)
        layout = _layout(run, len(states))
        metrics = _read_metrics(run, len(states)) if run.has(METRICS_FILE) else None
    except Damaged as exc:
        raise exc.for_run(run.id) from None
    cfg = run.config()
    return run, cfg, SimpleNamespace(states=states, groups=groups, layout=layout, control=None, warm=None,
                                     metrics=metrics)


def _read_metrics(run: Run, stages: int) -> list[dict[str, float]]:
    rows = run.read_csv(METRICS_FILE)
    if len(rows) != stages:
        raise Damaged(METRICS_FILE, f"{len(rows)} rows for {stages} stages")
    try:
        out = [{"stage": int(r["stage"]), "source_loss": float(r["source_loss"]), "source_acc": float(r["source_acc"])}
               for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise Damaged(METRICS_FILE, f"malformed ({str(exc)[:120]})") from None
    if [r["stage"] for r in out] != list(range(stages)) or \
            not all(math.isfinite(r["source_loss"]) and 0 <= r["source_acc"] <= 1 for r in out):
        raise Damaged(METRICS_FILE, "stages out of order or values out of range")
    return out
