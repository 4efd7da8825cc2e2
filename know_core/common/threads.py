"""How many threads torch may use: the cores that are actually free, never more.

On a 2-core laptop with another job running, a process that opens an OpenMP pool of 2 threads fights the other job
for both cores: OpenMP threads spin while they wait for each other, so one slow thread stalls every parallel region
and the run takes several times as long as with 1 thread (the quick demo: 306 s instead of about a minute). So the
worker and the command line pick torch's intra-op thread count from the cores this process may run on
(``os.sched_getaffinity``, capped by a cgroup CPU quota) minus the CPU time that *other* processes are using right now
(``/proc/stat`` minus this process's own CPU time, over a short window; the 1-minute load average where ``/proc`` is
unreadable), and look again at phase boundaries (:class:`Adaptive`), so a competing job that starts or stops halfway
changes the count for the next phase.

Precedence: ``KNOW_THREADS`` (a positive integer: use exactly that many), then ``OMP_NUM_THREADS`` (set by the user
or the tests: respected as a fixed choice), then the measurement. Thread counts change floating-point summation order,
so two runs on differently loaded machines can differ in the last digits; set ``KNOW_THREADS`` for bit-identical
reruns.
"""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path

import torch

from know_core.common.errors import ConfigError

ENV = "KNOW_THREADS"
SAMPLE_S = 0.25  # the first measurement's window, when there is no earlier snapshot to compare with
RECHECK_S = 5.0  # Adaptive looks again at most this often


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (``cpu.max``) if any."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _snapshot() -> tuple[float, float, float] | None:
    """(wall seconds, busy CPU seconds of this process's cores, this process's CPU seconds), or None without /proc."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    try:
        mine = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        mine = None
    tick = os.sysconf("SC_CLK_TCK")
    busy = 0.0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or (mine is not None and name not in mine):
            continue
        fields = [int(v) for v in values[:8]]
        busy += (sum(fields) - fields[3] - fields[4]) / tick  # all but idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    return time.monotonic(), busy, own.ru_utime + own.ru_stime


def others_busy(since: tuple[float, float, float] | None = None) -> tuple[float, tuple[float, float, float] | None]:
    """(cores' worth of CPU that other processes used since the snapshot ``since``, the new snapshot). Without an
    earlier snapshot it samples for :data:`SAMPLE_S`; without ``/proc`` it falls back to the load average."""
    if since is None:
        since = _snapshot()
        if since is not None:
            time.sleep(SAMPLE_S)
    now = _snapshot()
    if since is None or now is None or now[0] - since[0] <= 0:
        return max(0.0, os.getloadavg()[0]), now
    wall = now[0] - since[0]
    return max(0.0, ((now[1] - since[1]) - (now[2] - since[2])) / wall), now


def env_threads() -> int | None:
    """The thread count fixed by ``KNOW_THREADS`` (or ``OMP_NUM_THREADS``), or None when neither is set."""
    for name in (ENV, "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{name} must be a positive integer (threads), got {text!r}")
        return int(text)
    return None


def free_threads(busy: float, cores: int | None = None) -> int:
    """Threads for ``busy`` cores' worth of other load: the free cores, rounded, at least 1, at most the cores."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores, round(cores - busy)))


def choose_threads() -> int:
    """The thread count to use now: ``KNOW_THREADS``, else ``OMP_NUM_THREADS``, else the free cores (measured)."""
    fixed = env_threads()
    return fixed if fixed is not None else free_threads(others_busy()[0])


def apply_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count to ``n`` (default :func:`choose_threads`); returns it."""
    n = choose_threads() if n is None else n
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class Adaptive:
    """Keeps torch's thread count at the free cores while a long job runs: :meth:`tick` (call it at phase boundaries
    or on progress events; cheap between checks) measures the other processes' load since the last check, at most
    every :data:`RECHECK_S` seconds, and sets the count. A fixed count (``KNOW_THREADS``/``OMP_NUM_THREADS``) is set
    once and kept. ``changes`` records (seconds since start, threads) for the log."""

    def __init__(self, threads: int | None = None, recheck_s: float = RECHECK_S):
        self.fixed = env_threads()
        self.recheck_s = recheck_s
        self.t0 = time.monotonic()
        self.threads = apply_threads(self.fixed or threads)  # ``threads``: already chosen by the caller
        self.changes = [(0.0, self.threads)]
        self.loads: list[float] = []  # the other processes' load (cores) at each measurement
        self._snap = _snapshot()
        self._last = time.monotonic()

    def tick(self, force: bool = False) -> int:
        """The thread count for what comes next (re-measured when :data:`RECHECK_S` has passed, or ``force``)."""
        now = time.monotonic()
        if self.fixed is not None or (not force and now - self._last < self.recheck_s):
            return self.threads
        busy, self._snap = others_busy(self._snap)
        self._last = now
        self.loads.append(busy)
        threads = apply_threads(free_threads(busy))
        if threads != self.threads:
            self.changes.append((now - self.t0, threads))
            self.threads = threads
        return threads

    def chain(self, progress):
        """A progress callback that calls ``progress`` (may be None) and then :meth:`tick`."""
        def call(event) -> None:
            if progress is not None:
                progress(event)
            self.tick()
        return call
