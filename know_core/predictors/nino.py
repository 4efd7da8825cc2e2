"""The ``nino`` predictor: NiNo's graph network ("Accelerating Training with Neuron Interaction and Nowcasting
Networks", Knyazev et al., ICLR 2025) with its released ``nino_no_posw.pt`` (docs/method.md, "NiNo's GNN").

Unlike WNN+ (``nino_mlp``), NiNo sees the whole network at once, as its neural graph (``nino_graph.py``): neurons are
nodes, weights are edges. Its input is the last c = 5 states, scaled per parameter tensor as WNN+ does; an edge's
features are its weight's scaled history (9 × 5 numbers for a 3×3 kernel), lifted to 128 and added to an embedding of
its layer type; a node's are its 8 Laplacian positional encodings, lifted to 128 ("no_posw": no token-position
embedding, which only NiNo's transformer graphs use). Then message passing, as NiNo's ``PNA`` layers at inference:

    message_e = (a_e ⊙ W_m [x_dst, x_src] + b_e),   (a_e, b_e) = W_f h_e          (edge-modulated message)
    x'_v      = W_l W_u [x_v, mean_{e → v} message_e]
    h'_e      = W_o SiLU(W_e h_e + W_s x'_src + W_t x'_dst)                          (edge update)

with SiLU on the nodes between layers. Of the checkpoint's 3 message-passing layers only the first 2 reach the edges
(NiNo has no edge update after the last one and reads only edges), so the third is loaded but never run. A 2-layer
SiLU MLP then gives, per edge, 9 features × 40 horizons; the scaled prediction k steps ahead is the edge's newest
scaled value plus output (feature, k), unscaled with the tensor's μ and σ.

On a forgetting film it is applied as ``nino_mlp`` is: the film read in reverse (Θ_{c−1} … Θ0 as a training history,
Θ0 newest), stage j predicted directly at horizon k = j. Checked against NiNo's own code (tests/test_nino_gnn.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from know_core.models import GROUPS
from know_core.predictors import Option, register_predictor
from know_core.predictors.base import Predictor, PredictorInputError, check_steps
from know_core.predictors.nino_checkpoint import PEER_TRAITS, NiNoCheckpointError, load_nino_checkpoint
from know_core.predictors.nino_graph import LPE_DIM, NeuralGraph, build_graph

CONTEXT = 5
HORIZONS = 40
MAX_FEAT = 9  # the checkpoint's max_feat_size: a 3×3 kernel
EDGE_TYPES = 15
SCALE_EPS = 1e-6
GNN_CHECKPOINTS = ("nino_no_posw",)


class MessageLayer(nn.Module):
    """One of NiNo's PNA convolutions with edge-modulated messages and mean aggregation (inference form)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.film = nn.Linear(hidden, 2 * hidden)
        self.message = nn.Linear(2 * hidden, hidden)
        self.update = nn.Linear(2 * hidden, hidden)
        self.lin = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, edges: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                count: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(edges).chunk(2, dim=-1)
        messages = scale * self.message(torch.cat([x[dst], x[src]], dim=-1)) + shift
        mean = torch.zeros_like(x).index_add_(0, dst, messages) / count
        return self.lin(self.update(torch.cat([x, mean], dim=-1)))


