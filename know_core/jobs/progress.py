"""The worker's progress report: ``.progress.json`` in the run folder, kept current without writing on every batch,
and one line per phase in the worker's log (no progress bars: the log is a file)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from know_core.common.fsio import write_json
from know_core.engine.train import ProgressEvent
from know_core.experiment.methods import BASELINE
from know_core.experiment.spec import ExperimentConfig

if TYPE_CHECKING:
    from know_core.common.threads import Adaptive

PROGRESS = ".progress.json"
WRITE_EVERY_S = 0.5  # at most this often (and at each phase change)


def expected_phases(cfg: ExperimentConfig) -> int:
    """About how many phases one seed goes through (pre-training, forgetting, oracles, one fine-tune per row)."""
    oracles = len(cfg.scales) if cfg.oracles != "off" else 0
    predicted = [m for m in cfg.method_names if m != BASELINE]
    return 2 + 2 * oracles + 2 + 2 * len(predicted) * len(cfg.scales)


class ProgressWriter:
    """Hooks' progress callback that keeps ``.progress.json`` current without writing on every batch. At each new
    phase it writes one line to ``log`` (the worker's stderr: its ``.worker.log``) and lets ``threads`` (a
    :class:`~know_core.common.threads.Adaptive`) set torch's thread count for the phase from the cores free now."""

    def __init__(self, path: Path, cfg: ExperimentConfig, log: TextIO | None = None,
                 threads: "Adaptive | None" = None):
        self.path, self.cfg, self.log, self.threads = path, cfg, log, threads
        self.state: dict[str, Any] = {"phase": "starting", "done": 0, "total": 0, "metrics": {}, "phases": [],
                                      "seeds_total": len(cfg.seeds), "seeds_done": 0, "pid": os.getpid(),
                                      "started": time.time(), "per_seed_phases": expected_phases(cfg)}
        self._last = 0.0
        self.write()

    def _seeds_done(self) -> int:
        return sum((self.path / "seeds" / f"seed-{s}.json").exists() for s in self.cfg.seeds)

    def __call__(self, event: ProgressEvent) -> None:
        phases = self.state["phases"]
        changed = not phases or phases[-1]["phase"] != event.phase or event.done < phases[-1]["done"]
        now = time.time()
        if changed:
            if phases:
                phases[-1]["ended"] = now
            self._phase_line(event, now)
            phases.append({"phase": event.phase, "done": 0, "total": event.total, "started": now, "ended": None})
        phases[-1].update(done=event.done, total=event.total)
        # A phase that reports no metrics (fine-tuning) shows none, not the last phase's stale ones.
        self.state.update(phase=event.phase, done=event.done, total=event.total,
                          metrics={k: float(v) for k, v in event.metrics.items()} or
                          ({} if changed else self.state["metrics"]))
        if changed or now - self._last >= WRITE_EVERY_S:
            self.write()

    def _phase_line(self, event: ProgressEvent, now: float) -> None:
        threads = self.threads.tick() if self.threads is not None else None
        if self.log is not None:
            steps = f", {event.total} steps" if event.total else ""
            where = f", {threads} thread{'s' * (threads != 1)}" if threads is not None else ""
            print(f"[{now - self.state['started']:6.1f} s] {event.phase}{steps}{where}", file=self.log, flush=True)

    def write(self, **final: Any) -> None:
        """Write the report; ``fraction`` estimates the whole job's progress from finished seeds, the phases seen and
        the share of the current phase done (so it moves through a long pre-training)."""
        seeds_done = self._seeds_done()
        if seeds_done != self.state["seeds_done"]:
            self._seed_first_phase = len(self.state["phases"])
        phases_this_seed = len(self.state["phases"]) - getattr(self, "_seed_first_phase", 0)
        current = self.state["done"] / self.state["total"] if self.state["total"] else 0.0
        within = min((max(phases_this_seed - 1, 0) + min(current, 1.0) * (phases_this_seed > 0))
                     / max(self.state["per_seed_phases"], 1), 0.99)
        fraction = 1.0 if final.get("status") == "done" else \
            min((seeds_done + within) / max(self.state["seeds_total"], 1), 0.99)
        self.state.update(final, updated=time.time(), seeds_done=seeds_done, fraction=fraction)
        write_json(self.path / PROGRESS, self.state)
        self._last = time.time()
