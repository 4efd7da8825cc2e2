"""Running a sweep in the run store: one ``sweep`` run holding ``sweep.json``, one experiment run per cell.

``sweep.json`` (format :data:`FORMAT`) holds the spec, the cells with their run ids and notes, every unit's status
(pending / running / done / skipped / failed / cancelled, attempts, error) and how it was run. Only the process that
drives the sweep writes it, atomically. Each seed of each cell is a unit (:mod:`know_core.executors`) writing into its
cell's run folder, so an interrupted sweep resumes where it stopped (finished seeds are skipped), a cell whose seeds are
all done is sealed at once (and opens on Trajectory and Compare), and ``.cancel`` in the sweep folder stops it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any, Callable

import torch

from know_core.common.errors import Cancelled, KnowError, RunStoreError
from know_core.common.fsio import write_json
from know_core.engine.batched import batchable
from know_core.engine.config import to_dict
from know_core.experiment.pipeline import finalize_experiment, preflight_experiment, seal_experiment
from know_core.store.runstore import RunStore
from know_core.sweep.table import write_table

from ..executors import Executor, Outcome, Unit
from .spec import Cell, SweepSpec
from .state import FORMAT, SWEEP_FILE, read_state

CANCEL = ".cancel"
Progress = Callable[[dict[str, int]], None]


def create_sweep(store: RunStore, spec: SweepSpec, name: str | None = None) -> str:
    """Record a new sweep (status ``running``) with every cell checked; returns its run id. Cells' runs are made
    when the sweep runs (:func:`run_sweep`), so a sweep handed to a worker owns them there."""
    cells = spec.cells(preflight_experiment)  # every cell checked once (values, data, names, sizes), up front
    path = store.create_in_place("sweep", {"sweep": spec.to_dict()}, name)
    state = {"format": FORMAT, "name": name or path.name, "spec": spec.to_dict(), "created": time.time(),
             "cells": [{"key": c.key, "label": c.label, "values": c.values, "notes": c.notes, "run_id": None,
                        "error": c.error} for c in cells],
             "units": {f"{c.key}/seed-{s}": {"cell": c.key, "seed": s, "status": "pending", "attempts": 0,
                                             "error": None} for c in cells if c.error is None for s in spec.seeds},
             "runs": []}
    write_json(path / SWEEP_FILE, state)
    return path.name


def read_sweep(store: RunStore, sweep_id: str) -> dict[str, Any]:
    """The checked ``sweep.json`` of a sweep run (:func:`~know_core.sweep.state.read_state`); a damaged or foreign one
    is refused naming the file and the problem."""
    info = store.info(sweep_id)
    if info.kind != "sweep":
        raise RunStoreError(f"run {sweep_id} is a {info.kind} run, not a sweep")
    return read_state(store, sweep_id)


def sweep_progress(state: dict[str, Any]) -> dict[str, int]:
    """Unit counts by status (``total`` too)."""
    counts = {s: 0 for s in ("pending", "running", "done", "skipped", "failed", "cancelled")}
    for unit in state["units"].values():
        counts[unit["status"]] = counts.get(unit["status"], 0) + 1
    counts["total"] = len(state["units"])
    counts["finished"] = counts["done"] + counts["skipped"]
    return counts


def cancel_sweep(store: RunStore, sweep_id: str) -> None:
    """Ask a running sweep to stop: pending units are dropped, running ones stop at their next batch."""
    info = store.info(sweep_id)
    if info.kind != "sweep" or info.status != "running":
        raise RunStoreError(f"run {sweep_id} is a {info.status} {info.kind} run; only a running sweep can be "
                            "cancelled")
    (store.root / sweep_id / CANCEL).touch()


class _Driver:
    """The process that runs a sweep: it alone writes ``sweep.json`` and seals cells."""

    def __init__(self, store: RunStore, sweep_id: str, progress: Progress | None, batch: bool = True,
                 threads: int = 1):
        self.store, self.id, self.batch = store, sweep_id, batch
        self.groups: dict[str, list[str]] = {}  # batched unit key -> the seed units it stands for
        self.threads = threads  # torch threads of the processes that run the units
        self.path = store.root / sweep_id
        self.state = read_sweep(store, sweep_id)
        self.spec = SweepSpec.from_dict(self.state["spec"])
        self.cells = {c.key: c for c in self.spec.cells()}  # checked here, once: the units carry them typed
        self.progress = progress or (lambda counts: None)
        self._written, self._dirty = 0.0, False

    def prepare(self) -> list[Unit]:
        """Claim the sweep and its unfinished cells (creating their runs the first time); the units still to do."""
        self.store.claim(self.id)
        (self.path / CANCEL).unlink(missing_ok=True)
        units = []
        for entry in self.state["cells"]:
            if entry.get("error"):
                continue  # refused when the sweep was made: no run, no units
            cell = self.cells[entry["key"]]
            run_id = self._cell_run(entry, cell)
            out = str(self.store.root / run_id)
            todo = []
            for seed in self.spec.seeds:
                unit = self.state["units"][f"{cell.key}/seed-{seed}"]
                if unit["status"] in ("done", "skipped") and self.store.info(run_id).status == "done":
                    continue
                unit["status"] = "pending"
                todo.append(seed)
            units += self._cell_units(entry, cell, todo, out)
        self.save(force=True)
        return units

    def _cell_units(self, entry: dict[str, Any], cell: Cell, seeds: list[int], out: str) -> list[Unit]:
        """One unit per seed, or — where :func:`~know_core.engine.batched.batchable` allows and ``batch`` is on — one
        unit
        recording all the cell's seeds as one stacked model; ``entry["batched"]`` says which and why."""
        config, cancel = cell.config, str(self.path / CANCEL)  # typed; sent as JSON to other processes
        if self.batch and len(seeds) > 1:
            ok, why = batchable([replace(cell.config.source, seed=s) for s in seeds])
            if ok and self.threads > 1:  # multi-threaded kernels round differently in the stacked model
                ok, why = (
                    False,
                    (
                        f"this process trains with {self.threads} threads; a stacked model equals the "
                        "per-seed runs only with one (the local and ray executors' workers)"
                    ),
                )
            entry["batched"] = ("batched: " if ok else "one seed at a time: ") + why
            if ok:
                key = f"{cell.key}/seeds-{','.join(map(str, seeds))}"
                self.groups[key] = [f"{cell.key}/seed-{s}" for s in seeds]
                return [
                    Unit(
                        key,
                        "experiment-seeds",
                        {"config": config, "seeds": seeds},
                        out,
                        cancel,
                        {"cell": cell.key, "seeds": seeds},
                    )
                ]
        return [
            Unit(
                f"{cell.key}/seed-{s}",
                "experiment-seed",
                {"config": config, "seed": s},
                out,
                cancel,
                {"cell": cell.key, "seed": s},
            )
            for s in seeds
        ]

    def _cell_run(self, entry: dict[str, Any], cell: Cell) -> str:
        if entry["run_id"] is None:
            name = f"{self.state['name']} · {cell.label}"
            entry["run_id"] = self.store.create_in_place("experiment", to_dict(cell.config), name).name
            self.save(force=True)
        elif self.store.info(entry["run_id"]).status != "done":
            self.store.claim(entry["run_id"])
        return entry["run_id"]

    def listen(self, key: str, status: str, outcome: Outcome | None) -> None:
        members = self.groups.get(key, [key])  # a batched unit stands for each of its seeds
        for member in members:
            unit = self.state["units"][member]
            unit["status"] = status
            if outcome is not None:
                share = 1 / len(members)
                unit.update(
                    attempts=unit["attempts"] + outcome.attempts,
                    error=outcome.error,
                    wall_s=_times(outcome.record.get("wall_s"), share),
                    cpu_s=_times(outcome.record.get("cpu_s"), share),
                )
        if outcome is not None and status in ("done", "skipped"):
            self._maybe_seal(self.state["units"][members[0]]["cell"])
        self.save(force=outcome is not None and status not in ("done", "skipped"))
        self.progress(sweep_progress(self.state))

    def _maybe_seal(self, cell_key: str) -> None:
        units = [u for u in self.state["units"].values() if u["cell"] == cell_key]
        if any(u["status"] not in ("done", "skipped") for u in units):
            return
        entry = next(e for e in self.state["cells"] if e["key"] == cell_key)
        cfg = self.cells[cell_key].config
        results = finalize_experiment(cfg, self.store.root / entry["run_id"])
        seal_experiment(self.store, entry["run_id"], cfg, results)

    def save(self, force: bool = False) -> None:
        """Write ``sweep.json``, at most once a second unless ``force``; a skipped change is written by the next
        :meth:`should_stop` poll, so a unit that starts just after another write is not shown pending for its whole
        run."""
        now = time.monotonic()
        if force or now - self._written > 1.0:
            write_json(self.path / SWEEP_FILE, self.state)
            self._written, self._dirty = now, False
        else:
            self._dirty = True

    def should_stop(self) -> bool:
        """The executor's cancel poll: flushes a held-back change, then looks for ``.cancel``."""
        if self._dirty:
            self.save()
        return (self.path / CANCEL).exists()


