"""What a run can be made of and how it is shown: datasets, models, predictors, presets, protocols, the config's
choices, method colours and labels, and the KNOWN checkpoints. The Experiments form and the KNOWN page list these."""

from __future__ import annotations

from know_core.common.fields import field_of
from know_core.engine.config import AUGMENTS, BUDGET_HELP, OPTIMIZERS, PRETRAIN_UNTIL, WARM_MODES
from know_core.engine.finetune import RECIPES, FinetuneConfig
from know_core.engine.protocols import DEFAULT_PROTOCOL, PROTOCOL_KEYS, PROTOCOLS, apply_protocol, describe
from know_core.experiment.methods import OFFICIAL, SHRINK_PREFIX, base_name, method_order, predicted_methods
from know_core.experiment.methods import colour as method_colour
from know_core.experiment.methods import label as method_label
from know_core.experiment.methods import short_label as method_short_label
from know_core.experiment.pipeline import preflight_experiment
from know_core.experiment.spec import ExperimentConfig, available_presets, preset, resolve_experiment

from ..data import available_datasets
from ..data.rotated import base_of as domain_base
from ..models import GROUPS, available_models
from ..predictors import available_predictors, get_predictor, predictor_entry
from ..predictors.keras_import import OFFICIAL_ENV, official_known_folder
from ..predictors.known import DEFAULT_CHECKPOINT, OFFICIAL_FILES

__all__ = [
    "AUGMENTS",
    "BUDGET_HELP",
    "DEFAULT_CHECKPOINT",
    "DEFAULT_PROTOCOL",
    "ExperimentConfig",
    "FinetuneConfig",
    "GROUPS",
    "OFFICIAL",
    "OFFICIAL_ENV",
    "OFFICIAL_FILES",
    "OPTIMIZERS",
    "PRETRAIN_UNTIL",
    "PROTOCOLS",
    "PROTOCOL_KEYS",
    "field_of",
    "resolve_experiment",
    "RECIPES",
    "SHRINK_PREFIX",
    "WARM_MODES",
    "apply_protocol",
    "available_datasets",
    "available_models",
    "available_predictors",
    "available_presets",
    "base_name",
    "describe",
    "domain_base",
    "get_predictor",
    "method_colour",
    "method_label",
    "method_short_label",
    "method_order",
    "official_known_folder",
    "predicted_methods",
    "predictor_entry",
    "preflight_experiment",
    "preset",
]
