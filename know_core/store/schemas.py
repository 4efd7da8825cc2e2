"""The shapes of what the run store reads: manifest, config, summary, results, seed records, trajectories.

Each ``check_*`` takes parsed data and returns it (or a typed config) when it has the expected structure and ranges,
else raises :class:`~know_core.store.loaders.Damaged` naming the file and the first field that is wrong. Pages and
commands
only ever see data that went through one of these, so a ``[]`` manifest or a ``null`` std never reaches a format
string.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import torch

from know_core.common.errors import KnowError
from know_core.store.kinds import config_reader
from know_core.store.loaders import Damaged, check_relative

SHA256 = re.compile(r"[0-9a-f]{64}")
GROUP_NAMES = ("conv", "fc", "bias", "norm", "embed", "other")


class _Checker:
    """Small helpers that raise Damaged(file, "<field>: <what is wrong>")."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, what: str) -> Damaged:
        return Damaged(self.file, f"{where}: {what}" if where else what)

    def mapping(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def items(self, value: Any, where: str, each: Callable[[Any, str], Any] | None = None, min_len: int = 0) -> list:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        if len(value) < min_len:
            raise self.fail(where, f"expected at least {min_len} entries")
        if each is not None:
            for i, v in enumerate(value):
                each(v, f"{where}[{i}]")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected text, got {type(value).__name__}")
        return value

    def number(self, value: Any, where: str, low: float | None = None, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value!r}"[:200])
        if low is not None and value < low:
            raise self.fail(where, f"expected >= {low}, got {value!r}")
        return float(value)

    def integer(self, value: Any, where: str, low: int = 0, high: int = 1 << 62) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(where, f"expected an integer in [{low}, {high}], got {value!r}"[:200])
        return value

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}"[:200])
        return value

    def scalar_row(self, value: Any, where: str) -> dict:
        row = self.mapping(value, where)
        for key, v in row.items():
            if v is not None and not isinstance(v, (str, bool)):
                self.number(v, f"{where}.{key}")
        return row


def check_manifest(data: Any, run_id: str) -> dict[str, Any]:
    c = _Checker("manifest.json")
    c.mapping(data, "")
    if "id" in data and data["id"] != run_id:
        raise c.fail("id", f"says {str(data['id'])[:80]!r}, but the folder is {run_id!r}")
    if "kind" in data:
        c.text(data["kind"], "kind")
    files = c.mapping(data.get("files"), "files")
    for name, entry in files.items():
        check_relative(name)
        entry = c.mapping(entry, f"files.{name}")
        if not isinstance(entry.get("sha256"), str) or not SHA256.fullmatch(entry["sha256"]):
            raise c.fail(f"files.{name}.sha256", "missing or not a SHA-256 hex digest")
    return data


