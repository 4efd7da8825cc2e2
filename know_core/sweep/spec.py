"""A sweep's grid: dotted axes over any experiment setting, seeds, what to measure — parsed and checked up front.

Every mistake is a :class:`~know_core.common.errors.ConfigError` naming the axis or value, raised before anything is
recorded: an unknown key, an empty axis, a value of the wrong type, a backwards seed range, a cell the experiment
itself refuses, or more than :data:`MAX_UNITS` units without ``yes``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from know_core.common.errors import ConfigError, KnowError
from know_core.common.fields import field_of, parse_value
from know_core.engine.config import from_dict, to_dict, with_overrides
from know_core.engine.extrapolate import MAX_STEPS
from know_core.experiment.methods import min_stages
from know_core.experiment.spec import PHASES, ExperimentConfig

MAX_UNITS = 10_000
_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``"source.r=0.33,0.5,0.7"`` → ``("source.r", [0.33, 0.5, 0.7])``, each value parsed by the field's type
    (a list-valued field takes space-separated items per value: ``scales=2 4,2 4 8``)."""
    key, eq, values = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"--axis {text!r}: write KEY=V1,V2,…, e.g. source.r=0.33,0.5,0.7")
    if key in ("seeds", "phases"):
        raise ConfigError(f"--axis {key}: use --{'seeds' if key == 'seeds' else 'what'} instead of an axis")
    try:
        _, hint = field_of(ExperimentConfig, key)
    except ConfigError:
        raise ConfigError(f"unknown axis key {key!r}: name an experiment setting, e.g. source.r, source.stages, "
                          "source.stage_budget, target_train, optim keys under source.optim") from None
    items = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in items):
        raise ConfigError(f"axis {key} has an empty value; give V1,V2,… with nothing empty")
    parsed = [parse_value(f"axis {key}", hint, v) for v in items]
    if len({json.dumps(v, sort_keys=True) for v in parsed}) != len(parsed):
        raise ConfigError(f"axis {key} repeats a value")
    return key, parsed


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,7"`` or a mix (``"0-2,7"``) → distinct seeds in the order given."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = _RANGE.fullmatch(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ConfigError(f"seed range {lo}-{hi} runs backwards; write {hi}-{lo}")
            seeds += range(lo, hi + 1)
        elif part.strip().isdigit():
            seeds.append(int(part))
        else:
            raise ConfigError(f"--seeds {text!r}: give seeds like 0-9 or 0,3,7 (non-negative integers)")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice")
    return seeds


@dataclass
class Cell:
    """One point of the grid: its axis values, the experiment config it runs and what was adapted to make it valid."""

    key: str
    values: dict[str, Any]
    config: ExperimentConfig | None
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why the experiment refuses this point of the grid (it is left out, said so)

    @property
    def label(self) -> str:
        return " · ".join(f"{k}={_show(v)}" for k, v in self.values.items()) or "base"


@dataclass
class SweepSpec:
    """The whole request: the base experiment, the axes, the seeds and the phases to measure."""

    base: ExperimentConfig
    axes: list[tuple[str, list[Any]]]
    seeds: list[int]
    what: list[str] = field(default_factory=lambda: list(PHASES))

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("a sweep needs at least one seed (--seeds 0-2)")
        bad = [w for w in self.what if w not in PHASES]
        if bad or not self.what:
            raise ConfigError(f"--what takes some of {', '.join(PHASES)}; got {','.join(self.what) or 'nothing'}")
        keys = [k for k, _ in self.axes]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"axis {next(k for k in keys if keys.count(k) > 1)} is given twice")

    @property
    def n_units(self) -> int:
        return math.prod(len(v) for _, v in self.axes) * len(self.seeds)

    def check_size(self, yes: bool) -> None:
        if self.n_units > MAX_UNITS and not yes:
            raise ConfigError(f"the grid has {self.n_units} units (cells × seeds), more than {MAX_UNITS}; "
                              "add --yes to run it anyway")

    def cells(self, check: Callable[[ExperimentConfig], None] | None = None) -> list[Cell]:
        """Every cell, checked once by ``check`` (default: ``validate``; a new sweep's boundary passes the
        experiment's whole preflight); the ``i``-th cell's key is ``c{i:03d}`` in the order of the axes' product. A
        cell the experiment refuses (r = 0.3 with S = 7 leaves a stage without a batch) carries its ``error`` and is
        left out of the run; when every cell is refused, the first refusal is raised."""
        keys = [k for k, _ in self.axes]
        out = []
        for i, combo in enumerate(itertools.product(*(v for _, v in self.axes))):
            values = dict(zip(keys, combo))
            try:
                out.append(_cell(f"c{i:03d}", values, self, check or ExperimentConfig.validate))
            except ConfigError as exc:
                out.append(Cell(f"c{i:03d}", values, None, error=str(exc)))
        if all(c.error for c in out):
            raise ConfigError(out[0].error)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"base": to_dict(self.base), "axes": [[k, v] for k, v in self.axes], "seeds": self.seeds,
                "what": self.what}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        try:
            return cls(from_dict(ExperimentConfig, data["base"]), [(k, list(v)) for k, v in data["axes"]],
                       [int(s) for s in data["seeds"]], list(data["what"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a sweep spec ({exc})") from None


def _cell(key: str, values: dict[str, Any], spec: SweepSpec, check: Callable[[ExperimentConfig], None]) -> Cell:
    """The config of one cell: the base with the axis values, the sweep's seeds and phases, then adapted where the
    axes make the base's choices impossible (scales that are not powers of the new 1/r, methods whose window is
    longer than the film, warm oracles nobody asked for) — each adaptation noted."""
    label = Cell(key, values, None).label
    try:
        cfg = with_overrides(spec.base, values)
    except ConfigError as exc:
        raise ConfigError(f"cell {label}: {exc}") from None
    cfg = replace(cfg, seeds=list(spec.seeds), phases=list(spec.what))
    notes = []
    if "scales" not in values and not _powers(cfg):
        cfg.scales = [cfg.source.scale_of(k) for k in range(1, 4) if k <= MAX_STEPS]
        notes.append("scales set to " + ", ".join(f"×{s:.3g}" for s in cfg.scales) + " (powers of 1/r)")
    too_short = [m for m in cfg.methods if cfg.source.stages < min_stages(m)]
    if too_short and "methods" not in values and len(too_short) < len(cfg.methods):
        cfg.methods = [m for m in cfg.methods if m not in too_short]
        notes.append(f"left out {', '.join(too_short)}: the film is shorter than their window")
    if "retrodiction" not in spec.what and not cfg.drift_correct and cfg.source.warm != "off" \
            and "source.warm" not in values:
        cfg.source = replace(cfg.source, warm="off")
        notes.append("no warm oracles (retrodiction not measured)")
    try:
        check(cfg)
    except KnowError as exc:
        raise ConfigError(f"cell {label}: {exc}") from None
    return Cell(key, values, cfg, notes)


def _powers(cfg: ExperimentConfig) -> bool:
    try:
        for s in cfg.scales:
            cfg.steps_for(s)
        return True
    except ConfigError:
        return False


def _show(v: Any) -> str:
    return " ".join(map(_show, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else str(v)
