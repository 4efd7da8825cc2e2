"""Who is running a run: a pid, host and process start time recorded for every run, and a test of whether it lives.

Every run records its owner in ``.owner.json`` (in ``.staging/<id>/`` while a one-shot run is written, in the run
folder for an in-place run), written before the run is listed; a dashboard worker also writes ``.job.json``, which
takes precedence. A ``running`` row whose owner is gone (killed, out of memory, the machine rebooted) is stale: the
store marks it failed wherever runs are listed. The process start time makes a recycled pid harmless; a record from
another host is trusted as alive (we cannot see its processes).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

OWNER, JOB = ".owner.json", ".job.json"


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 of the whole line; two fields (pid, comm) precede the ")"
    except (IndexError, ValueError):
        return None


def record(pid: int | None = None, **extra: Any) -> dict[str, Any]:
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "proc_start": process_start(pid), "started": time.time(),
            **extra}


def alive(rec: dict[str, Any] | None, marker: str | None = None) -> bool:
    """Whether the process of ``rec`` still runs (not a zombie, not a recycled pid). Unknown hosts count as alive."""
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int) or rec["pid"] <= 0:
        return False
    if rec.get("host", socket.gethostname()) != socket.gethostname():
        return True
    pid = rec["pid"]
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        if rec.get("proc_start") is not None:
            return process_start(pid) == rec["proc_start"]
        return marker is None or marker in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_record(path: Path, limit: int = 1 << 16) -> dict[str, Any] | None:
    """A small JSON record (never more than ``limit`` bytes, never through a symlink); None when absent, too big or
    unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            return None
        rec = json.loads(data)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def owner_of(root: Path, run_id: str) -> tuple[dict[str, Any] | None, str]:
    """The record of whoever runs ``run_id`` and where it came from (``job`` / ``owner`` / ``none``)."""
    folder, staging = root / run_id, root / ".staging" / run_id
    if (rec := read_record(folder / JOB)) is not None:
        return rec, "job"
    for place in (folder, staging):
        if (rec := read_record(place / OWNER)) is not None:
            return rec, "owner"
    return None, "none"


def gone_reason(root: Path, run_id: str, grace_s: float = 30.0, updated: float | None = None) -> str | None:
    """Why a ``running`` run is stale (its process is gone), or None while it may still be running."""
    rec, source = owner_of(root, run_id)
    if rec is None:
        # no record: a run recorded before owners existed, or one being set up right now (give it a moment)
        if updated is not None and time.time() - updated < grace_s:
            return None
        return "its process is unknown and it has no live owner (stopped before it finished)"
    if alive(rec, "know_core.jobs.worker" if source == "job" else None):
        return None
    who = "the worker process" if source == "job" else "the process"
    return f"{who} (pid {rec.get('pid')} on {rec.get('host', 'this host')}) died without finishing"


def log_tail(path: Path, lines: int = 5) -> str:
    rec = None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - 8192))
            rec = fh.read(8192).decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(rec.strip().splitlines()[-lines:])


def live_here(root: Path, run_id: str) -> str | None:
    """``pid N on this host`` when ``run_id``'s owner is a live process of this host (one we can see), else None:
    no record, a dead process, or an owner on another host."""
    rec, source = owner_of(root, run_id)
    if rec is None or rec.get("host", socket.gethostname()) != socket.gethostname():
        return None
    if alive(rec, "know_core.jobs.worker" if source == "job" else None):
        return f"pid {rec.get('pid')} on this host"
    return None


def describe_owner(root: Path, run_id: str) -> str:
    """Who a ``running`` run's record says runs it, in words."""
    rec, _ = owner_of(root, run_id)
    if rec is None:
        return "no readable owner record"
    host = str(rec.get("host", socket.gethostname()))[:80]
    where = "this host" if host == socket.gethostname() else f"host {host!r}, which cannot be checked from here"
    return f"its owner is pid {str(rec.get('pid'))[:20]} on {where}"
