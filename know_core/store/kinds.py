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

RUN_CONFIGS = Registry("run kind", RunStoreError)
RUN_DAMAGE = Registry("run kind with a damage check", RunStoreError)


def register_run_kind(name: str, config: Callable[[Any], Any], help_text: str,
                      damage: Callable[[Any, str], str | None] | None = None) -> None:
    """Register run kind ``name``: how its config is read, and (optionally) how a finished run is checked."""
    RUN_CONFIGS.add(Entry(name, config, name, help_text))
    if damage is not None:
        RUN_DAMAGE.add(Entry(name, damage, name, help_text))


def config_reader(kind: str) -> Callable[[Any], Any]:
    return RUN_CONFIGS.get(kind).factory


def damage_check(kind: str) -> Callable[[Any, str], str | None] | None:
    return RUN_DAMAGE.get(kind).factory if kind in RUN_DAMAGE.names() else None
