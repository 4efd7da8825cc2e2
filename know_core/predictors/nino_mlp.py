"""The ``nino_mlp`` predictor: NiNo's WNN+, the graph-free model of "Accelerating Training with Neuron Interaction and
Nowcasting Networks" (Knyazev et al., ICLR 2025), with its released weights (docs/method.md, "NiNo's WNN+").

WNN+ looks at one scalar weight at a time. Its input is the last c = 5 values of that weight's history, scaled
per parameter tensor: every value of the tensor over those c stages shares one mean μ and one standard deviation σ
(unbiased), and z = (θ − μ) / (σ + 10⁻⁶). A linear map lifts z to the hidden width and adds an embedding of the
tensor's layer type (dense 1, bias 2, conv 3, normalisation 4: NiNo's rule, from name and shape); three
SiLU-activated linear layers follow and a last linear layer gives 40 outputs, one per future horizon k = 1 … 40
("direct multi-step"). The scaled prediction k steps ahead is z_last + out[k − 1]; it is returned as that · σ + μ
(σ without the 10⁻⁶, as NiNo unscales).

On a forgetting film the window is read as NiNo reads a training history (Θ0 is the newest state) and stage j
further back is predicted directly with k = j, not by rolling one-step predictions. The checkpoint's output layer
is applied only for the horizons asked for. Checked against NiNo's own code on real films
(tests/test_nino_golden.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import Option, register_predictor
from .base import Predictor, PredictorInputError, check_group, check_steps, check_window, run_chunks
from .nino_checkpoint import PEER_TRAITS, NiNoCheckpointError, load_nino_checkpoint

CONTEXT = 5  # c: states NiNo reads
HORIZONS = 40  # NiNo's seq_len: the furthest k its output layer holds
LAYER_TYPES = 15  # rows of the layer-type embedding
SCALE_EPS = 1e-6
GROUP_TYPE = {"fc": 1, "bias": 2, "conv": 3}  # when the tensors are not named: the type their group implies
MLP_CHECKPOINTS = ("nino_mlp", "nino_mlp_h32")


def layer_type(name: str, shape: Sequence[int]) -> int:
    """NiNo's layer type of a parameter: 1 dense (2-D), 3 convolution (4-D), 4 normalisation scale (a 1-D
    ``.weight``), 2 anything else (biases, embeddings, 3-D tensors)."""
    if len(shape) == 1 and name.endswith(".weight"):
        return 4
    return {4: 3, 2: 1}.get(len(shape), 2)


class WNNPlus(nn.Module):
    """The per-weight network: (n, c) scaled histories and a layer type → (n, steps) scaled moves."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.lift = nn.Linear(CONTEXT, hidden)
        self.kind = nn.Embedding(LAYER_TYPES, hidden)
        self.body = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(3))
        self.horizon = nn.Linear(hidden, HORIZONS)

    # the release's parameter names -> ours
    RELEASE_NAMES = {"edge_proj.fc.0": "lift", "layer_embed": "kind", "edge_mlp.fc.0": "body.0",
                     "edge_mlp.fc.2": "body.1", "edge_mlp.fc.4": "body.2", "edge_mlp.fc.6": "horizon"}

    @classmethod
    def from_release(cls, state: Mapping[str, torch.Tensor], args: Mapping[str, object]) -> WNNPlus:
        """The network of a released WNN+ checkpoint; a state dict of another shape is refused, naming the tensor."""
        if args.get("gnn", True) is not False:
            raise NiNoCheckpointError(f"model_args {dict(args)} describe NiNo's graph model, not WNN+")
        net = cls(int(args.get("hid", 128)))
        ours = {}
        for key, tensor in state.items():
            module, _, leaf = key.rpartition(".")
            if module not in cls.RELEASE_NAMES:
                raise NiNoCheckpointError(f"WNN+ checkpoint has an unexpected tensor {key!r}")
            ours[f"{cls.RELEASE_NAMES[module]}.{leaf}"] = tensor
        own = net.state_dict()
        for key, tensor in own.items():
            if key not in ours or ours[key].shape != tensor.shape:
                got = tuple(ours[key].shape) if key in ours else "nothing"
                raise NiNoCheckpointError(f"WNN+ checkpoint: {key} should be {tuple(tensor.shape)}, got {got}")
        net.load_state_dict(ours)
        return net.eval().requires_grad_(False)

    def forward(self, z: torch.Tensor, kind: int, steps: int) -> torch.Tensor:
        h = self.lift(z) + self.kind.weight[kind]
        for layer in self.body:
            h = F.silu(layer(h))
        move = F.linear(h, self.horizon.weight[:steps], self.horizon.bias[:steps])
        return z[:, -1:] + move


