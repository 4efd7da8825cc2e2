"""Model registry (``create_model``) and the KNOW parameter groups.

A new model is one file in this package whose builder is decorated with :func:`register_model`; the package imports
every module in itself, so ``forget --help``, the Experiments form and the pipeline list it from then on.

Models are sized from the dataset (input shape, class count). Every parameter carries its KNOW group:
``conv`` (kernel with ndim > 2), ``fc`` (2-D kernel), ``bias`` (1-D weight or bias), ``norm`` (parameters of
normalisation layers, which KNOW does not predict) or a group a module declares for its own parameters in a
``know_groups`` class attribute — ``embed`` (positional embedding, class token), copied from Θ0 like ``norm`` unless a
prediction includes it (:func:`predicted_groups`, where it joins ``fc``).

A model name may carry builder options, ``vit_tiny:patch=4,depth=3`` (integers, floats or words); the options are
part of the name everywhere (config, run index), so a run rebuilds exactly its network.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from know_core.common.errors import ConfigError
from know_core.common.registry import Registry, discover

GROUPS = ("conv", "fc", "bias")  # predicted groups; "norm" (and "embed" unless included) is copied from Θ0
EMBED = "embed"
Builder = Callable[..., nn.Module]
_REGISTRY = Registry("model", ConfigError)


def register_model(name: str, help_text: str, *, label: str = "") -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(input_shape, num_classes, **options) -> nn.Module`` under ``name``."""
    return _REGISTRY.decorator(name, help_text, label)


def available_models() -> dict[str, str]:
    """Registered model names (alphabetical) with their help line."""
    return _REGISTRY.helps()


def _value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_model(spec: str) -> tuple[str, dict[str, object]]:
    """``"vit_tiny:patch=4,depth=3"`` → ``("vit_tiny", {"patch": 4, "depth": 3})``; a plain name has no options."""
    if not isinstance(spec, str):
        raise ConfigError(f"model must be a name, got {spec!r}")
    name, _, rest = spec.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ConfigError(f"model option {item[:40]!r} of {spec[:60]!r} is not key=value")
        options[key.strip()] = _value(value.strip())
    return name.strip(), options


def model_name(spec: str) -> str:
    """The registered name inside a model spec (``vit_tiny:patch=4`` → ``vit_tiny``)."""
    return parse_model(spec)[0]


def create_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options) -> nn.Module:
    """Build a registered model for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs; ``name`` may
    carry options (``vit_tiny:patch=4``), keyword ``options`` win over them."""
    base, spec_options = parse_model(name)
    factory = _REGISTRY.get(base).factory
    try:
        return factory(tuple(input_shape), int(num_classes), **{**spec_options, **options})
    except TypeError as exc:
        if spec_options and "unexpected keyword" in str(exc):
            raise ConfigError(f"model {base!r} has no option {str(exc).rpartition(' ')[2]}") from None
        raise


_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def param_groups(model: nn.Module) -> dict[str, str]:
    """Map every parameter name to its KNOW group (conv / fc / bias / norm)."""
    groups: dict[str, str] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            declared = getattr(module, "know_groups", {})
            if p_name in declared:
                groups[full] = declared[p_name]
            elif isinstance(module, _NORM_TYPES):
                groups[full] = "norm"
            elif p.ndim > 2:
                groups[full] = "conv"
            elif p.ndim == 2:
                groups[full] = "fc"
            else:
                groups[full] = "bias"
    return groups


def predicted_groups(groups: dict[str, str], include_embed: bool = False) -> dict[str, str]:
    """The groups a prediction works on: ``embed`` parameters join ``fc`` when included, else stay copied."""
    if not include_embed:
        return groups
    return {name: "fc" if group == EMBED else group for name, group in groups.items()}


def training_bytes(model: nn.Module, input_shape: tuple[int, int, int], batch: int) -> int:
    """An estimate of the memory one training step needs: weights, gradients and two optimiser moments (4 × the
    parameters), plus every module's output for ``batch`` inputs kept for the backward pass, all float32. The
    model may live on the ``meta`` device (nothing allocated)."""
    params = sum(p.numel() for p in model.parameters())
    outputs = [0]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            outputs[0] += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()  # batch norm refuses one sample in training mode
            model(torch.empty(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return 4 * (4 * params + 2 * outputs[0] * batch)


def free_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's own report, or the machine's available RAM for a CPU (MemAvailable, which
    counts reclaimable page cache; free pages where there is no /proc/meminfo)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # no way to tell: do not refuse


def check_model(spec: str, input_shape: tuple[int, int, int], num_classes: int, batch: int,
                device: torch.device) -> int:
    """Build ``spec`` on the meta device (bad name or option → ConfigError) and refuse it when one training step
    would not fit the device's free memory; returns the estimate in bytes."""
    with torch.device("meta"):
        model = create_model(spec, input_shape, num_classes)
    return check_fits(model, f"model {spec[:60]!r}", input_shape, batch, device)


def check_fits(model: nn.Module, label: str, input_shape: tuple[int, ...], batch: int, device: torch.device) -> int:
    """:func:`training_bytes` of ``model`` (on the meta device: nothing allocated) against ``device``'s free memory:
    a ConfigError naming ``label`` when one training step would not fit; returns the estimate in bytes."""
    need = training_bytes(model, input_shape, batch)
    free = free_bytes(device)
    if need > free:
        params = sum(p.numel() for p in model.parameters())
        raise ConfigError(f"{label} ({params:,} parameters) needs about {need / 2**30:.1f} GiB to train "
                          f"with batch {batch}, but {device} has {free / 2**30:.1f} GiB free")
    return need


discover(__name__, __path__)
