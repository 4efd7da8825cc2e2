"""The importer for the authors' released KNOWN weights (Keras HDF5 files, one per parameter group).

Those files carry no licence, so they never enter the project: a user who has them names their folder with an option
or the environment variable ``KNOW_OFFICIAL_KNOWN``. Layers are matched by name, never by order (the mapping is in
docs/method.md, "KNOWN"); Keras kernels are (in, out), the transpose of a torch ``Linear`` weight.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .known_checkpoint import KNOWNWeightsMissing
from .known_net import KNOWN

KERAS_LAYERS = {  # torch submodule -> layer name in the official Keras files
    "x_stream.inp": "dense", "x_stream.squeeze": "dense_1", "x_stream.base": "dense_2",
    "x_stream.gate": "dense_3", "x_stream.scale": "dense_4", "x_stream.out": "dense_5",
    "d_stream.inp": "dense_6", "d_stream.squeeze": "dense_7", "d_stream.base": "dense_8",
    "d_stream.gate": "dense_9", "d_stream.scale": "dense_10", "d_stream.out": "dense_11",
    "head": "dense_12",
}
OFFICIAL_FILES = {"conv": "KNOWN_Conv.h5", "fc": "KNOWN_FC.h5", "bias": "KNOWN_Bias.h5"}
OFFICIAL_ENV = "KNOW_OFFICIAL_KNOWN"


def official_known_folder() -> str | None:
    """The folder named by ``$KNOW_OFFICIAL_KNOWN``, or None when it is unset or empty: the default of every option
    that names the official weights (whether it holds the files is checked where they are loaded)."""
    value = os.environ.get(OFFICIAL_ENV, "").strip()
    return os.path.expanduser(value) if value else None


def load_keras_h5(path: str | Path) -> KNOWN:
    """A raw-mode KNOWN in eval mode holding one official Keras file's weights, matched by layer name (never order)."""
    import h5py  # imported here: only this importer needs it, and every CLI start would pay for it otherwise

    path = Path(path)
    if not path.is_file():
        raise KNOWNWeightsMissing(f"KNOWN Keras weights not found: {path}")
    net = KNOWN("raw")
    with h5py.File(path, "r") as f, torch.no_grad():
        root = f["model_weights"] if "model_weights" in f else f  # a whole saved model nests the weights
        for module_name, layer in KERAS_LAYERS.items():
            linear = net.get_submodule(module_name)
            for array, param in (("kernel:0", linear.weight), ("bias:0", linear.bias)):
                key, is_kernel = f"{layer}/{layer}/{array}", array == "kernel:0"
                expected = tuple(param.shape[::-1]) if is_kernel else tuple(param.shape)  # Keras kernels are (in, out)
                if key not in root:
                    raise ValueError(f"{path.name}: layer {layer!r} ({module_name}) has no array {key!r} "
                                     f"(expected shape {expected})")
                value = torch.from_numpy(np.asarray(root[key], dtype=np.float32))
                if tuple(value.shape) != expected:
                    raise ValueError(f"{path.name}: layer {layer!r} ({module_name}) array {key!r} has shape "
                                     f"{tuple(value.shape)}, expected {expected}")
                param.copy_(value.T if is_kernel else value)
    return net.eval()


def load_official_folder(folder: str | Path) -> dict[str, KNOWN]:
    """The three official networks by group from a folder holding all of :data:`OFFICIAL_FILES`."""
    folder = Path(folder)
    missing = [name for name in OFFICIAL_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise KNOWNWeightsMissing(f"KNOWN weights folder {folder} lacks {', '.join(missing)}")
    return {group: load_keras_h5(folder / name) for group, name in OFFICIAL_FILES.items()}
