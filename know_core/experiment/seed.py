"""One seed of the KNOW experiment: pre-train → forget → predict ×scales → fine-tune on the target → evaluate.

Beside every prediction it runs what no claim should go without: the real larger-data model (oracle) where the source
pool allows, a norm-matched shrinkage control (Θ0 scaled to the prediction's per-tensor norms), training from scratch,
and a backtest of every predictor on the trajectory itself. :mod:`.pipeline` runs the seeds and keeps the record.
"""

from __future__ import annotations

import dataclasses

import torch

from know_core.common.errors import ConfigError, KnowError
from know_core.common.ledger import Ledger
from know_core.data import nested_order
from know_core.data.rotated import domain_target, held_out_domains
from know_core.engine.extrapolate import extrapolate
from know_core.engine.filmcontext import cpu_state
from know_core.engine.finetune import finetune, replace_head
from know_core.engine.forgetting import (
    Trajectory,
    predicted_flat,
    preflight,
    pretrain,
    resolved_batch_size,
    run_forgetting,
)
from know_core.engine.train import Hooks, evaluate, make_optimizer, pick_device
from know_core.experiment.backtest import backtest_weights, relative_scores
from know_core.experiment.methods import BASELINE, DC_SUFFIX, SHRINK_PREFIX, make_predictor, min_stages
from know_core.experiment.retrodiction import extrapolate_dc, score
from know_core.experiment.spec import ExperimentConfig
from know_core.models import GROUPS, create_model, predicted_groups
from know_core.predictors import Predictor


def shrinkage_control(theta0: dict[str, torch.Tensor], predicted: dict[str, torch.Tensor],
                      groups: dict[str, str]) -> dict[str, torch.Tensor]:
    """Θ0 with every predicted tensor rescaled to the norm of the prediction's tensor (direction kept from Θ0)."""
    out = dict(theta0)
    for name, group in groups.items():
        if group in GROUPS:
            norm0 = torch.linalg.vector_norm(theta0[name].double())
            scale = torch.linalg.vector_norm(predicted[name].double()) / norm0 if norm0 > 0 else 1.0
            out[name] = (theta0[name].double() * scale).to(theta0[name].dtype)
    return out


