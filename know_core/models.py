"""Model registry (``create_model``) and the KNOW parameter groups.

Models are sized from the dataset (input shape, class count). Every parameter carries its KNOW group:
``conv`` (kernel with ndim > 2), ``fc`` (2-D kernel), ``bias`` (1-D weight or bias) or ``norm`` (parameters of
normalisation layers, which KNOW does not predict).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import ConfigError

GROUPS = ("conv", "fc", "bias")  # predicted groups; "norm" is copied from Θ0
Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, tuple[Builder, str]] = {}


def register_model(name: str, help_text: str) -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(input_shape, num_classes, **options) -> nn.Module`` under ``name``."""

    def wrap(fn: Builder) -> Builder:
        _REGISTRY[name] = (fn, help_text)
        return fn

    return wrap


def available_models() -> dict[str, str]:
    return {name: help_text for name, (_, help_text) in sorted(_REGISTRY.items())}


def create_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options) -> nn.Module:
    """Build a registered model for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name][0](tuple(input_shape), int(num_classes), **options)


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


@register_model("simple_cnn", "the official collector's net: conv 8-16-32-32 3×3 + ReLU + max-pool, dense 64, dense classes")
def simple_cnn(input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...] = (8, 16, 32, 32),
               hidden: int = 64) -> nn.Module:
    channels, size, _ = input_shape
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        if size >= 2:  # pool while the map can shrink, so small (8×8) inputs still fit four blocks
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = width
    layers += [nn.Flatten(), nn.Linear(channels * size * size, hidden), nn.ReLU(inplace=True),
               nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


register_model("simple_cnn_narrow", "simple_cnn at half width: conv 4-8-16-16, dense 32 (a meta-training variant)")(
    lambda input_shape, num_classes: simple_cnn(input_shape, num_classes, (4, 8, 16, 16), 32))
register_model("simple_cnn_wide", "simple_cnn at 1.5× width: conv 12-24-48-48, dense 96 (held out of meta-training)")(
    lambda input_shape, num_classes: simple_cnn(input_shape, num_classes, (12, 24, 48, 48), 96))


@register_model("mlp", "multi-layer perceptron on flattened inputs, hidden 256-128")
def mlp(input_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    c, h, w = input_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet with one basic block per stage (BatchNorm included, so it has a ``norm`` group)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, cin = [], widths[0]
        for i, width in enumerate(widths):
            blocks.append(_BasicBlock(cin, width, 1 if i == 0 else 2))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


register_model("small_resnet", "CIFAR-style ResNet, one BasicBlock per stage (16-32-64), BatchNorm")(SmallResNet)


@register_model("resnet18", "torchvision ResNet-18 with a 3×3 stem for small images (the release's model; GPU advised)")
def resnet18(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(input_shape[0], 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model
