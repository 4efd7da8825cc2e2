"""The run store: one folder per run plus a SQLite index that several processes can read and write at once.

A run folder holds ``config.json`` (the resolved config), tensors as safetensors, metrics as CSV, and a
``manifest.json`` with each file's SHA-256 so that a damaged file is named, never half-loaded. A new run is written in
a staging folder and renamed into place when complete; a failed or cancelled run leaves only its index row, marked so.
Every read goes through the bounded loaders (:mod:`know_core.store.loaders`) and is validated
(:mod:`know_core.store.schemas`);
every run records its owner process (:mod:`know_core.common.liveness`), so a run whose process died is marked failed
wherever runs are listed. Reading never writes: a read-only runs directory can still be listed and opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from know_core.common import liveness
from know_core.common.errors import Cancelled, KnowError, RunStoreError
from know_core.common.fsio import WriteFailed, sha256_file, write_json
from know_core.store.index import SCHEMA, RunInfo, connect, folder_rows, guarded, row_info
from know_core.store.kinds import damage_check
from know_core.store.loaders import LIMITS, inside, run_folder
from know_core.store.runfolder import Run, RunWriter

DEFAULT_RUNS_DIR = "runs"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
__all__ = ["DEFAULT_RUNS_DIR", "Run", "RunInfo", "RunStore", "RunWriter", "WriteFailed", "check_run_id"]


def check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise RunStoreError(f"{str(run_id)[:80]!r} is not a run id (see `runs list`)")
    return run_id


class RunStore:
    """Runs under ``root`` (default ``./runs``) with an index in ``root/index.sqlite``.

    ``create=False`` (the read commands) refuses a missing directory instead of making it. Nothing here probes for
    writing: a read-only directory is opened read-only, and an index that is missing is rebuilt from the folders
    (on disk when it can be written, else in memory)."""

    def __init__(self, root: str | os.PathLike = DEFAULT_RUNS_DIR, create: bool = True):
        if not str(root).strip():
            raise RunStoreError("the runs directory is an empty path; give a folder, e.g. --runs-dir runs")
        self.root = Path(root)
        self._memory: sqlite3.Connection | None = None
        if not self.root.exists():
            if not create:
                raise RunStoreError(f"no runs directory {self.root} (nothing has been run there yet)")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunStoreError(f"runs directory {self.root} is not writable ({exc.strerror or exc})") from None
        if not self.root.is_dir():
            raise RunStoreError(f"runs directory {self.root} is not a folder")
        self.writable = os.access(self.root, os.W_OK | os.X_OK)
        index = self.root / "index.sqlite"
        if index.exists() and not index.is_file():
            raise RunStoreError(f"run index {index} is not a regular file")
        if not index.exists():
            self.reindex()
        elif self.writable:
            with self._db() as db:
                db.execute(SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        path = self.root / "index.sqlite"
        if self._memory is not None:
            with guarded(self._memory, path, close=False) as db:
                yield db
            return
        try:
            db = connect(path, self.writable)
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"run index {path} is unusable ({exc})") from None
        with guarded(db, path) as db:
            yield db

    def require_writable(self) -> None:
        if not self.writable or self._memory is not None:
            raise RunStoreError(f"runs directory {self.root} is read-only; this command needs to write to it")

    def reindex(self) -> int:
        """Rebuild the index from the run folders (names and statuses of rows kept where a row exists)."""
        rows = folder_rows(self.root)
        if not self.writable:
            self._memory = sqlite3.connect(":memory:", isolation_level=None)
            self._memory.execute(SCHEMA)
        with self._db() as db:
            db.execute(SCHEMA)
            known = {r[0] for r in db.execute("SELECT id FROM runs")}
            fresh = [r for r in rows if r[0] not in known]
            db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", fresh)
        return len(fresh)

    def _set(self, run_id: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    @staticmethod
    def _new_id(kind: str, config: dict[str, Any]) -> str:
        tag = "-".join(str(config[k]) for k in ("dataset", "model", "preset") if k in config)
        tag = re.sub(r"[^A-Za-z0-9_.]+", "_", tag).strip("._")[:60]
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}{'-' + tag if tag else ''}-{secrets.token_hex(3)}"

    def _start(
        self, folder: Path, run_id: str, kind: str, name: str | None, config: dict[str, Any], in_place: bool
    ) -> None:
        """Make the folder, record its owner, list the run; on any failure leave nothing behind."""
        self.require_writable()
        try:
            folder.mkdir(parents=True)
            write_json(folder / liveness.OWNER, liveness.record(kind=kind, name=name or run_id))
            if in_place:
                write_json(folder / "config.json", config)
            now = time.time()
            with self._db() as db:
                db.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, 'running', NULL, ?, ?, ?, NULL)",
                    (run_id, kind, name or run_id, now, now, json.dumps(config, allow_nan=False)),
                )
        except (OSError, KnowError, ValueError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, KnowError):
                raise
            raise RunStoreError(
                f"cannot start a run in {self.root} ({getattr(exc, 'strerror', None) or exc})"
            ) from None

    @contextlib.contextmanager
    def create(self, kind: str, config: dict[str, Any], name: str | None = None) -> Iterator[RunWriter]:
        """Start a run (listed as ``running`` at once); its folder appears only when the block completes."""
        run_id = self._new_id(kind, config)
        staging = self.root / ".staging" / run_id
        self._start(staging, run_id, kind, name, config, in_place=False)
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
            with contextlib.suppress(KnowError):  # e.g. a full disk: the owner is gone, so listing reconciles it
                self._set(run_id, status=status, error=f"{type(exc).__name__}: {exc}")
            raise

    def create_in_place(self, kind: str, config: dict[str, Any], name: str | None = None) -> Path:
        """Start a long, resumable run whose folder fills up as it goes (an experiment saves each finished seed).
        Listed as ``running``; :meth:`finish` seals it with a manifest, :meth:`mark` records failure or cancel."""
        run_id = self._new_id(kind, config)
        self._start(self.root / run_id, run_id, kind, name, config, in_place=True)
        return self.root / run_id

    def claim(self, run_id: str) -> None:
        """This process now runs ``run_id`` (a resume): record it as the owner and mark the run running."""
        folder = run_folder(self.root, run_id)
        job = liveness.read_record(folder / liveness.JOB)
        if job is not None and job.get("pid") != os.getpid():
            (folder / liveness.JOB).unlink(missing_ok=True)
        info = self.info(run_id)
        write_json(folder / liveness.OWNER, liveness.record(kind=info.kind, name=info.name))
        self.mark(run_id, "running")

    def finish(self, run_id: str, summary: dict[str, Any]) -> None:
        """Checksum every file of an in-place run into its manifest and mark it done."""
        path = run_folder(self.root, run_id)
        files = {}
        for folder, dirs, names in os.walk(path, followlinks=False):
            for fname in sorted(names):
                rel = str((Path(folder) / fname).relative_to(path))
                if fname.startswith(".") or rel == "manifest.json":
                    continue
                files[rel] = {"sha256": sha256_file(inside(path, rel, LIMITS["tensors"]))}
        kind = self.info(run_id).kind
        write_json(path / "manifest.json", {"id": run_id, "kind": kind, "files": files})
        self._set(run_id, status="done", error=None, summary=json.dumps(summary, allow_nan=False))

    def mark(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in ("running", "failed", "cancelled"):
            raise ValueError(f"mark() takes running, failed or cancelled, not {status!r}")
        self._set(run_id, status=status, error=error)

    def _reconcile(self, info: RunInfo) -> RunInfo:
        """A ``running`` row whose owner process is gone becomes failed (on disk when writable) and its staging
        folder is removed."""
        reason = liveness.gone_reason(self.root, info.id, updated=info.updated)
        if reason is None:
            return info
        log = liveness.log_tail(self.root / info.id / ".worker.log")
        info.status, info.error = "failed", reason + (f"; last log lines: {log}" if log else "")
        if self.writable and self._memory is None:
            with contextlib.suppress(KnowError, OSError):
                with self._db() as db:  # only if nobody finished it meanwhile
                    db.execute(
                        "UPDATE runs SET status = 'failed', error = ?, updated = ? WHERE id = ? AND status = 'running'",
                        (info.error, time.time(), info.id),
                    )
                shutil.rmtree(self.root / ".staging" / info.id, ignore_errors=True)
        return info

    def list_runs(self, status: str | None = None, kind: str | None = None, run_id: str | None = None) -> list[RunInfo]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if run_id is not None:
            query, args = query + " AND id = ?", [*args, run_id]
        if kind:
            query, args = query + " AND kind = ?", [*args, kind]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        infos = [row_info(r) for r in rows]
        infos = [self._reconcile(i) if i.status == "running" else i for i in infos]
        infos = [self._check_damage(i) if i.status != "running" else i for i in infos]
        return [i for i in infos if status is None or i.status == status]

    def _check_damage(self, info: RunInfo) -> RunInfo:
        """A run whose kind has a damage check (a sweep whose ``sweep.json`` or table cannot be read) and fails it is
        listed ``damaged`` with the reason."""
        check = damage_check(info.kind)
        reason = check(self, info.id) if check is not None else None
        if reason is not None:
            info.status, info.error = "damaged", reason
        return info

    def kinds(self) -> dict[str, str]:
        """Every run id of the index with its kind (no liveness or file checks)."""
        with self._db() as db:
            return {str(r[0]): str(r[1]) for r in db.execute("SELECT id, kind FROM runs")}

    def info(self, run_id: str) -> RunInfo:
        check_run_id(run_id)
        for run in self.list_runs(run_id=run_id):
            return run
        raise RunStoreError(f"no run {run_id!r} in {self.root}")

    def open(self, run_id: str) -> Run:
        info = self.info(run_id)
        if info.status != "done":
            raise RunStoreError(f"run {run_id} is {info.status}" + (f": {info.error}" if info.error else ""))
        return Run(self.root / run_id, info.kind)

    def touch(self, run_id: str) -> None:
        """Record that a finished run's files changed (a prediction was added): its ``updated`` time moves, so every
        read cached by (run id, last update) reads it again."""
        self.info(run_id)
        self.require_writable()
        self._set(run_id)

    def rename(self, run_id: str, name: str) -> None:
        self.info(run_id)
        self.require_writable()
        self._set(run_id, name=name)

    def delete(self, run_id: str, force: bool = False) -> None:
        """Remove a run that is not running (a stale one is reconciled first): its folder, staging and row.
        ``force`` removes a run listed as running too, unless its owner is a live process on this host: one whose
        owner is on another host (which cannot be checked from here) or whose record cannot be trusted."""
        info = self.info(run_id)
        self.require_writable()
        if info.status == "running":
            live = liveness.live_here(self.root, run_id)
            if live is not None:
                raise RunStoreError(f"run {run_id} is still running ({live}); cancel it first")
            if not force:
                raise RunStoreError(
                    f"run {run_id} is still running ({liveness.describe_owner(self.root, run_id)}); "
                    "cancel it first, or delete it with --force if that process is gone"
                )
        for path in (self.root / run_id, self.root / ".staging" / run_id):
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path)
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
