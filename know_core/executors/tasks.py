"""Units of work and the task kinds that run them.

A task kind is two functions over a payload: ``run(payload, out, hooks) -> record`` (does the work, writes its
artifact under ``out`` atomically, returns a small JSON record) and ``done(payload, out) -> bool`` (is the artifact
already there, from the same config). A payload made in this process may hold a typed config, taken as it is; an
executor that runs the unit in another process sends it through :func:`portable` (the config as JSON text), and the
task there reads it back and checks it: a worker is a boundary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..train import Hooks


@dataclass(frozen=True)
class Unit:
    """One independent piece of work. ``key`` is unique within its batch and stable across runs (it names the unit
    in ``sweep.json``); ``cancel`` is a file whose existence asks the running unit to stop."""

    key: str
    kind: str
    payload: dict[str, Any]
    out: str
    cancel: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # for the caller (cell, seed); not read by the task

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskKind:
    run: Callable[[dict, str, Hooks], dict]
    done: Callable[[dict, str], bool]


TASKS: dict[str, TaskKind] = {}


def task(kind: str, done: Callable[[dict, str], bool]) -> Callable:
    """Register ``run(payload, out, hooks) -> dict`` as the task ``kind``, with ``done`` its finished-artifact test."""

    def wrap(fn: Callable[[dict, str, Hooks], dict]) -> Callable[[dict, str, Hooks], dict]:
        TASKS[kind] = TaskKind(fn, done)
        return fn

    return wrap


def kind_of(unit: Unit) -> TaskKind:
    _load_builtin()
    if unit.kind not in TASKS:
        raise ConfigError(f"unknown task kind {unit.kind!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[unit.kind]


def is_done(unit: Unit) -> bool:
    return kind_of(unit).done(unit.payload, unit.out)


def cancel_requested(unit: Unit) -> bool:
    """Whether ``unit``'s cancel file exists (a unit without one is never asked to stop)."""
    return bool(unit.cancel) and Path(unit.cancel).exists()


def request_cancel(units: list[Unit]) -> None:
    """Ask every running unit of ``units`` to stop at its next batch: create their cancel files."""
    for path in {u.cancel for u in units if u.cancel}:
        Path(path).touch()


def run_unit(unit: Unit, hooks: Hooks | None = None) -> dict[str, Any]:
    """Run ``unit`` in this process; its record gains ``wall_s`` and ``cpu_s`` (this process's CPU time)."""
    spec = kind_of(unit)
    if hooks is None:
        hooks = Hooks(should_stop=lambda: cancel_requested(unit))
    wall, cpu = time.perf_counter(), time.process_time()
    record = spec.run(unit.payload, unit.out, hooks) or {}
    return {**record, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def portable(unit: Unit) -> Unit:
    """``unit`` as it crosses to another process: a config object in its payload (a unit made in this process holds
    the typed config) goes as its :func:`~know_core.config.to_json` text, which the task reads back with
    ``from_json`` (validating it there: a worker is a boundary)."""
    import dataclasses

    if not any(dataclasses.is_dataclass(v) for v in unit.payload.values()):
        return unit
    from ..config import to_json

    payload = {k: to_json(v) if dataclasses.is_dataclass(v) else v for k, v in unit.payload.items()}
    return dataclasses.replace(unit, payload=payload)


def _load_builtin() -> None:
    from . import builtin  # noqa: F401  (registers the engine's task kinds)
