"""Safetensors files one tensor at a time, so a film larger than memory can be read and written.

:class:`TensorFile` checks the header first (:func:`know_core.store.loaders.safetensors_header`: dtypes, shapes and
byte ranges fit the file) and then reads each tensor on request with positioned reads (``os.preadv``) into a fresh
buffer. A memory map (``safe_open``) would do the same work but keeps every page it touched resident, and counted in
the process's RSS, until it is closed; positioned reads hold exactly one tensor.

:class:`TensorWriter` lays the whole header out first (every tensor's dtype, shape and byte range, in the order
``safetensors.torch.save_file`` uses: larger dtypes first, then by name, so the file is byte for byte what
``save_file`` writes for the same tensors and metadata) and writes each tensor at its offset, in any order.
safetensors itself has no incremental writer (``save_file`` and ``serialize`` take every tensor at once).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import torch

from know_core.store.loaders import LIMITS, Damaged, safetensors_header

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}
# safetensors' own dtype order (its Rust enum); save_file lays tensors out by it, largest first, then by name
RANK = {name: i for i, name in enumerate(("BOOL", "U8", "I8", "I16", "F16", "BF16", "I32", "F32", "F64", "I64"))}
Spec = tuple[torch.dtype, tuple[int, ...]]
BACKGROUND_BYTES = 64 << 20  # TensorWriter writes tensors up to this size in the background


def _nbytes(spec: Spec) -> int:
    dtype, shape = spec
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


def _read_into(fd: int, buf: torch.Tensor, offset: int) -> None:
    view = memoryview(buf.numpy()).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"unexpected end of file at byte {offset + done}")
        done += got


class TensorFile:
    """A checked safetensors file whose tensors are read one at a time (``get``); close it (or use ``with``)."""

    def __init__(self, path: str | os.PathLike, label: str | None = None, limit: int = LIMITS["tensors"]):
        self.path = Path(path)
        self.label = label or str(path)
        size = self.path.stat().st_size
        if size > limit:
            raise Damaged(self.label, f"{size:,} bytes, over the {limit:,}-byte limit")
        header = safetensors_header(self.path, self.label, size)
        self.metadata: dict[str, str] = header["metadata"]
        self.entries: dict[str, dict] = header["tensors"]
        for key, entry in self.entries.items():
            if entry["dtype"] not in DTYPES:
                raise Damaged(self.label, f"tensor {key!r}: dtype {entry['dtype']} is not supported")
        with open(self.path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
        self._start = 8 + n
        self._fd = os.open(self.path, os.O_RDONLY)

    def keys(self) -> list[str]:
        """The tensor names in the header's order."""
        return list(self.entries)

    def spec(self, key: str) -> Spec:
        entry = self.entries[key]
        return DTYPES[entry["dtype"]], tuple(entry["shape"])

    def get(self, key: str) -> torch.Tensor:
        """A fresh CPU tensor holding ``key``'s values (its own memory, nothing mapped)."""
        dtype, shape = self.spec(key)
        lo, hi = self.entries[key]["data_offsets"]
        buf = torch.empty(hi - lo, dtype=torch.uint8)
        if hi > lo:
            _read_into(self._fd, buf, self._start + lo)
        return buf.view(dtype).reshape(shape)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def header_bytes(specs: dict[str, Spec], metadata: dict[str, str] | None) -> tuple[bytes, dict[str, int]]:
    """(the 8-byte length and padded JSON header, each tensor's offset in the data) for ``specs``, laid out as
    ``save_file`` lays them out."""
    order = sorted(specs, key=lambda k: (-RANK[NAMES[specs[k][0]]], k))
    header: dict = {"__metadata__": metadata} if metadata else {}
    offsets, pos = {}, 0
    for key in order:
        dtype, shape = specs[key]
        n = _nbytes(specs[key])
        header[key] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [pos, pos + n]}
        offsets[key] = pos
        pos += n
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offsets


def _preallocate(fd: int, size: int) -> None:
    """Reserve the file's blocks before it is written: on ext4 the positioned writes into a sparse file ran at
    0.5-1 GB/s against 6-8 GB/s into preallocated space (measured on the 2-core box), and a full disk is found before
    anything is written. A file system that cannot preallocate is simply written sparse (its ``ftruncate`` stands)."""
    fallocate = getattr(os, "posix_fallocate", None)  # not on macOS
    if fallocate is None or size <= 0:
        return
    try:
        fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        # EOPNOTSUPP, EINVAL and the like: nothing reserved, the writes allocate as they go


