"""Units of work and the task kinds that run them. Executors know no task kinds: each kind is registered by the
module that defines it (the experiment layer, the metatrain package, the ``probe`` self-check), and a unit carries that
module's name so a worker process can import it.

A task kind is two functions over a payload: ``run(payload, out, hooks) -> record`` (does the work, writes its
artifact under ``out`` atomically, returns a small JSON record) and ``done(payload, out) -> bool`` (is the artifact
already there, from the same config). A payload made in this process may hold a typed config, taken as it is; an
executor that runs the unit in another process sends it through :func:`portable` (the config as JSON text), and the
task there reads it back and checks it: a worker is a boundary.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from know_core.common.errors import ConfigError
from know_core.common.hooks import Hooks
from know_core.common.registry import Entry, Registry


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
    module: str = ""  # the module that registers ``kind``; filled in from the registry when left empty

    def __post_init__(self) -> None:
        if not self.module and self.kind in TASKS:
            object.__setattr__(self, "module", TASKS.get(self.kind).trait("module"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TASKS = Registry("task kind", ConfigError)  # name -> Entry(factory=run, extra: done, module)


def task(kind: str, done: Callable[[dict, str], bool]) -> Callable:
    """Register ``run(payload, out, hooks) -> dict`` as the task ``kind``, with ``done`` its finished-artifact test
    and the registering module (a worker process imports it by that name)."""

    def wrap(fn: Callable[[dict, str, Hooks], dict]) -> Callable[[dict, str, Hooks], dict]:
        TASKS.add(Entry(kind, fn, kind, (fn.__doc__ or "").strip().split("\n")[0],
                        extra={"done": done, "module": fn.__module__}))
        return fn

    return wrap


def kind_of(unit: Unit) -> Entry:
    """The registered task kind of ``unit`` (its ``factory`` runs it; its ``done`` trait tests its artifact)."""
    if unit.kind not in TASKS and unit.module.startswith("know_core."):
        importlib.import_module(unit.module)  # a worker process: the layer that made the unit registers its kind
    return TASKS.get(unit.kind)


def is_done(unit: Unit) -> bool:
    return kind_of(unit).trait("done")(unit.payload, unit.out)


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
    record = spec.factory(unit.payload, unit.out, hooks) or {}
    return {**record, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def portable(unit: Unit) -> Unit:
    """``unit`` as it crosses to another process: an object in its payload that knows its JSON form (a typed config
    made in this process has ``to_json``) goes as that text, which the task reads back and validates (a worker is a
    boundary). Executors know no configs: any payload value with ``to_json`` travels this way."""
    if not any(hasattr(v, "to_json") for v in unit.payload.values()):
        return unit
    payload = {k: v.to_json() if hasattr(v, "to_json") else v for k, v in unit.payload.items()}
    return dataclasses.replace(unit, payload=payload)
