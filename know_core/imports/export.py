"""Predicted weights of an imported film, written back in the layout and key names of the files they came from.

``hf`` (a Hugging Face source only): the source's own weight files (one ``model.safetensors``, the same shards and an
index, or ``pytorch_model.bin``) beside its small JSON files (``config.json`` …), so ``from_pretrained`` loads the
folder. ``safetensors``: one file with the source's key names (and, for a safetensors source, its metadata).
``pt``: ``torch.save`` of the state dict under the source's nesting (``{"state_dict": …}``) and ``module.`` prefix,
so ``load_state_dict(strict=True)`` takes it; entries that were not weights (epoch, optimiser state) are not kept.
For an HF source ``safetensors`` and ``pt`` write ``model.safetensors`` or ``pytorch_model.bin`` in an HF folder.
Beside the weights, ``know-export.json`` says what they are: method, scale, the source files' SHA-256 and the
package version. Everything is written in a temporary folder that is renamed to ``--out`` when complete.

Safetensors outputs are written one tensor at a time from the run's prediction file (a network larger than memory
exports in the memory of one tensor); ``pt`` outputs (``torch.save``) take the whole state dict at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from know_core.common.errors import KnowError
from know_core.common.fsio import sha256_file, write_failure
from know_core.common.hooks import Hooks
from know_core.common.version import __version__
from know_core.engine.extrapolate import prediction_file
from know_core.imports.film import FORMATS, open_imported_layout
from know_core.store.runstore import RunStore
from know_core.store.snapshots import SnapshotFile
from know_core.store.tensorfile import write_tensors

SIDECAR = "know-export.json"


def parse_scale(text: str) -> float:
    """``×8``, ``x8`` or ``8`` as a number."""
    value = re.sub(r"^[×xX]", "", str(text).strip())
    try:
        scale = float(value)
    except ValueError:
        raise KnowError(f"--scale {text!r}: expected a scale such as ×8 or 8") from None
    if not math.isfinite(scale) or scale <= 1:
        raise KnowError(f"--scale {text!r}: a predicted scale is a number above 1")
    return scale


def scale_step(scale: float, r: float, steps: int) -> int:
    """k such that (1/r)^k is ``scale`` among the ``steps`` predicted; else a KnowError naming the stored scales."""
    scales = {k: (1 / r) ** k for k in range(1, steps + 1)}
    for k, s in scales.items():
        if math.isclose(s, scale, rel_tol=1e-6):
            return k
    held = ", ".join(f"×{s:g}" for s in scales.values())
    raise KnowError(f"--scale ×{scale:g} was not predicted; this run holds {held}")


def _save_pt(obj: Any, path: Path) -> None:
    torch.save(obj, path)


def _nest(state: dict[str, torch.Tensor], layout: dict) -> Any:
    obj: Any = {layout.get("prefix", "") + k: v for k, v in state.items()}
    for key in reversed(layout.get("nesting", [])):
        obj = {key: obj}
    return obj


def _save_st(path: Path, keys: list[str], get: Callable[[str], torch.Tensor], specs: dict, metadata: dict | None,
             rename: Callable[[str], str] = str, hooks: Hooks | None = None) -> None:
    """A safetensors file of ``keys`` (stored as ``rename(key)``), one tensor read and written at a time."""
    def items():
        for key in keys:
            if hooks is not None:
                hooks.check()
            yield rename(key), get(key).contiguous()
    write_tensors(path, items(), {rename(k): (specs[k][1], specs[k][0]) for k in keys}, metadata or None)


def _write(folder: Path, keys: list[str], get: Callable[[str], torch.Tensor], specs: dict, src: str, fmt: str,
           layout: dict, hooks: Hooks) -> None:
    """The tensors ``keys`` (``get`` reads one, ``specs``: name -> (shape, dtype)) in the source's layout."""
    def state() -> dict[str, torch.Tensor]:  # torch.save takes every tensor at once
        return {k: get(k).contiguous() for k in keys}

    if src == "hf":
        for name, data in layout.get("json", {}).items():
            (folder / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        if fmt == "safetensors":
            _save_st(folder / "model.safetensors", keys, get, specs, {"format": "pt"}, hooks=hooks)
        elif fmt == "pt":
            _save_pt(state(), folder / "pytorch_model.bin")
        else:
            shards = layout["shards"]
            for i, shard in enumerate(shards):
                hooks.check()
                hooks.report("write shards", i, len(shards))
                if shard["file"].endswith(".safetensors"):
                    _save_st(folder / shard["file"], shard["keys"], get, specs,
                             shard.get("metadata") or {"format": "pt"}, hooks=hooks)
                else:
                    _save_pt({k: get(k).contiguous() for k in shard["keys"]}, folder / shard["file"])
            if layout.get("sharded"):
                total = sum(math.prod(shape) * dtype.itemsize for shape, dtype in specs.values())
                index = {"metadata": {"total_size": total},
                         "weight_map": {k: s["file"] for s in shards for k in s["keys"]}}
                suffix = "model.safetensors.index.json" if shards[0]["file"].endswith(".safetensors") \
                    else "pytorch_model.bin.index.json"
                (folder / suffix).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return
    if fmt == "hf":
        raise KnowError(f"--format hf needs a Hugging Face source; this film was imported from {src} files "
                        "(use --format safetensors or pt)")
    stem = Path(layout["file"]).stem
    prefix = layout.get("prefix", "")
    if fmt == "safetensors":
        meta = layout.get("metadata") if src == "safetensors" else None
        _save_st(folder / f"{stem}.safetensors", keys, get, specs, meta, lambda k: prefix + k, hooks)
    else:
        suffix = Path(layout["file"]).suffix if src == "pt" else ".pt"
        full = state()
        _save_pt(_nest(full, layout) if src == "pt" else {prefix + k: v for k, v in full.items()},
                 folder / f"{stem}{suffix}")


def export_prediction(store: RunStore, run_id: str, method: str, scale: str, out: str | os.PathLike,
                      fmt: str | None = None, hooks: Hooks | None = None) -> tuple[Path, dict]:
    """Write Θ̂ at ``scale`` predicted by ``method`` for imported run ``run_id`` to the new folder ``out``;
    returns the folder and the sidecar's content."""
    hooks = hooks or Hooks()
    run, cfg, layout = open_imported_layout(store, run_id)  # the trajectory itself is not read
    src = layout["format"]
    fmt = fmt or src
    if fmt not in FORMATS:
        raise KnowError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    name = prediction_file(method)
    if not run.has(name):
        raise KnowError(f"run {run_id} holds no predictions by {method!r}; run: predict --run {run_id} "
                        f"--method {method}")
    predicted = run.open_snapshots(name)
    try:
        return _export(run_id, cfg, layout, predicted, name, method, scale, out, fmt, src, hooks)
    finally:
        predicted.close()


def _export(run_id: str, cfg, layout: dict, predicted: SnapshotFile, name: str, method: str, scale: str,
            out: str | os.PathLike, fmt: str, src: str, hooks: Hooks) -> tuple[Path, dict]:
    meta = predicted.meta
    if set(predicted.films) != {"predictions"}:
        raise KnowError(f"run {run_id}: {name} holds no predictions")
    k = scale_step(parse_scale(scale), cfg.r, predicted.films["predictions"])
    out = Path(out)
    if not str(out).strip():
        raise KnowError("--out: an empty path")
    if out.exists() or out.is_symlink():
        raise KnowError(f"--out {out} exists; give a new folder (nothing is overwritten)")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK | os.X_OK):
        raise KnowError(f"--out {out}: its parent folder {out.parent} does not exist or is not writable")
    specs = predicted.shapes["predictions"]
    if set(specs) != set(layout["keys"]):
        raise KnowError(f"run {run_id}: {name} does not hold the film's tensors; predict again")
    keys = list(layout["keys"])  # the source's own key order
    get = lambda key: predicted.get("predictions", k - 1, key)  # noqa: E731
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        _write(tmp, keys, get, specs, src, fmt, layout["theta0"], hooks)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        sidecar = {"run": run_id, "method": method, "scale": (1 / cfg.r) ** k, "step": k, "r": cfg.r,
                   "kind": cfg.kind, "format": fmt, "source_format": src,
                   "description": meta.get("description"), "reset_norm": meta.get("reset_norm"),
                   "sources": layout["sources"], "files": files, "package": "know-explorer",
                   "version": __version__}
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        os.rename(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failed = write_failure(exc, out) if isinstance(exc, (OSError, RuntimeError)) else None
        if failed is not None:
            raise failed from None
        raise
    return out, sidecar
