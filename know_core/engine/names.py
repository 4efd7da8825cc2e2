"""Names a config refers to (its model and dataset) checked against what is registered, before anything runs."""

from __future__ import annotations

from know_core.common.errors import ConfigError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig
from know_core.models import available_models, model_name

USER = "user:"  # the prefix of a model or dataset that is the user's own, not registered (``data.resident``)


def user_named(cfg: ForgetConfig) -> bool:
    """Whether ``cfg`` names the user's own model or data (recorded with ``record_forgetting`` on a module and a
    Dataset, or with ``forget --model-factory``): nothing can rebuild them from the name."""
    return str(cfg.model).startswith(USER) or str(cfg.dataset).startswith(USER)


def check_names(cfg: ForgetConfig) -> None:
    """The model and dataset named by ``cfg`` exist (checked before a run is recorded, like every other value)."""
    if not isinstance(cfg.model, str) or model_name(cfg.model) not in available_models():
        raise ConfigError(f"unknown model {str(cfg.model)[:60]!r}; available: {', '.join(available_models())}")
    load_dataset(cfg.dataset, cfg.data_root)
