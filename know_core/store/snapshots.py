"""One snapshot format: named, ordered films of state dicts in one safetensors file.

Film ``f``'s snapshot ``i`` holds its tensors as ``"{f}/{i}/{param}"``; the header entry ``snapshots`` is JSON
``{"format": "know-snapshots/1", "films": {name: count}, "sha256": <payload digest>, **meta}``. ``unpack`` refuses a
malformed header, counts that do not match the stored keys, snapshots of differing names or shapes and a payload that
does not match its digest. Files written before this format are read by :mod:`know_core.store.legacy`, whose ``read``
takes either format; every old format lives there.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from know_core.store.loaders import Damaged

FORMAT = "know-snapshots/1"
HEADER = "snapshots"
MAX_SNAPSHOTS = 1000


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor in key order: its key, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes, without a copy
    return h.hexdigest()


def pack(films: dict[str, list[dict[str, torch.Tensor]]], meta: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    """(tensors, safetensors metadata) of ``films``; ``meta`` must be JSON-serialisable."""
    tensors = {f"{film}/{i}/{name}": t.contiguous() for film, states in films.items()
               for i, state in enumerate(states) for name, t in state.items()}
    header = {**meta, "format": FORMAT, "films": {film: len(states) for film, states in films.items()},
              "sha256": digest(tensors)}
    return tensors, {HEADER: json.dumps(header)}


def _group(tensors: dict, file: str, split: int) -> dict[tuple[str, ...], dict[str, torch.Tensor]]:
    """Tensors grouped by their first ``split`` key parts (film and/or index); a key without them is refused."""
    out: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        parts = key.split("/", split)
        if len(parts) <= split or not all(parts):
            raise Damaged(file, f"tensor key {key[:80]!r} is not a snapshot key")
        out.setdefault(tuple(parts[:split]), {})[parts[split]] = t
    return out


def _films(grouped: dict, counts: dict[str, int], file: str) -> dict[str, list[dict[str, torch.Tensor]]]:
    """The films named by ``counts`` from grouped (film, index) snapshots, each count matching what is stored."""
    films = {}
    for film, count in counts.items():
        stored = {idx for f, idx in grouped if f == film}
        if len(stored) != count or stored != {str(i) for i in range(count)}:
            raise Damaged(file, f"film {film!r}: header says {count} snapshots, {len(stored)} stored")
        films[film] = [grouped[(film, str(i))] for i in range(count)]
    if {f for f, _ in grouped} - set(counts):
        raise Damaged(file, "tensors of a film the header does not name")
    for film, states in films.items():
        first = {name: tuple(t.shape) for name, t in states[0].items()}
        for i, state in enumerate(states):
            if {name: tuple(t.shape) for name, t in state.items()} != first:
                raise Damaged(file, f"film {film!r}: snapshot {i} differs from snapshot 0 in names or shapes")
    return films


def unpack(tensors: dict, metadata: dict[str, str], file: str) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """(films, meta) of a file written by ``pack``; anything else is a ``Damaged`` error naming ``file``."""
    try:
        header = json.loads(metadata[HEADER])
    except (KeyError, TypeError, ValueError):
        raise Damaged(file, f"metadata: {HEADER} is missing or not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise Damaged(file, f"metadata: {HEADER} is not a {FORMAT} header")
    counts, sha = header.pop("films", None), header.pop("sha256", None)
    header.pop("format")
    if not isinstance(counts, dict) or not counts or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_SNAPSHOTS for n in counts.values()):
        raise Damaged(file, f"metadata: films must map names to counts in [1, {MAX_SNAPSHOTS}]")
    films = _films(_group(tensors, file, 2), counts, file)
    if sha != digest(tensors):
        raise Damaged(file, "snapshot payload does not match its sha256 digest")
    return films, header


