"""Atomic file writes and checksums: nothing on disk is ever half-written, and damage is detectable.

Every writer goes through :func:`atomic_write`: the content lands in a temporary file in the same directory, is
flushed to disk, and is renamed over the target in one step, so a reader sees the old file or the new one, never a mix.
A write that fails for lack of room or permission (full disk, file-size limit, read-only mount) removes its temporary
file and raises :class:`WriteFailed`, one line naming the file and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from know_core.common.errors import RunStoreError

WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file is larger than allowed",
                errno.EROFS: "the file system is read-only", errno.EDQUOT: "the disk quota is exceeded",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EIO: "an I/O error"}


class WriteFailed(RunStoreError):
    """A file could not be written (full disk, size limit, read-only); nothing partial was left behind."""


def write_failure(exc: BaseException, path: str | os.PathLike) -> WriteFailed | None:
    """The WriteFailed for an OS error (or a library error that wraps one, like safetensors'), else None."""
    code = getattr(exc, "errno", None)
    if code is None:  # safetensors and others report "... Os { code: 28, ... }" or the strerror text
        found = re.search(r"code: (\d+)", str(exc))
        code = int(found.group(1)) if found else next(
            (c for c in WRITE_ERRNOS if os.strerror(c) in str(exc)), None)
    if code not in WRITE_ERRNOS:
        return None
    return WriteFailed(f"cannot write {path}: {WRITE_ERRNOS[code]} ({os.strerror(code)})")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp's 0600 is too private
        os.chmod(tmp_path, mode)
        yield tmp_path
        os.chmod(tmp_path, mode)  # again: some writers (safetensors) recreate the file with their own mode
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except Exception as exc:
        failed = write_failure(exc, path)
        if failed is not None:
            raise failed from None
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