def run_sweep(
    store: RunStore, sweep_id: str, executor: Executor, progress: Progress | None = None, batch: bool = True
) -> dict:
    """Run (or resume) a sweep on ``executor``; writes the results table and seals the sweep when every unit is
    done. Returns the final unit counts. A cancelled sweep raises :class:`Cancelled` after recording its state.
    ``batch``: record a cell's seeds as one stacked model where the model and protocol allow (each cell's
    ``batched`` entry in ``sweep.json`` says whether and why; the numbers are the same either way)."""
    driver = _Driver(store, sweep_id, progress, batch, torch.get_num_threads() if executor.name == "inline" else 1)
    t0 = time.perf_counter()
    try:  # a failure while claiming the cells also marks the sweep, never leaving it listed as running
        units = driver.prepare()
        seeds = sum(len(u.meta.get("seeds", [None])) for u in units)
        driver.state["runs"].append(
            {"executor": executor.describe(), "started": time.time(), "units": len(units), "seeds": seeds}
        )
        executor.execute(units, driver.listen, driver.should_stop)
    except BaseException as exc:
        _abort(driver, exc)
        raise
    driver.state["runs"][-1]["seconds"] = time.perf_counter() - t0
    for unit in driver.state["units"].values():
        if unit["status"] in ("pending", "running"):  # an executor that stopped early: never left looking alive
            unit["status"] = "cancelled"
    counts = sweep_progress(driver.state)
    driver.save(force=True)
    _mark_cells(driver)
    write_table(store, driver.state, driver.path)
    if counts["cancelled"]:
        store.mark(sweep_id, "cancelled", f"cancelled with {counts['finished']} of {counts['total']} units done")
        raise Cancelled(
            f"sweep {sweep_id} cancelled; {counts['finished']} of {counts['total']} units done "
            f"(resume with: sweep --resume {sweep_id})"
        )
    if counts["failed"]:
        first = next(f"{k}: {u['error']}" for k, u in driver.state["units"].items() if u["status"] == "failed")
        store.mark(sweep_id, "failed", f"{counts['failed']} of {counts['total']} units failed (first: {first})")
        return counts
    store.finish(
        sweep_id,
        {
            "cells": len(driver.state["cells"]),
            "units": counts["total"],
            "axes": [k for k, _ in driver.spec.axes],
            "seconds": sum(r.get("seconds", 0.0) for r in driver.state["runs"]),
        },
    )
    return counts


def _mark_cells(driver: _Driver) -> None:
    """Cells left unfinished (a failed or cancelled seed) are marked so, not left ``running``."""
    for entry in driver.state["cells"]:
        if entry["run_id"] is None or driver.store.info(entry["run_id"]).status != "running":
            continue
        units = [u for u in driver.state["units"].values() if u["cell"] == entry["key"]]
        errors = [u["error"] for u in units if u["status"] == "failed"]
        status = "failed" if errors else "cancelled"
        driver.store.mark(entry["run_id"], status, errors[0] if errors else "the sweep was cancelled")


def _abort(driver: _Driver, exc: BaseException) -> None:
    for unit in driver.state["units"].values():
        if unit["status"] in ("running", "pending"):
            unit["status"] = "cancelled"
    status = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
    driver.store.mark(driver.id, status, f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(KnowError, OSError):
        driver.save(force=True)
        _mark_cells(driver)


def _times(value: float | None, share: float) -> float | None:
    return None if value is None else value * share


def find_sweep(store: RunStore, name: str) -> str | None:
    """The id of the newest sweep called ``name``, if any."""
    runs = [r for r in store.list_runs(kind="sweep") if r.name == name]
    return max(runs, key=lambda r: r.created).id if runs else None