class SeedContext:
    """Everything one seed needs: data on the device, the source config for this seed, the evaluation helpers."""

    def __init__(self, cfg: ExperimentConfig, seed: int, hooks: Hooks):
        self.cfg, self.seed, self.hooks = cfg, seed, hooks
        self.src = dataclasses.replace(cfg.source, seed=seed)
        self.max_k = max(cfg.steps_for(s) for s in cfg.scales)
        self.ds, self.split, self.sizes = preflight(self.src, self.max_k)
        self.device = pick_device(self.src.device)
        self.domains = held_out_domains(cfg.target_dataset, cfg.test_domain)  # [None]: a target without domains
        self.use_domain(self.domains[0])
        self.sx, self.sy = self.ds.x_test.to(self.device), self.ds.y_test.to(self.device)

    def use_domain(self, domain: int | None) -> None:
        """Make the target the one with ``domain`` held out (:func:`~know_core.data.rotated.domain_target`): its
        training draw (class- and domain-balanced, seeded) and its test set, the held-out domain."""
        cfg = self.cfg
        self.domain = domain
        self.target, strata = domain_target(cfg.target_dataset, domain, cfg.source.data_root, self.device)
        if self.target.input_shape != self.ds.input_shape:
            raise ConfigError(f"target {cfg.target_dataset} has inputs {self.target.input_shape}, the source "
                              f"{self.src.dataset} {self.ds.input_shape}: they must match")
        if cfg.target_train > len(self.target.y_train):
            raise ConfigError(f"target_train={cfg.target_train} exceeds the {len(self.target.y_train)} training "
                              f"images of {self.target.name}")
        order = nested_order(strata, self.seed, balanced=True)[:cfg.target_train]
        self.tx = self.target.x_train[order.to(self.target.x_train.device)].to(self.device)
        self.ty = self.target.y_train[order.to(self.target.y_train.device)].to(self.device)

    def model(self, state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
        torch.manual_seed(self.seed)
        model = create_model(self.src.model, self.ds.input_shape, self.ds.num_classes).to(self.device)
        if state is not None:
            model.load_state_dict(state)
        return model

    def evaluate_init(self, state: dict[str, torch.Tensor] | None, label: str) -> dict[str, float | None]:
        """Source accuracy of ``state`` as it is, then target accuracy after the fine-tuning recipe. The model is put
        in channels-last memory format: on CPU its convolutions (evaluation and fine-tuning) then run about twice as
        fast, and fine-tuning is half of the quick demo's time; the weights it ends with are never kept."""
        model = self.model(state).to(memory_format=torch.channels_last)
        source_acc = evaluate(model, self.sx, self.sy)[1] if state is not None else None
        replace_head(model, self.target.num_classes, self.seed + 10_000)
        where = "" if self.domain is None else f" (held-out {self.domain}°)"
        target_acc = finetune(model, self.target, self.tx, self.ty, self.cfg.finetune, self.seed, self.hooks,
                              f"fine-tuning {label}{where}")
        return {"source_acc": source_acc, "target_acc": target_acc}

    def oracle(self, scale: float, theta0_epochs: int) -> dict[str, torch.Tensor] | None:
        """Θ_{−k} really trained on the |D0|·scale superset (same init seed), or None where the pool is too small."""
        n = int(round(self.sizes[0] * scale))
        if n > len(self.split.pool):
            if self.cfg.oracles == "on":
                raise ConfigError(f"oracle ×{scale:g} needs {n} source images but the pool holds "
                                  f"{len(self.split.pool)}; lower d0_fraction or set oracles=auto")
            return None
        cfg = self.src
        if self.cfg.oracle_budget == "steps":
            epochs = max(1, round(theta0_epochs / scale))
            cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, max_epochs=epochs,
                                                                        early_stop=False))
        model = self.model()
        idx = self.split.pool[:n].to(self.device)
        val = self.split.val.to(self.device)
        x, y = self.ds.x_train.to(self.device), self.ds.y_train.to(self.device)
        pretrain(model, make_optimizer(model, cfg.optim), x[idx], y[idx], x[val], y[val], cfg,
                 resolved_batch_size(cfg, self.ds), torch.Generator().manual_seed(self.seed), self.hooks,
                 f"oracle ×{scale:g}")
        return cpu_state(model)