class EdgeUpdate(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.own = nn.Linear(hidden, hidden)
        self.source = nn.Linear(hidden, hidden)
        self.target = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, edges: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        return self.out(F.silu(self.own(edges) + (self.source(x)[src] + self.target(x)[dst])))


class NiNoGNN(nn.Module):
    """Scaled edge histories and node encodings of one neural graph → (E, feat, steps) scaled predictions."""

    def __init__(self, hidden: int = 128, layers: int = 3) -> None:
        super().__init__()
        self.kind = nn.Embedding(EDGE_TYPES, hidden)
        self.node_in = nn.Linear(LPE_DIM, hidden)
        self.edge_in = nn.Linear(MAX_FEAT * CONTEXT, hidden)
        self.convs = nn.ModuleList(MessageLayer(hidden) for _ in range(layers))
        self.edge_updates = nn.ModuleList(EdgeUpdate(hidden) for _ in range(layers - 1))
        self.out_hidden = nn.Linear(hidden, hidden)
        self.out_last = nn.Linear(hidden, MAX_FEAT * HORIZONS)

    RELEASE_NAMES = {"layer_embed": "kind", "node_proj.fc.0": "node_in", "edge_proj.fc.0": "edge_in",
                     "edge_out.fc.0": "out_hidden", "edge_out.fc.2": "out_last", "edge_encoder": "film",
                     "pre_nns.0.0": "message", "post_nns.0.0": "update", "lin": "lin", "lin_e": "own",
                     "lin_s": "source", "lin_t": "target", "lin1": "out"}

    @classmethod
    def from_release(cls, state: Mapping[str, torch.Tensor], args: Mapping[str, object]) -> NiNoGNN:
        """The network of the released GNN checkpoint; any other layout is refused, naming the tensor."""
        if args.get("gnn", True) is False or args.get("wte_pos_enc", True) is not False:
            raise NiNoCheckpointError(f"model_args {dict(args)} are not NiNo's graph model without position "
                                      f"embeddings (nino_no_posw)")
        net = cls()
        ours = {}
        for key, tensor in state.items():
            module, _, leaf = key.rpartition(".")
            head, _, rest = module.partition(".")
            if head == "gnn":  # gnn.convs.<i>.<layer> or gnn.edge_update.<i>.<layer>
                group, index, layer = rest.split(".", 2)
                mapped = {"convs": "convs", "edge_update": "edge_updates"}.get(group)
                name = f"{mapped}.{index}.{cls.RELEASE_NAMES.get(layer)}" if mapped else None
            else:
                name = cls.RELEASE_NAMES.get(module)
            if name is None or name.endswith("None"):
                raise NiNoCheckpointError(f"NiNo GNN checkpoint has an unexpected tensor {key!r}")
            ours[f"{name}.{leaf}"] = tensor
        for key, tensor in net.state_dict().items():
            if key not in ours or ours[key].shape != tensor.shape:
                got = tuple(ours[key].shape) if key in ours else "nothing"
                raise NiNoCheckpointError(f"NiNo GNN checkpoint: {key} should be {tuple(tensor.shape)}, got {got}")
        net.load_state_dict(ours)
        return net.eval().requires_grad_(False)

    def forward(self, edge_feats: torch.Tensor, edge_type: torch.Tensor, edge_index: torch.Tensor,
                lpe: torch.Tensor, steps: int) -> torch.Tensor:
        n_edges, feat = edge_feats.shape[0], edge_feats.shape[1] // CONTEXT
        newest = edge_feats.view(n_edges, feat, CONTEXT)[:, :, -1]
        edges = F.linear(edge_feats, self.edge_in.weight[:, :feat * CONTEXT], self.edge_in.bias)
        edges = edges + self.kind(edge_type)
        x = self.node_in(lpe)
        src, dst = edge_index
        count = torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device).index_add_(
            0, dst, torch.ones(n_edges, 1, dtype=x.dtype, device=x.device)).clamp_min(1)
        for conv, update in zip(self.convs, self.edge_updates):  # the last conv reaches no edge: not run
            x = F.silu(conv(x, edges, src, dst, count))
            edges = update(x, edges, src, dst)
        hidden = self.out_last.weight.shape[1]
        weight = self.out_last.weight.view(MAX_FEAT, HORIZONS, hidden)[:feat, :steps].reshape(-1, hidden)
        bias = self.out_last.bias.view(MAX_FEAT, HORIZONS)[:feat, :steps].reshape(-1)
        move = F.linear(F.silu(self.out_hidden(edges)), weight, bias).view(n_edges, feat, steps)
        return newest.unsqueeze(-1) + move


