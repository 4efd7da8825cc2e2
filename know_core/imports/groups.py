"""The parameter groups of any architecture, from tensor names, ranks and dtypes alone: one rule, written once here.

The rule is the ordered list :data:`RULE`; the first line whose test holds decides a tensor's group, and its words are
what ``import`` prints and docs/imports.md shows. ``conv``, ``fc`` and ``bias`` are predicted; ``norm`` and ``embed``
are copied from Θ0 (``embed`` joins ``fc`` with ``predict --include-embed``), as for the product's own models
(:func:`know_core.models.param_groups`); a tensor with no group (``carry``: integer and bool buffers such as
``num_batches_tracked`` or attention masks) is carried untouched from Θ0.

``--groups FILE.json`` overrides the rule by name pattern: ``{"PATTERN": "GROUP", ...}`` with shell patterns
(``fnmatch``: ``*``, ``?``, ``[...]``) matched against whole tensor names, applied in file order (a later pattern
overrides an earlier one), GROUP one of :data:`OVERRIDE_GROUPS`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from pathlib import Path

import torch

from know_core.common.errors import KnowError
from know_core.models import EMBED, GROUPS

CARRY = "carry"
NORM = "norm"
OVERRIDE_GROUPS = (*GROUPS, NORM, EMBED, CARRY)
EMBED_NAMES = {"wte", "wpe", "cls_token", "pos_token"}  # parts of a name that mean an embedding
SHARED_EMBED = "shared.weight"  # T5's and BART's shared token embedding (``shared.weight``, ``model.shared.weight``)
NORM_STATS = {"running_mean", "running_var"}
MAX_GROUPS_FILE = 1 << 20

Shapes = dict[str, tuple[tuple[int, ...], torch.dtype]]  # name -> (shape, dtype), in the checkpoint's order


def _module(name: str) -> str:
    return name.rpartition(".")[0]


def _leaf(name: str) -> str:
    return name.rpartition(".")[2]


def _norm_module(name: str, shapes: Shapes) -> bool:
    """The tensor belongs to a module whose ``weight`` is 1-D: LayerNorm, BatchNorm, GroupNorm, RMSNorm."""
    weight = f"{_module(name)}.weight" if _module(name) else "weight"
    return weight in shapes and len(shapes[weight][0]) == 1 and _leaf(name) in ("weight", "bias")


def _embedding(name: str) -> bool:
    parts = name.split(".")
    return any("embed" in part.lower() or part in EMBED_NAMES for part in parts) or \
        name == SHARED_EMBED or name.endswith("." + SHARED_EMBED)


# (group, what the user reads, test(name, shape, dtype, shapes)); the first test that holds decides.
RULE: list[tuple[str, str, Callable[[str, tuple[int, ...], torch.dtype, Shapes], bool]]] = [
    (CARRY, "integer or bool tensor (num_batches_tracked, masks, position ids): carried untouched",
     lambda n, s, d, a: not d.is_floating_point),
    (NORM, "running_mean / running_var, or weight and bias of a module whose weight is 1-D (LayerNorm, BatchNorm, "
     "GroupNorm, RMSNorm): copied from Θ0", lambda n, s, d, a: _leaf(n) in NORM_STATS or _norm_module(n, a)),
    (EMBED, "a name part containing 'embed', or wte, wpe, cls_token, pos_token, or a shared.weight: copied from Θ0 "
     "(predicted with fc under --include-embed)", lambda n, s, d, a: _embedding(n)),
    ("conv", "3 or more dimensions (convolution kernels)", lambda n, s, d, a: len(s) > 2),
    ("fc", "2 dimensions (linear, attention and output matrices)", lambda n, s, d, a: len(s) == 2),
    ("bias", "0 or 1 dimension (biases, scales)", lambda n, s, d, a: True),
]


def rule_lines() -> list[str]:
    return [f"{group:<5} {words}" for group, words, _ in RULE]


def infer_groups(shapes: Shapes, overrides: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """Every tensor's group by :data:`RULE`, then ``overrides`` ((pattern, group) pairs in order); tensors in
    ``carry`` are left out of the result, as buffers are from a forget run's groups."""
    out = {}
    for name, (shape, dtype) in shapes.items():
        out[name] = next(group for group, _, test in RULE if test(name, shape, dtype, shapes))
    for pattern, group in overrides or []:
        hits = [name for name in shapes if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise KnowError(f"--groups: pattern {pattern!r} matches no tensor of the film")
        for name in hits:
            if group != CARRY and not shapes[name][1].is_floating_point:
                raise KnowError(f"--groups: {name!r} is a {shapes[name][1]} tensor; only float tensors take "
                                f"group {group!r}")
            out[name] = group
    return {name: group for name, group in out.items() if group != CARRY}


def read_overrides(path: str | Path) -> list[tuple[str, str]]:
    """The (pattern, group) pairs of a ``--groups`` file, in file order; a bad file is one KnowError line."""
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size > MAX_GROUPS_FILE:
            raise KnowError(f"--groups {p}: not a regular file of at most {MAX_GROUPS_FILE:,} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowError(f"--groups {p}: not readable ({str(exc)[:100]})") from None
    return parse_overrides(text, f"--groups {p}")


def parse_overrides(text: str, where: str = "group overrides") -> list[tuple[str, str]]:
    """The (pattern, group) pairs of a ``{"PATTERN": "GROUP", ...}`` JSON text, in its order (``--groups``' file, or
    the import form's box); a bad text is one KnowError line starting with ``where``."""
    if len(text) > MAX_GROUPS_FILE:
        raise KnowError(f"{where}: over {MAX_GROUPS_FILE:,} characters")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KnowError(f"{where}: not readable JSON ({str(exc)[:100]})") from None
    if not isinstance(data, dict) or not data:
        raise KnowError(f'{where}: expected a JSON object {{"PATTERN": "GROUP", ...}}')
    for pattern, group in data.items():
        if group not in OVERRIDE_GROUPS:
            raise KnowError(f"{where}: {pattern!r} names group {str(group)[:40]!r}; use one of "
                            f"{', '.join(OVERRIDE_GROUPS)}")
    return list(data.items())


def group_table(shapes: Shapes, groups: dict[str, str]) -> list[dict]:
    """One row per group (the carried tensors included): tensor count, scalar count and the first names."""
    rows: dict[str, dict] = {}
    for name, (shape, _) in shapes.items():
        group = groups.get(name, CARRY)
        row = rows.setdefault(group, {"group": group, "tensors": 0, "scalars": 0, "examples": []})
        row["tensors"] += 1
        row["scalars"] += int(torch.Size(shape).numel())
        if len(row["examples"]) < 3:
            row["examples"].append(name)
    order = {g: i for i, g in enumerate(OVERRIDE_GROUPS)}
    return sorted(rows.values(), key=lambda r: order[r["group"]])


def format_table(rows: list[dict]) -> str:
    lines = [f"{'group':<6} {'tensors':>7} {'scalars':>12}  e.g."]
    for r in rows:
        lines.append(f"{r['group']:<6} {r['tensors']:>7} {r['scalars']:>12,}  {', '.join(r['examples'])}")
    return "\n".join(lines)
