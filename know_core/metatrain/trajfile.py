"""The collected trajectory file: one safetensors file per finished job, written atomically.

Format ``know_core.metatraj/3`` is a :mod:`know_core.store.snapshots` file: films ``trajectory`` (Θ0…Θ_{S−1}) and,
where the
job recorded them, ``warm`` (Θ_{−1}, Θ_{−2}, …) and ``control`` (C_1, C_2, …); the job, groups, verdict, stage steps,
timings and the films' sizes and source figures are in its header (``metatraj`` names the format), and the reader
verifies the payload digest.

Format ``know_core.metatraj/2`` (still read, by :mod:`know_core.store.legacy`) holds the forgetting film Θ0…Θ_{S−1}
under
``"{s}/{name}"`` and, where the job recorded them, the warm oracles Θ_{−1}, Θ_{−2}, … under ``"warm/{k}/{name}"``
(k = 1…) and the same-data control film C_1, C_2, … under ``"control/{k}/{name}"``, with their subset sizes and source
figures in the metadata. The job (its
resolved config, stage budget included), the groups, the forgetting verdict, the stage steps and the timings are in
the metadata too.

Format ``know_core.metatraj/1`` (collected before stage budgets) is still read: it has no warm or control film, and
its budget is the one its config names (``epochs:N``; ``epochs:1`` when the config predates the field). Any other
format, or a damaged file, is a :class:`CorruptTrajectory` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file

from know_core.common.errors import DataError
from know_core.common.fsio import atomic_write
from know_core.engine.filmcontext import Continuation
from know_core.engine.forgetting import Trajectory
from know_core.store.legacy import job_budget, metatraj_v2_film, metatraj_v2_metadata
from know_core.store.loaders import Damaged
from know_core.store.snapshots import HEADER, pack, unpack

FILE_FORMAT = "know_core.metatraj/3"
READABLE_FORMATS = ("know_core.metatraj/1", "know_core.metatraj/2", FILE_FORMAT)
FILMS = ("warm", "control")


class CorruptTrajectory(DataError):
    """A collected trajectory file that cannot be read (truncated, damaged, or not one of ours)."""


def save_trajectory_file(path: Path, job: Any, traj: Trajectory, timings: dict[str, float]) -> None:
    """Write ``traj`` (with its warm and control films, where recorded) for ``job`` to ``path`` atomically."""
    films = {"trajectory": traj.states}
    meta = {
        "metatraj": FILE_FORMAT,
        "job": json.loads(job.to_json()),
        "groups": traj.groups,
        "stage_sizes": traj.stage_sizes,
        "source_acc": traj.source_acc,
        "source_loss": traj.source_loss,
        "forgot": traj.forgot,
        "report": traj.report.to_dict() if traj.report is not None else None,
        "stage_steps": traj.stage_steps,
        "cap_hit": traj.cap_hit,
        "pretrain_epochs": len(traj.pretrain_history),
        "timings": timings,
    }
    for name in FILMS:
        film = getattr(traj, name)
        if film is not None and film.states:
            films[name] = film.states
            meta.update(
                {
                    f"{name}_sizes": film.sizes,
                    f"{name}_source_acc": film.source_acc,
                    f"{name}_source_loss": film.source_loss,
                }
            )
    tensors, header = pack(films, meta)
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def budget_of(config: dict[str, Any]) -> str:
    """The stage budget a job config ran under (older configs: :func:`know_core.store.legacy.job_budget`)."""
    return str(config.get("stage_budget") or job_budget(config))


def read_metadata(path: Path) -> dict[str, Any]:
    """The file's metadata (job, groups, stages, budget, …), parsed; CorruptTrajectory if it is not readable."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            keys = list(f.keys())
        if HEADER in raw:
            header = json.loads(raw[HEADER])
            meta = {k: v for k, v in header.items() if k not in ("films", "sha256", "format", "metatraj")}
            meta.update(format=header.get("metatraj"), stages=header["films"]["trajectory"])
        else:
            meta = metatraj_v2_metadata(raw)
        if meta["format"] not in READABLE_FORMATS:
            raise ValueError(f"format {meta['format']!r}, expected one of {', '.join(READABLE_FORMATS)}")
        if len(keys) == 0 or meta["stages"] < 2:
            raise ValueError("no stages")
        meta["n_tensors"] = len(keys)
        meta["budget"] = budget_of(meta["job"]["config"])
        for film_name in FILMS:
            meta[f"n_{film_name}"] = len(meta.get(f"{film_name}_sizes") or [])
        return meta
    except Exception as exc:  # safetensors raises its own types for truncated headers
        raise CorruptTrajectory(f"{path.name}: unreadable trajectory file ({exc})") from None


def theta0_prefix(meta: dict[str, Any]) -> str:
    """The key prefix of Θ0's tensors in a file with metadata ``meta``."""
    return "trajectory/0/" if meta["format"] == FILE_FORMAT else "0/"


def read_trajectory_file(path: Path, films: bool = False):
    """(states Θ0…Θ_{S−1}, metadata); with ``films=True`` also (warm, control) as Continuations or None.
    Every tensor asked for is read, so a truncated body is caught here, not in training."""
    meta = read_metadata(path)
    if meta["format"] == FILE_FORMAT:
        return _read_snapshots(path, meta, films)
    return metatraj_v2_film(path, meta, films, names=FILMS, corrupt=CorruptTrajectory, continuation=Continuation)


def _read_snapshots(path: Path, meta: dict[str, Any], films: bool):
    """``read_trajectory_file`` for a ``know_core.metatraj/3`` file: every tensor read and its digest verified."""
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors, raw = {key: f.get_tensor(key) for key in f.keys()}, f.metadata()  # noqa: SIM118
        stored = unpack(tensors, raw, path.name)[0]
    except Damaged as exc:
        raise CorruptTrajectory(f"{path.name}: {exc.reason}") from None
    except Exception as exc:
        raise CorruptTrajectory(f"{path.name}: damaged tensors ({exc})") from None
    states = stored["trajectory"]
    if any(set(s) != set(states[0]) for film in stored.values() for s in film):
        raise CorruptTrajectory(f"{path.name}: stages hold different parameters")
    if not films:
        return states, meta
    extra = [
        Continuation(stored[name], meta[f"{name}_sizes"], meta[f"{name}_source_acc"], meta[f"{name}_source_loss"])
        if name in stored
        else None
        for name in FILMS
    ]
    return states, meta, extra[0], extra[1]
