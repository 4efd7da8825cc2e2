"""Model registry (``create_model``) and the KNOW parameter groups.

A new model is one file in this package whose builder is decorated with :func:`register_model`; the package imports
every module in itself, so ``forget --help``, the Experiments form and the pipeline list it from then on.

Models are sized from the dataset (input shape, class count). Every parameter carries its KNOW group:
``conv`` (kernel with ndim > 2), ``fc`` (2-D kernel), ``bias`` (1-D weight or bias) or ``norm`` (parameters of
normalisation layers, which KNOW does not predict).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ConfigError
from ..registry import Registry, discover

GROUPS = ("conv", "fc", "bias")  # predicted groups; "norm" is copied from Θ0
Builder = Callable[..., nn.Module]
_REGISTRY = Registry("model", ConfigError)


def register_model(name: str, help_text: str, *, label: str = "") -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(input_shape, num_classes, **options) -> nn.Module`` under ``name``."""
    return _REGISTRY.decorator(name, help_text, label)


def available_models() -> dict[str, str]:
    """Registered model names (alphabetical) with their help line."""
    return _REGISTRY.helps()


def create_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options) -> nn.Module:
    """Build a registered model for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs."""
    return _REGISTRY.get(name).factory(tuple(input_shape), int(num_classes), **options)


_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def param_groups(model: nn.Module) -> dict[str, str]:
    """Map every parameter name to its KNOW group (conv / fc / bias / norm)."""
    groups: dict[str, str] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(module, _NORM_TYPES):
                groups[full] = "norm"
            elif p.ndim > 2:
                groups[full] = "conv"
            elif p.ndim == 2:
                groups[full] = "fc"
            else:
                groups[full] = "bias"
    return groups


discover(__name__, __path__)
