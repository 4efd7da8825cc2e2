"""Thread choice (know_core.common.threads): the free cores, rounded, never more than the usable ones, never fewer than
one;
KNOW_THREADS and OMP_NUM_THREADS fix the count; the adaptive chooser follows the other processes' load."""

import subprocess
import sys
import time

import pytest
import torch

from know_core.common import threads
from know_core.common.errors import ConfigError


@pytest.mark.parametrize(
    "busy, cores, want",
    [(0.0, 2, 2), (0.1, 2, 2), (1.0, 2, 1), (0.7, 2, 1), (2.5, 2, 1), (0.0, 8, 8), (3.2, 8, 5), (0.0, 1, 1)],
)
def test_free_threads_are_the_free_cores_rounded_within_one_and_the_cores(busy, cores, want):
    assert threads.free_threads(busy, cores) == want


def test_know_threads_wins_over_omp_num_threads_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("KNOW_THREADS", "3")
    assert threads.env_threads() == 3 and threads.choose_threads() == 3
    monkeypatch.delenv("KNOW_THREADS")
    assert threads.choose_threads() == 1
    monkeypatch.setenv("KNOW_THREADS", "two")
    with pytest.raises(ConfigError, match="KNOW_THREADS must be a positive integer.*'two'"):
        threads.choose_threads()


def test_without_a_fixed_count_the_measured_load_decides(monkeypatch):
    monkeypatch.delenv("KNOW_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    load = {"busy": 0.05}
    monkeypatch.setattr(threads, "others_busy", lambda since=None: (load["busy"], since))
    before = torch.get_num_threads()
    try:
        adaptive = threads.Adaptive(recheck_s=0.0)
        assert adaptive.threads == 2 and torch.get_num_threads() == 2  # idle: both cores
        load["busy"] = 1.0  # another CPU-bound process starts
        assert adaptive.tick() == 1 and torch.get_num_threads() == 1
        load["busy"] = 0.0  # and stops
        assert adaptive.tick() == 2
        assert [n for _, n in adaptive.changes] == [2, 1, 2]
    finally:
        torch.set_num_threads(before)


def test_a_fixed_count_is_kept_whatever_the_load(monkeypatch):
    monkeypatch.setenv("KNOW_THREADS", "1")
    monkeypatch.setattr(threads, "others_busy", lambda since=None: (0.0, since))
    adaptive = threads.Adaptive(recheck_s=0.0)
    assert adaptive.tick(force=True) == 1 and adaptive.changes == [(0.0, 1)]


def test_the_measurement_sees_another_process_and_not_this_one():
    """A child spinning on one core shows up as other load; this process spinning does not."""
    if threads._snapshot() is None:
        pytest.skip("no /proc/stat here")
    snap = threads._snapshot()
    t0, c0 = time.monotonic(), time.process_time()
    while time.process_time() - c0 < 0.3 and time.monotonic() - t0 < 20:  # our own busy loop: excluded
        pass
    _, now = threads.others_busy(snap)
    own_cpu = now[2] - snap[2]
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    try:
        time.sleep(0.5)
        with_child, _ = threads.others_busy()
        time.sleep(0.2)
        snap = threads._snapshot()
        time.sleep(1.0)
        with_child = max(with_child, threads.others_busy(snap)[0])
    finally:
        child.kill()
        child.wait()
    assert own_cpu >= 0.25  # our own loop is counted as ours (and subtracted from the machine's busy time)
    assert with_child >= 0.5  # the child had most of a core
