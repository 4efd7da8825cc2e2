"""Refusals that propose the nearest valid value: the smallest change to one field that makes a config pass.

When a config is refused (a stage too small for a batch, an oracle the pool cannot hold, a film too short for a
method …), :func:`nearest_fixes` tries, for each of a few fields, the candidate values nearest to the current one
(in order of distance, both ways) and keeps the first that the same check accepts. The values are computed by running
the check, never guessed; a field whose every candidate is refused is left out. :func:`with_fixes` appends them to
the refusal, so the command line and the Experiments form show the same message.
"""

from __future__ import annotations

import operator
import time
from typing import Any, Callable, Iterable, TypeVar

from know_core.common.errors import ConfigError, KnowError
from know_core.data import load_dataset
from know_core.engine.config import with_overrides
from know_core.engine.forgetting import check_stage_sizes, source_split, warm_sizes

T = TypeVar("T")
MAX_TRIES = 120  # candidate checks per field, at most


def _fractions(step: float, low: float, high: float) -> list[float]:
    n = int(round((high - low) / step))
    return [round(low + i * step, 6) for i in range(n + 1)]


FIELDS: dict[str, Callable[[Any], list[Any]]] = {  # dotted key -> candidate values for its current value
    "source.stages": lambda v: list(range(2, max(int(v), 2) + 8)),
    "source.r": lambda v: _fractions(0.05, 0.05, 0.95),
    "source.d0_fraction": lambda v: sorted(set(_fractions(0.01, 0.01, 1.0)) | {1 / 2 ** k for k in range(1, 8)}),
    "source.optim.batch_size": lambda v: [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256],
    "target_train": lambda v: [10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000],
}


def _nearest_first(current: Any, candidates: Iterable[Any]) -> list[Any]:
    """Candidates other than ``current``, nearest first (the smaller one first on a tie)."""
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return []
    return sorted((c for c in candidates if c != current), key=lambda c: (abs(c - current), c))


def nearest_fixes(cfg: T, check: Callable[[T], None], fields: dict[str, Callable[[Any], list[Any]]] | None = None,
                  ) -> list[tuple[str, Any]]:
    """``[(dotted key, value)]``: for each field, the value nearest to the current one with which ``check`` passes
    (every other field unchanged). Fields the config does not have, or with no passing candidate, are left out."""
    fixes = []
    for key, candidates in (FIELDS if fields is None else fields).items():
        try:
            current = operator.attrgetter(key)(cfg)
        except AttributeError:
            continue
        for value in _nearest_first(current, candidates(current))[:MAX_TRIES]:
            try:
                check(with_overrides(cfg, {key: value}))
            except (KnowError, ValueError, TypeError, OSError):
                continue
            fixes.append((key, value))
            break
    return fixes


class _Data:
    """Datasets loaded once per search (a class subset is rebuilt on every ``load_dataset`` call)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str | None], Any] = {}

    def __call__(self, name: str, root: str | None) -> Any:
        if (name, root) not in self._cache:
            self._cache[(name, root)] = load_dataset(name, root)
        return self._cache[(name, root)]


def source_check(cfg: Any, data: Callable[[str, str | None], Any]) -> None:
    """The cheap part of an experiment's preflight that the searched fields decide: the values, the stage sizes
    against the batch and the classes, warm oracles and oracles demanded (``on``) against the source pool. Raises
    ConfigError like the real checks (:func:`~know_core.engine.forgetting.preflight`,
    :class:`~know_core.experiment.seed.SeedContext`),
    which still run on the config that is finally launched."""
    cfg.validate()
    src = cfg.source
    ds = data(src.dataset, src.data_root)
    split = source_split(ds, src)
    check_stage_sizes(src, ds, split.n0)
    max_k = max(cfg.steps_for(s) for s in cfg.scales)
    if src.warm == "on" and len(warm_sizes(split.n0, src.r, len(split.pool), max_k)) < max_k:
        raise ConfigError("warm oracles do not fit in the source pool")
    if cfg.oracles == "on" and int(round(split.n0 * max(cfg.scales))) > len(split.pool):
        raise ConfigError("oracles do not fit in the source pool")


def experiment_fixes(
    exc: ConfigError, cfg: Any, full_check: Callable[[Any], None], budget_s: float = 3.0
) -> ConfigError:
    """:func:`with_fixes` for an experiment: where the refusal comes from the values or the source data's sizes,
    the search runs :func:`source_check` (fast); elsewhere it runs ``full_check`` within ``budget_s`` seconds."""
    data = _Data()
    try:
        source_check(cfg, data)
    except (KnowError, ValueError):
        return with_fixes(exc, cfg, lambda c: source_check(c, data))
    deadline = time.monotonic() + budget_s

    def bounded(c: Any) -> None:
        if time.monotonic() > deadline:
            raise ConfigError("out of time")
        full_check(c)

    return with_fixes(exc, cfg, bounded)


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def with_fixes(exc: ConfigError, cfg: T, check: Callable[[T], None]) -> ConfigError:
    """``exc`` with the nearest valid values appended (``… — nearest valid: source.stages=3 or
    source.d0_fraction=0.4``), or ``exc`` itself when no one-field change passes."""
    fixes = nearest_fixes(cfg, check)
    if not fixes:
        return exc
    return ConfigError(f"{exc} — nearest valid: {' or '.join(f'{k}={_show(v)}' for k, v in fixes)}")
