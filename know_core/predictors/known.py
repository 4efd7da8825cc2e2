"""KNOWN, the paper's hyper-model (DESIGN.md §1): the trainable module, its fast inference path, its checkpoint
format, the importer for the authors' Keras weights, and the ``known`` predictor (one network per parameter group).

``KNOWN.forward`` is the readable reference and the one meta-training differentiates. ``KNOWN.predict_fast`` computes
the same function for inference over millions of weights by algebra rather than approximation (checked against
``forward`` and the official outputs in the tests); each item was measured on 2 CPU cores, not assumed:

- the ReLU bottleneck is fed from the inputs directly (W_sq·(W_in·x + b_in) = (W_sq·W_in)·x + …, one K=5 product
  instead of a K=64 one), and the base branch g is folded through the out-projection (W_out·g is an 8→32 map);
- exp(y) is computed as exp2(y·log2 e) with log2 e folded into the exponent weights (exp2 is ~2.5× faster on CPU);
- biases ride in the matmuls as an extra ones-column; intermediates live in buffers allocated once per worker and
  4,096-row chunks that stay in cache (the eager module peaks near that size too and collapses above 16k rows);
- threads take whole chunks instead of splitting every small op (see ``base.run_chunks``).
Single-threaded that is ~1.7× the eager module at its best chunk size. ``torch.compile`` was tried and left out: 32 s
of compilation on this machine outweighs anything it could save on one model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import KnowError
from ..fsio import atomic_write
from ..models import GROUPS
from .base import Predictor, PredictorInputError, run_chunks

STAGES = 5
EXP_CLAMP = 30.0  # e⊙h is clamped here before exp: far above anything the official nets produce, below overflow
INPUT_MODES = ("raw", "range")
RANGE_EPS = 1e-12  # floor of the per-window range in "range" mode (constant windows)
LEAKY_SLOPE = 0.3
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "known_default.safetensors"


class KNOWNStream(nn.Module):
    """One input stream: projection, ReLU bottleneck, gated exponential, LeakyReLU out-projection."""

    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.inp, self.squeeze = nn.Linear(n_in, 64), nn.Linear(64, 8)
        self.base, self.gate, self.scale = nn.Linear(8, 64), nn.Linear(8, 64), nn.Linear(8, 64)
        self.out = nn.Linear(64, 32)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.inp(v)
        z = F.relu(self.squeeze(h))
        t = self.base(z) + self.gate(z) * torch.exp(torch.clamp(self.scale(z) * h, max=EXP_CLAMP))
        return F.leaky_relu(self.out(t), LEAKY_SLOPE)


class KNOWN(nn.Module):
    """Next value of each 5-stage window (most-forgotten first): x[4] + Δ, with Δ = tanh(head([A(x), B(diff x)])).

    ``input_mode`` "raw" is the official convention. "range" makes the network scale-invariant: each window is
    shifted to x[4] = 0 and divided by its range s, and the prediction is x[4] + s·out_scale·Δ. ``out_scale`` (a
    buffer, 1.0 by default) multiplies Δ in both modes. Windows longer than 5 use their last 5 columns.
    """

    def __init__(self, input_mode: str = "raw") -> None:
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"KNOWN input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.input_mode = input_mode
        self.x_stream, self.d_stream = KNOWNStream(STAGES), KNOWNStream(STAGES - 1)
        self.head = nn.Linear(64, 1)
        self.register_buffer("out_scale", torch.tensor(1.0))

    @staticmethod
    def _check_stages(window: torch.Tensor) -> None:
        if window.ndim != 2 or window.shape[1] < STAGES:
            raise ValueError(f"KNOWN needs 5 stages per window (rows, 5); got shape {tuple(window.shape)}")

    def _inputs(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, d) as the streams see them, plus the anchor x[4] and the factor that turns Δ into a step."""
        self._check_stages(window)
        x = window[:, -STAGES:].to(self.head.weight.dtype)
        anchor, step = x[:, -1], self.out_scale.expand(x.shape[0])
        if self.input_mode == "range":
            s = (x.amax(dim=1) - x.amin(dim=1)).clamp_min(RANGE_EPS).unsqueeze(1)
            x, step = (x - anchor.unsqueeze(1)) / s, step * s.squeeze(1)
        return x, x.diff(dim=1), anchor, step

    def _delta(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(torch.cat([self.x_stream(x), self.d_stream(d)], dim=1))).squeeze(1)

    def delta(self, window: torch.Tensor) -> torch.Tensor:
        """The tanh head's output Δ, (N,)."""
        x, d, _, _ = self._inputs(window)
        return self._delta(x, d)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """Predicted next value, (N,): the reference implementation (and the one to train)."""
        x, d, anchor, step = self._inputs(window)
        return anchor + step * self._delta(x, d)

    @torch.inference_mode()
    def predict_fast(self, window: torch.Tensor, chunk_rows: int | None = None) -> torch.Tensor:
        """``forward`` for inference only (same values to float rounding); see the module docstring for how.
        Chunks are spread over worker threads as in :func:`run_chunks`."""
        self._check_stages(window)
        chunk_rows = chunk_rows or (4096 if window.device.type == "cpu" else 1 << 18)  # GPU: ~300 MB of buffers
        out = torch.empty(window.shape[0], dtype=self.head.weight.dtype, device=window.device)
        streams = (_PackedStream(self.x_stream), _PackedStream(self.d_stream))
        w_head, b_head = self.head.weight.reshape(2, 32), self.head.bias

        def make_worker() -> Callable[[int, int], None]:
            rows = min(chunk_rows, window.shape[0])
            buf = _Scratch.allocate(rows, out)
            ins = [out.new_ones(rows, n + 1) for n in (STAGES, STAGES - 1)]  # last column stays 1: biases' input

            def run(start: int, stop: int) -> None:
                x, d, anchor, step = self._inputs(window[start:stop])
                n = stop - start
                ins[0][:n, :-1], ins[1][:n, :-1] = x, d
                part, result = buf if n == rows else buf.head(n), out[start:stop]
                torch.mv(streams[0](ins[0][:n], part), w_head[0], out=result)
                result.addmv_(streams[1](ins[1][:n], part), w_head[1]).add_(b_head).tanh_()
                result.mul_(step).add_(anchor)
            return run

        run_chunks(window.shape[0], chunk_rows, make_worker, window.device)
        return out


