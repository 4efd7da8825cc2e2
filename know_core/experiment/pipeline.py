"""The KNOW experiment end to end: every seed of :mod:`.seed`, resumable, then ``results.json``.

Each finished seed is saved at once, so an interrupted experiment resumes where it stopped; ``results.json`` is written
only when every seed is done. A finished seed is reused only when it was made from the same config, the same package
version and (when ``known`` runs) the same default KNOWN checkpoint: :func:`config_hash` covers all three.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors.torch import save_file

from know_core.common import version
from know_core.common.errors import ConfigError, KnowError
from know_core.common.fsio import atomic_write, sha256_file, write_json
from know_core.common.hooks import Hooks
from know_core.data import load_dataset
from know_core.data.rotated import base_of
from know_core.engine.batched import run_seeds
from know_core.engine.config import from_json, to_dict
from know_core.engine.extrapolate import MAX_STEPS
from know_core.engine.names import check_names
from know_core.engine.protocols import describe
from know_core.executors import InlineExecutor, Unit, raise_first_failure
from know_core.executors.tasks import task
from know_core.experiment.methods import official_predictor
from know_core.experiment.retrodiction import retrodiction_verdicts
from know_core.experiment.seed import SeedContext, run_seed
from know_core.experiment.spec import ExperimentConfig
from know_core.experiment.stats import summarise_rows, verdicts
from know_core.experiment.suggest import experiment_fixes
from know_core.predictors import get_predictor, predictor_entries
from know_core.predictors.known import OFFICIAL_FILES
from know_core.store.loaders import Damaged, check_user_file, read_json
from know_core.store.runstore import RunStore
from know_core.store.snapshots import pack

if TYPE_CHECKING:
    from know_core.executors import Executor


def preflight_experiment(cfg: ExperimentConfig) -> None:
    """The boundary check of an experiment, made once where a config enters (the CLI, :func:`~know_core.jobs.launch`):
    refuse, before anything is recorded, what would fail later — the values (``validate``, cross-field checks
    included), the names, the official KNOWN folder, the data of the first seed, warm and cold oracles demanded
    (``on``) where the source pool cannot hold the superset. The engine does not check the config again. A refusal
    names the nearest valid values of the fields that can fix it
    (:func:`~know_core.experiment.suggest.experiment_fixes`)."""
    try:
        _preflight(cfg)
    except ConfigError as exc:
        raise experiment_fixes(exc, cfg, _preflight) from None


def _preflight(cfg: ExperimentConfig) -> None:
    cfg.validate()
    too_far = [s for s in cfg.scales if cfg.steps_for(s) > MAX_STEPS]
    if too_far:
        raise ConfigError(f"scale {too_far[0]:g} is {cfg.steps_for(too_far[0])} steps back; at most {MAX_STEPS}")
    check_names(cfg.source)
    load_dataset(base_of(cfg.target_dataset), cfg.source.data_root)  # rotated:BASE checks BASE
    if cfg.official_known is not None:
        _check_official(cfg.official_known)
    ctx = SeedContext(cfg, cfg.seeds[0], Hooks())
    if cfg.oracles == "on":
        need = int(round(ctx.sizes[0] * max(cfg.scales)))
        if need > len(ctx.split.pool):
            raise ConfigError(
                f"oracle ×{max(cfg.scales):g} needs {need} source images but the pool holds "
                f"{len(ctx.split.pool)}; lower d0_fraction or set oracles=auto"
            )


def _check_official(path: str) -> None:
    """An official KNOWN folder holding the three .h5 files, readable as KNOWN networks."""
    folder = check_user_file(path, "official_known", folder=True)
    missing = [f for f in OFFICIAL_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"official_known {folder} lacks {', '.join(missing)}")
    get_predictor(official_predictor(), weights=str(folder))  # garbage or wrong-shaped .h5 files are refused here


def _finished_seed(out: Path, seed: int) -> dict | None:
    """A finished seed's record, read bounded and checked; an unreadable or damaged one is recomputed (None)."""
    if not (out / "seeds" / f"seed-{seed}.json").exists():
        return None
    try:
        saved = read_json(out / "seeds", f"seed-{seed}.json")
    except Damaged:
        return None
    ok = isinstance(saved, dict) and isinstance(saved.get("rows"), list) and isinstance(saved.get("timings"), dict)
    return saved if ok else None


