"""A healthy store to damage: one forget run and one experiment run, cloned cheaply under new ids per case."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import struct
from pathlib import Path

from conftest import tiny_config
from experiment_helpers import tiny_experiment


def build_store(root: Path) -> tuple[str, str]:
    from know_core.jobs.lifecycle import record_experiment, record_forgetting
    from know_core.store.runstore import RunStore

    store = RunStore(root)
    forget_id = record_forgetting(tiny_config(), store, name="healthy forget")
    exp_id = record_experiment(tiny_experiment(), store, name="healthy experiment")
    return forget_id, exp_id


def sql(root: Path, query: str, args: tuple = ()) -> list:
    db = sqlite3.connect(root / "index.sqlite", isolation_level=None)
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def clone(root: Path, run_id: str, new_id: str, name: str | None = None) -> str:
    """A copy of a finished run under ``new_id`` (folder, manifest id and index row)."""
    shutil.copytree(root / run_id, root / new_id, symlinks=True)
    manifest = json.loads((root / new_id / "manifest.json").read_text())
    manifest["id"] = new_id
    (root / new_id / "manifest.json").write_text(json.dumps(manifest))
    row = sql(root, "SELECT * FROM runs WHERE id = ?", (run_id,))[0]
    sql(root, "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (new_id, row[1], name or new_id, *row[3:]))
    return new_id


def rewrite(run_dir: Path, name: str, data: bytes | str) -> None:
    """Replace a file and update its checksum, so that only the content's shape is wrong."""
    data = data.encode() if isinstance(data, str) else data
    (run_dir / name).write_bytes(data)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest()}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def edit_json(run_dir: Path, name: str, change) -> None:
    data = json.loads((run_dir / name).read_text())
    rewrite(run_dir, name, json.dumps(change(data)))


def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def retensor(run_dir: Path, name: str, change_tensors=None, change_meta=None) -> None:
    """Rewrite a safetensors file with changed tensors and/or metadata (checksum and snapshot digest updated)."""
    from safetensors.torch import load_file, save

    from know_core.store.loaders import safetensors_header
    from know_core.store.snapshots import digest

    path = run_dir / name
    meta = safetensors_header(path, name, path.stat().st_size)["metadata"]
    tensors = load_file(str(path))
    tensors = change_tensors(tensors) if change_tensors else tensors
    meta = change_meta(meta) if change_meta else meta
    if "snapshots" in meta:
        meta = {**meta, "snapshots": json.dumps({**json.loads(meta["snapshots"]), "sha256": digest(tensors)})}
    rewrite(run_dir, name, save(tensors, metadata=meta))
