"""The cost ledger: wall, CPU and GPU seconds per phase of a run, taken the same way everywhere.

A :class:`Ledger` is the old ``timings`` dict (``{"pretrain_s": wall seconds, …}``, so every reader of wall-only
timings keeps working) with the full record beside it in :attr:`Ledger.phases`::

    {"pretrain": {"wall_s": 39.4, "cpu_s": 77.1, "gpu_s": None}, ...}

- ``wall_s``: elapsed time (``time.perf_counter``).
- ``cpu_s``: CPU time of this process, all its threads (``time.process_time``), plus that of child processes that
  finished inside the phase (``RUSAGE_CHILDREN``). Above ``wall_s`` when several cores worked.
- ``gpu_s``: on a CUDA device, the time between two CUDA events recorded on the current stream at the phase's start
  and end: how long the phase held the GPU's queue, not how busy the GPU was. ``None`` on the CPU.

Phases may nest (``predict`` around ``predict:known``); each is measured on its own.
"""

from __future__ import annotations

import contextlib
import resource
import time
from typing import Any, Iterator

import torch


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Ledger(dict):
    """Wall seconds per phase as ``{name + "_s": seconds}`` (the legacy timings), and :attr:`phases` in full."""

    def __init__(self, device: torch.device | str | None = None):
        super().__init__()
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.phases: dict[str, dict[str, float | None]] = {}
        self._open: dict[str, tuple] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Measure the ``with`` block as phase ``name`` (recorded even when the block raises)."""
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def start(self, name: str) -> None:
        """Open phase ``name`` (for a phase that spans code a ``with`` block would have to re-indent)."""
        event = None
        if self.device.type == "cuda" and torch.cuda.is_available():
            event = torch.cuda.Event(enable_timing=True)
            event.record()
        self._open[name] = (time.perf_counter(), time.process_time(), _children_cpu(), event)

    def stop(self, name: str) -> None:
        """Close phase ``name`` and record its seconds."""
        wall, cpu, children, event = self._open.pop(name)
        gpu = None
        if event is not None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            gpu = event.elapsed_time(end) / 1000.0
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu + _children_cpu() - children
        self.phases[name] = {"wall_s": wall, "cpu_s": cpu, "gpu_s": gpu}
        self[f"{name}_s"] = wall

    @classmethod
    def from_wall(cls, timings: dict[str, Any], device: torch.device | str | None = None) -> "Ledger":
        """A ledger of wall seconds measured elsewhere (a seed's share of a seed-batched run): CPU and GPU seconds
        unknown, since they were the batch's, not this run's."""
        ledger = cls(device)
        ledger.update(timings)
        ledger.phases = phases_of({"timings": timings})
        return ledger

    def record(self) -> dict[str, dict[str, float | None]]:
        """The phases as a JSON-ready dict (a copy)."""
        return {name: dict(entry) for name, entry in self.phases.items()}


def phases_of(record: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The phases of a stored seed or run record: its ``ledger`` when present, else its wall-only ``timings`` (or the
    record itself, as in ``results.json``'s ``per_seed``; runs recorded before the ledger), read as
    ``{name: {"wall_s": s, "cpu_s": None, "gpu_s": None}}``."""
    ledger = record.get("ledger")
    if isinstance(ledger, dict) and ledger:
        return {str(k): {key: _number(v.get(key)) for key in ("wall_s", "cpu_s", "gpu_s")}
                for k, v in ledger.items() if isinstance(v, dict)}
    timings = record.get("timings", record) or {}  # a run's summary nests them; results.json's per_seed is flat
    return {k.removesuffix("_s"): {"wall_s": _number(v), "cpu_s": None, "gpu_s": None}
            for k, v in timings.items() if isinstance(k, str) and k.endswith("_s") and _number(v) is not None}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
