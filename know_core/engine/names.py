"""Names a config refers to (its model and dataset) checked against what is registered, before anything runs."""

from __future__ import annotations

from know_core.common.errors import ConfigError
from know_core.data import load_dataset
from know_core.engine.config import ForgetConfig
from know_core.models import available_models, model_name


def check_names(cfg: ForgetConfig) -> None:
    """The model and dataset named by ``cfg`` exist (checked before a run is recorded, like every other value)."""
    if not isinstance(cfg.model, str) or model_name(cfg.model) not in available_models():
        raise ConfigError(f"unknown model {str(cfg.model)[:60]!r}; available: {', '.join(available_models())}")
    load_dataset(cfg.dataset, cfg.data_root)
