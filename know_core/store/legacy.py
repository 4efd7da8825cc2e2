"""Every old format KNOW Explorer still reads, in one place: one function per format, each saying which versions
wrote it. The readers call these only when a file or record lacks what the current format has; nothing else in the
package knows an old layout. Formats read elsewhere for now: ``ForgetConfig`` with ``epochs`` instead of
``stage_budget`` (``config.from_dict``) and runs without a protocol (read as ``custom``, ``views``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open

from know_core.store.loaders import Damaged
from know_core.store.snapshots import HEADER, MAX_SNAPSHOTS, _films, _group, _header, unpack

if TYPE_CHECKING:
    from pathlib import Path


def _legacy_count(metadata: dict[str, str], file: str) -> int:
    """The snapshot count of a trajectory file written before ``know-snapshots/1``: its metadata ``stages``."""
    try:
        count = int(metadata["stages"])
    except (KeyError, ValueError):
        raise Damaged(file, "metadata: stages is missing or not an integer") from None
    if not 1 <= count <= MAX_SNAPSHOTS:
        raise Damaged(file, f"metadata: stages = {count} is outside [1, {MAX_SNAPSHOTS}]")
    return count


def snapshot_film(tensors: dict, metadata: dict[str, str], file: str, film: str) -> tuple[dict, dict[str, Any]]:
    """(films, meta) of a trajectory file written before ``know-snapshots/1`` (before commit 54d3138): keys
    ``"{s}/{param}"``, metadata ``stages`` and JSON-valued entries (``groups``, ``sizes``, …)."""
    count = _legacy_count(metadata, file)
    grouped = {(film, idx): state for (idx,), state in _group(tensors, file, 1).items()}
    meta = {}
    for key, value in metadata.items():
        if key != "stages":
            try:
                meta[key] = json.loads(value)
            except ValueError:
                raise Damaged(file, f"metadata: {key} is not JSON") from None
    return _films(grouped, {film: count}, file), meta


def film_counts(metadata: dict[str, str], file: str, legacy_film: str) -> dict[str, int]:
    """The snapshot counts of each film a snapshot file's header names (this format, or ``legacy_film``'s count in
    a file written before it), from the header alone: no tensor is read."""
    if HEADER in metadata:
        return _header(metadata, file)[0]
    return {legacy_film: _legacy_count(metadata, file)}


def seed_films(tensors: dict, file: str) -> dict[str, list[dict]]:
    """The films of a seed weights file written before ``know-snapshots/1`` (before commit 54d3138):
    ``traj/{s}/…``, ``control/{c}/…`` (c from 1) and the single snapshots ``pred/{method}/{scale}/…``,
    ``oracle/{scale}/…``, ``warm/{scale}/…`` (as films ``pred:{method}:{scale}``, ``oracle:{scale}``,
    ``warm:{scale}``)."""
    grouped: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        kind, _, rest = key.partition("/")
        parts = rest.split("/", 2 if kind == "pred" else 1)
        if kind not in ("traj", "control", "pred", "oracle", "warm") or len(parts) < (3 if kind == "pred" else 2) \
                or not all(parts) or (kind == "control" and not parts[0].isdigit()):
            raise Damaged(file, f"malformed key {key[:80]!r}")
        film, idx = ((kind, parts[0]) if kind == "traj" else ("control", str(int(parts[0]) - 1)) if kind == "control"
                     else (":".join([kind, *parts[:-1]]), "0"))
        grouped.setdefault((film, idx), {})[parts[-1]] = t
    films = {f for f, _ in grouped}
    return _films(grouped, {f: sum(1 for g, _ in grouped if g == f) for f in films}, file)


def forget_config_budget(data: dict[str, Any]) -> dict[str, Any]:
    """A forget config recorded before stage budgets (``epochs: N``, before commit edd0ab7) as ``stage_budget``
    text; any other config unchanged."""
    if "epochs" in data and "stage_budget" not in data:
        return {**{k: v for k, v in data.items() if k != "epochs"}, "stage_budget": f"epochs:{data['epochs']}"}
    return data


def job_budget(config: dict[str, Any]) -> str:
    """The stage budget of a meta-dataset job config written before stage budgets (before commit edd0ab7): its
    ``epochs`` (1 when it names none)."""
    return f"epochs:{config.get('epochs', 1)}"


def job_protocol(config: dict[str, Any]) -> str:
    """The protocol of a meta-dataset job config written before protocols (before commit 78727b4): ``release``."""
    return config.get("protocol", "release")


def all_oracles_phase(phases: dict[str, dict]) -> dict | None:
    """The oracles' seconds of a run recorded before per-scale oracle phases (before commit 54d3138): every oracle
    together, as ``oracles``."""
    return phases.get("oracles")


def metatraj_v2_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """The metadata of a collected trajectory file of ``know_core.metatraj/1`` or ``/2`` (before commit 54d3138):
    JSON-valued entries and a plain ``format``."""
    meta = {k: json.loads(v) for k, v in raw.items() if k != "format"}
    meta["format"] = raw.get("format")
    return meta


def metatraj_v2_film(path: Path, meta: dict[str, Any], films: bool, *, names: tuple[str, ...],
                     corrupt: type[Exception], continuation: Any):
    """``read_trajectory_file`` for a ``know_core.metatraj/1`` or ``/2`` file (collected before commit 54d3138):
    stages under ``"{s}/{name}"``, warm and control films under ``"warm/{k}/{name}"``, ``"control/{k}/{name}"``.
    The reader passes its film ``names``, its ``corrupt`` error and its ``continuation`` type, which live above the
    store."""
    FILMS, CorruptTrajectory, Continuation = names, corrupt, continuation  # noqa: N806  (the reader's own names)

    states: list[dict[str, torch.Tensor]] = [{} for _ in range(meta["stages"])]
    extra = {name: [{} for _ in range(meta[f"n_{name}"])] for name in FILMS}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118
                head, rest = key.split("/", 1)
                if head in FILMS:
                    if films:
                        k, name = rest.split("/", 1)
                        extra[head][int(k) - 1][name] = f.get_tensor(key)
                else:
                    states[int(head)][rest] = f.get_tensor(key)
    except Exception as exc:
        raise CorruptTrajectory(f"{path.name}: damaged tensors ({exc})") from None
    checked = states + (extra["warm"] + extra["control"] if films else [])
    if any(set(s) != set(states[0]) for s in checked):
        raise CorruptTrajectory(f"{path.name}: stages hold different parameters")
    if not films:
        return states, meta
    out = []
    for name in FILMS:
        if not meta[f"n_{name}"]:
            out.append(None)
            continue
        out.append(Continuation(extra[name], meta[f"{name}_sizes"], meta[f"{name}_source_acc"],
                                meta[f"{name}_source_loss"]))
    return states, meta, out[0], out[1]


def read(tensors: dict, metadata: dict[str, str], file: str, legacy_film: str) -> tuple[dict, dict[str, Any]]:
    """``unpack`` for files of this format, :func:`know_core.store.legacy.snapshot_film` (as film ``legacy_film``) for
    older ones."""
    return unpack(tensors, metadata, file) if HEADER in metadata else snapshot_film(tensors, metadata, file,
                                                                                     legacy_film)