class TensorWriter:
    """A safetensors file written one tensor at a time: declare every tensor (``specs``: name -> (dtype, shape)),
    ``write`` each exactly once in any order, then ``close``; ``set_metadata`` may replace the metadata with a
    value of the same encoded length (a digest known only at the end).

    A tensor of up to :data:`BACKGROUND_BYTES` is written by a background thread while the caller prepares the next
    one (one write in flight at most, so memory holds one extra tensor of that size at most): a long file is written
    at the disk's pace (about 0.45 GB/s here, once the kernel's dirty-page budget is used up), and a write that only
    waits for the disk then overlaps the caller's computing instead of adding to it. The caller must leave a tensor
    it passed unchanged; ``flush`` waits for the write in flight (``close`` does too), and an error of a background
    write is raised by the next ``write``, ``flush`` or ``close``."""

    def __init__(self, path: str | os.PathLike, specs: dict[str, Spec], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.specs = {k: (dtype, tuple(int(d) for d in shape)) for k, (dtype, shape) in specs.items()}
        for key, (dtype, _) in self.specs.items():
            if dtype not in NAMES:
                raise ValueError(f"tensor {key!r}: dtype {dtype} cannot be stored")
        head, self._offsets = header_bytes(self.specs, metadata)
        self._head_len = len(head)
        self._start = len(head)
        self._pending = set(self.specs)
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: Future | None = None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            size = self._start + sum(_nbytes(s) for s in self.specs.values())
            os.ftruncate(self._fd, size)
            _preallocate(self._fd, size)
            os.pwrite(self._fd, head, 0)
        except BaseException:
            self.close()
            raise

    def set_metadata(self, metadata: dict[str, str]) -> None:
        head, _ = header_bytes(self.specs, metadata)
        if len(head) != self._head_len:
            raise ValueError("the new metadata changes the header's length")
        os.pwrite(self._fd, head, 0)

    def write(self, key: str, tensor: torch.Tensor, then: Callable[[memoryview], None] | None = None) -> None:
        """Write ``key``'s values; ``then(raw bytes)`` runs once they are written, in the order of the writes (a
        checksum over the tensors as they come)."""
        if key not in self._pending:
            raise ValueError(f"tensor {key!r} is not declared or was written already")
        dtype, shape = self.specs[key]
        if tensor.dtype != dtype or tuple(tensor.shape) != shape:
            raise ValueError(f"tensor {key!r} is {tuple(tensor.shape)} {tensor.dtype}, declared {shape} {dtype}")
        values = tensor.detach().cpu().contiguous()
        data = memoryview(values.reshape(-1).view(torch.uint8).numpy())
        offset = self._start + self._offsets[key]
        self.flush()
        self._pending.discard(key)
        if len(data) > BACKGROUND_BYTES:
            self._put(data, offset, then)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="tensor-writer")
        self._inflight = self._pool.submit(self._put, data, offset, then, values)

    def _put(self, data: memoryview, offset: int, then: Callable[[memoryview], None] | None,
             keep: torch.Tensor | None = None) -> None:
        """``keep``: the tensor ``data`` views, held until it is written."""
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, data[done:], offset + done)
        if then is not None:
            then(data)

    def flush(self) -> None:
        """Wait for the write in flight; raises its error, if any."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.result()

    def missing(self) -> str | None:
        """A declared tensor not written yet (None when every one is)."""
        return min(self._pending) if self._pending else None

    def close(self) -> None:
        """Close the file; raises ValueError when a declared tensor was never written."""
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if self._pending:
            missing = sorted(self._pending)[0]
            raise ValueError(f"{self.path.name}: tensor {missing!r} was declared but never written")

    def __enter__(self) -> TensorWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self._pending.clear()  # the error that stopped the writing is the one to report
            with contextlib.suppress(Exception):
                self.flush()
        self.close()


def write_tensors(path: str | os.PathLike, items: Iterable[tuple[str, torch.Tensor]], specs: dict[str, Spec],
                  metadata: dict[str, str] | None = None) -> None:
    """Write the (name, tensor) pairs ``items`` yields, one at a time, into a safetensors file declared by ``specs``."""
    with TensorWriter(path, specs, metadata) as writer:
        for key, tensor in items:
            writer.write(key, tensor)
            del tensor  # before the next one is read
