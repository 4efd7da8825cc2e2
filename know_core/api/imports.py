"""Films of the user's own checkpoints, for the dashboard: look before importing (the inferred group table, a dry
run), unpack an uploaded zip, import in a background worker with progress, read an imported run back as the pages
draw it, and export its predictions (to a server folder, or as a zip to download)."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from know_core.common.errors import KnowError
from know_core.common.fsio import atomic_write
from know_core.engine.extrapolate import prediction_file
from know_core.engine.forgetting import Trajectory
from know_core.experiment.backtest import backtest_weights
from know_core.experiment.methods import make_predictor
from know_core.experiment.seedweights import SeedWeights, stored_predictions
from know_core.imports.archive import MAX_MB_ENV, extract_zip, max_upload_bytes
from know_core.imports.checkpoints import ORDERS, ImportFailed
from know_core.imports.evalhook import check_spec
from know_core.imports.export import SIDECAR, export_prediction
from know_core.imports.film import FILM_KINDS, FORMATS, ImportConfig, open_imported_run, read_film
from know_core.imports.groups import OVERRIDE_GROUPS, parse_overrides, rule_lines
from know_core.jobs import folderjobs as jobs
from know_core.store.runstore import RunStore

Root = str | os.PathLike


@dataclass
class ImportPreview:
    """What an import would store (nothing is written): the checkpoints in film order (Θ0 first), the inferred
    parameter groups (one row per group: count, parameters, example names), the rule that made them."""

    files: list[dict[str, Any]]
    table: list[dict[str, Any]]
    rule: list[str]
    stages: int
    format: str
    kind: str


def inspect_import(paths: list[str], kind: str, order: str | None = None, reverse: bool = False,
                   r: float = 0.5, groups: list[tuple[str, str]] | None = None) -> ImportPreview:
    """A dry run of ``import``: read and check every checkpoint, infer the groups (then ``groups``' (pattern, group)
    overrides, as :func:`parse_overrides` reads them), store nothing. Raises ImportFailed (one line) on bad input."""
    paths = [str(p).strip() for p in paths if str(p).strip()]
    if not paths:
        raise ImportFailed("give a path on the server: a folder of checkpoints or checkpoint files")
    film = read_film(paths, kind, order, reverse, r, groups or None)
    files = [{"stage": f"Θ{i}", "path": str(c.path), "format": c.format, "step": c.step}
             for i, c in enumerate(film.checkpoints)]
    return ImportPreview(files, film.table(), rule_lines(), film.config.stages, film.config.format, kind)


def upload_limit_mb() -> float:
    """The largest zip the import form takes, in MB (``KNOW_IMPORT_MAX_MB``, default 500)."""
    return max_upload_bytes() / (1 << 20)


def unpack_upload(root: Root, filename: str, data: bytes) -> tuple[str, str]:
    """Extract an uploaded zip into ``RUNS/.uploads/TOKEN/`` after its checks (size limit, no ``..``, absolute or
    symlinked members); returns (the folder to import, the upload folder to remove once imported). Nothing is left
    behind when it is refused."""
    limit = max_upload_bytes()
    if len(data) > limit:
        raise ImportFailed(f"{filename} is {len(data) / (1 << 20):.1f} MB, over the {limit / (1 << 20):g} MB limit "
                           f"({MAX_MB_ENV})")
    store = RunStore(root)
    store.require_writable()
    uploads = store.root / jobs.UPLOADS
    uploads.mkdir(exist_ok=True)
    token = secrets.token_hex(6)
    archive, dest = uploads / f"{token}.zip", uploads / token
    try:
        with atomic_write(archive) as tmp:
            tmp.write_bytes(data)
        folder = extract_zip(archive, dest, limit)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        archive.unlink(missing_ok=True)
    return str(folder), str(dest)


def discard_upload(root: Root, upload: str) -> None:
    """Remove an unpacked upload that will not be imported (only a folder under ``RUNS/.uploads``)."""
    path = Path(upload).resolve()
    if path.parent == (Path(root) / jobs.UPLOADS).resolve():
        shutil.rmtree(path, ignore_errors=True)


def start_import(root: Root, paths: list[str], kind: str, order: str | None = None, reverse: bool = False,
                 r: float = 0.5, name: str | None = None, eval_spec: str | None = None, eval_timeout: float = 60.0,
                 cleanup: str | None = None, groups: list[tuple[str, str]] | None = None) -> str:
    """Import a film in a background worker (reading big films is slow); returns the job's key for
    :func:`import_status`. The worker stores the run once every checkpoint is read, checked and (with
    ``eval_spec``, ``module:function``) evaluated; nothing is stored on a refusal."""
    paths = [str(p).strip() for p in paths if str(p).strip()]
    if not paths:
        raise ImportFailed("give a path on the server: a folder of checkpoints or checkpoint files")
    ImportConfig(kind=kind, r=r, order=order or "given", reverse=reverse).validate()
    if eval_spec:
        check_spec(eval_spec)
    request = {"paths": paths, "kind": kind, "order": order, "reverse": bool(reverse), "r": float(r),
               "name": (name or "").strip() or None, "eval": (eval_spec or "").strip() or None,
               "eval_timeout": float(eval_timeout), "cleanup": cleanup, "groups": [list(g) for g in groups or []]}
    return jobs.launch_import(root, request)


def import_status(root: Root, key: str) -> dict[str, Any]:
    """The import job's ``state`` (running, with ``phase``/``done``/``total``; done, with ``run_id``; failed or
    cancelled, with ``error``; missing)."""
    return jobs.import_status(root, key)


def cancel_import(root: Root, key: str) -> None:
    jobs.cancel_import(root, key)


@dataclass
class ImportedRun:
    """An imported run as the pages draw it: its config, source layout, group table, the ``--eval`` hook's
    metrics per stage (None: the product has no loss or accuracy for this network), and its networks as one
    "seed" (the film Θ0 first, every stored prediction by method and scale; no oracles)."""

    run_id: str
    config: ImportConfig
    layout: dict[str, Any]
    table: list[dict[str, str]]
    metrics: list[dict[str, float]] | None
    weights: SeedWeights
    steps: dict[str, int] = field(default_factory=dict)  # method -> predicted steps

    @property
    def r(self) -> float:
        return float(self.config.r)

    @property
    def has_accuracy(self) -> bool:
        return self.metrics is not None


def load_imported(root: Root, run_id: str) -> ImportedRun:
    """An imported run with its predictions (every ``pred-*.safetensors`` ``predict`` stored), checked; one whose
    file is damaged is left out, and ``weights.damaged`` says why."""
    run, cfg, film = open_imported_run(RunStore(root, create=False), run_id)
    damaged: dict[str, str] = {}  # a stored prediction that cannot be read is left out, and said why
    stored = stored_predictions(run, film.states[0], damaged)
    by_method = {m: p.by_scale(cfg.r) for m, p in stored.items()}
    steps = {m: len(p.states) for m, p in stored.items()}
    accs = [m["source_acc"] for m in film.metrics] if film.metrics else []
    info = {"source_acc_stages": accs, "source_loss_stages": [m["source_loss"] for m in film.metrics or []]}
    weights = SeedWeights(0, film.groups, film.states, by_method, {}, info, damaged=damaged)
    table = run.read_csv("groups.csv") if run.has("groups.csv") else []
    return ImportedRun(run.id, cfg, film.layout, table, film.metrics, weights, steps)


def imported_backtest(run: ImportedRun, methods: list[str]) -> list[dict[str, Any]]:
    """Hide Θ0 of the imported film, predict it back from the later stages: see :func:`film_backtest`."""
    return film_backtest(run.weights, methods)


def film_backtest(sw: SeedWeights, methods: list[str]) -> list[dict[str, Any]]:
    """Hide Θ0 of any stored film (an imported run's, a forget run's, one experiment seed's), predict it back from the
    later stages: rows per group (``level`` "group") and per layer ("layer") with the relative error; a method that
    cannot run here gives one row with a ``note``."""
    n = len(sw.stages)
    traj = Trajectory(sw.stages, sw.groups, [0] * n, [0.0] * n, [0.0] * n, [0.0] * n)
    out: list[dict[str, Any]] = []
    for method in methods:
        try:
            rows, _ = backtest_weights(traj, make_predictor(method, None), 1, method)
        except (KnowError, OSError, ValueError) as exc:
            out.append({"method": method, "note": str(exc)})
            continue
        out += [{"method": r.method, "level": r.level, "group": r.group, "layer": r.layer, "weights": r.n,
                 "rel_error": r.rel_error, "cosine": r.cosine} for r in rows]
    return out


def export_imported(root: Root, run_id: str, method: str, scale: str, out: str, fmt: str | None = None) \
        -> tuple[Path, dict]:
    """Write ``method``'s prediction at ``scale`` (``×8``, ``8``) in the source's layout to the new server folder
    ``out`` (see ``export``); returns the folder and its ``know-export.json``."""
    return export_prediction(RunStore(root, create=False), run_id, method, scale, out, fmt)


def export_imported_zip(root: Root, run_id: str, method: str, scale: str, fmt: str | None = None) -> bytes:
    """The same export as a zip (the folder's files and ``know-export.json``), for a download."""
    with tempfile.TemporaryDirectory(prefix="know-export-") as tmp:
        folder, _ = export_imported(root, run_id, method, scale, str(Path(tmp) / "export"), fmt)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, path.name)
        return buffer.getvalue()


__all__ = [
    "FILM_KINDS",
    "FORMATS",
    "ImportFailed",
    "ImportPreview",
    "ImportedRun",
    "ORDERS",
    "OVERRIDE_GROUPS",
    "SIDECAR",
    "cancel_import",
    "discard_upload",
    "export_imported",
    "export_imported_zip",
    "film_backtest",
    "import_status",
    "imported_backtest",
    "inspect_import",
    "load_imported",
    "parse_overrides",
    "prediction_file",
    "start_import",
    "unpack_upload",
    "upload_limit_mb",
]
