"""Checkpoints on disk as other tools save them: which files and folders are checkpoints, in which order they form a
film, and the checks on their paths. Reading their tensors is :mod:`know_core.imports.readers`.

A checkpoint is a ``.safetensors`` file, a PyTorch file (``.pt`` / ``.pth`` / ``.bin`` / Lightning ``.ckpt``), or a
Hugging Face ``save_pretrained`` / Trainer ``checkpoint-N`` folder. A folder that holds checkpoints (files, or
checkpoint folders) is a film of them, ordered by name, modification time or training step.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from know_core.common.errors import KnowError
from know_core.common.fsio import sha256_file

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
SKIP_FILES = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"}  # Trainer's own state, not weights
ORDERS = ("name", "mtime", "step")


class ImportFailed(KnowError):
    """A checkpoint or film that cannot be imported; the message is one line naming the path and the problem."""


@dataclass
class Checkpoint:
    """One checkpoint: its path, format (``safetensors``, ``pt`` or ``hf``) and the files holding its weights."""

    path: Path
    format: str
    files: list[Path]
    index: dict[str, str] | None = None  # HF sharded: tensor name -> file name
    step: int | None = None
    layout: dict[str, Any] = field(default_factory=dict)

    def sha256(self) -> dict[str, str]:
        """The SHA-256 of every file the checkpoint is read from (weights, index, small JSON files)."""
        names = list(self.files)
        if self.format == "hf":
            names += [self.path / n for n in sorted(os.listdir(self.path))
                      if n.endswith(".json") and (self.path / n).is_file()]
        return {str(p.relative_to(self.path) if self.format == "hf" else p.name): sha256_file(p) for p in names}


def _check_path(path: Path, what: str = "") -> os.stat_result:
    """The path exists, is readable, and is (or links to) a regular non-empty file or a folder."""
    label = what or str(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ImportFailed(f"{label}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise ImportFailed(f"{label}: the folder is not readable")
        return st
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink to a device or special file" if os.path.islink(path) else "not a regular file or folder"
        raise ImportFailed(f"{label} is {kind}")
    if st.st_size == 0:
        raise ImportFailed(f"{label} is empty")
    if not os.access(path, os.R_OK):
        raise ImportFailed(f"{label}: the file is not readable (permission denied)")
    return st


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _is_hf(folder: Path) -> bool:
    return any((folder / name).is_file() for name in HF_WEIGHTS)


def _step(ckpt: Checkpoint) -> int | None:
    """From ``trainer_state.json`` (``global_step``) where the folder has one, else the last number in the name."""
    state = ckpt.path / "trainer_state.json" if ckpt.path.is_dir() else None
    if state is not None and state.is_file():
        try:
            value = json.loads(state.read_text(encoding="utf-8")).get("global_step")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        except (OSError, ValueError, AttributeError):
            pass
    numbers = re.findall(r"\d+", ckpt.path.stem if ckpt.path.is_file() else ckpt.path.name)
    return int(numbers[-1]) if numbers else None


def _hf_checkpoint(folder: Path) -> Checkpoint:
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index_path = folder / index_name
        if index_path.is_file():
            _check_path(index_path)
            try:
                weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
                if not isinstance(weight_map, dict) or not weight_map:
                    raise ValueError("weight_map is empty")
                names = list(dict.fromkeys(str(v) for v in weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ImportFailed(f"{index_path}: not a readable shard index ({str(exc)[:80]})") from None
            files = []
            for name in names:
                if "/" in name or name in (".", ".."):
                    raise ImportFailed(f"{index_path}: shard name {name[:60]!r} is not a file beside the index")
                _check_path(folder / name)
                files.append(folder / name)
            return Checkpoint(folder, "hf", files, {str(k): str(v) for k, v in weight_map.items()})
        if (folder / single).exists():
            _check_path(folder / single)
            return Checkpoint(folder, "hf", [folder / single])
    raise ImportFailed(f"{folder}: holds no Hugging Face weights ({', '.join(HF_WEIGHTS)})")


def _file_checkpoint(path: Path) -> Checkpoint:
    if path.suffix == ".safetensors":
        return Checkpoint(path, "safetensors", [path])
    if path.suffix in TORCH_SUFFIXES:
        return Checkpoint(path, "pt", [path])
    raise ImportFailed(f"{path}: not a checkpoint (expected {', '.join(WEIGHT_SUFFIXES)} or a folder)")


def _children(folder: Path) -> list[Checkpoint]:
    """The checkpoints inside a film folder: HF checkpoint subfolders if it has any, else its weight files."""
    entries = sorted(os.listdir(folder), key=_natural)
    subfolders = [folder / n for n in entries if (folder / n).is_dir() and _is_hf(folder / n)]
    if subfolders:
        return [_hf_checkpoint(p) for p in subfolders]
    files = [folder / n for n in entries if n.endswith(WEIGHT_SUFFIXES) and n not in SKIP_FILES
             and not n.startswith(".")]
    for p in files:
        _check_path(p)
    return [_file_checkpoint(p) for p in files]


def find_checkpoints(paths: list[str], order: str | None = None, reverse: bool = False) -> list[Checkpoint]:
    """The checkpoints the user named, in film order: paths given one by one stay in the order given (unless
    ``order``); a single folder of checkpoints is sorted by ``order`` (default: step where every checkpoint has one,
    else name)."""
    if order is not None and order not in ORDERS:
        raise ImportFailed(f"--order {order!r}: use one of {', '.join(ORDERS)}")
    found: list[Checkpoint] = []
    expanded = False
    for text in paths:
        if not str(text).strip():
            raise ImportFailed("an empty path")
        path = Path(text)
        _check_path(path)
        if path.is_dir() and not _is_hf(path):
            children = _children(path)
            if not children:
                raise ImportFailed(f"{path}: holds no checkpoints ({', '.join(WEIGHT_SUFFIXES)} files or Hugging "
                                   "Face folders)")
            found += children
            expanded = True
        else:
            found.append(_hf_checkpoint(path) if path.is_dir() else _file_checkpoint(path))
    for ckpt in found:
        ckpt.step = _step(ckpt)
    if order is None and expanded:
        order = "step" if all(c.step is not None for c in found) else "name"
    if order == "step":
        missing = [c for c in found if c.step is None]
        if missing:
            raise ImportFailed(f"--order step: {missing[0].path} has no step (no trainer_state.json, no number in "
                               "its name)")
        found.sort(key=lambda c: c.step)
    elif order == "name":
        found.sort(key=lambda c: _natural(str(c.path)))
    elif order == "mtime":
        found.sort(key=lambda c: max(os.stat(p).st_mtime for p in c.files))
    seen = {}
    for ckpt in found:
        key = os.path.realpath(ckpt.path)
        if key in seen:
            raise ImportFailed(f"{ckpt.path} is named twice (also as {seen[key]})")
        seen[key] = ckpt.path
    if len(found) < 2:
        raise ImportFailed(f"a film needs at least 2 checkpoints; got {len(found)} ({found[0].path if found else '-'})")
    return found[::-1] if reverse else found
