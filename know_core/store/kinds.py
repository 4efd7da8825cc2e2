"""Run kinds: what the store must know of each kind of run (forget, experiment, sweep), registered by the layer that
defines the kind, so the store reads every run without importing the code that makes it.

A kind registers ``config``: a function from the config's JSON data to its typed, validated config (raising
KnowError, TypeError, ValueError or KeyError on a bad one), and optionally ``damage``: a function ``(store, run_id)``
that returns why a finished run of that kind cannot be read, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from know_core.common.errors import RunStoreError
from know_core.common.registry import Entry, Registry

RUN_KINDS = Registry("run kind", RunStoreError)  # name -> Entry(factory=config reader, extra: damage check)


def register_run_kind(name: str, config: Callable[[Any], Any], help_text: str,
                      damage: Callable[[Any, str], str | None] | None = None) -> None:
    """Register run kind ``name``: how its config is read, and (optionally) how a finished run is checked."""
    RUN_KINDS.add(Entry(name, config, name, help_text, extra={"damage": damage}))


def config_reader(kind: str) -> Callable[[Any], Any]:
    return RUN_KINDS.get(kind).factory


def damage_check(kind: str) -> Callable[[Any, str], str | None] | None:
    return RUN_KINDS.get(kind).trait("damage") if kind in RUN_KINDS else None
