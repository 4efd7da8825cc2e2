"""K copies of one small network run as one: their weights stacked, a grouped forward pass.

Member k's weights are slice ``[k]`` of every stacked tensor. The forward pass runs all members at once: convolutions
as one grouped convolution (members side by side along the channels, channels-last, where CPU max-pooling is fast),
dense layers as one batched matrix product. The members' losses are summed before the backward pass, so each member's
gradient is its own. In exact mode (the default) it is its own bit for bit: weight gradients come from each member's
own kernels, and grouped kernels run only where a probe (once per layer and shape) finds them equal to the members'
own, because oneDNN's grouped kernels may sum in another order and Adam amplifies a last-bit difference into a
different run. The weights live in one stacked tensor per parameter (:func:`stack_members`), each member's module
holding views of its slice, so the forward pass stacks nothing, the backward pass splits nothing, and one torch
optimiser over the stacked tensors (elementwise: K independent optimisers) steps all members at once
(:func:`step_members`, which keeps a stopped member's weights, optimiser state and step count as they were).

Only plain sequential nets are stacked (conv / ReLU / max-pool / flatten / dense: ``simple_cnn`` and its variants,
``mlp``); :func:`stack_support` says why another model is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_FEATURE_LAYERS = (nn.Conv2d, nn.ReLU, nn.MaxPool2d)
_DENSE_LAYERS = (nn.Linear, nn.ReLU)


def stack_support(model: nn.Module) -> str | None:
    """None when ``model`` can be stacked, else the reason it cannot."""
    if any(isinstance(m, nn.modules.batchnorm._NormBase) for m in model.modules()):
        return "it has BatchNorm layers, whose running statistics the stacked path does not keep per member"
    if list(model.buffers()):
        return "it has buffers (running state) the stacked path does not keep per member"
    if not isinstance(model, nn.Sequential):
        return f"only plain sequential nets are stacked, and it is a {type(model).__name__}"
    flat = False
    for layer in model:
        if isinstance(layer, nn.Flatten) and not flat and layer.start_dim == 1 and layer.end_dim == -1:
            flat = True
        elif not isinstance(layer, _DENSE_LAYERS if flat else _FEATURE_LAYERS):
            return f"its layer {type(layer).__name__} is not one the stacked path covers here"
        elif isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"
                                               or isinstance(layer.padding, str)):
            return "its convolutions are grouped or padded in a way the stacked path does not cover"
    return None if flat else "it has no Flatten before its dense layers"


def stack_members(models: list[nn.Module]) -> list[torch.Tensor]:
    """The stacked leaf tensors (K, *shape), one per parameter, of which member k's parameters are views of slice
    [k] (its module, state dict and ``load_state_dict`` read and write the stacked weights). Members already stacked
    together keep their tensors; otherwise their current weights are stacked and their parameters rebound."""
    own = [list(m.named_parameters()) for m in models]
    tags = [getattr(p, "_know_stack", None) for p in (ps[0][1] for ps in own)]
    if tags[0] is not None:
        leaves = tags[0][0]
        if all(getattr(p, "_know_stack", (None, -1))[1] == j and p._know_stack[0] is leaves
               and p.data_ptr() == leaf[j].data_ptr() for j, ps in enumerate(own) for leaf, (_, p) in zip(leaves, ps)):
            return leaves
    leaves = [torch.stack([ps[i][1].detach() for ps in own]).requires_grad_(True) for i in range(len(own[0]))]
    for j, (model, ps) in enumerate(zip(models, own)):
        for leaf, (name, _) in zip(leaves, ps):
            module_name, _, attr = name.rpartition(".")
            param = nn.Parameter(leaf.detach()[j])  # shares the stacked storage
            param._know_stack = (leaves, j)
            model.get_submodule(module_name)._parameters[attr] = param
    return leaves


@torch.no_grad()
def step_members(optimizer: torch.optim.Optimizer, live: list[bool]) -> None:
    """``optimizer.step()`` over stacked tensors as K independent optimisers: only the ``live`` members move, and each
    with its own step count (Adam's bias correction; kept per member under ``member_steps`` once they differ). A
    stopped member's slices of weights and optimiser state are restored after the step (a zero gradient is not
    "no step": Adam's moments would decay)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    k, first = len(live), optimizer.state.get(params[0], {})
    if "member_steps" in first:
        counts = [int(c) for c in first["member_steps"].tolist()]
    else:
        counts = [int(first["step"]) if "step" in first else 0] * k
    groups: dict[int, list[int]] = {}
    for j in (j for j, on in enumerate(live) if on):
        groups.setdefault(counts[j], []).append(j)
    if len(groups) == 1 and all(live):
        optimizer.step()
    else:
        for count, members in groups.items():
            others = torch.tensor([j for j in range(k) if j not in members], device=params[0].device)
            fresh = params[0] not in optimizer.state
            kept = [(t, t.index_select(0, others)) for p in params
                    for t in (p, *(v for key, v in optimizer.state.get(p, {}).items() if key != "member_steps"
                                   and torch.is_tensor(v) and v.dim() and v.shape[0] == k))]
            for p in params:
                if "step" in optimizer.state.get(p, {}):
                    optimizer.state[p]["step"] = torch.tensor(float(count), dtype=optimizer.state[p]["step"].dtype)
            optimizer.step()
            if fresh:  # state made by this step: the others' slices as they would be fresh (zero moments)
                kept += [(v, torch.zeros_like(v.index_select(0, others))) for p in params
                         for v in optimizer.state[p].values() if torch.is_tensor(v) and v.dim() and v.shape[0] == k]
            for t, value in kept:
                t.index_copy_(0, others, value)
    if "step" in optimizer.state.get(params[0], {}):
        counts = [c + 1 if on else c for c, on in zip(counts, live)]
        for p in params:
            optimizer.state[p]["step"] = torch.tensor(float(max(counts)), dtype=optimizer.state[p]["step"].dtype)
        if len(set(counts)) > 1 or "member_steps" in first:
            optimizer.state[params[0]]["member_steps"] = torch.tensor(counts, dtype=params[0].dtype,
                                                                      device=params[0].device)


class StackedNet:
    """The forward pass of ``template``'s architecture over stacked weights (one list entry per parameter)."""

    def __init__(self, template: nn.Module, exact: bool = True):
        self.exact = exact  # False: grouped backward kernels too (faster; members then drift apart from their own
        # nets' runs at the float-rounding level, amplified over many Adam steps)
        self.grouped_exact: dict[tuple[int, tuple[int, ...]], bool] = {}  # (layer, input shape) -> probe's answer
        reason = stack_support(template)
        if reason:
            raise ValueError(f"cannot stack {type(template).__name__}: {reason}")
        self.layers = list(template)
        self.names = [name for name, _ in template.named_parameters()]

    def stack(self, states: list[dict[str, torch.Tensor]], device: torch.device) -> list[torch.Tensor]:
        """Stacked leaf tensors (K, *shape) from K state dicts."""
        return [torch.stack([s[n] for s in states]).to(device).requires_grad_(True) for n in self.names]

    def __call__(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, classes) for inputs ``x`` (K, B, C, H, W), member k seeing ``x[k]``."""
        k, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:]).contiguous(memory_format=torch.channels_last)
        it = iter(params)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, nn.Conv2d):
                if h.shape[2] * h.shape[3] == 1:  # 1×1 maps: plain strides, or oneDNN picks another kernel than
                    h = h.reshape(b, -1).view(h.shape)  # the member's own net and the sums differ in the last bit
                w = next(it)
                bias = next(it) if layer.bias is not None else None
                conf = (layer.stride, layer.padding, layer.dilation)
                h = self._conv(i, h, w, bias, conf)
            elif isinstance(layer, nn.ReLU):
                h = torch.relu(h)
            elif isinstance(layer, nn.MaxPool2d):
                h = F.max_pool2d(h.contiguous(memory_format=torch.channels_last),  # CPU pools channels-last fast
                                 layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
            elif isinstance(layer, nn.Flatten):
                h = h.reshape(b, k, -1).transpose(0, 1)  # member k's block of channels, flattened as its own net would
            else:  # Linear
                w = next(it)
                bias = next(it) if layer.bias is not None else None
                h = _Linear.apply(h, w, bias) if self.exact else _linear(h, w, bias)
        return h

    def _conv(self, i: int, h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
              conf: tuple) -> torch.Tensor:
        """Layer ``i``'s convolution. Exact mode: the grouped forward where it gives every member's own result bit for
        bit (oneDNN picks its kernels by shape, so this is probed once per layer and input shape on the batch at
        hand), else member by member; either way each member's gradients come from its own net's kernels."""
        if not self.exact:
            return _conv(h, w, bias, conf)
        key = (i, tuple(h.shape))
        if key not in self.grouped_exact:
            with torch.no_grad():
                self.grouped_exact[key] = torch.equal(_conv(h, w, bias, conf), _members_conv(h, w, bias, conf))
        if self.grouped_exact[key]:
            return _Conv.apply(h, w, bias, conf, self.grouped_exact, key)
        return _members_conv(h, w, bias, conf)


def _members_conv(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, conf: tuple) -> torch.Tensor:
    return torch.cat([F.conv2d(part.contiguous(), w[j], None if bias is None else bias[j], *conf)
                      for j, part in enumerate(h.split(w.shape[2], 1))], 1)


def _conv(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, conf: tuple) -> torch.Tensor:
    return F.conv2d(h, w.flatten(0, 1), None if bias is None else bias.flatten(), *conf, groups=w.shape[0])


def _linear(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return torch.bmm(h, w.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))  # as addmm adds the bias: bit for bit


class _Conv(torch.autograd.Function):
    """The grouped convolution, with each member's weight gradients computed by the very kernel its own net's
    backward pass runs (oneDNN's grouped kernels sum in another order, and Adam amplifies last-bit differences). The
    input gradient is the grouped one where a probe (once per layer and shape) found it bit-for-bit the members'."""

    @staticmethod
    def forward(ctx, h, w, bias, conf, probes, key):
        ctx.save_for_backward(h, w)
        ctx.conf, ctx.has_bias, ctx.probes, ctx.key = conf, bias is not None, probes, ("input grad", *key)
        return _conv(h, w, bias, conf)

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        k, o, c = w.shape[:3]
        need_x, grouped_ok = ctx.needs_input_grad[0], ctx.probes.get(ctx.key)
        if need_x and grouped_ok is not False:
            gx = torch.ops.aten.convolution_backward(grad, h, w.flatten(0, 1), None, *ctx.conf, False, [0, 0], k,
                                                     [True, False, False])[0]
        mask = [need_x and grouped_ok is not True, True, ctx.has_bias]
        parts = [torch.ops.aten.convolution_backward(
            grad[:, j * o:(j + 1) * o].contiguous(), h[:, j * c:(j + 1) * c].contiguous(), w[j],
            [o] if ctx.has_bias else None, *ctx.conf, False, [0, 0], 1, mask) for j in range(k)]
        if mask[0]:
            own = torch.cat([p[0] for p in parts], 1)
            if grouped_ok is None:
                ctx.probes[ctx.key] = torch.equal(gx, own)
            gx = own
        gb = torch.stack([p[2] for p in parts]) if ctx.has_bias else None
        return gx if need_x else None, torch.stack([p[1] for p in parts]), gb, None, None, None


class _Linear(torch.autograd.Function):
    """The batched dense layer, each member's weight gradient by its own net's matrix product."""

    @staticmethod
    def forward(ctx, h, w, bias):
        ctx.save_for_backward(h, w)
        ctx.has_bias = bias is not None
        return _linear(h, w, bias)

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        gw = torch.stack([grad[j].t().mm(h[j]) for j in range(w.shape[0])])
        return torch.bmm(grad, w), gw, grad.sum(1) if ctx.has_bias else None
