"""NiNo's neural graph of a plain layered network (its generic ``NeuralGraph``), rebuilt without torch_geometric.

Nodes are neurons (for a convolution: channels); every scalar weight is a directed edge from an input neuron to an
output neuron, a bias an edge from an extra "bias" node; every node gets a self-loop. A convolution's 3×3 kernel is
one edge carrying 9 features. Each edge has NiNo's layer type (dense 1, bias 2, conv 3, norm 4, self-loop 13).

Node features are NiNo's Laplacian positional encodings: the 8 eigenvectors after the first of the graph's
symmetrically normalised Laplacian, computed in float32 by the routines torch_geometric uses (LAPACK's dense solver
below 100 nodes, ARPACK's ``eigsh`` above), each multiplied by a random sign drawn from torch's generator. Two
properties of NiNo's own code are pinned down here instead of left to chance, and said in docs/method.md:

* the sign draw uses a private generator seeded 0 (NiNo draws from the global one: it is the same draw as NiNo's
  right after ``torch.manual_seed(0)``);
* ARPACK's start vector is fixed (NiNo lets ARPACK pick one at random). On these graphs the eigenvalue 1 is highly
  degenerate (neurons of one layer are interchangeable), so the encodings NiNo uses are one arbitrary basis of that
  eigenspace and differ from call to call in NiNo's own code; ours are one fixed such basis.

The construction follows NiNo's ``graph/graph.py`` at commit 84fb0cf, including its column bookkeeping for biases.
What the generic graph cannot represent is refused, naming the parameter: a scalar, a tensor whose kernel has more
than the checkpoint's 9 features (a ViT's ``cls_token``), names NiNo reserves (``.res``, ``.self_loop``), and a
network whose graph leaves neurons unconnected (skip connections; NiNo itself warns that such a graph "is likely
constructed incorrectly").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import eigsh

from know_core.predictors.base import PredictorInputError

LPE_DIM = 8  # eigenvectors used as node features (NiNo's lpe)
SELF_LOOP_TYPE = 13
DENSE_BELOW = 100  # torch_geometric solves graphs smaller than this with the dense solver
SIGN_SEED = 0


def param_type(name: str, shape: Sequence[int]) -> int:
    """NiNo's edge type of a parameter (its ``_param_type``)."""
    is_weight = name.endswith(".weight")
    if len(shape) == 1 and is_weight:
        return 4
    if len(shape) == 4:
        return 3
    if len(shape) == 2:
        return 1
    if not is_weight and ".res" in name:
        return 10
    if not is_weight and ".self_loop" in name:
        return 13
    return 2


@dataclass
class Span:
    """Where a parameter lies: its rows in the flat parameter vector and its edges in the graph."""

    name: str
    shape: tuple[int, ...]
    rows: tuple[int, int]
    edges: tuple[int, int]

    @property
    def n_in(self) -> int:
        return self.shape[1] if len(self.shape) > 1 else 1

    @property
    def n_out(self) -> int:
        return self.shape[0]

    @property
    def feat(self) -> int:
        return int(torch.Size(self.shape[2:]).numel()) if len(self.shape) > 2 else 1


@dataclass
class NeuralGraph:
    """The graph of one architecture: (2, E) edges (self-loops last), their types, and each parameter's place."""

    edge_index: torch.Tensor
    edge_type: torch.Tensor
    num_nodes: int
    feat: int  # features per edge and stage (9 for a 3×3 convolution, else 1)
    spans: list[Span]

    @property
    def num_params(self) -> int:
        return self.spans[-1].rows[1] if self.spans else 0

    def to_edges(self, z: torch.Tensor) -> torch.Tensor:
        """(P, c) scaled histories → (E, feat · c) edge features, feature-major, self-loops set to 2 in feature 0."""
        c = z.shape[1]
        out = torch.zeros(self.edge_index.shape[1], self.feat * c, dtype=z.dtype, device=z.device)
        for s in self.spans:
            w = z[s.rows[0]:s.rows[1]].reshape(s.n_out, s.n_in, s.feat, c).transpose(0, 1)
            out[s.edges[0]:s.edges[1], :s.feat * c] = w.reshape(s.n_in * s.n_out, s.feat * c)
        out[-self.num_nodes:, :c] = 2.0  # the self-loops, appended last
        return out

    def to_vector(self, edges: torch.Tensor) -> torch.Tensor:
        """(E, feat, K) predicted edge features → (P, K) parameters in the model's order."""
        out = edges.new_empty(self.num_params, edges.shape[-1])
        for s in self.spans:
            w = edges[s.edges[0]:s.edges[1]].reshape(s.n_in, s.n_out, self.feat, -1)[:, :, :s.feat]
            out[s.rows[0]:s.rows[1]] = w.transpose(0, 1).reshape(-1, edges.shape[-1])
        return out

    def positional_encoding(self) -> torch.Tensor:
        """(nodes, 8) float32 Laplacian eigenvector encodings, as torch_geometric's AddLaplacianEigenvectorPE
        computes them for NiNo (see the module docstring for the two choices fixed here)."""
        n = self.num_nodes
        if n <= LPE_DIM + 1:
            raise PredictorInputError(f"NiNo's neural graph of this model has {n} neurons; its positional encoding "
                                      f"needs more than {LPE_DIM + 1}")
        pairs = torch.cat([self.edge_index, self.edge_index.flip(0)], 1)
        pairs = pairs[:, pairs[0] != pairs[1]].unique(dim=1)  # undirected, coalesced, self-loops dropped
        row, col = pairs
        deg = torch.zeros(n, dtype=torch.float32).index_add_(0, row, torch.ones(row.shape[0]))
        inv = deg.pow(-0.5)
        inv[torch.isinf(inv)] = 0
        values = torch.cat([-(inv[row] * inv[col]), torch.ones(n)]).numpy()
        diag = np.arange(n)
        lap = coo_matrix((values, (np.concatenate([row.numpy(), diag]), np.concatenate([col.numpy(), diag]))),
                         shape=(n, n))
        if n < DENSE_BELOW:
            vals, vecs = np.linalg.eigh(lap.todense())
        else:
            start = np.random.default_rng(SIGN_SEED).uniform(-1, 1, n).astype(np.float32)
            vals, vecs = eigsh(lap, k=LPE_DIM + 1, which="SA", return_eigenvectors=True, v0=start)
        vecs = np.real(vecs[:, vals.argsort()])
        pe = torch.from_numpy(np.ascontiguousarray(vecs[:, 1:LPE_DIM + 1]))
        sign = -1 + 2 * torch.randint(0, 2, (LPE_DIM,), generator=torch.Generator().manual_seed(SIGN_SEED))
        return pe * sign