def check_config(data: Any, kind: str, file: str = "config.json"):
    """The run's config as its typed, validated config, read by its kind's registered reader (store/kinds.py)."""
    reader = config_reader(kind)
    try:
        return reader(data)
    except (KnowError, TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise Damaged(file, f"not a valid {kind} config ({str(exc)[:160]})") from None


def check_summary(data: Any, file: str = "summary.json") -> dict[str, Any]:
    c = _Checker(file)
    c.mapping(data, "")
    for key in ("stage_sizes", "source_acc"):
        if key in data:
            c.items(data[key], key, lambda v, w: c.number(v, w, 0))
    if "timings" in data:
        c.mapping(data["timings"], "timings")
        if "total_s" in data["timings"]:
            c.number(data["timings"]["total_s"], "timings.total_s", 0)
    if "forgot" in data:
        c.flag(data["forgot"], "forgot")
    for key in ("verdict", "preset"):
        if key in data:
            c.text(data[key], key)
    if "verdicts" in data:
        c.items(data["verdicts"], "verdicts", c.text)
    return data


def check_results(data: Any, file: str = "results.json") -> dict[str, Any]:
    """A finished experiment's results: config, rows, summary, verdicts, trajectories, timings (and backtest)."""
    c = _Checker(file)
    c.mapping(data, "")
    check_config(data.get("config"), "experiment", f"{file}: config")

    def row(v: Any, where: str) -> None:
        r = c.scalar_row(v, where)
        c.text(r.get("method"), f"{where}.method")
        c.number(r.get("scale"), f"{where}.scale", 0)

    c.items(data.get("rows"), "rows", row, min_len=1)

    def diff(v: Any, where: str) -> None:
        if v is None:
            return
        c.mapping(v, where)
        c.number(v.get("mean"), f"{where}.mean")
        if v.get("ci95") is not None:
            c.items(v["ci95"], f"{where}.ci95", lambda x, w: c.number(x, w))
            if len(v["ci95"]) != 2:
                raise c.fail(f"{where}.ci95", "expected two bounds")

    def entry(v: Any, where: str) -> None:
        c.mapping(v, where)
        c.text(v.get("method"), f"{where}.method")
        c.number(v.get("scale"), f"{where}.scale", 0)
        c.number(v.get("mean"), f"{where}.mean")
        c.number(v.get("std"), f"{where}.std", 0)
        c.integer(v.get("n"), f"{where}.n", 1)
        diff(v.get("vs_naive"), f"{where}.vs_naive")
        diff(v.get("vs_shrink"), f"{where}.vs_shrink")

    c.items(data.get("summary"), "summary", entry, min_len=1)
    c.items(data.get("verdicts"), "verdicts", c.text)
    c.items(data.get("backtest", []), "backtest", c.scalar_row)

    def trajectory(v: Any, where: str) -> None:
        c.mapping(v, where)
        c.integer(v.get("seed"), f"{where}.seed")
        c.flag(v.get("forgot"), f"{where}.forgot")
        c.text(v.get("verdict"), f"{where}.verdict")
        c.items(v.get("source_acc"), f"{where}.source_acc", lambda x, w: c.number(x, w, 0), min_len=2)
        c.items(v.get("stage_sizes"), f"{where}.stage_sizes", lambda x, w: c.integer(x, w, 1), min_len=2)

    c.items(data.get("trajectories"), "trajectories", trajectory, min_len=1)
    c.mapping(data.get("timings"), "timings")
    c.number(data["timings"].get("total_s"), "timings.total_s", 0)
    return data


def check_groups(value: Any, file: str, where: str = "groups") -> dict[str, str]:
    c = _Checker(file)
    c.mapping(value, where)
    if not value:
        raise c.fail(where, "no parameters")
    for name, group in value.items():
        if group not in GROUP_NAMES:
            raise c.fail(f"{where}.{name}"[:120], f"unknown group {str(group)[:40]!r}")
    return value


def check_seed_record(data: Any, file: str) -> dict[str, Any]:
    c = _Checker(file)
    c.mapping(data, "")
    c.integer(data.get("seed"), "seed")
    check_groups(data.get("groups"), file)
    c.items(data.get("rows"), "rows", c.scalar_row)
    return data


def check_states(states: list[dict], groups: dict[str, str], file: str) -> None:
    """Every stage holds the same finite tensors, of the same shapes, covering every grouped parameter."""
    c = _Checker(file)
    if len(states) < 2:
        raise c.fail("", f"holds {len(states)} stage(s); a trajectory needs at least 2")
    first = states[0]
    missing = [n for n in groups if n not in first]
    if missing:
        raise c.fail("groups", f"parameter {missing[0]!r} has no tensor")
    for s, state in enumerate(states):
        if state.keys() != first.keys():
            raise c.fail(f"stage {s}", "holds other tensors than stage 0")
        for name, t in state.items():
            if t.shape != first[name].shape:
                raise c.fail(
                    f"stage {s}/{name}", f"shape {tuple(t.shape)} differs from stage 0's {tuple(first[name].shape)}"
                )
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise c.fail(f"stage {s}/{name}", "holds NaN or infinite values")
