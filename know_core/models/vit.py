"""A tiny vision transformer: patch embedding, class token, learned positions, pre-norm blocks (attention + MLP).

Sized for CPU films: on 8×8 digits (patch 2, 16 tokens) it has 18,218 parameters, on 28×28 Fashion-MNIST
(patch 7) 19,658 — a digits forgetting run takes seconds. Options go after the name, ``vit_tiny:patch=4,depth=3``.

KNOW groups: the patch projection and every attention / MLP matrix are ``fc``, their biases ``bias``, the LayerNorms
``norm``, and the class token and positional embedding ``embed`` (declared in :attr:`ViT.know_groups`), a group the
predictors copy from Θ0 unless told to include it (``include_embed``).
"""

from __future__ import annotations

import torch
from torch import nn

from know_core.common.errors import ConfigError

from . import register_model


class Attention(nn.Module):
    """Multi-head self-attention; the attention weights come out of ``self.softmax`` so a hook can size them."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.softmax(q @ k.transpose(-2, -1) * (w // self.heads) ** -0.5)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    know_groups = {"cls_token": "embed", "pos_embed": "embed"}

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, patch: int, width: int, depth: int,
                 heads: int, mlp_ratio: int):
        super().__init__()
        c, h, w = input_shape
        self.patch = patch
        tokens = (h // patch) * (w // patch)
        self.patch_proj = nn.Linear(c * patch * patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, width) * 0.02)
        self.blocks = nn.Sequential(*(Block(width, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), self.patch_proj(patches)], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def _check(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"vit_tiny option {name} must be an integer >= {low}, got {value!r}")
    return value


@register_model("vit_tiny", "tiny ViT: patches of a quarter of the image side, width 32, 2 pre-norm blocks of 2 heads "
                            "(options: vit_tiny:patch=P,width=W,depth=D,heads=H,mlp_ratio=M)")
def vit_tiny(input_shape: tuple[int, int, int], num_classes: int, patch: int | None = None, width: int = 32,
             depth: int = 2, heads: int = 2, mlp_ratio: int = 2) -> nn.Module:
    _, h, w = input_shape
    patch = max(1, min(h, w) // 4) if patch is None else _check("patch", patch, 1)
    if h % patch or w % patch:
        raise ConfigError(f"vit_tiny patch size {patch} does not divide the {h}×{w} image")
    for name, value, low in (("width", width, 1), ("depth", depth, 1), ("heads", heads, 1),
                             ("mlp_ratio", mlp_ratio, 1)):
        _check(name, value, low)
    if width % heads:
        raise ConfigError(f"vit_tiny width {width} is not a multiple of heads {heads}")
    return ViT(input_shape, num_classes, patch, width, depth, heads, mlp_ratio)