class NiNoPredictor(Predictor):
    """NiNo's GNN on the whole network: :meth:`predict_film` instead of a per-weight rule."""

    name = "nino"
    min_stages = CONTEXT
    whole_model = True  # predict_groups hands it the film, not per-group windows

    def __init__(self, checkpoint: str = "nino_no_posw") -> None:
        if checkpoint not in GNN_CHECKPOINTS:
            raise PredictorInputError(f"nino checkpoint must be one of {', '.join(GNN_CHECKPOINTS)}, "
                                      f"got {checkpoint!r}")
        self.checkpoint = checkpoint
        self.net = NiNoGNN.from_release(*load_nino_checkpoint(checkpoint))
        self._graphs: dict[tuple, tuple[NeuralGraph, torch.Tensor]] = {}

    def step(self, window: torch.Tensor, group: str) -> torch.Tensor:
        raise PredictorInputError("nino predicts a whole network through its neural graph; it has no rule for one "
                                  "window of weights (use predict_film)")

    def predict(self, window: torch.Tensor, steps: int = 1, group: str = "fc", *,
                param_name: str | None = None) -> torch.Tensor:
        return self.step(window, group)

    def graph(self, params: Sequence[tuple[str, Sequence[int]]]) -> tuple[NeuralGraph, torch.Tensor]:
        """The neural graph of an architecture and its positional encodings (built once per architecture)."""
        key = tuple((name, tuple(shape)) for name, shape in params)
        if key not in self._graphs:
            graph = build_graph(params, MAX_FEAT)
            self._graphs[key] = (graph, graph.positional_encoding())
        return self._graphs[key]

    def predict_film(self, states: Sequence[Mapping[str, torch.Tensor]], groups: Mapping[str, str],
                     steps: int) -> dict[str, torch.Tensor]:
        """Per predicted group, the (N, steps) predictions θ̂_{−1} … θ̂_{−steps} (rows as the group's window) for the
        film ``states`` (Θ0 first). Every parameter of the network is in the graph; only the predicted groups are
        returned (normalisation layers stay Θ0's, as for every predictor)."""
        check_steps(steps)
        if steps > HORIZONS:
            raise PredictorInputError(f"NiNo predicts at most {HORIZONS} steps ahead, asked for {steps}")
        if len(states) < CONTEXT:
            raise PredictorInputError(f"film has {len(states)} stages; this predictor needs at least {CONTEXT}")
        # the model's order, as ``groups`` lists it (param_groups walks the modules): NiNo's graph hangs each bias on
        # the neurons its weight just made, and a state read back from safetensors comes sorted by name instead
        names = [name for name in groups if name in states[0]]
        for name in names:
            for s, state in enumerate(states[:CONTEXT]):
                if not bool(torch.isfinite(state[name]).all()):
                    raise PredictorInputError(f"non-finite value in window for parameter {name!r} (stage {s})")
        window = torch.stack([torch.cat([state[name].reshape(-1) for name in names])
                              for state in reversed(states[:CONTEXT])], dim=1)
        params = [(name, tuple(states[0][name].shape)) for name in names]
        predicted = self.predict_params(params, window, steps)
        rows, offset = {}, 0
        for name, shape in params:
            n = int(torch.Size(shape).numel())
            rows[name] = predicted[offset:offset + n]
            offset += n
        listed = [name for name in states[0] if name in groups]  # the group windows' rows: the state's order
        return {group: torch.cat([rows[n] for n in listed if groups[n] == group])
                for group in GROUPS if any(groups[n] == group for n in listed)}

    def predict_params(self, params: Sequence[tuple[str, Sequence[int]]], window: torch.Tensor, steps: int,
                       lpe: torch.Tensor | None = None) -> torch.Tensor:
        """(P, steps) predictions for the (P, c) window of all ``params`` (oldest stage first). ``lpe`` replaces the
        graph's positional encodings (the golden test feeds NiNo's own)."""
        graph, own_lpe = self.graph(params)
        device = window.device
        if self.net.edge_in.weight.device != device:
            self.net.to(device)
        history = window[:, -CONTEXT:].float()
        scaled, scales = torch.empty_like(history), []
        for span in graph.spans:
            lo, hi = span.rows
            mean, std = history[lo:hi].mean(), history[lo:hi].std()
            scaled[lo:hi] = (history[lo:hi] - mean) / (std + SCALE_EPS)
            scales.append((mean, std))
        with torch.inference_mode():
            edges = self.net(graph.to_edges(scaled), graph.edge_type.to(device), graph.edge_index.to(device),
                             (own_lpe if lpe is None else lpe).to(device=device, dtype=torch.float32), steps)
            out = graph.to_vector(edges)
            for span, (mean, std) in zip(graph.spans, scales):
                lo, hi = span.rows
                out[lo:hi] = out[lo:hi] * std + mean
        return out.to(window.dtype)

    def describe(self) -> str:
        return f"nino: NiNo's graph network ({self.checkpoint}.pt, c = {CONTEXT}, horizon k = stage)"


register_predictor("nino", NiNoPredictor, label="NiNo (GNN)", colour="#c5b0d5", order=41,
                   extra=PEER_TRAITS,
                   help="NiNo's graph network (ICLR 2025 release, MIT): message passing over the network's neuron "
                        "graph on the last 5 stages, scaled per tensor, predicting stage k directly at horizon k; "
                        "plain layered nets only (mlp, simple_cnn*)",
                   options=[Option("checkpoint", "str", "nino_no_posw",
                                   "which released NiNo GNN: nino_no_posw (no token-position embeddings)")])
