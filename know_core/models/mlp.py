"""A multi-layer perceptron on flattened inputs."""

from __future__ import annotations

from torch import nn

from . import register_model


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
