"""How a long operation talks to its caller: progress events out, a stop request in (``Hooks``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from know_core.common.errors import Cancelled


@dataclass
class ProgressEvent:
    """One tick of a long operation: ``done`` of ``total`` units in ``phase``, with the latest metrics."""

    phase: str
    done: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Hooks:
    """What a caller hears (``progress``) and how it stops a run (``should_stop`` returning True)."""

    progress: Callable[[ProgressEvent], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def report(self, phase: str, done: int, total: int, **metrics: float) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(phase, done, total, metrics))

    def check(self) -> None:
        """Raise :class:`Cancelled` when the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("cancelled on request")
