"""Trajectory ⇄ per-group windows: the (N, S) matrices the predictors work on, and the way back to a state dict.

Column order is the method's: most-forgotten stage first, Θ0 last, i.e. ``x = [θ_{S−1}, …, θ1, θ0]``. Rows are the
scalars of every parameter of one group (conv / fc / bias), in the state dict's own order, so the mapping is stable.
"""

from __future__ import annotations

import torch

from know_core.models import GROUPS


def group_layout(groups: dict[str, str], state: dict[str, torch.Tensor]) -> dict[str, list[tuple[str, torch.Size]]]:
    """For each predicted group, the (parameter name, shape) list in state-dict order."""
    layout: dict[str, list[tuple[str, torch.Size]]] = {g: [] for g in GROUPS}
    for name, tensor in state.items():
        group = groups.get(name)
        if group in layout:
            layout[group].append((name, tensor.shape))
    return layout


def to_windows(states: list[dict[str, torch.Tensor]], groups: dict[str, str]) -> dict[str, torch.Tensor]:
    """Per group, an (N, S) float32 matrix whose column 0 is Θ_{S−1} and last column Θ0."""
    layout = group_layout(groups, states[0])
    windows = {}
    for group, entries in layout.items():
        if not entries:
            continue
        columns = [torch.cat([state[name].reshape(-1).float() for name, _ in entries]) for state in reversed(states)]
        windows[group] = torch.stack(columns, dim=1)
    return windows


def flatten(state: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """The named tensors of ``state`` as one float64 vector, in the order given (for norms, distances, PCA)."""
    return torch.cat([state[name].reshape(-1).double() for name in names])


def row_owner(groups: dict[str, str], state: dict[str, torch.Tensor], group: str) -> list[tuple[str, int, int]]:
    """(parameter name, first row, end row) of each parameter inside a group's window, for error messages and plots."""
    out, offset = [], 0
    for name, shape in group_layout(groups, state)[group]:
        n = int(torch.Size(shape).numel())
        out.append((name, offset, offset + n))
        offset += n
    return out


def from_vectors(base: dict[str, torch.Tensor], groups: dict[str, str],
                 vectors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with each predicted group's parameters from ``vectors[group]`` (N,), the rest from ``base``."""
    out = {name: tensor.clone() for name, tensor in base.items()}
    for group, entries in group_layout(groups, base).items():
        if not entries or group not in vectors:
            continue
        vec, offset = vectors[group], 0
        expected = sum(int(torch.Size(shape).numel()) for _, shape in entries)
        if vec.numel() != expected:
            raise ValueError(f"group {group!r}: got {vec.numel()} values, the model has {expected}")
        for name, shape in entries:
            n = int(torch.Size(shape).numel())
            out[name] = vec[offset : offset + n].reshape(shape).to(base[name].dtype).clone()
            offset += n
    return out
