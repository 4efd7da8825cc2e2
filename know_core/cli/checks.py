"""Argument checks shared by the commands, run before anything is recorded: finite numbers in range, integers that
fit, names from a fixed list, and output paths that can really be written (not under a file, not in /proc)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

from know_core.common.errors import KnowError
from know_core.experiment.pipeline import preflight_experiment
from know_core.store.loaders import check_user_file
from know_core.store.runstore import RunStore

MAX_SEED = 2**63 - 1
_SPECIAL_ROOTS = ("/proc", "/sys", "/dev")


def finite(flag: str, value: float | None, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> None:
    """``value`` is a finite number in [low, high] (``(low, high]`` with ``low_open``); None passes."""
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KnowError(f"{flag} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise KnowError(f"{flag} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and value > high:
        raise KnowError(f"{flag} must be <= {high:g}, got {value:g}")


def integer(flag: str, value: int | None, low: int, high: int = MAX_SEED) -> None:
    if value is not None and not low <= value <= high:
        raise KnowError(f"{flag} must be an integer in [{low}, {high}], got {value}")


def one_of(flag: str, value: str, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        raise KnowError(f"{flag}: unknown {value!r}; available: {', '.join(choices)}")


def writable_path(flag: str, path: str | os.PathLike, folder: bool) -> Path:
    """A file (or folder) that can be created or replaced: no empty path, nothing under /proc, /sys or /dev, every
    existing parent a folder, the target not a folder where a file is wanted (or the reverse)."""
    text = str(path)
    if not text.strip():
        raise KnowError(f"{flag}: an empty path")
    p = Path(path).absolute()
    if any(str(p) == r or str(p).startswith(r + "/") for r in _SPECIAL_ROOTS):
        raise KnowError(f"{flag} {path}: cannot write under {p.parts[1] and '/' + p.parts[1]}")
    if p.exists() and folder != p.is_dir():
        raise KnowError(f"{flag} {path} is {'a file, not a folder' if folder else 'a folder, not a file'}")
    parent = p if folder and p.exists() else p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise KnowError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KnowError(f"{flag} {path}: {parent} is not writable")
    return Path(path)


def readable_file(flag: str, path: str | None, folder: bool = False) -> Any:
    return None if path is None else check_user_file(path, flag, folder=folder)


def check_demo(args: Any, cfg: Any, preflight: bool = True) -> None:
    """``demo``'s boundary: where its results go, then (``preflight``; a background job's launch does it itself) the
    experiment config, checked once (values, cross-field checks, names, official KNOWN folder, the first seed's
    data)."""
    if args.runs_dir is not None:
        if not str(args.runs_dir).strip():
            raise KnowError("--runs-dir: an empty path")
        writable_path("--runs-dir", args.runs_dir, folder=True)
        RunStore(args.runs_dir).require_writable()
    else:
        writable_path("--out", args.out, folder=True)
    if preflight:
        preflight_experiment(cfg)
