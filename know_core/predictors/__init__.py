"""Predictor registry: ``get_predictor("expfit")`` instead of if/else chains over names.

A new predictor is one class deriving :class:`Predictor` plus one :func:`register_predictor` call; the CLI, the
pipeline and the dashboard list whatever :func:`available_predictors` returns.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ..errors import KnowError
from .base import Predictor, PredictorInputError
from .expfit import ExpFitPredictor
from .keras_import import load_keras_h5
from .known import KNOWNPredictor
from .known_checkpoint import load_known_checkpoint, save_known_checkpoint
from .known_fast import predict_fast
from .known_net import KNOWN
from .naive import NaivePredictor
from .taskvector import TaskVectorPredictor

_REGISTRY: dict[str, Callable[..., Predictor]] = {}


def register_predictor(name: str, factory: Callable[..., Predictor]) -> None:
    """Make ``factory(**options)`` available as ``get_predictor(name, **options)``; names are unique."""
    if not name or name != name.strip().lower():
        raise ValueError(f"predictor names are non-empty lower-case words, got {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"a different predictor is already registered as {name!r}")
    _REGISTRY[name] = factory


def available_predictors() -> list[str]:
    """Registered names, in registration order (baselines first)."""
    return list(_REGISTRY)


def get_predictor(name: str, **options) -> Predictor:
    """A ready predictor; unknown names and options fail with the list of what exists."""
    factory = _REGISTRY.get(str(name).strip().lower())
    if factory is None:
        raise PredictorInputError(f"unknown predictor {name!r}; available: {', '.join(_REGISTRY)}")
    accepted = [p for p in inspect.signature(factory).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PredictorInputError(f"predictor {name!r} has no option {unknown[0]!r}; "
                                  f"its options: {', '.join(accepted) or 'none'}")
    try:
        return factory(**options)
    except KnowError:
        raise
    except (ValueError, OSError, KeyError, TypeError, RuntimeError) as exc:  # e.g. a garbage .h5 or checkpoint
        raise PredictorInputError(f"predictor {name!r}: cannot use these options ({str(exc)[:200]})") from None


register_predictor("naive", NaivePredictor)
register_predictor("taskvector", TaskVectorPredictor)
register_predictor("expfit", ExpFitPredictor)
register_predictor("known", KNOWNPredictor)

__all__ = [
    "KNOWN", "Predictor", "PredictorInputError", "available_predictors", "get_predictor", "load_keras_h5",
    "load_known_checkpoint", "predict_fast", "register_predictor", "save_known_checkpoint",
]
