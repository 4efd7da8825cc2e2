"""ResNets: a small CIFAR-style one with BatchNorm, and torchvision's ResNet-18 with a small-image stem."""

from __future__ import annotations

import torch
from torch import nn

from . import register_model


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
