"""The Experiments form's parts: number inputs bounded by the config's own field metadata, the preset under a
protocol, and the form's values turned into one checked ``ExperimentConfig``."""

from __future__ import annotations

import dataclasses
import operator
import typing

import streamlit as st

from know_core.api import (
    PROTOCOL_KEYS,
    ConfigError,
    ExperimentConfig,
    apply_protocol,
    available_datasets,
    domain_base,
    field_of,
    preset,
    resolve_experiment,
)


def _dataset(field: str, name: str) -> str:
    base = domain_base(name.strip()).partition(":")[0]  # rotated:BASE (a target with domains) names BASE
    if base not in available_datasets():
        raise ConfigError(f"{field}: unknown dataset {base!r}; available: {', '.join(available_datasets())} "
                          "(a class subset is written like digits:0-4)")
    return name.strip()


def number(key: str, label: str, value: float, fmt: str | None = None) -> float:
    """A number input for the config field ``key``: its range and help come from the field's metadata (an open end
    is the nearest value the widget can hold), so the form allows exactly what ``validate`` does."""
    f, hint = field_of(ExperimentConfig, key)
    meta = f.metadata
    cast = int if int in (hint, *typing.get_args(hint)) else float
    inset = 1 if cast is int else 1e-6
    low = None if meta["low"] is None else cast(meta["low"] + (inset if meta["open"] else 0))
    high = None if meta["high"] is None else cast(meta["high"] - (inset if meta["open"] == "both" else 0))
    return st.number_input(label, low, high, cast(value), format=fmt, help=meta["help"])


def field_help(key: str) -> str:
    """The help line of the config field ``key``, as the CLI shows it."""
    return field_of(ExperimentConfig, key)[0].metadata["help"]


@st.cache_data(show_spinner=False, max_entries=16)
def protocol_preset(name: str, protocol: str) -> ExperimentConfig:
    """The preset with the protocol applied (resolved for its dataset and D0): the form's defaults."""
    base = preset(name)
    return dataclasses.replace(base, source=apply_protocol(base.source, protocol))


def build_config(base: ExperimentConfig, v: dict, protocol: str) -> ExperimentConfig:
    """The form's values (keyed by their dotted config keys) as overrides on top of the preset, through the one
    override path the CLI uses: every field, except the protocol's own fields left as shown, so the protocol is
    re-resolved for the chosen data and D0 and ``+custom`` marks a changed one. Checked once, by ``jobs.launch``
    (ConfigError names the field); nothing is recorded when it refuses."""
    v = {**v, "source.dataset": _dataset("source dataset", v["source.dataset"]),
         "target_dataset": _dataset("target dataset", v["target_dataset"]),
         "source.stage_budget": v["source.stage_budget"].strip(), "official_known": v["official_known"].strip(),
         "source.optim.batch_size": int(v["source.optim.batch_size"]) or None}
    changes = {k: x for k, x in v.items()
               if k.removeprefix("source.") not in PROTOCOL_KEYS or x != operator.attrgetter(k)(base)}
    return resolve_experiment(base, protocol, changes)
