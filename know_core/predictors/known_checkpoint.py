"""KNOWN's own weights format: one safetensors file holding a network per parameter group, self-describing.

Keys are ``<group>.<param>``; the header records the format, each network's input mode and free JSON metadata (what
meta-training measured). The loader checks every key and shape and names the first one that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file

from know_core.common.errors import KnowError
from know_core.common.fsio import atomic_write

from ..models import GROUPS
from .known_net import KNOWN

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "known_default.safetensors"
CHECKPOINT_FORMAT = "know_core.known/1"


class KNOWNWeightsMissing(KnowError, FileNotFoundError):
    """A KNOWN weights file or folder the user asked for (or the default checkpoint) is not on disk."""


def save_known_checkpoint(
    path: str | Path, nets: Mapping[str, KNOWN], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write group networks to one safetensors file (keys ``<group>.<param>``), atomically.

    The header records each network's input mode and ``metadata`` (any JSON-serialisable mapping), so a checkpoint
    is self-describing: ``load_known_checkpoint`` rebuilds exactly the networks that were saved.
    """
    if not nets or any(group not in GROUPS for group in nets):
        raise ValueError(f"nets must map some of {GROUPS} to KNOWN networks, got {sorted(nets)}")
    try:
        user = json.dumps(dict(metadata or {}), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable: {exc}") from None
    tensors = {
        f"{group}.{key}": value.detach().cpu().contiguous()
        for group, net in nets.items()
        for key, value in net.state_dict().items()
    }
    header = {
        "format": CHECKPOINT_FORMAT,
        "metadata": user,
        "input_modes": json.dumps({group: net.input_mode for group, net in nets.items()}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file(tensors, tmp, metadata=header)
    return path


def load_known_checkpoint(path: str | Path) -> tuple[dict[str, KNOWN], dict[str, Any]]:
    """(networks by group, metadata) from a file written by :func:`save_known_checkpoint`; checks every key."""
    path = Path(path)
    if not path.is_file():
        raise KNOWNWeightsMissing(f"KNOWN checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        modes, metadata = json.loads(header.get("input_modes", "{}")), json.loads(header.get("metadata", "{}"))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path.name}: not a readable KNOWN checkpoint ({exc})") from None
    for key in tensors:
        if key.split(".", 1)[0] not in GROUPS:
            raise ValueError(f"{path.name}: unexpected key {key!r} (keys must start with one of {GROUPS})")
    template, nets = KNOWN().state_dict(), {}
    for group in GROUPS:
        state = {key[len(group) + 1 :]: t for key, t in tensors.items() if key.startswith(group + ".")}
        if not state:
            continue
        for name in sorted(set(state) | set(template)):
            key = f"{group}.{name}"
            if name not in template:
                raise ValueError(f"{path.name}: unexpected key {key!r}")
            expected = tuple(template[name].shape)
            if name not in state:
                raise ValueError(f"{path.name}: missing key {key!r} (expected shape {expected})")
            if tuple(state[name].shape) != expected:
                raise ValueError(f"{path.name}: key {key!r} has shape {tuple(state[name].shape)}, expected {expected}")
        nets[group] = KNOWN(modes.get(group, "raw"))
        nets[group].load_state_dict(state)
        nets[group].eval()
    if not nets:
        raise ValueError(f"{path.name}: no KNOWN network in this file (keys prefixed {', '.join(GROUPS)})")
    return nets, metadata
