"""One snapshot format: named, ordered films of state dicts in one safetensors file.

Film ``f``'s snapshot ``i`` holds its tensors as ``"{f}/{i}/{param}"``; the header entry ``snapshots`` is JSON
``{"format": "know-snapshots/1", "films": {name: count}, "sha256": <payload digest>, **meta}``. ``unpack`` refuses a
malformed header, counts that do not match the stored keys, snapshots of differing names or shapes and a payload that
does not match its digest. Files written before this format (keys ``"{s}/{param}"``, a ``stages`` count and
JSON-valued metadata) are read by ``read_legacy``, the one compatibility branch.
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


def read_legacy(tensors: dict, metadata: dict[str, str], file: str, film: str) -> tuple[dict, dict[str, Any]]:
    """(films, meta) of a file of the layout before ``know-snapshots/1``: keys ``"{s}/{param}"``, metadata
    ``stages`` and JSON-valued entries (``groups``, ``sizes``, …)."""
    try:
        count = int(metadata["stages"])
    except (KeyError, ValueError):
        raise Damaged(file, "metadata: stages is missing or not an integer") from None
    if not 1 <= count <= MAX_SNAPSHOTS:
        raise Damaged(file, f"metadata: stages = {count} is outside [1, {MAX_SNAPSHOTS}]")
    grouped = {(film, idx): state for (idx,), state in _group(tensors, file, 1).items()}
    meta = {}
    for key, value in metadata.items():
        if key != "stages":
            try:
                meta[key] = json.loads(value)
            except ValueError:
                raise Damaged(file, f"metadata: {key} is not JSON") from None
    return _films(grouped, {film: count}, file), meta


def legacy_seed_films(tensors: dict, file: str) -> dict[str, list[dict]]:
    """The films of a seed file written before this format: ``traj/{s}/…``, ``control/{c}/…`` (c from 1) and the
    single snapshots ``pred/{method}/{scale}/…``, ``oracle/{scale}/…``, ``warm/{scale}/…`` (as films
    ``pred:{method}:{scale}``, ``oracle:{scale}``, ``warm:{scale}``)."""
    grouped: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        kind, _, rest = key.partition("/")
        parts = rest.split("/", 2 if kind == "pred" else 1)
        if kind not in ("traj", "control", "pred", "oracle", "warm") or len(parts) < (3 if kind == "pred" else 2) \
                or not all(parts) or (kind == "control" and not parts[0].isdigit()):
            raise Damaged(file, f"malformed key {key[:80]!r}")
        film, idx = ((kind, parts[0]) if kind == "traj" else ("control", str(int(parts[0]) - 1)) if kind == "control"
                     else (":".join([kind, *parts[:-1]]), "0"))
        grouped.setdefault((film, idx), {})[parts[-1]] = t
    films = {f for f, _ in grouped}
    return _films(grouped, {f: sum(1 for g, _ in grouped if g == f) for f in films}, file)


def read(tensors: dict, metadata: dict[str, str], file: str, legacy_film: str) -> tuple[dict, dict[str, Any]]:
    """``unpack`` for files of this format, ``read_legacy`` (as film ``legacy_film``) for older ones."""
    return unpack(tensors, metadata, file) if HEADER in metadata else read_legacy(tensors, metadata, file,
                                                                                   legacy_film)
