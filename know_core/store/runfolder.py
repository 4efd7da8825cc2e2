"""A run's folder: reading its files (bounded, checksummed, validated) and writing new ones atomically.

:class:`Run` is a finished run: every read checks the file's size, type and checksum against the validated manifest
before parsing it, and typed accessors (:meth:`Run.config`, :meth:`Run.results`) return validated objects only.
:class:`RunWriter` fills a new run's staging folder for :meth:`know_core.store.RunStore.create`.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from know_core.common.errors import KnowError
from know_core.common.fsio import atomic_write, sha256_file, write_json, write_text
from know_core.store.loaders import LIMITS, Damaged, inside, parse_json, read_bytes, read_tensors, run_folder
from know_core.store.schemas import check_config, check_manifest, check_results, check_summary
from know_core.store.snapshots import SnapshotFile


def _limit(name: str) -> int:
    return LIMITS["tensors"] if name.endswith(".safetensors") else LIMITS["csv" if name.endswith(".csv") else "json"]


class Run:
    """A finished run's folder; every read checks size, type and checksum against the validated manifest first."""

    def __init__(self, path: Path, kind: str | None = None):
        self.path = Path(path)
        self.id = self.path.name
        try:
            run_folder(self.path.parent, self.id)
        except Damaged as exc:
            raise exc.for_run(self.id) from None
        self.manifest: dict[str, Any] = self._read_manifest()
        self.kind = kind or self.manifest.get("kind", "forget")

    def _checked(self, name: str, load, digest):
        """``load(folder, name, limit)`` once the manifest lists ``name``, then ``digest(loaded)`` must match it."""
        entry = self.manifest["files"].get(name)
        try:
            if entry is None:
                raise Damaged(name, "not in the manifest")
            loaded = load(self.path, name, _limit(name))
            if digest(loaded) != entry["sha256"]:
                raise Damaged(name, "checksum mismatch (changed or corrupt since the run finished)")
        except Damaged as exc:
            raise exc.for_run(self.id) from None
        return loaded

    def _read(self, name: str) -> bytes:
        """The file's bytes, after checking they are the ones the manifest recorded (files read whole: JSON, CSV)."""
        return self._checked(name, read_bytes, lambda data: hashlib.sha256(data).hexdigest())

    def _verified(self, name: str) -> Path:
        """The file's path, once its checksum matches the manifest (files read by other libraries: safetensors)."""
        return self._checked(name, inside, sha256_file)

    def verify(self, names: list[str] | None = None) -> None:
        """Check every file of the manifest (or those of ``names``); raises Damaged naming the first bad one."""
        for name in self.manifest["files"] if names is None else names:
            self._verified(name)

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def read_json(self, name: str) -> Any:
        try:
            return parse_json(name, self._read(name))
        except Damaged as exc:
            raise exc.for_run(self.id) from None

    def read_csv(self, name: str) -> list[dict[str, str]]:
        try:
            return list(csv.DictReader(io.StringIO(self._read(name).decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise Damaged(name, f"not readable CSV ({exc})", self.id) from None

    def read_tensors(self, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        self._verified(name)
        try:
            return read_tensors(self.path, name)
        except Damaged as exc:
            raise exc.for_run(self.id) from None

    def open_snapshots(self, name: str) -> SnapshotFile:
        """A snapshot file of the run, read one tensor at a time (checksum and header checked first; the payload
        digest is not read again: the manifest's SHA-256 of the whole file has just matched, and it was written with
        the digest)."""
        path = self._verified(name)
        try:
            return SnapshotFile(path, name, check_digest=False)
        except Damaged as exc:
            raise exc.for_run(self.id) from None

    def _typed(self, check, name: str, *args):
        try:
            return check(self.read_json(name), *args)
        except Damaged as exc:
            raise exc.for_run(self.id) from None

    def config(self):
        """The run's config as a validated dataclass (ForgetConfig or ExperimentConfig)."""
        return self._typed(check_config, "config.json", self.kind)

    def results(self) -> dict[str, Any]:
        return self._typed(check_results, "results.json")

    def summary(self) -> dict[str, Any]:
        return self._typed(check_summary, "summary.json")

    def write_artifact(self, name: str, writer) -> None:
        """Add or replace one file (``writer(tmp_path)`` fills it) and record it in the manifest, committed together:
        the manifest is rewritten before the file is renamed in, and put back if that rename fails. Two writers of one
        run (two predict jobs) each fill their file at once, then take turns on the manifest under a lock on the
        run's folder, each adding its entry to the manifest as the other left it: neither file goes unlisted."""
        lock, before = None, None
        try:
            with atomic_write(self.path / name) as tmp:
                writer(tmp)
                digest = sha256_file(tmp)
                lock = os.open(self.path, os.O_RDONLY)
                fcntl.flock(lock, fcntl.LOCK_EX)
                before = self._read_manifest()
                after = json.loads(json.dumps(before))
                after["files"][name] = {"sha256": digest}
                write_json(self.path / "manifest.json", after)
            self.manifest = after
        except BaseException:
            if before is not None:
                self.manifest = before
                with contextlib.suppress(OSError, KnowError):
                    write_json(self.path / "manifest.json", before)
            raise
        finally:
            if lock is not None:
                os.close(lock)  # releases the lock

    def _read_manifest(self) -> dict[str, Any]:
        try:
            return check_manifest(parse_json("manifest.json", read_bytes(self.path, "manifest.json",
                                                                         LIMITS["manifest"])), self.id)
        except Damaged as exc:
            raise exc.for_run(self.id) from None


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

    def write_file(self, name: str, writer) -> None:
        """A file ``writer(tmp_path)`` fills (e.g. a snapshot file written one tensor at a time). Its checksum is
        read before ``atomic_write``'s fsync, from the page cache, while the kernel may still be writing a large file
        back to disk: the fsync then waits less (an import's 3.5 GB trajectory: ~2 s of hashing)."""
        with atomic_write(self.staging / name) as tmp:
            writer(tmp)
            digest = sha256_file(tmp)
        self.files[name] = {"sha256": digest}

    def write_tensors(self, name: str, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str] | None = None) -> None:
        with atomic_write(self.staging / name) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        self._record(name)
