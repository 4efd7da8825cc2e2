"""A forgetting film recorded on the user's own network and data (not registered): the one recording loop
(``engine.forgetting.run_user``) stored as an ordinary forget run, whose config names them ``user:<name>``.

Also the command line's way in: ``module:function`` factories that return the network, and the (train, test) data.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from torch import nn

from know_core.common.errors import ConfigError, KnowError
from know_core.common.hooks import Hooks
from know_core.data import Dataset
from know_core.engine.config import ForgetConfig
from know_core.engine.forgetting import preflight_user, run_user
from know_core.engine.names import USER
from know_core.engine.train import Loss
from know_core.jobs.lifecycle import store_film
from know_core.store.runstore import RunStore


def user_name(value: object) -> str:
    """``user:<name>``: what a config records for the user's own model or data (``value`` a factory's
    ``module:function`` or a name given; an object is named by its class)."""
    text = value if isinstance(value, str) else type(value).__name__
    return text if text.startswith(USER) else USER + text


def record_user_forgetting(model: nn.Module, ds: Dataset, cfg: ForgetConfig, store: RunStore,
                           hooks: Hooks | None = None, name: str | None = None, loss: Loss | None = None) -> str:
    """Structured forgetting of ``model`` (left untouched) on ``ds`` (the user's data made resident:
    ``data.resident.resident_dataset``) under ``cfg`` (validated; its ``model``/``dataset`` are the ``user:`` names to
    record), stored as a new forget run; returns its id. Everything is checked before the run is created, so a
    refusal records nothing."""
    preflight_user(cfg, model, ds, loss)
    return store_film(store, cfg, name, lambda: run_user(cfg, model, ds, hooks, loss))


def load_factory(spec: str, flag: str) -> Callable[[], Any]:
    """The function ``module:function`` names (``function`` may be dotted: ``module:Class.make``); a ConfigError
    naming ``flag`` when the module does not import or holds no such callable."""
    module, colon, attr = str(spec).partition(":")
    if not colon or not module or not attr:
        raise ConfigError(f"{flag} {spec!r} must look like module:function (e.g. mypkg.models:make_net)")
    try:
        target: Any = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 — the user's module: whatever it raises on import is reported
        raise ConfigError(f"{flag} {spec!r}: cannot import module {module!r} ({_short(exc)})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{flag} {spec!r}: module {module!r} has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{flag} {spec!r}: {attr!r} is a {type(target).__name__}, not a function")
    return target


def _call(spec: str, flag: str) -> Any:
    factory = load_factory(spec, flag)
    try:
        return factory()
    except KnowError:
        raise
    except Exception as exc:  # noqa: BLE001 — the user's factory
        raise ConfigError(f"{flag} {spec!r} raised {_short(exc)}") from None


def model_from(spec: str) -> nn.Module:
    """The network ``--model-factory`` ``spec`` returns (a ConfigError for anything but an ``nn.Module``)."""
    model = _call(spec, "--model-factory")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model-factory {spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def data_from(spec: str) -> tuple[Any, Any]:
    """(train, test) from ``--data-factory`` ``spec``: it returns a pair of datasets (test may be None) or one
    training set."""
    data = _call(spec, "--data-factory")
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ConfigError(f"--data-factory {spec!r} returned {len(data)} items; return (train_set, test_set) or "
                              "one training set")
        train, test = data
    else:
        train, test = data, None
    for what, ds in (("train", train), ("test", test)):
        if ds is not None and not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
            raise ConfigError(f"--data-factory {spec!r} returned a {type(ds).__name__} as the {what} set, not a "
                              "torch Dataset")
    return train, test


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