def provenance(cfg: ExperimentConfig) -> dict[str, str | None]:
    """What besides the config decides the numbers: the package version and, when ``known`` runs, the SHA-256 of the
    default KNOWN checkpoint file (None when it is missing: KNOWN's rows are then invalid, with the reason)."""
    out: dict[str, str | None] = {"version": version.__version__}
    for entry in _checkpointed(cfg.methods):
        path = entry.trait("checkpoint")()
        out[f"{entry.name}_checkpoint_sha256"] = sha256_file(path) if path.is_file() else None
    return out


def _checkpointed(methods) -> list:
    """The registry entries of the chosen predictors whose numbers depend on a checkpoint file (KNOWN)."""
    return [e for e in predictor_entries() if e.name in methods and e.trait("checkpoint") is not None]


def config_hash(cfg: ExperimentConfig) -> str:
    """The resume key of a finished seed: the config (seeds aside) and its :func:`provenance`."""
    data = {k: v for k, v in to_dict(cfg).items() if k != "seeds"}
    data["provenance"] = provenance(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def seed_done(cfg: ExperimentConfig, out: Path, seed: int) -> dict | None:
    """The seed's saved record when it was made from this config and provenance (:func:`config_hash`), else None."""
    saved = _finished_seed(Path(out), seed)
    return saved if saved is not None and saved.get("config_hash") == config_hash(cfg) else None


def run_one_seed(
    cfg: ExperimentConfig, seed: int, out: str | Path, hooks: Hooks | None = None, film: tuple | None = None
) -> dict:
    """One seed of the experiment into ``out/seeds`` (reused when already there): the unit of work that every
    executor runs (:mod:`know_core.executors`). ``film``: the seed's (trajectory, timings) when recorded elsewhere
    (seed-batched). Returns the seed's record."""
    out = Path(out)
    saved = seed_done(cfg, out, seed)
    if saved is not None:
        return saved
    (out / "seeds").mkdir(parents=True, exist_ok=True)
    path = out / "seeds" / f"seed-{seed}.json"
    t0 = time.perf_counter()
    result, weights = run_seed(cfg, seed, hooks or Hooks(), film)
    result["timings"]["total_s"] = time.perf_counter() - t0
    result["config_hash"] = config_hash(cfg)
    if cfg.save_weights:
        with atomic_write(path.with_suffix(".safetensors")) as tmp:
            tensors, header = pack(weights, {"seed": seed})
            save_file(tensors, str(tmp), metadata=header)
    write_json(path, result)  # last: its presence marks the seed finished
    return result


def run_experiment(
    cfg: ExperimentConfig, out_dir: str | Path, hooks: Hooks | None = None, executor: "Executor | None" = None
) -> dict:
    """Run every seed (resuming finished ones from ``out_dir/seeds``) and write ``out_dir/results.json``. ``cfg`` has
    passed :func:`preflight_experiment` at the boundary. Seeds are units of work on ``executor`` (default: inline,
    in this process, with ``hooks``' progress); a seed that fails or is cancelled stops the experiment with its
    error."""
    out = Path(out_dir)
    (out / "seeds").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # The typed config: units in this process take it as it is (validated at the boundary); an executor that runs
    # them elsewhere sends it as JSON, checked there (executors.tasks.portable).
    units = [Unit(f"seed-{s}", "experiment-seed", {"config": cfg, "seed": s}, str(out)) for s in cfg.seeds]
    executor = executor or InlineExecutor(hooks, raise_errors=True)
    outcomes = executor.execute(units, should_stop=(hooks or Hooks()).should_stop)
    raise_first_failure(outcomes)
    return finalize_experiment(cfg, out, time.perf_counter() - t0)


def finalize_experiment(cfg: ExperimentConfig, out: str | Path, total_s: float | None = None) -> dict:
    """Aggregate the finished seeds in ``out/seeds`` into ``out/results.json`` (every seed of ``cfg`` must be done)."""
    out = Path(out)
    seeds = []
    for seed in cfg.seeds:
        saved = seed_done(cfg, out, seed)
        if saved is None:
            raise KnowError(f"seed {seed} of {out.name} is not finished")
        seeds.append(saved)
    if total_s is None:
        total_s = sum(s["timings"].get("total_s", 0.0) for s in seeds)
    rows = [r for s in seeds for r in s["rows"]]
    summary = summarise_rows(rows)
    results = {
        "config": to_dict(cfg),
        "provenance": provenance(cfg),
        "rows": rows,
        "summary": summary,
        "verdicts": verdicts(summary, [s["forgot"] for s in seeds])
        + retrodiction_verdicts([r for s in seeds for r in s.get("retrodiction", [])]),
        "backtest": [{**b, "seed": s["seed"]} for s in seeds for b in s["backtest"]],
        "retrodiction": [r for s in seeds for r in s.get("retrodiction", [])],
        "trajectories": [
            {
                "seed": s["seed"],
                "forgot": s["forgot"],
                "verdict": s["verdict"],
                "source_acc": s["source_acc_stages"],
                "stage_sizes": s["stage_sizes"],
                "stage_steps": s.get("stage_steps"),
                "forgetting": s.get("forgetting"),
                "warm": s.get("warm"),
                "control": s.get("control"),
            }
            for s in seeds
        ],
        "timings": {
            "total_s": total_s,
            "per_seed": [{"seed": s["seed"], **s["timings"], "ledger": s.get("ledger")} for s in seeds],
        },
    }
    for entry in _checkpointed(cfg.methods):  # which checkpoint made these rows (its card's hash and command)
        results[f"{entry.name}_checkpoint"] = entry.trait("checkpoint_identity")()
    write_json(out / "results.json", results)
    return results


def seal_experiment(store: RunStore, run_id: str, cfg: "ExperimentConfig", results: dict) -> None:
    """Mark a finished experiment run done, with the summary its listing shows."""
    trajs = results["trajectories"]
    store.finish(
        run_id,
        {
            "preset": cfg.preset,
            "verdicts": results["verdicts"],
            "forgot": all(t["forgot"] for t in trajs),
            "protocol": describe(cfg.source),
            "forgetting": trajs[0].get("forgetting") if len(trajs) == 1 else None,
            "forgetting_per_seed": [{"seed": t["seed"], **(t.get("forgetting") or {})} for t in trajs],
            "total_s": results["timings"]["total_s"],
        },
    )


# The task kinds an executor runs for an experiment: one seed, or several seeds batched.
def _experiment(payload: dict) -> ExperimentConfig:
    """The unit's experiment config: as it is when the unit was made in this process (validated at the boundary it
    came in by), else the JSON text :func:`~know_core.executors.tasks.portable` sent, read back and validated once
    by :func:`~know_core.engine.config.from_json` (another process is another boundary)."""
    cfg = payload["config"]
    return cfg if isinstance(cfg, ExperimentConfig) else from_json(ExperimentConfig, cfg, "unit config")


def _seed_done(payload: dict, out: str) -> bool:
    return seed_done(_experiment(payload), Path(out), int(payload["seed"])) is not None


@task("experiment-seed", done=_seed_done)
def experiment_seed(payload: dict, out: str, hooks: Hooks) -> dict:
    """Seed ``payload['seed']`` of the experiment ``payload['config']`` into the run folder ``out``."""
    result = run_one_seed(_experiment(payload), int(payload["seed"]), out, hooks)
    return {"seed": result["seed"], "forgot": result["forgot"]}


def _seeds_done(payload: dict, out: str) -> bool:
    cfg = _experiment(payload)
    return all(seed_done(cfg, Path(out), int(s)) is not None for s in payload["seeds"])


@task("experiment-seeds", done=_seeds_done)
def experiment_seeds(payload: dict, out: str, hooks: Hooks) -> dict:
    """Several seeds of one experiment whose forgetting films are recorded as one stacked model where
    :func:`~know_core.engine.batched.batchable` allows (each seed's own film, to float rounding), then finished seed by
    seed."""
    cfg = _experiment(payload)
    todo = [int(s) for s in payload["seeds"] if seed_done(cfg, Path(out), int(s)) is None]
    max_k = max(cfg.steps_for(s) for s in cfg.scales)
    films, how = run_seeds([dataclasses.replace(cfg.source, seed=s) for s in todo], hooks, max_k)
    for seed, film in zip(todo, films):
        run_one_seed(cfg, seed, out, hooks, film)
    return {"seeds": todo, "how": how}
