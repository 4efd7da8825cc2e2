"""Registries that carry their metadata: predictors, models, datasets, presets, executors, CLI commands and the
dashboard's pages are each looked up here by name.

An :class:`Entry` holds what every consumer needs to list a thing without knowing it: its label and help line, a
colour for the plots (predictors), its options with type, bounds and help, and what it needs from a trajectory
(``min_stages``). The plugin packages (``know_core.predictors``, ``know_core.models``, ``know_core.data``) call
:func:`discover` at the end of their ``__init__``, which imports every module inside them: a new predictor, model or
dataset is one new file whose import registers it, and the CLI, the pipeline and the pages list it from then on.
``know_core.executors`` and ``know_core.cli`` do the same for executors and commands. What only some entries carry
(a command that trains in this process, KNOWN's checkpoint identity and meta-training cost) sits in ``Entry.extra``,
so callers ask the entry instead of comparing names.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option of a factory: ``kind`` is float, int, str or path (a file or folder that must exist)."""

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None

    def check(self, owner: str, value: Any) -> None:
        """Refuse a number outside [low, high] with a message naming the owner and the option (None passes)."""
        if value is None or self.kind not in ("float", "int") or isinstance(value, bool):
            return
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{owner} option {self.name} must be a finite number, got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            bounds = f"[{'-inf' if self.low is None else f'{self.low:g}'}, " \
                     f"{'inf' if self.high is None else f'{self.high:g}'}]"
            raise ValueError(f"{owner} option {self.name} must lie in {bounds}, got {value!r}")


@dataclass(frozen=True)
class Entry:
    """A registered thing: ``factory`` builds it; the rest is what lists, forms, checks and plots need to know."""

    name: str
    factory: Callable[..., Any]
    label: str = ""
    help: str = ""
    colour: str | None = None
    options: tuple[Option, ...] = ()
    min_stages: int = 0  # stages of the forgetting film it needs (KNOWN: its 5-stage window)
    order: int = 100  # listing position; equal orders are listed by name
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)  # what only this kind or entry has

    def trait(self, key: str, default: Any = None) -> Any:
        """One of ``extra`` (a command's ``threaded``, KNOWN's ``checkpoint`` hook), or ``default``."""
        return self.extra.get(key, default)

    @property
    def title(self) -> str:
        return self.label or self.name

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


class Registry:
    """Entries of one kind by unique name; an unknown name fails with ``error`` listing what exists."""

    def __init__(self, kind: str, error: type[Exception]) -> None:
        self.kind, self.error = kind, error
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> Entry:
        old = self._entries.get(entry.name)
        if old is not None and old.factory is not entry.factory:
            raise ValueError(f"a different {self.kind} is already registered as {entry.name!r}")
        self._entries[entry.name] = entry
        return entry

    def decorator(self, name: str, help_text: str, label: str = "") -> Callable[[Callable], Callable]:
        """``@registry.decorator(name, help)`` on a factory registers it as a plain entry and returns it unchanged."""

        def wrap(fn: Callable) -> Callable:
            self.add(Entry(name, fn, label or name, help_text))
            return fn

        return wrap

    def helps(self) -> dict[str, str]:
        """Registered names with their help line."""
        return {e.name: e.help for e in self.entries()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def entries(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: (e.order, e.name))

    def get(self, name: str) -> Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise self.error(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return entry


def discover(package: str, path: Iterable[str]) -> None:
    """Import every module of ``package`` (its ``__path__``), so each plugin file registers itself."""
    for module in pkgutil.iter_modules(list(path)):
        importlib.import_module(f"{package}.{module.name}")
