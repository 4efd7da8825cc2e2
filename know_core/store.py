"""The run store: one folder per run plus a SQLite index that several processes can read and write at once.

A run folder holds ``config.json`` (the resolved config), tensors as safetensors, metrics as CSV, and a
``manifest.json`` with each file's SHA-256 so that a damaged file is named, never half-loaded. A new run is written in
a staging folder and renamed into place when complete; a failed or cancelled run leaves only its index row, marked so.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import Cancelled, RunStoreError
from .fsio import atomic_write, sha256_file, write_json, write_text

DEFAULT_RUNS_DIR = "runs"
_SCHEMA = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    created REAL NOT NULL, updated REAL NOT NULL, config TEXT NOT NULL, summary TEXT)"""


@dataclass
class RunInfo:
    """One row of the index."""

    id: str
    kind: str
    name: str
    status: str  # running / done / failed / cancelled
    error: str | None
    created: float
    updated: float
    config: dict[str, Any]
    summary: dict[str, Any]


class Run:
    """A finished run's folder; every read verifies the file against the manifest first."""

    def __init__(self, path: Path):
        self.path = path
        self.id = path.name
        manifest = path / "manifest.json"
        if not path.is_dir():
            raise RunStoreError(f"run {self.id}: folder {path} is missing")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RunStoreError(f"run {self.id}: manifest.json is missing (incomplete or damaged run)") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunStoreError(f"run {self.id}: manifest.json is corrupt ({exc})") from exc

    def _verified(self, name: str) -> Path:
        entry = self.manifest.get("files", {}).get(name)
        file = self.path / name
        if entry is None:
            raise RunStoreError(f"run {self.id}: has no {name}")
        if not file.exists():
            raise RunStoreError(f"run {self.id}: {name} is missing")
        if sha256_file(file) != entry["sha256"]:
            raise RunStoreError(f"run {self.id}: {name} is corrupt (checksum mismatch)")
        return file

    def verify(self) -> None:
        """Check every file of the manifest; raises RunStoreError naming the first missing or corrupt one."""
        for name in self.manifest.get("files", {}):
            self._verified(name)

    def has(self, name: str) -> bool:
        return name in self.manifest.get("files", {})

    def read_json(self, name: str) -> Any:
        return json.loads(self._verified(name).read_text(encoding="utf-8"))

    def read_csv(self, name: str) -> list[dict[str, str]]:
        with open(self._verified(name), newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def read_tensors(self, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        file = self._verified(name)
        try:
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                metadata = fh.metadata() or {}
            return load_file(str(file)), metadata
        except (SafetensorError, OSError, ValueError) as exc:
            raise RunStoreError(f"run {self.id}: {name} is unreadable ({exc})") from exc

    def write_artifact(self, name: str, writer) -> None:
        """Add or replace one file (``writer(tmp_path)`` fills it) and record it in the manifest, both atomically."""
        with atomic_write(self.path / name) as tmp:
            writer(tmp)
        self.manifest.setdefault("files", {})[name] = {"sha256": sha256_file(self.path / name)}
        write_json(self.path / "manifest.json", self.manifest)


class RunWriter:
    """Collects a new run's files in a staging folder; :meth:`RunStore.create` renames it into place on success."""

    def __init__(self, run_id: str, staging: Path):
        self.id = run_id
        self.staging = staging
        self.files: dict[str, dict[str, str]] = {}
        self.summary: dict[str, Any] = {}

    def _record(self, name: str) -> None:
        self.files[name] = {"sha256": sha256_file(self.staging / name)}

    def write_json(self, name: str, data: Any) -> None:
        write_json(self.staging / name, data)
        self._record(name)

    def write_csv(self, name: str, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        write_text(self.staging / name, buf.getvalue())
        self._record(name)

    def write_tensors(self, name: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
        with atomic_write(self.staging / name) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        self._record(name)


class RunStore:
    """Runs under ``root`` (default ``./runs``) with an index in ``root/index.sqlite``."""

    def __init__(self, root: str | os.PathLike = DEFAULT_RUNS_DIR):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise RunStoreError(f"runs directory {self.root} is not writable ({exc.strerror or exc})") from exc
        with self._db() as db:
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / "index.sqlite", timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"run index {self.root / 'index.sqlite'} is unusable ({exc})") from exc
        finally:
            db.close()

    def _set(self, run_id: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    @staticmethod
    def _new_id(kind: str, config: dict[str, Any]) -> str:
        tag = "-".join(str(config[k]).replace(":", "_") for k in ("dataset", "model", "preset") if k in config)
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}{'-' + tag if tag else ''}-{secrets.token_hex(3)}"

    def _insert(self, run_id: str, kind: str, name: str | None, config: dict[str, Any]) -> None:
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO runs VALUES (?, ?, ?, 'running', NULL, ?, ?, ?, NULL)",
                       (run_id, kind, name or run_id, now, now, json.dumps(config)))

    @contextlib.contextmanager
    def create(self, kind: str, config: dict[str, Any], name: str | None = None) -> Iterator[RunWriter]:
        """Start a run (listed as ``running`` at once); its folder appears only when the block completes."""
        run_id = self._new_id(kind, config)
        staging = self.root / ".staging" / run_id
        staging.mkdir(parents=True)
        self._insert(run_id, kind, name, config)
        writer = RunWriter(run_id, staging)
        try:
            writer.write_json("config.json", config)
            yield writer
            write_json(staging / "manifest.json", {"id": run_id, "kind": kind, "files": writer.files})
            os.replace(staging, self.root / run_id)
            self._set(run_id, status="done", summary=json.dumps(writer.summary))
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            status = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
            self._set(run_id, status=status, error=f"{type(exc).__name__}: {exc}")
            raise

    def create_in_place(self, kind: str, config: dict[str, Any], name: str | None = None) -> Path:
        """Start a long, resumable run whose folder fills up as it goes (an experiment saves each finished seed).
        Listed as ``running``; :meth:`finish` seals it with a manifest, :meth:`mark` records failure or cancel."""
        run_id = self._new_id(kind, config)
        path = self.root / run_id
        path.mkdir()
        write_json(path / "config.json", config)
        self._insert(run_id, kind, name, config)
        return path

    def finish(self, run_id: str, summary: dict[str, Any]) -> None:
        """Checksum every file of an in-place run into its manifest and mark it done."""
        path = self.root / run_id
        files = {str(f.relative_to(path)): {"sha256": sha256_file(f)} for f in sorted(path.rglob("*"))
                 if f.is_file() and f.name != "manifest.json" and not f.name.startswith(".")}
        kind = self.info(run_id).kind
        write_json(path / "manifest.json", {"id": run_id, "kind": kind, "files": files})
        self._set(run_id, status="done", error=None, summary=json.dumps(summary))

    def mark(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in ("running", "failed", "cancelled"):
            raise ValueError(f"mark() takes running, failed or cancelled, not {status!r}")
        self._set(run_id, status=status, error=error)

    def list_runs(self, status: str | None = None, kind: str | None = None, run_id: str | None = None) -> list[RunInfo]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if run_id:
            query, args = query + " AND id = ?", [*args, run_id]
        if status:
            query, args = query + " AND status = ?", [*args, status]
        if kind:
            query, args = query + " AND kind = ?", [*args, kind]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [RunInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), json.loads(r[8] or "{}"))
                for r in rows]

    def info(self, run_id: str) -> RunInfo:
        for run in self.list_runs(run_id=run_id):
            return run
        raise RunStoreError(f"no run {run_id!r} in {self.root}")

    def open(self, run_id: str) -> Run:
        info = self.info(run_id)
        if info.status != "done":
            raise RunStoreError(f"run {run_id} is {info.status}" + (f": {info.error}" if info.error else ""))
        return Run(self.root / run_id)

    def rename(self, run_id: str, name: str) -> None:
        self.info(run_id)
        self._set(run_id, name=name)

    def delete(self, run_id: str) -> None:
        self.info(run_id)
        shutil.rmtree(self.root / run_id, ignore_errors=True)
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
