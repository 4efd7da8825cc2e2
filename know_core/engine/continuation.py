"""The films recorded beside the forgetting film, with the same stage budget and recipe:

- **warm oracles**, the film continued the other way: Θ_{−1} = Θ0 fine-tuned on the nested superset
  D_{−1} = pool[: |D0| / r], starting from the optimiser state Θ0 ended with; Θ_{−2} from Θ_{−1} on D_{−2}; … These
  are exactly what a retrodicted Θ̂_{−k} claims to be, so they are its ground truth.
- the **same-data control film** C_1, C_2, …: Θ0 trained further on D0 itself, stage after stage. It separates the
  warm oracle's move into a "keep training" drift (C_k − Θ0) and the part that more data adds (Θ_{−k} − C_k), and it
  is what drift-corrected retrodiction subtracts from the forgetting film.

Each film draws its batches from its own generator, so recording them never changes the forgetting film itself.
"""

from __future__ import annotations

import copy

import torch

from know_core.engine.filmcontext import Continuation, FilmContext, cpu_state
from know_core.engine.stages import train_stage
from know_core.engine.train import evaluate, make_optimizer, set_lr

WARM_SEED_OFFSET = 1_000_003
CONTROL_SEED_OFFSET = 2_000_003


def _film(ctx: FilmContext, theta0: list[dict[str, torch.Tensor]], theta0_opt: dict, sizes: list[int], offset: int,
          phase: str) -> list[Continuation]:
    """Every member's film from its Θ0 over ``sizes`` with the stage budget, each from its own generator."""
    cfg = ctx.cfg
    models = [ctx.new_model(state) for state in theta0]
    optimizer = make_optimizer(models, cfg.optim, ctx.forget_lr)
    if cfg.carry_optimizer:  # a copy: torch's load_state_dict aliases the moment tensors, and the warm film's
        optimizer.load_state_dict(copy.deepcopy(theta0_opt))  # updates would leak into the control film's start
        set_lr(optimizer, ctx.forget_lr)
    m = ctx.members(models)
    gens = [torch.Generator().manual_seed(c.seed + offset) for c in ctx.cfgs]
    total = sum(ctx.budget.planned_steps(n, ctx.batch) for n in sizes)
    out = [Continuation([], [], [], []) for _ in models]
    step = 0
    for size in sizes:
        if not cfg.carry_optimizer:
            optimizer = make_optimizer(models, cfg.optim, ctx.forget_lr)
        _, step = train_stage(m, optimizer, ctx.subsets(size), ctx.budget, gens, phase, step, total)
        for model, film in zip(models, out):
            loss, acc = evaluate(model, ctx.x_test, ctx.y_test)
            film.states.append(cpu_state(model))
            film.sizes.append(size)
            film.source_acc.append(acc)
            film.source_loss.append(loss)
    return out


def record_warm(ctx: FilmContext, theta0: list[dict[str, torch.Tensor]], theta0_opt: dict,
                sizes: list[int]) -> list[Continuation]:
    """Θ_{−1} … Θ_{−K} of every member on the supersets of ``sizes`` (|D_{−1}| < |D_{−2}| < …)."""
    return _film(ctx, theta0, theta0_opt, sizes, WARM_SEED_OFFSET, "warm oracles")


def record_control(ctx: FilmContext, theta0: list[dict[str, torch.Tensor]], theta0_opt: dict,
                   stages: int) -> list[Continuation]:
    """C_1 … C_stages of every member: every stage on D0 itself, with the forgetting stages' budget."""
    return _film(ctx, theta0, theta0_opt, [ctx.sizes[0]] * stages, CONTROL_SEED_OFFSET, "control film")
