"""Bounded, typed reads of every file the run store trusts: nothing is read before it is known to be small enough.

Each loader checks, in this order, before a byte is parsed: the name stays inside its folder (no ``..``, no absolute
path, no symlink anywhere below the folder, so a run cannot point at ``/dev/zero`` or at another folder), the target
is a regular file (not a FIFO, device or directory) and its size is under the limit for its kind. Then it parses with
strict rules (JSON without NaN/Infinity, safetensors headers checked field by field) and the caller validates the
structure with :mod:`know_core.store.schemas`. Every failure is a :class:`Damaged` error, ``damaged: <file>: <reason>``,
so one bad file marks its own run and never the listing of the others.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from know_core.common.errors import KnowError, RunStoreError

MiB = 1 << 20
LIMITS = {"json": 64 * MiB, "csv": 64 * MiB, "manifest": 8 * MiB, "tensors": 8 << 30, "header": 64 * MiB,
          "log": 1 * MiB}
MAX_TENSOR_ELEMENTS = 1 << 31  # any one tensor; the file size bounds the sum
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


class Damaged(RunStoreError):
    """A file of a run is missing, too big, not a regular file, outside its folder, unparsable or of the wrong shape."""

    def __init__(self, file: str, reason: str, run_id: str | None = None):
        self.file, self.reason, self.run_id = file, reason, run_id
        super().__init__(f"{'run ' + run_id + ': ' if run_id else ''}damaged: {file}: {reason}")

    def for_run(self, run_id: str) -> "Damaged":
        return Damaged(self.file, self.reason, run_id)


def check_relative(name: str) -> tuple[str, ...]:
    """The parts of a relative, ``..``-free file name; anything else is refused."""
    parts = tuple(p for p in str(name).replace("\\", "/").split("/") if p not in ("", "."))
    if not parts or str(name).startswith("/") or ".." in parts or "\0" in str(name):
        raise Damaged(str(name), "not a plain file name inside the run folder")
    return parts


def inside(folder: Path, name: str, limit: int, must_exist: bool = True) -> Path | None:
    """``folder/name`` after checking that no part below ``folder`` is a symlink and the file is a regular file of
    at most ``limit`` bytes; None when it is absent and ``must_exist`` is False."""
    parts = check_relative(name)
    path = Path(folder)
    for i, part in enumerate(parts):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if must_exist:
                raise Damaged(name, "missing") from None
            return None
        except OSError as exc:
            raise Damaged(name, f"cannot be read ({exc.strerror or exc})") from None
        if stat.S_ISLNK(st.st_mode):
            raise Damaged(name, "is a symbolic link (run files must be plain files inside the run folder)")
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            raise Damaged(name, f"{'/'.join(parts[:i + 1])} is not a folder")
        if last and not stat.S_ISREG(st.st_mode):
            raise Damaged(name, "is not a regular file")
        if last and st.st_size > limit:
            raise Damaged(name, f"is {st.st_size:,} bytes, over the {limit:,}-byte limit for such a file")
    return path


def run_folder(root: Path, run_id: str) -> Path:
    """The run folder ``root/run_id`` if it is a real directory (not a symlink to elsewhere)."""
    path = Path(root) / run_id
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Damaged(run_id + "/", "the run folder is missing") from None
    except OSError as exc:
        raise Damaged(run_id + "/", f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(st.st_mode):
        raise Damaged(run_id + "/", "the run folder is a symbolic link (refused: it could point anywhere)")
    if not stat.S_ISDIR(st.st_mode):
        raise Damaged(run_id + "/", "the run folder is not a folder")
    return path


def read_bytes(folder: Path, name: str, limit: int) -> bytes:
    """The file's bytes, never more than ``limit`` even if it grows between the check and the read."""
    path = inside(folder, name, limit)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Damaged(name, f"cannot be opened ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise Damaged(name, "is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise Damaged(name, f"is over the {limit:,}-byte limit for such a file")
    return data


def _no_constant(value: str) -> Any:
    raise ValueError(f"{value} is not allowed")


def parse_json(name: str, data: bytes | str) -> Any:
    """Strict JSON: valid UTF-8, no NaN/Infinity, no duplicate-key surprises beyond the last one winning."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Damaged(name, f"not valid JSON ({str(exc)[:120]})") from None


def read_json(folder: Path, name: str, limit: int = LIMITS["json"]) -> Any:
    return parse_json(name, read_bytes(folder, name, limit))


def safetensors_header(path: Path, name: str, size: int) -> dict[str, Any]:
    """The checked header of a safetensors file: every tensor's dtype, shape and byte range fit the file, and the
    metadata is a str→str mapping. Only then may the tensors themselves be loaded (never unpickled)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise Damaged(name, "not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > min(LIMITS["header"], size - 8):
            raise Damaged(name, f"not a safetensors file (header of {n:,} bytes in a {size:,}-byte file)")
        header = parse_json(name, fh.read(n))
    if not isinstance(header, dict):
        raise Damaged(name, "safetensors header is not a mapping")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise Damaged(name, "safetensors metadata is not a mapping of strings")
    body = size - 8 - n
    for key, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPE_BYTES:
            raise Damaged(name, f"tensor {key!r} has no known dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape):
            raise Damaged(name, f"tensor {key!r} has a bad shape {shape!r}")
        count = math.prod(shape)
        if count > MAX_TENSOR_ELEMENTS:
            raise Damaged(name, f"tensor {key!r} has {count:,} elements, over the limit")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= body
                and offsets[1] - offsets[0] == count * _DTYPE_BYTES[entry["dtype"]]):
            raise Damaged(name, f"tensor {key!r} does not fit the file")
    return {"tensors": header, "metadata": meta}


def read_tensors(folder: Path, name: str, limit: int = LIMITS["tensors"]):
    """(tensors, metadata) of a safetensors file inside ``folder``, after the checks above."""
    path = inside(folder, name, limit)
    header = safetensors_header(path, name, path.stat().st_size)
    try:
        return load_file(str(path)), header["metadata"]
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise Damaged(name, f"unreadable tensors ({str(exc)[:120]})") from None


def check_user_file(path: str | os.PathLike, what: str, limit: int = LIMITS["tensors"], folder: bool = False) -> Path:
    """A file (or folder) the user named on the command line: it exists, is regular (or a directory) and small
    enough; symlinks are allowed here since the user chose the path. Raises a one-line KnowError otherwise."""
    p = Path(path)
    if not str(path).strip():
        raise KnowError(f"{what}: an empty path")
    try:
        st = p.stat()
    except OSError as exc:
        raise KnowError(f"{what} {p}: {exc.strerror or exc}") from None
    if folder:
        if not stat.S_ISDIR(st.st_mode):
            raise KnowError(f"{what} {p} is not a folder")
    elif stat.S_ISDIR(st.st_mode):
        return p
    elif not stat.S_ISREG(st.st_mode):
        raise KnowError(f"{what} {p} is not a regular file")
    elif st.st_size > limit:
        raise KnowError(f"{what} {p} is {st.st_size:,} bytes, over the {limit:,}-byte limit")
    return p
