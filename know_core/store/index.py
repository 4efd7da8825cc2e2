"""The SQLite index of a runs directory: opening it (read-write, read-only or rebuilt in memory), turning rows into
validated :class:`RunInfo` records, and rebuilding it from the run folders when it is missing.

One bad row never hides the others: a row whose config or summary is not JSON (or not a mapping) becomes a
``damaged`` record with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from know_core.common.errors import RunStoreError
from know_core.common.liveness import JOB, OWNER, read_record
from know_core.store.loaders import LIMITS, Damaged, read_json, run_folder

SCHEMA = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    created REAL NOT NULL, updated REAL NOT NULL, config TEXT NOT NULL, summary TEXT)"""
STATUSES = ("running", "done", "failed", "cancelled")
MAX_ROW_TEXT = 4 << 20


@dataclass
class RunInfo:
    """One row of the index."""

    id: str
    kind: str
    name: str
    status: str  # running / done / failed / cancelled, or damaged when the row itself is unreadable
    error: str | None
    created: float
    updated: float
    config: dict[str, Any]
    summary: dict[str, Any]


def _mapping(text: Any, what: str) -> dict[str, Any]:
    if text is None:
        return {}
    if not isinstance(text, str) or len(text) > MAX_ROW_TEXT:
        raise Damaged(f"index row {what}", "not text of a sensible size")
    try:
        value = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError):
        raise Damaged(f"index row {what}", "not valid JSON") from None
    if not isinstance(value, dict):
        raise Damaged(f"index row {what}", f"not a mapping ({type(value).__name__})")
    return value


def row_info(row: tuple) -> RunInfo:
    """A row as a RunInfo; an unreadable field makes it ``damaged`` with the reason instead of raising."""
    rid, kind, name, status, error, created, updated, config, summary = row
    num = lambda v: float(v) if isinstance(v, (int, float)) else 0.0  # noqa: E731
    info = RunInfo(str(rid), str(kind), str(name), str(status), None if error is None else str(error),
                   num(created), num(updated), {}, {})
    try:
        if info.status not in STATUSES:
            raise Damaged("index row status", f"unknown status {info.status[:40]!r}")
        info.config = _mapping(config, "config")
        info.summary = _mapping(summary, "summary")
    except Damaged as exc:
        info.status, info.error = "damaged", str(exc)
    return info


def connect(path: Path, writable: bool) -> sqlite3.Connection:
    if writable:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA journal_mode=WAL")
        return db
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:  # WAL on a read-only folder without its -shm file: read the file as it is
        db.close()
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True, isolation_level=None)
    return db


@contextlib.contextmanager
def guarded(db: sqlite3.Connection, path: Path, close: bool = True) -> Iterator[sqlite3.Connection]:
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise RunStoreError(f"run index {path} is unusable ({exc})") from None
    finally:
        if close:
            db.close()


def folder_rows(root: Path) -> list[tuple]:
    """Index rows rebuilt from the run folders: sealed runs (a manifest) are done, the others failed and resumable.
    Names come from the owner record when it survived; config and summary from their files when readable."""
    rows = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise RunStoreError(f"cannot list {root} ({exc.strerror or exc})") from None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        rid = entry.name
        try:
            folder = run_folder(root, rid)
        except Damaged:
            continue
        owner = read_record(folder / OWNER) or read_record(folder / JOB) or {}
        mtime = entry.stat(follow_symlinks=False).st_mtime
        status, error, kind = "failed", "found by reindex without a manifest (it never finished; resume it)", None
        config: Any = {}
        summary: Any = {}
        try:
            manifest = read_json(folder, "manifest.json", LIMITS["manifest"])
            if isinstance(manifest, dict) and isinstance(manifest.get("kind"), str):
                status, error, kind = "done", None, manifest["kind"]
        except Damaged:
            pass
        with contextlib.suppress(Damaged):
            config = read_json(folder, "config.json")
        with contextlib.suppress(Damaged):
            summary = read_json(folder, "summary.json") if (folder / "summary.json").exists() else {}
        if kind is None:
            kind = owner.get("kind") if owner.get("kind") in ("forget", "experiment", "sweep") else \
                ("experiment" if isinstance(config, dict) and "source" in config else
                 "sweep" if isinstance(config, dict) and "sweep" in config else "forget")
        name = owner.get("name") if isinstance(owner.get("name"), str) else rid
        created = owner.get("started") if isinstance(owner.get("started"), (int, float)) else mtime
        rows.append((rid, kind, name, status, error, created, mtime,
                     json.dumps(config if isinstance(config, dict) else {}),
                     json.dumps(summary if isinstance(summary, dict) else {})))
    return rows