class _Scratch(NamedTuple):
    """Preallocated intermediates of one stream for one chunk (reused by both streams and every chunk)."""

    h: torch.Tensor
    z: torch.Tensor
    c: torch.Tensor
    g: torch.Tensor
    u: torch.Tensor

    @classmethod
    def allocate(cls, rows: int, like: torch.Tensor) -> _Scratch:
        return cls(*(like.new_empty(rows, cols) for cols in (64, 9, 64, 64, 32)))

    def head(self, n: int) -> _Scratch:
        """The first ``n`` rows of every buffer (for the last, shorter chunk)."""
        return _Scratch(*(t[:n] for t in self))


class _PackedStream:
    """A stream's weights rearranged for ``predict_fast``: (in, out) matrices whose last row is the bias."""

    def __init__(self, s: KNOWNStream) -> None:
        f64 = lambda lin: (lin.weight.detach().double().t(), lin.bias.detach().double())  # noqa: E731
        (w_in, b_in), (w_sq, b_sq), (w_b, b_b) = f64(s.inp), f64(s.squeeze), f64(s.base)
        (w_g, b_g), (w_e, b_e), (w_o, b_o) = f64(s.gate), f64(s.scale), f64(s.out)
        dtype, log2e = s.inp.weight.dtype, 1.0 / math.log(2.0)
        cast = lambda w: w.to(dtype).contiguous()  # noqa: E731  (folding is done in float64, then rounded once)
        with_bias = lambda w, b: torch.cat([w, b.unsqueeze(0)])  # noqa: E731
        carry_one = torch.zeros(w_in.shape[0] + 1, 1, dtype=torch.float64)
        carry_one[-1] = 1.0  # z's 9th column is relu(1) = 1, so the next matmuls get their bias row too
        self.exp_clamp = EXP_CLAMP * log2e
        self.w_h = cast(with_bias(w_in, b_in))
        self.w_z = cast(torch.cat([with_bias(w_in @ w_sq, b_in @ w_sq + b_sq), carry_one], dim=1))
        self.w_c, self.w_e = cast(with_bias(w_g, b_g)), cast(with_bias(w_e, b_e) * log2e)
        self.w_out, self.w_zu = cast(w_o), cast(with_bias(w_b @ w_o, b_b @ w_o + b_o))

    def __call__(self, v: torch.Tensor, buf: _Scratch) -> torch.Tensor:
        h = torch.mm(v, self.w_h, out=buf.h)
        z = torch.mm(v, self.w_z, out=buf.z).relu_()
        c = torch.mm(z, self.w_c, out=buf.c)
        gated = torch.mm(z, self.w_e, out=buf.g).mul_(h).clamp_(max=self.exp_clamp).exp2_().mul_(c)
        u = torch.mm(gated, self.w_out, out=buf.u).addmm_(z, self.w_zu)
        return F.leaky_relu_(u, LEAKY_SLOPE)