def run_seed(cfg: ExperimentConfig, seed: int, hooks: Hooks, film: tuple | None = None
             ) -> tuple[dict, dict[str, list[dict]]]:
    """All rows of one seed (see the module docstring) with timings per phase (wall seconds in ``timings``, wall, CPU
    and GPU seconds in ``ledger``: :mod:`.ledger`), and the weights behind them as
    snapshot films: ``traj``, ``pred:{method}:{scale}``, ``oracle:{scale}``, ``warm:{scale}`` and ``control``."""
    ctx = SeedContext(cfg, seed, hooks)
    traj, timings = run_forgetting(ctx.src, hooks, ctx.max_k) if film is None else film
    if not isinstance(timings, Ledger):  # a seed-batched film comes with its share of the batch's wall seconds
        timings = Ledger.from_wall(timings, ctx.device)
    traj.groups = predicted_groups(traj.groups, cfg.include_embed)  # embeddings predicted (as fc) or copied
    theta0, groups = traj.states[0], traj.groups
    max_k = ctx.max_k

    timings.start("predict")
    predictions: dict[str, list[dict[str, torch.Tensor]]] = {}
    predictors: dict[str, Predictor] = {}
    invalid: dict[str, str] = {}
    downstream, predict = "downstream" in cfg.phases, {"downstream", "retrodiction"} & set(cfg.phases)
    for method in cfg.method_names:
        base = method.removesuffix(DC_SUFFIX)
        timings.start(f"predict:{method}")
        try:
            predictor = make_predictor(base, cfg.official_known)
            if not method.endswith(DC_SUFFIX):
                predictors[method] = predictor  # for the backtest
            if predict and method.endswith(DC_SUFFIX):
                if traj.control is None:
                    raise KnowError("drift correction needs the control film, which is not recorded with oracles off")
                predictions[method] = extrapolate_dc(traj.states, traj.control, groups, predictor, max_k,
                                                     cfg.reset_norm)
            elif predict:
                predictions[method] = extrapolate(traj.states, groups, predictor, max_k, cfg.reset_norm)
        except (KnowError, FileNotFoundError) as exc:
            invalid[method] = str(exc)
        timings.stop(f"predict:{method}")
    timings.stop("predict")
    warm = {s: traj.warm.states[cfg.steps_for(s) - 1] for s in cfg.scales
            if traj.warm is not None and cfg.steps_for(s) <= len(traj.warm.states)}

    with timings.phase("oracles"):
        oracles = {s: _timed(timings, f"oracle:{s:g}", ctx.oracle, s, len(traj.pretrain_history))
                   for s in cfg.scales} if cfg.oracles != "off" and downstream else {}

    timings.start("finetune")
    rows = []
    for domain in ctx.domains if downstream else ():  # leave-one-domain-out: one row set per held-out domain
        ctx.use_domain(domain)
        tag = {} if domain is None else {"domain": domain}
        rows += [{**row, **tag} for row in _target_rows(ctx, theta0, groups, oracles, warm, predictions, invalid)]
    timings.stop("finetune")

    with timings.phase("backtest"):
        backtests = (_backtests(traj, {m: p for m, p in predictors.items() if m not in invalid})
                     if "backtest" in cfg.phases else [])
    retro = (_retrodiction(cfg, traj, warm, {m: p for m, p in predictions.items() if m not in invalid}, seed)
             if "retrodiction" in cfg.phases else [])
    for row in rows:
        row.setdefault("valid", True)
        row["seed"] = seed
    weights = {"traj": traj.states}  # films for snapshots.pack
    for method, steps in predictions.items():
        if method == BASELINE:
            continue  # Θ0 at every scale: already stored as traj's snapshot 0
        for scale in cfg.scales:
            weights[f"pred:{method}:{scale:g}"] = [steps[cfg.steps_for(scale) - 1]]
    weights.update({f"oracle:{scale:g}": [state] for scale, state in oracles.items() if state})
    weights.update({f"warm:{scale:g}": [state] for scale, state in warm.items()})
    if traj.control and traj.control.states:
        weights["control"] = traj.control.states
    result = {"seed": seed, "rows": rows, "backtest": backtests, "retrodiction": retro, "timings": dict(timings),
              "ledger": timings.record(),
              "forgot": traj.forgot, "verdict": traj.verdict(), "source_acc_stages": traj.source_acc,
              "stage_sizes": traj.stage_sizes, "stage_steps": traj.stage_steps, "cap_hit": traj.cap_hit,
              "forgetting": traj.report.to_dict() if traj.report else None, "groups": groups,
              "warm": _film_summary(traj.warm), "control": _film_summary(traj.control)}
    return result, weights


def _timed(ledger, name: str, fn, *args):
    with ledger.phase(name):
        return fn(*args)


