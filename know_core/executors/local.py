"""The local executor: a pool of spawned worker processes on this machine, one OpenMP thread each.

One thread per worker because two thread pools competing for the same cores slow each other down 10–50×
(docs/method.md). Cancel: pending units are dropped and running ones see their cancel file at the next batch. A worker
that dies (killed, out of memory) breaks the pool: the units it held are retried once in a fresh pool.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import tempfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import torch

from know_core.common.registry import Entry

from .base import EXECUTORS, Executor, Listener, Outcome, failure
from .tasks import Unit, portable, request_cancel, run_unit

RETRIES = 1  # a unit whose worker crashed runs once more


def _init_worker() -> None:
    torch.set_num_threads(1)


def single_thread_pool(workers: int) -> ProcessPoolExecutor:
    """Spawned worker processes with one OpenMP thread each (the variable is read when a worker imports torch)."""
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # read when a spawned worker imports torch
    try:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int):
        self.workers = workers

    def _run(self, units: list[Unit], notify: Listener, should_stop: Callable[[], bool]) -> list[Outcome]:
        stop_file = Path(tempfile.mkdtemp(prefix="know-cancel-")) / "cancel"
        units = [u if u.cancel else dataclasses.replace(u, cancel=str(stop_file)) for u in units]
        attempts = {u.key: 0 for u in units}
        queue, done = list(units), []
        stop = functools.partial(request_cancel, units)  # asks every running unit to stop
        try:
            retrying = False
            while queue:
                # A crash breaks the whole pool, so every unit in it comes back for a retry; retried units then run
                # in pools of their own, or a unit that crashes again would take an innocent one's last attempt with
                # it (seen: "flaky" failed beside "doomed" when doomed's second crash came first).
                rounds = [[unit] for unit in queue] if retrying else [queue]
                queue, retrying = [], True
                for part in rounds:
                    if part is not rounds[0] and should_stop():
                        queue += part
                        continue
                    queue += self._round(part, attempts, notify, should_stop, done, stop)
                if queue and should_stop():  # no retry after a cancel
                    for unit in queue:
                        done.append(Outcome(unit.key, "cancelled", "cancelled on request", attempts[unit.key]))
                        notify(unit.key, "cancelled", done[-1])
                    break
        finally:
            stop_file.unlink(missing_ok=True)
            stop_file.parent.rmdir()
        return done

    def _round(self, queue: list[Unit], attempts: dict[str, int], notify: Listener, should_stop: Callable[[], bool],
               done: list[Outcome], stop: Callable[[], None]) -> list[Unit]:
        """Run ``queue`` in one pool; returns the units to retry in a fresh pool (their worker crashed)."""
        retry: list[Unit] = []
        size = min(self.workers, len(queue))
        pool = single_thread_pool(size)
        futures: dict[Future, Unit] = {}
        try:
            for unit in queue:
                attempts[unit.key] += 1
                futures[pool.submit(run_unit, portable(unit))] = unit
            running: set[str] = set()
            pending = set(futures)
            cancelled = False
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.discard(futures[fut].key)
                for fut in pending:  # the pool feeds one more than its workers: count only what can run
                    unit = futures[fut]
                    if fut.running() and unit.key not in running and len(running) < size:
                        running.add(unit.key)
                        notify(unit.key, "running", None)
                for fut in finished:
                    unit = futures[fut]
                    outcome = self._outcome(fut, unit, attempts[unit.key])
                    if outcome is None:
                        retry.append(unit)
                        continue
                    notify(unit.key, outcome.status, outcome)
                    done.append(outcome)
                if not cancelled and should_stop():
                    cancelled = True
                    stop()
                    for fut in list(pending):
                        if fut.cancel():
                            pending.discard(fut)
                            outcome = Outcome(futures[fut].key, "cancelled", "cancelled on request",
                                              attempts[futures[fut].key] - 1)
                            notify(outcome.key, "cancelled", outcome)
                            done.append(outcome)
        except KeyboardInterrupt:
            stop()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return retry

    @staticmethod
    def _outcome(fut: Future, unit: Unit, attempt: int) -> Outcome | None:
        """The unit's outcome, or None when its worker crashed and it has a retry left."""
        try:
            return Outcome(unit.key, "done", attempts=attempt, record=fut.result())
        except BrokenProcessPool as exc:
            if attempt <= RETRIES:
                return None
            return Outcome(unit.key, "failed", f"its worker process crashed twice ({exc})", attempt)
        except BaseException as exc:  # noqa: BLE001 — the unit's own error, reported as its outcome
            return failure(unit.key, exc, attempt)


EXECUTORS.add(Entry("local", lambda workers, ray_address: LocalExecutor(workers), order=1,
                    help="a pool of worker processes on this machine, one thread each (the default)"))