def build_graph(params: Sequence[tuple[str, Sequence[int]]], max_feat: int) -> NeuralGraph:
    """NiNo's generic neural graph of the parameters ``(name, shape)`` in the model's order; refused (one line) where
    that graph cannot stand for the network."""
    blocks: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, int]]] = {}
    same_column: dict[int, list[tuple[bool, str, str]]] = {}
    col_off = row_off = 0
    feat = 1
    for layer, (name, shape) in enumerate(params):
        shape = tuple(int(d) for d in shape)
        kind = param_type(name, shape)
        if not shape or kind >= 10 or len(shape) == 3 or len(shape) > 4:
            why = ("a scalar" if not shape else "a name NiNo reserves for its own edges" if kind >= 10
                   else f"a {len(shape)}-D tensor")
            raise PredictorInputError(f"nino: NiNo's neural graph has no place for parameter {name!r} of shape "
                                      f"{shape} ({why})")
        n_out, n_in = shape[0], shape[1] if len(shape) > 1 else 1
        if len(shape) > 2:
            feat = max(feat, int(torch.Size(shape[2:]).numel()))
            if feat > max_feat:
                raise PredictorInputError(f"nino: parameter {name!r} of shape {shape} has {feat} features per weight; "
                                          f"the checkpoint reads at most {max_feat} (3×3 kernels)")
        if len(shape) == 1:
            col_off = max(0, col_off - n_out)  # a bias or norm hangs on the neurons just made
        elif layer == 0:
            col_off = n_in
        rows = torch.arange(row_off, row_off + n_in).repeat_interleave(n_out)
        cols = torch.arange(col_off, col_off + n_out).repeat(n_in)
        layer_name, key = name[:name.rfind(".")], name[name.rfind(".") + 1:]
        blocks.setdefault(layer_name, {})[key] = (rows, cols, kind)
        same_column.setdefault(col_off, []).append((len(shape) == 1, layer_name, key))
        row_off += n_in
        col_off += n_out
    shift = 0  # every bias adds one node: later columns move up by the biases before them
    for members in same_column.values():
        shift += sum(is_bias for is_bias, _, _ in members)
        for _, layer_name, key in members:
            blocks[layer_name][key][1].add_(shift)

    where, first = {}, 0
    for layer_name, keys in blocks.items():
        for key, (rows, _, _) in keys.items():
            where[f"{layer_name}.{key}"] = (first, first + rows.shape[0])
            first += rows.shape[0]
    entries = [entry for keys in blocks.values() for entry in keys.values()]
    edge_index = torch.stack([torch.cat([r for r, _, _ in entries]), torch.cat([c for _, c, _ in entries])])
    edge_type = torch.cat([torch.full((r.shape[0],), kind, dtype=torch.long) for r, _, kind in entries])
    num_nodes = int(edge_index.max()) + 1
    touched = torch.zeros(num_nodes, dtype=torch.bool)
    touched[edge_index.reshape(-1)] = True
    if not bool(touched.all()):
        raise PredictorInputError(f"nino: NiNo's generic neural graph leaves {int((~touched).sum())} of {num_nodes} "
                                  f"neurons unconnected for this model (skip connections or a non-sequential "
                                  f"parameter order); NiNo has no graph construction for it")
    loops = torch.arange(num_nodes)
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], 1)
    edge_type = torch.cat([edge_type, torch.full((num_nodes,), SELF_LOOP_TYPE, dtype=torch.long)])
    spans, offset = [], 0
    for name, shape in params:
        n = int(torch.Size(shape).numel())
        spans.append(Span(name, tuple(int(d) for d in shape), (offset, offset + n), where[name]))
        offset += n
    return NeuralGraph(edge_index, edge_type, num_nodes, feat, spans)