def _target_rows(ctx: SeedContext, theta0: dict, groups: dict[str, str], oracles: dict, warm: dict,
                 predictions: dict[str, list[dict]], invalid: dict[str, str]) -> list[dict]:
    """Every initialisation fine-tuned on ctx's current target and evaluated: naive, scratch, the oracles, each
    prediction and its shrinkage control (with its distance to the oracle where there is one)."""
    cfg = ctx.cfg
    rows = [{"method": BASELINE, "scale": 1.0, **ctx.evaluate_init(theta0, BASELINE)},
            {"method": "scratch", "scale": 1.0, **ctx.evaluate_init(None, "scratch")}]
    for name, by_scale in (("oracle", oracles), ("oracle-warm", warm)):
        for scale, state in by_scale.items():
            if state is not None:
                rows.append({"method": name, "scale": scale, "norm_ratio": _norm_ratio(state, theta0, groups),
                             **ctx.evaluate_init(state, f"{name} ×{scale:g}")})
    for method in cfg.method_names:
        for scale in cfg.scales:
            if method in invalid:
                rows.append({"method": method, "scale": scale, "valid": False, "reason": invalid[method]})
                continue
            if method == BASELINE:
                continue  # naive is the ×1 row: Θ0 whatever the scale
            pred = predictions[method][cfg.steps_for(scale) - 1]
            shrink = shrinkage_control(theta0, pred, groups)
            oracle = oracles.get(scale)
            norm_ratio = _norm_ratio(pred, theta0, groups)
            for name, state in ((method, pred), (SHRINK_PREFIX + method, shrink)):
                row = {"method": name, "scale": scale, "norm_ratio": norm_ratio,
                       **ctx.evaluate_init(state, f"{name} ×{scale:g}")}
                if oracle is not None:
                    row.update(_to_oracle(state, oracle, theta0, groups))
                rows.append(row)
    return rows


def _film_summary(film) -> dict | None:
    return None if film is None else {"sizes": film.sizes, "source_acc": film.source_acc,
                                      "source_loss": film.source_loss}


def _retrodiction(cfg: ExperimentConfig, traj: Trajectory, warm: dict[float, dict],
                  predictions: dict[str, list[dict]], seed: int) -> list[dict]:
    """Rows {seed, method, scale, group, layer, rel_error, cosine, rel_error_data, cosine_data} against the warm
    oracles, for every valid prediction and for the control C_k itself ("keep training on D0")."""
    rows: list[dict] = []
    theta0, groups = traj.states[0], traj.groups
    for scale, truth in warm.items():
        k = cfg.steps_for(scale)
        control = traj.control.states[k - 1] if traj.control and k <= len(traj.control.states) else None
        candidates = {m: steps[k - 1] for m, steps in predictions.items() if m != BASELINE}
        if control is not None:
            candidates["control"] = control
        for method, pred in candidates.items():
            for row in score(pred, truth, control, theta0, groups, method.endswith(DC_SUFFIX)):
                rows.append({"seed": seed, "method": method, "scale": scale, **row})
    return rows


def _norm_ratio(state, theta0, groups) -> float:
    """‖state‖/‖Θ0‖ over the predicted groups: below 1 means the weights shrank."""
    return float(torch.linalg.vector_norm(predicted_flat(state, groups))
                 / torch.linalg.vector_norm(predicted_flat(theta0, groups)))


def _to_oracle(state, oracle, theta0, groups) -> dict[str, float | None]:
    """Distance of ``state`` to the real larger-data model, relative to Θ0's (1.0 = as far as Θ0), and the cosine of
    the step Θ0 → state with the true step Θ0 → oracle."""
    rel, cos = relative_scores(predicted_flat(state, groups), predicted_flat(oracle, groups),
                               predicted_flat(theta0, groups))
    return {"dist_to_oracle": rel, "cos_to_oracle": cos}


def _backtests(traj: Trajectory, predictors: dict[str, Predictor]) -> list[dict]:
    out = []
    for method, predictor in predictors.items():
        need = min_stages(method) + 1  # the backtest hides Θ0
        if len(traj.states) < need:
            out.append({"method": method, "note": f"its backtest hides Θ0, so it needs source.stages >= {need}; "
                                                  f"this film has {len(traj.states)}"})
            continue
        try:
            figures, _ = backtest_weights(traj, predictor, 1, method)
        except KnowError as exc:
            out.append({"method": method, "note": str(exc)})
            continue
        out += [dataclasses.asdict(f) for f in figures if f.level == "group"]
    return out
