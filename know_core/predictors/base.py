"""The predictor protocol: one next-value rule per window row, plus the rollout and input checks they all share.

A predictor only implements :meth:`Predictor.step` — "given finite windows, return each row's next value". Everything
a caller can get wrong (a NaN in the weights, a 1-D tensor, too few stages, a bad group or step count) is checked once
here, so every predictor fails the same way with a message that names the offending parameter.

Rollout (the method's θ̂_{−1}, θ̂_{−2}, …) also lives here: each step drops the oldest (most-forgotten) column and
appends the prediction, so the window keeps its length. Rows are processed in chunks, all steps of a chunk before the
next one, so predicting an 11M-weight model never holds more than a few chunks' intermediates in memory.

On a CPU the chunks are shared out by :func:`run_chunks` to one worker thread per intra-op thread, each running its
chunks single-threaded. Element-wise work on small chunks gains nothing from splitting every op across cores, and on
a shared 2-core machine the barrier after each split op made intra-op threading 3× slower whenever another process
held a core; independent workers only lose the core that is taken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from know_core.common.errors import KnowError

from ..models import GROUPS

GPU_CHUNK_ROWS = 1 << 22  # accelerators want few large launches; 4M rows of a 5-stage window are 80 MB


class PredictorInputError(KnowError, ValueError):
    """A window, step count or group a predictor cannot use; the message says which and why."""


def check_window(window: torch.Tensor, min_stages: int, param_name: str | None = None) -> torch.Tensor:
    """Return ``window`` if it is a finite 2-D float tensor with at least ``min_stages`` columns, else raise.
    On the ``meta`` device, which holds no values, only the shape and dtype are checked."""
    where = f" for parameter {param_name!r}" if param_name else ""
    if not isinstance(window, torch.Tensor):
        raise TypeError(f"window{where} must be a torch.Tensor, got {type(window).__name__}")
    if window.ndim != 2 or not window.is_floating_point():
        raise PredictorInputError(
            f"window{where} must be a 2-D float tensor (rows, stages), got shape {tuple(window.shape)} {window.dtype}")
    if window.shape[1] < min_stages:
        raise PredictorInputError(
            f"window{where} has {window.shape[1]} stages; this predictor needs at least {min_stages}")
    if window.device.type == "meta":  # shapes without values (device-placement tests): nothing more to check
        return window
    finite = torch.isfinite(window)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(window).sum())
        n_inf = int((~finite).sum()) - n_nan
        first_row = int((~finite).any(dim=1).nonzero()[0, 0])
        counts = ", ".join(f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "Inf")) if n)
        raise PredictorInputError(f"non-finite value in window{where} ({counts}; first at row {first_row})")
    return window


def check_steps(steps: int) -> int:
    """Rollout length: a plain int ≥ 1 (bools and floats are refused, they are always a caller's slip)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise PredictorInputError(f"steps must be an integer >= 1, got {steps!r}")
    return steps


def check_group(group: str) -> str:
    """One of the parameter groups KNOW predicts separately."""
    if group not in GROUPS:
        raise PredictorInputError(f"unknown parameter group {group!r}; expected one of {', '.join(GROUPS)}")
    return group


def run_chunks(total: int, chunk: int, make_worker: Callable[[], Callable[[int, int], None]],
               device: torch.device) -> None:
    """Call ``worker(start, stop)`` over consecutive row ranges covering ``range(total)``.

    ``make_worker`` is called once per thread, so a worker can own preallocated buffers. On a CPU with n > 1 intra-op
    threads, n threads take ranges from a shared queue, each with one intra-op thread; elsewhere one loop runs them.
    The first error stops the queue and is re-raised.
    """
    starts = iter(range(0, total, chunk))  # next() on it is atomic under the GIL

    def drain() -> None:
        worker = make_worker()
        try:
            for start in starts:
                worker(start, min(start + chunk, total))
        except BaseException:
            for _ in starts:  # empty the queue so the other threads stop too
                pass
            raise

    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads == 1 or total <= chunk:
        drain()
        return
    with ThreadPoolExecutor(threads) as pool:
        for job in [pool.submit(_single_threaded, drain, threads) for _ in range(threads)]:
            job.result()


def _single_threaded(work: Callable[[], None], restore: int) -> None:
    """Run ``work`` with one intra-op thread. torch keeps that setting per thread for the ops this thread runs; the
    process-wide default it also changes (seen by threads created meanwhile) is put back afterwards."""
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            work()
    finally:
        torch.set_num_threads(restore)


class Predictor(ABC):
    """Element-wise retrodiction: each row of a window is one scalar weight's trajectory, Θ0 in the last column."""

    name: str = ""
    min_stages: int = 2
    chunk_rows: int = 65_536  # rows rolled together: amortises dispatch, keeps memory flat; tuned per predictor

    @abstractmethod
    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        """Next value of every row of a validated, finite (n, L) window, as an (n,) tensor of the window's dtype."""

    def describe(self) -> str:
        """One line for logs and the UI: what the rule is and with which settings."""
        return self.name

    def predict(self, window: torch.Tensor, steps: int = 1, group: str = "fc", *,
                param_name: str | None = None) -> torch.Tensor:
        """(N, steps) rolled predictions θ̂_{−1} … θ̂_{−steps} for an (N, L) window, most-forgotten column first."""
        check_group(group)
        check_steps(steps)
        check_window(window, self.min_stages, param_name)
        out = torch.empty(window.shape[0], steps, dtype=window.dtype, device=window.device)

        def roll(start: int, stop: int) -> None:
            rows = window[start:stop]
            for j in range(steps):
                nxt = self.step(rows, group)
                out[start:stop, j] = nxt
                if j + 1 < steps:
                    rows = torch.cat([rows[:, 1:], nxt.unsqueeze(1)], dim=1)

        chunk = self.chunk_rows if window.device.type == "cpu" else max(self.chunk_rows, GPU_CHUNK_ROWS)
        with torch.inference_mode():
            run_chunks(window.shape[0], chunk, lambda: roll, window.device)
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
