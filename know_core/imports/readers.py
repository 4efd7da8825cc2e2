"""Checkpoints as other tools save them: reading their tensors, and their layout (finding and ordering them is
:mod:`know_core.imports.checkpoints`).

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from know_core.imports.checkpoints import Checkpoint, ImportFailed
from know_core.store.loaders import Damaged
from know_core.store.tensorfile import TensorFile

NESTINGS = ("state_dict", "model_state_dict", "model", "module")
PREFIX = "module."
SKIP_JSON = {"trainer_state.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"}
MAX_JSON = 1 << 20  # small JSON files of an HF folder (config.json …) are kept with the run


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
