"""One snapshot format: named, ordered films of state dicts in one safetensors file.

Film ``f``'s snapshot ``i`` holds its tensors as ``"{f}/{i}/{param}"``; the header entry ``snapshots`` is JSON
``{"format": "know-snapshots/1", "films": {name: count}, "sha256": <payload digest>, **meta}``. ``unpack`` refuses a
malformed header, counts that do not match the stored keys, snapshots of differing names or shapes and a payload that
does not match its digest. Files written before this format are read by :mod:`know_core.store.legacy`, whose ``read``
takes either format; every old format lives there.

:class:`SnapshotWriter` and :class:`SnapshotFile` write and read the same format one tensor at a time (a film larger
than memory): the writer declares every tensor first, hashes the tensors put in key order as they are written and the
rest at the end, read back from the file in key order; the reader checks the header and the digest with one tensor in
memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable

import torch

from know_core.store.loaders import Damaged
from know_core.store.tensorfile import Spec, TensorFile, TensorWriter

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


def _shape(t: torch.Tensor | Spec) -> tuple[int, ...]:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else tuple(t[1])


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
        first = {name: _shape(t) for name, t in states[0].items()}
        for i, state in enumerate(states):
            if {name: _shape(t) for name, t in state.items()} != first:
                raise Damaged(file, f"film {film!r}: snapshot {i} differs from snapshot 0 in names or shapes")
    return films


def _header(metadata: dict[str, str], file: str) -> tuple[dict[str, int], Any, dict[str, Any]]:
    """(film counts, digest, the rest) of a snapshot file's header, checked."""
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
    return counts, sha, header


def unpack(tensors: dict, metadata: dict[str, str], file: str) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """(films, meta) of a file written by ``pack``; anything else is a ``Damaged`` error naming ``file``."""
    counts, sha, header = _header(metadata, file)
    films = _films(_group(tensors, file, 2), counts, file)
    if sha != digest(tensors):
        raise Damaged(file, "snapshot payload does not match its sha256 digest")
    return films, header




def _digest_head(key: str, t: torch.Tensor) -> bytes:
    """What :func:`digest` hashes before a tensor's bytes."""
    return f"{key}|{t.dtype}|{tuple(t.shape)}|".encode()


def _digest_of(keys: list[str], get: Callable[[str], torch.Tensor]) -> str:
    """:func:`digest` computed one tensor at a time."""
    h = hashlib.sha256()
    for key in sorted(keys):
        t = get(key)
        h.update(_digest_head(key, t))
        h.update(t.reshape(-1).view(torch.uint8).numpy())
        del t
    return h.hexdigest()


class SnapshotWriter:
    """A snapshot file written one tensor at a time: ``films`` maps each film to its count, ``shapes`` every
    tensor name to (shape, dtype) (the same in every snapshot); ``put`` each (film, index, name) once, then
    ``close`` computes the digest. The file equals what ``pack`` + ``save_file`` write for the same tensors."""

    def __init__(self, path: str | os.PathLike, films: dict[str, int], shapes: dict[str, tuple[tuple, torch.dtype]],
                 meta: dict[str, Any]):
        self.path = path
        self._header = {**meta, "format": FORMAT, "films": dict(films), "sha256": "0" * 64}
        specs: dict[str, Spec] = {f"{film}/{i}/{name}": (dtype, tuple(shape)) for film, count in films.items()
                                  for i in range(count) for name, (shape, dtype) in shapes.items()}
        self._writer = TensorWriter(path, specs, {HEADER: json.dumps(self._header)})
        # the digest's next tensor is hashed as it comes (by the writer's thread, once written); the digest then
        # goes on with the next in key order, and at the end reads back the rest, in key order, from the file
        self._order, self._next = sorted(specs), 0
        self._hash: Any = hashlib.sha256()

    @staticmethod
    def key_order(films: dict[str, int], names: list[str]) -> list[tuple[str, int, str]]:
        """(film, index, name) in the order the digest reads them: putting tensors in this order spares reading
        the file back at the end (so does any order in which each is put after the one before it in this order,
        as far as it goes: snapshot 0's tensors put in name order, between others, are hashed as they come)."""
        keys = sorted(f"{film}/{i}/{name}" for film, count in films.items() for i in range(count) for name in names)
        return [(k.split("/", 2)[0], int(k.split("/", 2)[1]), k.split("/", 2)[2]) for k in keys]

    def put(self, film: str, index: int, name: str, tensor: torch.Tensor) -> None:
        """Write one tensor (the writer may still be writing it when this returns: leave it unchanged)."""
        key = f"{film}/{index}/{name}"
        if self._next < len(self._order) and self._order[self._next] == key:
            self._next += 1
            head = _digest_head(key, tensor)

            def hash_it(data: memoryview) -> None:
                self._hash.update(head)
                self._hash.update(data)
            self._writer.write(key, tensor, hash_it)
        else:  # hashed when the file is complete (close), read back from it
            self._writer.write(key, tensor)

    def close(self) -> None:
        if self._writer.missing() is None:  # every tensor is in: the digest over those not hashed as they came
            self._writer.flush()
            if self._next < len(self._order):
                with TensorFile(self.path) as fh:
                    for key in self._order[self._next:]:
                        t = fh.get(key)
                        self._hash.update(_digest_head(key, t))
                        self._hash.update(t.reshape(-1).view(torch.uint8).numpy())
                        del t
            self._header["sha256"] = self._hash.hexdigest()
            self._writer.set_metadata({HEADER: json.dumps(self._header)})
        self._writer.close()

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self._writer.__exit__(exc_type)
        else:
            self.close()


class SnapshotFile:
    """A snapshot file read one tensor at a time: the header, the film counts and the digest are checked on
    opening (one tensor in memory at a time; ``check_digest=False`` where the whole file's checksum was just checked
    against a run's manifest); ``get(film, i, name)`` then reads one tensor."""

    def __init__(self, path: str | os.PathLike, file: str, check_digest: bool = True):
        self.file = file
        self._fh = TensorFile(path, file)
        counts, sha, self.meta = _header(self._fh.metadata, file)
        specs = {key: self._fh.spec(key) for key in self._fh.keys()}
        grouped = _films(_group(specs, file, 2), counts, file)  # the checks of unpack, on (dtype, shape) specs
        self.films = {film: len(states) for film, states in grouped.items()}
        self.shapes = {film: {name: (spec[1], spec[0]) for name, spec in states[0].items()}
                       for film, states in grouped.items()}
        for film, states in grouped.items():
            for i, state in enumerate(states):
                if state != states[0]:
                    raise Damaged(file, f"film {film!r}: snapshot {i} differs from snapshot 0 in dtypes")
        if check_digest and sha != _digest_of(self._fh.keys(), self._fh.get):
            raise Damaged(file, "snapshot payload does not match its sha256 digest")

    def get(self, film: str, index: int, name: str) -> torch.Tensor:
        return self._fh.get(f"{film}/{index}/{name}")

    def state(self, film: str, index: int) -> dict[str, torch.Tensor]:
        """One whole snapshot in memory."""
        return {name: self.get(film, index, name) for name in self.shapes[film]}

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> SnapshotFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
