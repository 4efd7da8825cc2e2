"""The inline executor: units one after another in this process, with the caller's hooks (progress, cancel)."""

from __future__ import annotations

from typing import Callable

from know_core.common.hooks import Hooks
from know_core.common.registry import Entry

from .base import EXECUTORS, Executor, Listener, Outcome, failure
from .tasks import Unit, cancel_requested, run_unit


class InlineExecutor(Executor):
    """Runs each unit in the calling process. ``hooks`` (progress bars, a cancel test) are passed to every unit;
    without them a unit stops when its cancel file appears or ``should_stop`` says so."""

    name = "inline"

    def __init__(self, hooks: Hooks | None = None, raise_errors: bool = False):
        self.hooks = hooks
        self.raise_errors = raise_errors  # the experiment's way: the first error propagates as it is

    def _run(self, units: list[Unit], notify: Listener, should_stop: Callable[[], bool]) -> list[Outcome]:
        out = []
        for i, unit in enumerate(units):
            if should_stop():
                out += _cancel_rest(units[i:], notify)
                break
            notify(unit.key, "running", None)
            hooks = self.hooks or Hooks(should_stop=lambda u=unit: should_stop() or cancel_requested(u))
            try:
                outcome = Outcome(unit.key, "done", attempts=1, record=run_unit(unit, hooks))
            except Exception as exc:  # noqa: BLE001 — every error becomes the unit's outcome
                if self.raise_errors:
                    raise
                outcome = failure(unit.key, exc, 1)
            except KeyboardInterrupt as exc:
                if self.raise_errors:
                    raise
                outcome = failure(unit.key, exc, 1)
                notify(unit.key, outcome.status, outcome)
                out.append(outcome)
                out += _cancel_rest(units[i + 1:], notify)
                break
            notify(unit.key, outcome.status, outcome)
            out.append(outcome)
        return out


def _cancel_rest(units: list[Unit], notify: Listener) -> list[Outcome]:
    out = [Outcome(u.key, "cancelled", "cancelled on request") for u in units]
    for o in out:
        notify(o.key, "cancelled", o)
    return out


EXECUTORS.add(Entry("inline", lambda workers, ray_address: InlineExecutor(), order=0,
                    help="in this process, one unit after another (tests, debugging; the dashboard's worker)",
                    extra={"in_process": lambda hooks: InlineExecutor(hooks, raise_errors=True)}))
