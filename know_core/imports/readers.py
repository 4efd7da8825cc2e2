"""Checkpoints as other tools save them: finding them, ordering them, reading their tensors, and their layout.

A checkpoint is one of
- a ``.safetensors`` file (its header checked, then one tensor at a time read at its offset:
  :class:`know_core.store.tensorfile.TensorFile`);
- a PyTorch file ``.pt`` / ``.pth`` / ``.bin`` / Lightning ``.ckpt``, read with ``torch.load(weights_only=True)`` only
  (never unpickled in full; memory-mapped where the file is in the zip format), unwrapped from ``state_dict`` /
  ``model_state_dict`` / ``model`` / ``module`` nestings and a ``module.`` key prefix;
- a Hugging Face ``save_pretrained`` or Trainer ``checkpoint-N`` folder: ``model.safetensors``, sharded
  ``model-0000x-of-0000y.safetensors`` with ``model.safetensors.index.json``, or ``pytorch_model.bin`` (sharded too).
A folder that holds checkpoints (files, or checkpoint folders) is a film of them. The layout each reader records
(format, nesting, prefix, files and the keys in each, safetensors metadata, small JSON files such as ``config.json``)
is what :mod:`know_core.imports.export` needs to write predictions back in the same form.

:func:`open_tensors` gives one checkpoint's tensors one at a time (a film larger than memory is imported one tensor
at a time); :func:`read_checkpoint` reads them all into memory.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from know_core.common.errors import KnowError
from know_core.common.fsio import sha256_file
from know_core.store.loaders import Damaged
from know_core.store.tensorfile import TensorFile

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
NESTINGS = ("state_dict", "model_state_dict", "model", "module")
PREFIX = "module."
SKIP_FILES = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt"}  # Trainer's own state, not weights
SKIP_JSON = {"trainer_state.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"}
MAX_JSON = 1 << 20  # small JSON files of an HF folder (config.json …) are kept with the run
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


def _torch_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A state dict from a PyTorch file via ``torch.load(weights_only=True)``, with its nesting and prefix."""
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # the legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        how = ("a Lightning checkpoint that holds more than tensors; in a session you trust, export its weights "
               "with torch.save(torch.load(CKPT, weights_only=False)['state_dict'], 'weights.pt') and import that"
               if path.suffix == ".ckpt" else
               "save a plain state dict instead: torch.save(model.state_dict(), FILE)")
        raise ImportFailed(f"{path}: torch.load(weights_only=True) refuses this pickle ({reason}); it is never "
                           f"unpickled in full: {how}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ImportFailed(f"{path}: not a readable PyTorch file ({str(exc).splitlines()[0][:120]})") from None
    nesting: list[str] = []
    while isinstance(obj, dict) and not (obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        key = next((k for k in NESTINGS if isinstance(obj.get(k), dict)), None)
        if key is None:
            keys = ", ".join(repr(k) for k in list(obj)[:6])
            raise ImportFailed(f"{path}: holds a mapping ({keys}) that is neither a state dict of tensors nor nests "
                               f"one under {', '.join(NESTINGS)}")
        nesting.append(key)
        obj = obj[key]
    if not isinstance(obj, dict):
        raise ImportFailed(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if not all(isinstance(k, str) for k in obj):
        raise ImportFailed(f"{path}: the state dict has keys that are not strings")
    prefix = PREFIX if all(k.startswith(PREFIX) for k in obj) else ""
    state = {k[len(prefix):]: v for k, v in obj.items()}
    return state, {"nesting": nesting, "prefix": prefix}


def _safetensors_file(path: Path) -> TensorFile:
    """A safetensors file whose header is checked, its tensors read one at a time."""
    try:
        return TensorFile(path)
    except (Damaged, OSError) as exc:
        reason = exc.reason if isinstance(exc, Damaged) else (exc.strerror or str(exc))
        raise ImportFailed(f"{path}: not a readable safetensors file ({str(reason)[:120]})") from None


def _small_json(folder: Path) -> dict[str, Any]:
    """The small JSON files of an HF folder (config.json, generation_config.json …), kept to write exports back."""
    out = {}
    for name in sorted(os.listdir(folder)):
        p = folder / name
        if name.endswith(".json") and name not in SKIP_JSON and p.is_file() and not p.is_symlink() \
                and p.stat().st_size <= MAX_JSON:
            try:
                out[name] = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                raise ImportFailed(f"{p}: not readable JSON") from None
    return out


class CheckpointTensors:
    """One checkpoint's tensors by name: ``names`` in the checkpoint's order, ``spec(name)`` = (shape, dtype)
    without reading values, ``get(name)`` one tensor."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._where: dict[str, tuple[Any, str]] = {}  # name -> (TensorFile or state dict, key)
        self._files: list[TensorFile] = []

    def _add_file(self, fh: TensorFile) -> list[str]:
        self._files.append(fh)
        keys = sorted(fh.keys())  # the order safe_open lists them in
        for key in keys:
            self._where[key] = (fh, key)
        return keys

    def _add_state(self, state: dict[str, torch.Tensor]) -> list[str]:
        for key in state:
            self._where[key] = (state, key)
        return list(state)

    def spec(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        src, key = self._where[name]
        if isinstance(src, TensorFile):
            dtype, shape = src.spec(key)
            return shape, dtype
        return tuple(src[key].shape), src[key].dtype

    def get(self, name: str) -> torch.Tensor:
        src, key = self._where[name]
        return src.get(key) if isinstance(src, TensorFile) else src[key]

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        self._where.clear()


@contextmanager
def open_tensors(ckpt: Checkpoint) -> Iterator[CheckpointTensors]:
    """The checkpoint's tensors (state-dict names, without a ``module.`` prefix), one at a time; fills
    ``ckpt.layout``."""
    out = CheckpointTensors()
    try:
        if ckpt.format == "pt":
            state, layout = _torch_file(ckpt.path)
            ckpt.layout = {"format": "pt", "file": ckpt.path.name, **layout}
            out.names = out._add_state(state)
        elif ckpt.format == "safetensors":
            fh = _safetensors_file(ckpt.path)
            ckpt.layout = {"format": "safetensors", "file": ckpt.path.name, "metadata": fh.metadata}
            out.names = out._add_file(fh)
        else:
            shards = []
            for path in ckpt.files:
                if path.suffix == ".safetensors":
                    fh = _safetensors_file(path)
                    info = {"file": path.name, "metadata": fh.metadata}
                    part = fh.keys()
                else:
                    state, nest = _torch_file(path)
                    if nest["nesting"] or nest["prefix"]:
                        raise ImportFailed(f"{path}: a Hugging Face weight file nesting its state dict; not supported")
                    info, part, fh = {"file": path.name}, list(state), None
                overlap = next((k for k in part if k in out._where), None)
                if overlap is not None:
                    raise ImportFailed(f"{path}: tensor {overlap!r} is also in an earlier shard")
                keys = out._add_file(fh) if fh is not None else out._add_state(state)
                shards.append({**info, "keys": keys})
                out.names += keys
            if ckpt.index is not None:
                missing = next((k for k in ckpt.index if k not in out._where), None)
                if missing is not None:
                    raise ImportFailed(f"{ckpt.path}: the shard index lists {missing!r}, which no shard holds")
            ckpt.layout = {"format": "hf", "shards": shards, "sharded": ckpt.index is not None,
                           "json": _small_json(ckpt.path)}
        yield out
    finally:
        out.close()


def read_checkpoint(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (state-dict names, without a ``module.`` prefix) in memory; fills ``ckpt.layout``."""
    with open_tensors(ckpt) as src:
        return {name: src.get(name) for name in src.names}
