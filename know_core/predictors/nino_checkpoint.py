"""NiNo's released checkpoints, vendored in ``know_core/checkpoints/`` (MIT, text in ``NINO_LICENSE``).

They are the files of ``SamsungSAILMontreal/nino`` at commit 84fb0cf, byte for byte: a torch pickle holding
``{"state_dict": ..., "model_args": ...}``, read with ``torch.load(weights_only=True)`` (no code runs). Before use each
file's SHA-256 and ``model_args`` are compared with what was released; any difference is refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from know_core.common.errors import KnowError
from know_core.common.fsio import sha256_file

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
LICENSE = CHECKPOINT_DIR / "NINO_LICENSE"
SOURCE = "github.com/SamsungSAILMontreal/nino @ 84fb0cf (MIT)"
# The registry traits both NiNo predictors share: opt-in (--methods), so the presets keep their methods and cost, and
# trained by NiNo's authors, not by us (the cost ledger says so instead of a meta-training time).
PEER_TRAITS: dict[str, Any] = {"default_method": False, "trained_by": "released checkpoint, trained by its authors"}

# file stem -> (SHA-256 of the released file, its model_args, its number of weights)
RELEASED: dict[str, tuple[str, dict[str, Any], int]] = {
    "nino_mlp": ("34d9ff3703274fa07615e27937dac8ea07f375ed95b5bde6d39abd8c41c06f52", {"gnn": False}, 57_384),
    "nino_mlp_h32": ("389e4d51e79a72bb9d780812504c98146073cc2a96da38be3b72d8abe0b6fd7d",
                     {"gnn": False, "hid": 32}, 5_160),
    "nino_no_posw": ("2e2186e4a0e50193080eb9074648786ef25cd5ac3149a7df790127fe41101620",
                     {"wte_pos_enc": False}, 549_992),
}


class NiNoCheckpointError(KnowError, ValueError):
    """A NiNo checkpoint that is missing, altered, or not the model asked for."""


def checkpoint_path(name: str) -> Path:
    if name not in RELEASED:
        raise NiNoCheckpointError(f"unknown NiNo checkpoint {name!r}; vendored: {', '.join(RELEASED)}")
    return CHECKPOINT_DIR / f"{name}.pt"


def load_nino_checkpoint(name: str, path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, model_args)`` of the released checkpoint ``name``, read from ``path`` (default: the vendored
    file) after checking its SHA-256 and ``model_args`` against the release."""
    default = checkpoint_path(name)  # refuses a name that was never released
    path = default if path is None else Path(path)
    sha, args, size = RELEASED[name]
    if not path.is_file():
        raise NiNoCheckpointError(f"NiNo checkpoint {name!r} is missing: {path}")
    actual = sha256_file(path)
    if actual != sha:
        raise NiNoCheckpointError(f"NiNo checkpoint {path.name}: SHA-256 {actual[:16]}… is not the released "
                                  f"{sha[:16]}… ({SOURCE}); refusing an altered file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (a damaged pickle can raise anything; say which file)
        raise NiNoCheckpointError(f"NiNo checkpoint {path.name} cannot be read: {str(exc)[:200]}") from None
    return check_contents(name, blob, args, size)


def check_contents(name: str, blob: Any, args: dict[str, Any],
                   size: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and model_args of a loaded checkpoint, refused unless they are the released ones."""
    if not isinstance(blob, dict) or set(blob) != {"state_dict", "model_args"}:
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise NiNoCheckpointError(f"NiNo checkpoint {name!r} must hold state_dict and model_args, got {keys}")
    if blob["model_args"] != args:
        raise NiNoCheckpointError(f"NiNo checkpoint {name!r}: model_args {blob['model_args']} differ from the "
                                  f"released {args}")
    state = blob["state_dict"]
    total = sum(t.numel() for t in state.values())
    if total != size:
        raise NiNoCheckpointError(f"NiNo checkpoint {name!r} has {total} weights; the release has {size}")
    return state, dict(args)
