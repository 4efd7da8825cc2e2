"""The official collector's small CNN and its narrow and wide variants (meta-training models)."""

from __future__ import annotations

from torch import nn

from . import register_model


@register_model(
    "simple_cnn", "the official collector's net: conv 8-16-32-32 3×3 + ReLU + max-pool, dense 64, dense classes"
)
def simple_cnn(
    input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...] = (8, 16, 32, 32), hidden: int = 64
) -> nn.Module:
    channels, size, _ = input_shape
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        if size >= 2:  # pool while the map can shrink, so small (8×8) inputs still fit four blocks
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = width
    layers += [
        nn.Flatten(),
        nn.Linear(channels * size * size, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    ]
    return nn.Sequential(*layers)


register_model("simple_cnn_narrow", "simple_cnn at half width: conv 4-8-16-16, dense 32 (a meta-training variant)")(
    lambda input_shape, num_classes: simple_cnn(input_shape, num_classes, (4, 8, 16, 16), 32)
)
register_model("simple_cnn_wide", "simple_cnn at 1.5× width: conv 12-24-48-48, dense 96 (held out of meta-training)")(
    lambda input_shape, num_classes: simple_cnn(input_shape, num_classes, (12, 24, 48, 48), 96)
)