class NiNoMLPPredictor(Predictor):
    """WNN+ with a released checkpoint, per parameter tensor (its scaling and layer type need the tensor)."""

    name = "nino_mlp"
    min_stages = CONTEXT
    chunk_rows = 16_384  # 16k rows × 128 hidden × 4 bytes = 8 MB per intermediate
    per_tensor = True  # predict_groups passes ``tensors``: the (name, shape) of each parameter in the window

    def __init__(self, checkpoint: str = "nino_mlp") -> None:
        if checkpoint not in MLP_CHECKPOINTS:
            raise PredictorInputError(f"nino_mlp checkpoint must be one of {', '.join(MLP_CHECKPOINTS)}, "
                                      f"got {checkpoint!r}")
        self.checkpoint = checkpoint
        self.net = WNNPlus.from_release(*load_nino_checkpoint(checkpoint))

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        """One stage back (k = 1), the window taken as one tensor of its group's type."""
        return self._predict(window, [(0, window.shape[0], GROUP_TYPE[group])], 1)[:, 0]

    def predict(self, window: torch.Tensor, steps: int = 1, group: str = "fc", *, param_name: str | None = None,
                tensors: Sequence[tuple[str, Sequence[int]]] | None = None) -> torch.Tensor:
        """(N, steps) predictions θ̂_{−1} … θ̂_{−steps}, stage j at NiNo's horizon k = j. ``tensors`` lists the
        (name, shape) of the parameters stacked in the window, in order; without it (or with ``param_name``) the
        window is one tensor of the group's type."""
        check_group(group)
        check_steps(steps)
        check_window(window, self.min_stages, param_name)
        if steps > HORIZONS:
            raise PredictorInputError(f"NiNo predicts at most {HORIZONS} steps ahead, asked for {steps}")
        return self._predict(window, self._spans(window, group, tensors, param_name), steps)

    @staticmethod
    def _spans(window: torch.Tensor, group: str, tensors: Sequence[tuple[str, Sequence[int]]] | None,
               param_name: str | None) -> list[tuple[int, int, int]]:
        """(first row, end row, layer type) of each parameter tensor in the window."""
        if tensors is None:
            return [(0, window.shape[0], GROUP_TYPE[group])]
        spans, offset = [], 0
        for name, shape in tensors:
            n = int(torch.Size(shape).numel())
            spans.append((offset, offset + n, layer_type(name, shape)))
            offset += n
        if offset != window.shape[0]:
            where = f" for parameter {param_name!r}" if param_name else ""
            raise PredictorInputError(f"window{where} has {window.shape[0]} rows but its tensors hold {offset}")
        return spans

    def _predict(self, window: torch.Tensor, spans: list[tuple[int, int, int]], steps: int) -> torch.Tensor:
        net = self.net
        if net.lift.weight.device != window.device:
            net.to(window.device)
        dtype = net.lift.weight.dtype
        out = torch.empty(window.shape[0], steps, dtype=window.dtype, device=window.device)
        with torch.inference_mode():
            for lo, hi, kind in spans:
                if hi == lo:
                    continue
                history = window[lo:hi, -CONTEXT:].to(dtype)
                mean, std = history.mean(), history.std()
                scaled = (history - mean) / (std + SCALE_EPS)

                def run(start: int, stop: int, lo: int = lo, kind: int = kind, scaled: torch.Tensor = scaled,
                        mean: torch.Tensor = mean, std: torch.Tensor = std) -> None:
                    out[lo + start:lo + stop] = (net(scaled[start:stop], kind, steps) * std + mean).to(out.dtype)

                run_chunks(hi - lo, self.chunk_rows, lambda run=run: run, window.device)
        return out

    def describe(self) -> str:
        return f"nino_mlp: NiNo's WNN+ ({self.checkpoint}.pt, c = {CONTEXT}, horizon k = stage)"


register_predictor("nino_mlp", NiNoMLPPredictor, label="NiNo WNN+", colour="#9467bd", order=40,
                   extra=PEER_TRAITS,
                   help="NiNo's graph-free WNN+ (ICLR 2025 release, MIT): a per-weight MLP on the last 5 stages, "
                        "scaled per tensor, predicting stage k directly at horizon k",
                   options=[Option("checkpoint", "str", "nino_mlp",
                                   f"which released WNN+: {' or '.join(MLP_CHECKPOINTS)} (hidden 128 or 32)")])
