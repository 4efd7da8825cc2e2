"""Config fields that carry their own help and range, and dotted-key overrides parsed by each field's type.

A field declared with :func:`knob` states its help line and bounds once; ``validate`` checks the bounds
(:func:`check_range`), the CLI generates its flags and the Experiments form its widgets from the same metadata.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any

from know_core.common.errors import ConfigError

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def knob(default: Any = dataclasses.MISSING, *, help: str, low: float | None = None, high: float | None = None,
         open: str = "", flag: str | None = None, choices: tuple[str, ...] = (),
         factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its help line, its range [low, high] (``open``: "low" or "both" ends excluded) and,
    when it differs from ``--field-name``, its command-line flag; ``choices`` for a field that takes one of a list."""
    meta = {"help": help, "low": low, "high": high, "open": open, "flag": flag, "choices": choices}
    return dataclasses.field(default=default, default_factory=factory, metadata=meta)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_of(cls: type, dotted: str) -> tuple[dataclasses.Field, Any]:
    """The field a dotted key names in ``cls`` and its resolved type; an unknown key is a ConfigError naming it."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        hint = _hints(cls).get(part) if dataclasses.is_dataclass(cls) else None
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise ConfigError(f"unknown config key {dotted!r}")
        cls = hint
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if leaf not in fields:
        raise ConfigError(f"unknown config key {dotted!r}; known: {', '.join(sorted(fields))}")
    return fields[leaf], _hints(cls)[leaf]


def parse_value(key: str, hint: Any, text: str) -> Any:
    """``text`` as a value of type ``hint`` (int, float, bool, str, list[...], or any of them | None)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if text.strip().lower() in ("none", "null", ""):
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.{dataclasses.fields(hint)[0].name}")
    if typing.get_origin(hint) is list:
        return [parse_value(key, args[0], item) for item in text.replace(",", " ").split()]
    try:
        if hint is bool:
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError
            return word in _TRUE
        return hint(text.strip()) if hint in (int, float) else text
    except ValueError:
        raise ConfigError(f"{key}: expected {getattr(hint, '__name__', hint)}, got {text!r}") from None


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["source.r=0.33", …]`` (the ``--set`` flags) as ``{"source.r": "0.33", …}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. r=0.33 or optim.lr=0.01")
        out[key.strip()] = value
    return out


def check_range(cfg: Any, name: str, what: str = "a number", note: str = "", section: str = "") -> None:
    """``cfg.name`` within the bounds its field declares, else a ConfigError naming the field (``section.name``)."""
    meta = next(f.metadata for f in dataclasses.fields(cfg) if f.name == name)
    value, low, high = getattr(cfg, name), meta["low"], meta["high"]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (what != "an integer" or isinstance(value, int))
    ok = ok and (low is None or value > low or (value == low and not meta["open"]))
    ok = ok and (high is None or value < high or (value == high and meta["open"] != "both"))
    if not ok:
        raise ConfigError(f"{section}{name} must be {describe_range(meta, what)}{note}, got {value!r}")


def describe_range(meta: dict, what: str = "a number") -> str:
    """The range of a field in words: ``strictly between 0 and 1``, ``an integer >= 2``, ``in (0, 1]``."""
    low, high = (v if isinstance(v, int) or v is None else f"{v:g}" for v in (meta["low"], meta["high"]))
    if meta["open"] == "both":
        return f"strictly between {low} and {high}"
    if high is None:
        return f"{what} {'>' if meta['open'] else '>='} {low}" if low is not None else what
    return f"{what} in {'(' if meta['open'] else '['}{low}, {high}]"
