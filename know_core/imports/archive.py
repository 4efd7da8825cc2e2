"""A film uploaded as a zip (the dashboard's "Import a film"): size-limited, checked member by member, extracted whole
or not at all.

Refused, with one line naming the problem: an archive bigger than the limit (``KNOW_IMPORT_MAX_MB``, default 500 MB;
the sum of the members' uncompressed sizes counts too, so a zip bomb is refused before a byte is written), a member
whose path is absolute or climbs out with ``..``, a symbolic link, a file that is not a zip. Extraction goes to a
temporary folder renamed into place when complete.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from know_core.imports.checkpoints import ImportFailed

MAX_MB_ENV = "KNOW_IMPORT_MAX_MB"
DEFAULT_MAX_MB = 500


def max_upload_bytes() -> int:
    """The configured limit on an uploaded film, in bytes (``KNOW_IMPORT_MAX_MB``, default 500)."""
    text = os.environ.get(MAX_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MB << 20
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not 0 < mb <= 1 << 20:
        raise ImportFailed(f"{MAX_MB_ENV}={text!r}: give the upload limit in MB, a number above 0")
    return int(mb * (1 << 20))


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ImportFailed(f"the zip's member {name[:120]!r} has an absolute path; refused")
    if ".." in path.parts:
        raise ImportFailed(f"the zip's member {name[:120]!r} climbs out of its folder with '..'; refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ImportFailed(f"the zip's member {name[:120]!r} is a symbolic link; refused")


def extract_zip(src: str | os.PathLike, dest: str | os.PathLike, limit: int | None = None) -> Path:
    """Extract the zip ``src`` into the new folder ``dest`` after checking every member; returns the folder to import
    (``dest``, or its one top-level folder when the zip holds just one)."""
    limit = max_upload_bytes() if limit is None else limit
    src, dest = Path(src), Path(dest)
    size = src.stat().st_size
    if size > limit:
        raise ImportFailed(f"the zip is {size / (1 << 20):.1f} MB, over the {limit / (1 << 20):g} MB limit "
                           f"({MAX_MB_ENV})")
    if dest.exists() or dest.is_symlink():
        raise ImportFailed(f"{dest} exists; nothing is overwritten")
    try:
        archive = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFailed(f"{src.name} is not a readable zip ({exc})") from None
    tmp = dest.parent / f".{dest.name}.tmp-{secrets.token_hex(4)}"
    with archive:
        members = archive.infolist()
        if not members:
            raise ImportFailed(f"{src.name} is an empty zip")
        for info in members:
            _check_member(info)
        unpacked = sum(info.file_size for info in members)
        if unpacked > limit:
            raise ImportFailed(f"the zip unpacks to {unpacked / (1 << 20):.1f} MB, over the {limit / (1 << 20):g} MB "
                               f"limit ({MAX_MB_ENV})")
        try:
            tmp.mkdir(parents=True)
            archive.extractall(tmp)
            os.rename(tmp, dest)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImportFailed(f"{src.name} cannot be extracted ({str(exc)[:120]})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    top = [p for p in dest.iterdir() if not p.name.startswith("__MACOSX")]
    return top[0] if len(top) == 1 and top[0].is_dir() else dest
