"""The engine's task kinds: one experiment seed, several seeds batched, one forgetting job of the meta-dataset, and
the executors' self-check."""

from __future__ import annotations

from pathlib import Path

from ..train import Hooks
from .tasks import task


def _experiment(payload: dict):
    """The unit's experiment config: as it is when the unit was made in this process (validated at the boundary it
    came in by), else the JSON text :func:`~know_core.executors.tasks.portable` sent, read back and validated once
    by :func:`~know_core.config.from_json` (another process is another boundary)."""
    from ..config import from_json
    from ..experiment import ExperimentConfig

    cfg = payload["config"]
    return cfg if isinstance(cfg, ExperimentConfig) else from_json(ExperimentConfig, cfg, "unit config")


def _seed_done(payload: dict, out: str) -> bool:
    from ..pipeline import seed_done

    return seed_done(_experiment(payload), Path(out), int(payload["seed"])) is not None


@task("experiment-seed", done=_seed_done)
def experiment_seed(payload: dict, out: str, hooks: Hooks) -> dict:
    """Seed ``payload['seed']`` of the experiment ``payload['config']`` into the run folder ``out``."""
    from ..pipeline import run_one_seed

    result = run_one_seed(_experiment(payload), int(payload["seed"]), out, hooks)
    return {"seed": result["seed"], "forgot": result["forgot"]}


def _seeds_done(payload: dict, out: str) -> bool:
    from ..pipeline import seed_done

    cfg = _experiment(payload)
    return all(seed_done(cfg, Path(out), int(s)) is not None for s in payload["seeds"])


@task("experiment-seeds", done=_seeds_done)
def experiment_seeds(payload: dict, out: str, hooks: Hooks) -> dict:
    """Several seeds of one experiment whose forgetting films are recorded as one stacked model where
    :func:`~know_core.batched.batchable` allows (each seed's own film, to float rounding), then finished seed by seed."""
    import dataclasses

    from ..batched import run_seeds
    from ..pipeline import run_one_seed, seed_done

    cfg = _experiment(payload)
    todo = [int(s) for s in payload["seeds"] if seed_done(cfg, Path(out), int(s)) is None]
    max_k = max(cfg.steps_for(s) for s in cfg.scales)
    films, how = run_seeds([dataclasses.replace(cfg.source, seed=s) for s in todo], hooks, max_k)
    for seed, film in zip(todo, films):
        run_one_seed(cfg, seed, out, hooks, film)
    return {"seeds": todo, "how": how}


def _job(payload: dict):
    from ..metatrain.jobs import Job

    job = Job(payload["id"], payload.get("grid", "custom"), payload["config"])
    job.forget_config().validate()
    return job


def _job_done(payload: dict, out: str) -> bool:
    from ..metatrain.collection import is_done, trajectory_path

    return is_done(trajectory_path(Path(out), _job(payload)))


@task("collect-job", done=_job_done)
def collect_job(payload: dict, out: str, hooks: Hooks) -> dict:
    """One forgetting run of the meta-dataset into ``out/<job id>.safetensors``."""
    from ..metatrain.collection import run_job

    return run_job(_job(payload), out, hooks)


def _probe_done(payload: dict, out: str) -> bool:
    return (Path(out) / f"probe-{payload['name']}.json").is_file()


@task("probe", done=_probe_done)
def probe(payload: dict, out: str, hooks: Hooks) -> dict:
    """The executors' self-check (tests, the Ray overhead benchmark): wait ``sleep`` seconds in 50 ms steps (honouring
    cancel), crash the worker process on the first attempt when ``crash_once`` names a marker file that does not
    exist yet (every attempt with ``crash``), raise ``fail``, else write ``out/probe-NAME.json`` with ``value`` and
    this process's id."""
    import os
    import time

    from ..errors import KnowError
    from ..fsio import write_json

    deadline = time.monotonic() + float(payload.get("sleep", 0.0))
    while time.monotonic() < deadline:
        hooks.check()
        time.sleep(0.05)
    marker = payload.get("crash_once")
    if payload.get("crash") or (marker and not Path(marker).exists()):
        if marker:
            Path(marker).touch()
        os._exit(3)  # a dying worker, as the OOM killer would leave it
    if payload.get("fail"):
        raise KnowError(str(payload["fail"]))
    record = {"name": payload["name"], "value": payload.get("value"), "pid": os.getpid()}
    write_json(Path(out) / f"probe-{payload['name']}.json", record)
    return record
