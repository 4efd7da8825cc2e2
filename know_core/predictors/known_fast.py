"""KNOWN's inference path: :func:`predict_fast` computes ``KNOWN.forward`` over millions of weights.

It is the same function by algebra rather than approximation (checked against ``forward`` and the official outputs in
the tests); each item was measured on 2 CPU cores, not assumed:

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

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .base import run_chunks
from .known_net import EXP_CLAMP, KNOWN, LEAKY_SLOPE, STAGES, KNOWNStream


@torch.inference_mode()
def predict_fast(net: KNOWN, window: torch.Tensor, chunk_rows: int | None = None) -> torch.Tensor:
    """``net(window)`` for inference only (same values to float rounding), in chunks spread over worker threads as
    in :func:`run_chunks`."""
    net.check_stages(window)
    chunk_rows = chunk_rows or (4096 if window.device.type == "cpu" else 1 << 18)  # GPU: ~300 MB of buffers
    out = torch.empty(window.shape[0], dtype=net.head.weight.dtype, device=window.device)
    streams = (_PackedStream(net.x_stream), _PackedStream(net.d_stream))
    w_head, b_head = net.head.weight.reshape(2, 32), net.head.bias

    def make_worker() -> Callable[[int, int], None]:
        rows = min(chunk_rows, window.shape[0])
        buf = _Scratch.allocate(rows, out)
        ins = [out.new_ones(rows, n + 1) for n in (STAGES, STAGES - 1)]  # last column stays 1: biases' input

        def run(start: int, stop: int) -> None:
            x, d, anchor, step = net.inputs(window[start:stop])
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
        carry_one = w_in.new_zeros(w_in.shape[0] + 1, 1)  # on the weights' device and in their float64
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