KERAS_LAYERS = {  # torch submodule -> layer name in the official Keras files (DESIGN.md §1)
    "x_stream.inp": "dense", "x_stream.squeeze": "dense_1", "x_stream.base": "dense_2",
    "x_stream.gate": "dense_3", "x_stream.scale": "dense_4", "x_stream.out": "dense_5",
    "d_stream.inp": "dense_6", "d_stream.squeeze": "dense_7", "d_stream.base": "dense_8",
    "d_stream.gate": "dense_9", "d_stream.scale": "dense_10", "d_stream.out": "dense_11",
    "head": "dense_12",
}
OFFICIAL_FILES = {"conv": "KNOWN_Conv.h5", "fc": "KNOWN_FC.h5", "bias": "KNOWN_Bias.h5"}
CHECKPOINT_FORMAT = "know_core.known/1"


class KNOWNWeightsMissing(KnowError, FileNotFoundError):
    """A KNOWN weights file or folder the user asked for (or the default checkpoint) is not on disk."""


def load_keras_h5(path: str | Path) -> KNOWN:
    """A raw-mode KNOWN in eval mode holding one official Keras file's weights, matched by layer name (never order)."""
    import h5py  # only the importer needs it

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


def save_known_checkpoint(path: str | Path, nets: Mapping[str, KNOWN], metadata: Mapping[str, Any] | None = None) -> Path:
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
    tensors = {f"{group}.{key}": value.detach().cpu().contiguous()
               for group, net in nets.items() for key, value in net.state_dict().items()}
    header = {"format": CHECKPOINT_FORMAT, "metadata": user,
              "input_modes": json.dumps({group: net.input_mode for group, net in nets.items()})}
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
        state = {key[len(group) + 1:]: t for key, t in tensors.items() if key.startswith(group + ".")}
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


class KNOWNPredictor(Predictor):
    """KNOWN retrodiction, one network per group, from official Keras files, a checkpoint, or networks in memory."""

    name = "known"
    min_stages = STAGES
    chunk_rows = 65_536  # each worker's predict_fast call then runs single-threaded over 16 cache-sized chunks

    def __init__(self, weights: str | Path | Mapping[str, KNOWN] | None = None) -> None:
        if isinstance(weights, Mapping):
            if not weights or any(g not in GROUPS or not isinstance(n, KNOWN) for g, n in weights.items()):
                raise PredictorInputError(f"weights must map some of {GROUPS} to KNOWN networks, got {dict(weights)}")
            self.nets, self.source = dict(weights), "networks in memory"
            return
        path = DEFAULT_CHECKPOINT if weights is None else Path(weights)
        if weights is None and not path.is_file():
            raise KNOWNWeightsMissing(
                f"the default KNOWN checkpoint is missing ({path}): `python -m know_core metatrain` makes it, "
                f"or pass weights=FOLDER holding the official {', '.join(OFFICIAL_FILES.values())}")
        if path.is_dir():
            missing = [name for name in OFFICIAL_FILES.values() if not (path / name).is_file()]
            if missing:
                raise KNOWNWeightsMissing(f"KNOWN weights folder {path} lacks {', '.join(missing)}")
            self.nets = {group: load_keras_h5(path / name) for group, name in OFFICIAL_FILES.items()}
            self.source = f"official Keras weights in {path}"
        else:
            self.nets, _ = load_known_checkpoint(path)
            self.source = f"checkpoint {path.name}"

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        """The group's network, moved to the window's device if needed, through its fast path."""
        net = self.nets.get(group)
        if net is None:
            raise PredictorInputError(f"this KNOWN ({self.source}) has no network for group {group!r}; "
                                      f"it has {', '.join(self.nets)}")
        if net.out_scale.device != window.device:
            net.to(window.device)
        return net.predict_fast(window).to(window.dtype)

    def describe(self) -> str:
        modes = ", ".join(f"{group}: {net.input_mode}" for group, net in self.nets.items())
        return f"known: KNOWN hyper-model, {self.source} (input mode {modes})"
