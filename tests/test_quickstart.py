"""Quickstart command 1 for real: scripts/start.sh sets up, launches the quick demo as a background job into an empty
runs directory and serves the dashboard on 127.0.0.1 at once, while the demo still runs; a second start launches no
second demo. The test stops the servers by their process groups and cancels the demo's worker."""

import json
import os
import signal
import subprocess
import time
import urllib.request

from browser import free_port
from conftest import REPO

from know_core.jobs import launch as jobs


def _start(runs, port):
    env = {**os.environ, "KNOW_RUNS_DIR": str(runs), "PORT": str(port)}
    return subprocess.Popen(["bash", "scripts/start.sh"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_health(proc, port, limit_s):
    deadline = time.monotonic() + limit_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                assert resp.status == 200
            return
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, f"dashboard did not come up in {limit_s} s"
            time.sleep(0.5)


def _runs(runs):
    listing = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "know_core", "runs", "list", "--json",
                              "--runs-dir", str(runs)], cwd=REPO, capture_output=True, text=True)
    return [(r["kind"], r["status"], r["name"]) for r in json.loads(listing.stdout)], listing.stderr


def _stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode()
    return out


def _cancel_demo(runs):
    """Stop the demo's worker (its own session: killing start.sh's group leaves it running)."""
    for run_id in [p.name for p in runs.iterdir() if (p / jobs.JOB).is_file()]:
        try:
            jobs.cancel(runs, run_id)
        except Exception:
            continue
        deadline = time.monotonic() + 60
        while jobs.progress(runs, run_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        pid = json.loads((runs / run_id / jobs.JOB).read_text())["pid"]
        if jobs.progress(runs, run_id)["status"] == "running":
            os.kill(pid, signal.SIGKILL)


def test_start_script_serves_at_once_while_the_demo_runs_in_the_background(tmp_path):
    runs = tmp_path / "runs"  # does not exist yet: no "error:" line for that
    port = free_port()
    proc = _start(runs, port)
    second = None
    try:
        _wait_for_health(proc, port, 240)
        listing, stderr = _runs(runs)
        assert listing == [("experiment", "running", "quick demo")], (listing, stderr)  # served before it ends
        run_id = next(p.name for p in runs.iterdir() if (p / jobs.JOB).is_file())
        assert jobs.progress(runs, run_id)["status"] == "running"

        second_port = free_port()
        second = _start(runs, second_port)  # idempotent: serves, launches nothing
        _wait_for_health(second, second_port, 240)
        assert _runs(runs)[0] == [("experiment", "running", "quick demo")]
        second_log = _stop(second)
        second = None
        assert "already running: nothing launched" in second_log

        deadline = time.monotonic() + 120  # the worker's log: one line per phase, no progress bars
        log = runs / run_id / jobs.LOG
        while "pre-training" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        text = log.read_text()
        assert text.startswith("worker: run ") and "] pre-training, " in text, text
        assert "\r" not in text and "it/s" not in text and "%|" not in text

        out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if \
            subprocess.run(["which", "ss"], capture_output=True).returncode == 0 else ""
        assert f"0.0.0.0:{port}" not in out and f"*:{port}" not in out  # loopback only
    finally:
        if second is not None:
            _stop(second)
        first_log = _stop(proc)
        if runs.is_dir():
            _cancel_demo(runs)
    lines = first_log.splitlines()
    assert not [line for line in lines if line.startswith("error:") or "Traceback" in line], first_log
    assert any(line.startswith("quick demo: running in the background as run ") for line in lines), first_log
