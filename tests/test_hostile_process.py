"""Processes that die and disks that fill (issue 11, classes 1 and 7): kill -9 of a CLI run, owners that are gone,
a file-size limit (RLIMIT_FSIZE), a full tmpfs and a read-only store."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, tiny_config

from know_core.cli import main
from know_core.common import liveness
from know_core.store.runstore import RunStore

TINY = ["--dataset", "synthetic", "--model", "mlp", "--stages", "4", "--pretrain-epochs", "4", "--batch-size", "32",
        "--device", "cpu", "--quiet"]


def cli(*args, limit_bytes: int | None = None, timeout=120) -> subprocess.CompletedProcess:
    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, "-m", "know_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1"})


def one_error_line(proc) -> None:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip() and "%|" not in line]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]


def test_kill_9_of_a_cli_run_is_reconciled_cleaned_and_deletable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "know_core", "forget", "--runs-dir", str(tmp_path), *TINY,
                             "--pretrain-epochs", "100000", "--fixed-pretrain"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / ".staging").glob("*/config.json")):
        time.sleep(0.2)
    (run,) = RunStore(tmp_path).list_runs()
    assert run.status == "running"
    owner = json.loads((tmp_path / ".staging" / run.id / liveness.OWNER).read_text())
    assert owner["pid"] == proc.pid and owner["host"] and owner["proc_start"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = json.loads(cli("runs", "list", "--json", "--runs-dir", str(tmp_path)).stdout)
    assert listed[0]["status"] == "failed" and f"pid {proc.pid}" in listed[0]["error"]
    assert not (tmp_path / ".staging" / run.id).exists()
    assert cli("runs", "delete", run.id, "--runs-dir", str(tmp_path)).returncode == 0
    assert RunStore(tmp_path).list_runs() == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("owner", [
    lambda: {"pid": _dead_pid(), "host": liveness.socket.gethostname(), "proc_start": 1},
    lambda: {"pid": 1, "host": liveness.socket.gethostname(), "proc_start": -5},  # a recycled pid
    lambda: {"pid": -3},
    lambda: "not a record",
    lambda: None,  # no record at all, and not updated for a while
], ids=["dead-pid", "recycled-pid", "negative-pid", "garbage-record", "no-record"])
def test_a_running_row_whose_owner_is_gone_is_failed_and_resumable(tmp_path, owner):
    store = RunStore(tmp_path)
    from know_core.engine.config import to_dict

    staging = tmp_path / ".staging" / "r1"
    staging.mkdir(parents=True)
    record = owner()
    if record is not None:
        (staging / liveness.OWNER).write_text(json.dumps(record))
    now = time.time() - 3600
    with store._db() as db:
        db.execute("INSERT INTO runs VALUES ('r1', 'forget', 'zombie', 'running', NULL, ?, ?, ?, NULL)",
                   (now, now, json.dumps(to_dict(tiny_config()))))
    (info,) = store.list_runs()
    assert info.status == "failed" and info.error
    assert not staging.exists()
    assert RunStore(tmp_path).info("r1").status == "failed"  # recorded, not only shown
    assert main(["runs", "resume", "r1", "--quiet", "--runs-dir", str(tmp_path)]) == 0
    (info,) = RunStore(tmp_path).list_runs()
    assert info.status == "done" and info.name == "zombie"


def test_a_live_owner_is_left_running(tmp_path):
    store = RunStore(tmp_path)
    path = store.create_in_place("experiment", {"preset": "x"})
    assert store.info(path.name).status == "running"


@pytest.mark.parametrize("limit", [20_000, 200_000], ids=["tiny-limit", "mid-limit"])
def test_file_size_limit_is_one_line_and_nothing_partial(tmp_path, limit):
    proc = cli("forget", "--runs-dir", str(tmp_path), *TINY, limit_bytes=limit)
    one_error_line(proc)
    assert "larger than allowed" in proc.stderr or "disk" in proc.stderr
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(("index.sqlite", ".staging"))] == []
    assert not (tmp_path / ".staging").exists() or list((tmp_path / ".staging").iterdir()) == []
    assert all(r.status == "failed" for r in RunStore(tmp_path).list_runs())


def test_predict_on_a_file_size_limit_leaves_the_run_as_it_was(tmp_path):
    from know_core.jobs.lifecycle import record_forgetting

    run_id = record_forgetting(tiny_config(), RunStore(tmp_path))
    before = {p.name: p.read_bytes() for p in (tmp_path / run_id).iterdir()}
    proc = cli("predict", "--run", run_id, "--method", "naive", "--steps", "3", "--runs-dir", str(tmp_path),
               limit_bytes=4096)
    one_error_line(proc)
    assert {p.name: p.read_bytes() for p in (tmp_path / run_id).iterdir()} == before
    assert cli("runs", "show", run_id, "--runs-dir", str(tmp_path)).returncode == 0


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(name: str, size: str):
        path = tmp_path / name
        if not _mount_tmpfs(path, size):
            return None
        mounts.append(path)
        return path
    yield make
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_is_one_line_and_nothing_partial(tmpfs, tmp_path):
    root = tmpfs("full", "160k")
    if root is None:  # no tmpfs here: a file-size limit stands in for the full disk (tested above too)
        root = tmp_path / "full"
        proc = cli("forget", "--runs-dir", str(root), *TINY, limit_bytes=60_000)
    else:
        proc = cli("forget", "--runs-dir", str(root), *TINY)
    one_error_line(proc)
    assert [p.name for p in root.iterdir() if not p.name.startswith(("index.sqlite", ".staging"))] == []
    assert not (root / ".staging").exists() or list((root / ".staging").iterdir()) == []


def test_a_read_only_store_can_still_be_read(tmpfs, tmp_path):
    from know_core.jobs.lifecycle import record_forgetting

    root = tmpfs("ro", "50m")
    readonly_by_mount = root is not None
    if root is None:
        if os.geteuid() == 0:
            pytest.skip("needs a tmpfs mount (or a non-root user) to make a read-only folder")
        root = tmp_path / "ro"
    run_id = record_forgetting(tiny_config(), RunStore(root))
    if readonly_by_mount:
        assert subprocess.run(["mount", "-o", "remount,ro", str(root)], capture_output=True).returncode == 0
    else:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode & 0o555)
    listed = cli("runs", "list", "--json", "--runs-dir", str(root))
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "done", listed.stderr
    assert cli("runs", "show", run_id, "--runs-dir", str(root)).returncode == 0
    assert cli("backtest", "--run", run_id, "--methods", "naive,taskvector", "--runs-dir", str(root)).returncode == 0
    one_error_line(cli("predict", "--run", run_id, "--method", "naive", "--runs-dir", str(root)))
    one_error_line(cli("forget", "--runs-dir", str(root), *TINY))
    if readonly_by_mount:  # and with the index gone, the listing is rebuilt in memory
        subprocess.run(["mount", "-o", "remount,rw", str(root)], capture_output=True)
        for f in root.glob("index.sqlite*"):
            f.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(root)], capture_output=True)
        listed = cli("runs", "list", "--json", "--runs-dir", str(root))
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["id"] == run_id, listed.stderr
