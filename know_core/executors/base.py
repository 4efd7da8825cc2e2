"""What every executor shares: skipping finished units, the outcome of a unit, and choosing an executor by name.

Executors are a :class:`~know_core.common.registry.Registry`: each executor module of this package adds its entry (name,
help line, ``factory(workers, ray_address)``) when imported, and the package imports them all (``discover``), so a
new executor is one new file here; ``--executor`` lists what is registered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from know_core.common.errors import Cancelled, ConfigError, KnowError
from know_core.common.registry import Registry

from .tasks import Unit, is_done

EXECUTORS = Registry("executor", ConfigError)  # filled by the executor modules: inline, local, ray
STATUSES = ("pending", "running", "done", "skipped", "failed", "cancelled")


@dataclass
class Outcome:
    """How a unit ended: ``done`` (ran now), ``skipped`` (already finished), ``failed`` (with ``error``) or
    ``cancelled``; ``attempts`` counts runs started (a worker crash earns one retry)."""

    key: str
    status: str
    error: str | None = None
    attempts: int = 0
    record: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[str, str, "Outcome | None"], None]  # (unit key, new status, outcome once finished)


class Executor:
    """Runs units. Subclasses implement :meth:`_run` over the units that are not finished yet."""

    name = "base"
    workers = 1

    def execute(self, units: list[Unit], listener: Listener | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[Outcome]:
        """Every unit's outcome, in the order given. Finished units are skipped without running."""
        keys = [u.key for u in units]
        if len(set(keys)) != len(keys):
            raise ConfigError("unit keys must be unique within a batch")
        notify = listener or (lambda *_: None)
        outcomes: dict[str, Outcome] = {}
        todo = []
        for unit in units:
            if is_done(unit):
                outcomes[unit.key] = Outcome(unit.key, "skipped")
                notify(unit.key, "skipped", outcomes[unit.key])
            else:
                todo.append(unit)
        if todo:
            for outcome in self._run(todo, notify, should_stop or (lambda: False)):
                outcomes[outcome.key] = outcome
        return [outcomes[k] for k in keys]

    def _run(self, units: list[Unit], notify: Listener, should_stop: Callable[[], bool]) -> list[Outcome]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def close(self) -> None:
        """Release what the executor holds (a Ray instance it started)."""


def failure(key: str, exc: BaseException, attempts: int) -> Outcome:
    """The outcome of a unit that raised ``exc``: cancelled on request, else failed with a one-line reason."""
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        return Outcome(key, "cancelled", "cancelled on request", attempts)
    text = str(exc) if isinstance(exc, KnowError) else f"{type(exc).__name__}: {exc}"
    return Outcome(key, "failed", text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__,
                   attempts)


def raise_first_failure(outcomes: list[Outcome]) -> None:
    """Raise for the first cancelled or failed unit (the experiment's way: one bad seed stops it)."""
    for o in outcomes:
        if o.status == "cancelled":
            raise Cancelled(f"{o.key}: cancelled on request")
    for o in outcomes:
        if o.status == "failed":
            raise KnowError(f"{o.key} failed: {o.error}")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`); ``workers`` defaults to this machine's cores."""
    entry = EXECUTORS.get(name)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if ray_address is not None and entry.option("ray_address") is None:
        takes = [e.name for e in EXECUTORS.entries() if e.option("ray_address") is not None]
        raise ConfigError(f"--ray-address needs --executor {' or '.join(takes)}")
    return entry.factory(workers or default_workers(), ray_address)
