"""Predictor registry: ``get_predictor("expfit")`` instead of if/else chains over names.

A new predictor is one file in this package holding a class deriving :class:`Predictor` and one
:func:`register_predictor` call; the package imports every module in itself
(:func:`know_core.common.registry.discover`), so
the CLI, the pipeline, the Experiments form and the pages list it from then on, with its label, colour and options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from know_core.common.errors import KnowError
from know_core.common.registry import Entry, Option, Registry, discover

from .base import Predictor, PredictorInputError

_REGISTRY = Registry("predictor", PredictorInputError)


def register_predictor(
    name: str,
    factory: Callable[..., Predictor],
    *,
    label: str = "",
    colour: str | None = None,
    help: str = "",
    options: Sequence[Option] = (),
    min_stages: int | None = None,
    order: int = 100,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Make ``factory(**options)`` available as ``get_predictor(name, **options)``; names are unique.

    ``min_stages`` (default: the class's own) is the film length it needs; ``order`` places it in every list
    (the built-in baselines come first); ``colour`` is its colour on every page (a stable one is picked if None).
    ``extra``: what only this predictor has, asked through :func:`predictor_trait` (KNOWN: ``checkpoint``, a function
    giving its default checkpoint file, whose hash goes into a run's provenance; ``checkpoint_identity``, the card's
    record kept in results.json; ``meta_trained``, its meta-training counted in its cost; ``trained_by``, who trained
    the released weights it loads when that is not us (the cost ledger says so instead of counting 0 s);
    ``official_weights``, the predictor behind ``known-official``); ``default_method`` False keeps it out of the
    methods an experiment runs when it names none (:func:`default_predictors`).
    """
    if not name or name != name.strip().lower():
        raise ValueError(f"predictor names are non-empty lower-case words, got {name!r}")
    stages = min_stages if min_stages is not None else getattr(factory, "min_stages", 2)
    _REGISTRY.add(
        Entry(name, factory, label or name, help, colour, tuple(options), int(stages), order, dict(extra or {}))
    )


def available_predictors() -> list[str]:
    """Registered names, in listing order (baselines first)."""
    return _REGISTRY.names()


def default_predictors() -> list[str]:
    """The predictors an experiment runs when it names none: every registered one, except those whose entry says
    ``default_method: False`` (opt-in, e.g. a peer method not yet measured on the presets)."""
    return [e.name for e in _REGISTRY.entries() if e.trait("default_method", True)]


def predictor_entry(name: str) -> Entry:
    """A registered predictor's metadata; an unknown name fails with the list of what exists."""
    return _REGISTRY.get(str(name).strip().lower())


def predictor_entries() -> list[Entry]:
    return _REGISTRY.entries()


def predictor_trait(name: str, key: str, default: Any = None) -> Any:
    """``extra[key]`` of the predictor called exactly ``name``; ``default`` for a name that is no predictor's (a
    variant, an oracle row) or a predictor without it."""
    entry = _REGISTRY._entries.get(name)
    return default if entry is None else entry.trait(key, default)


def get_predictor(name: str, **options) -> Predictor:
    """A ready predictor; unknown names and options fail with the list of what exists."""
    entry = predictor_entry(name)
    accepted = [p for p in inspect.signature(entry.factory).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PredictorInputError(
            f"predictor {name!r} has no option {unknown[0]!r}; its options: {', '.join(accepted) or 'none'}"
        )
    try:
        for key, value in options.items():
            if (declared := entry.option(key)) is not None:
                declared.check(entry.name, value)
        return entry.factory(**options)
    except KnowError:
        raise
    except (ValueError, OSError, KeyError, TypeError, RuntimeError) as exc:  # e.g. a garbage .h5 or checkpoint
        raise PredictorInputError(f"predictor {name!r}: cannot use these options ({str(exc)[:200]})") from None


discover(__name__, __path__)

from .keras_import import load_keras_h5  # noqa: E402  (re-exported names callers have always imported from here)
from .known_checkpoint import load_known_checkpoint, save_known_checkpoint  # noqa: E402
from .known_fast import predict_fast  # noqa: E402
from .known_net import KNOWN  # noqa: E402

__all__ = [
    "KNOWN",
    "Option",
    "Predictor",
    "PredictorInputError",
    "available_predictors",
    "default_predictors",
    "get_predictor",
    "load_keras_h5",
    "load_known_checkpoint",
    "predict_fast",
    "predictor_entries",
    "predictor_entry",
    "predictor_trait",
    "register_predictor",
    "save_known_checkpoint",
]
