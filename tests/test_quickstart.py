"""Quickstart command 1 for real: scripts/start.sh sets up, runs the quick demo into an empty runs directory and
serves the dashboard on 127.0.0.1; the test stops it by its process group."""

import json
import os
import signal
import subprocess
import time
import urllib.request

from browser import free_port
from conftest import REPO


def test_start_script_runs_the_demo_and_serves_on_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "KNOW_RUNS_DIR": str(tmp_path / "runs"), "PORT": str(port)}
    proc = subprocess.Popen(["bash", "scripts/start.sh"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                    assert resp.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "dashboard did not come up in 300 s"
                time.sleep(0.5)
        listing = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "know_core", "runs", "list", "--json",
                                  "--runs-dir", str(tmp_path / "runs")], cwd=REPO, capture_output=True, text=True)
        runs = json.loads(listing.stdout)
        assert [(r["kind"], r["status"], r["name"]) for r in runs] == [("experiment", "done", "quick demo")]
        out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if \
            subprocess.run(["which", "ss"], capture_output=True).returncode == 0 else ""
        assert f"0.0.0.0:{port}" not in out and f"*:{port}" not in out  # loopback only
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
