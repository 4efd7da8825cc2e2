"""A sweep's own files read like a run's: bounded, then checked against their schema, else ``damaged: file: reason``.

``sweep.json`` is read under the JSON size limit and checked against ``know-sweep/1``: the spec parses, the cells are
the spec's grid in order (``c000``, ``c001``, …) with run ids that name experiment runs of this runs directory, and
every unit belongs to a cell, a seed of the spec and a known status. ``results.parquet`` is bounded in bytes and in rows
(at most :data:`ROWS_PER_UNIT` per unit) and its footer is checked before a row is read: the columns every reader
needs, text where text belongs and numbers everywhere else; once read, its cells, runs and seeds must be the sweep's.
``results.csv`` (written for people, read by nobody here) is bounded and its header must match. A damaged table is
rebuilt from the cells' runs, which are the source of truth (:func:`rebuild_table`, ``runs reindex``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd

from know_core.common.errors import KnowError, RunStoreError
from know_core.common.fsio import atomic_write
from know_core.store.kinds import register_run_kind
from know_core.store.loaders import Damaged, inside, read_json
from know_core.store.runfolder import Run
from know_core.store.runstore import check_run_id
from know_core.sweep.spec import SweepSpec
from know_core.sweep.table import sweep_table

from .table import TABLE_CSV, TABLE_PARQUET

SWEEP_FILE, FORMAT = "sweep.json", "know-sweep/1"
UNIT_STATUSES = ("pending", "running", "done", "skipped", "failed", "cancelled")
TABLE_BYTES = 512 << 20
ROWS_PER_UNIT = 1000  # a seed's rows: one per method × scale (plus controls); far fewer in practice
NEEDED = ("cell", "run_id", "seed", "method", "scale", "k", "forgot")  # what the heatmap and the report read
TEXT = ("cell", "run_id", "method", "pattern", "kind")


def _fail(where: str, what: str) -> Damaged:
    return Damaged(SWEEP_FILE, f"{where}: {what}"[:300])


def _text(value: Any, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _fail(where, f"expected text, got {type(value).__name__}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"expected a non-negative integer, got {str(value)[:40]!r}")
    return value


def check_state(data: Any) -> dict[str, Any]:
    """``data`` (parsed ``sweep.json``) when it has the ``know-sweep/1`` shape, else Damaged naming the field."""
    if not isinstance(data, dict):
        raise _fail("(top)", f"expected a mapping, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise Damaged(SWEEP_FILE, f"written by an incompatible version (format {str(data.get('format'))[:40]!r}; "
                                  f"this version reads {FORMAT})")
    _text(data.get("name"), "name")
    try:
        spec = SweepSpec.from_dict(data.get("spec") if isinstance(data.get("spec"), dict) else {})
    except (KnowError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _fail("spec", str(exc)) from None
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise _fail("cells", f"expected a list, got {type(cells).__name__}")
    n_cells = math.prod(len(v) for _, v in spec.axes)
    if len(cells) != n_cells:
        raise _fail("cells", f"{len(cells)} cells, but the spec's grid has {n_cells}")
    runs: set[str] = set()
    for i, cell in enumerate(cells):
        where = f"cells[{i}]"
        if not isinstance(cell, dict):
            raise _fail(where, f"expected a mapping, got {type(cell).__name__}")
        if cell.get("key") != f"c{i:03d}":
            raise _fail(f"{where}.key", f"expected 'c{i:03d}', got {str(cell.get('key'))[:40]!r}")
        _text(cell.get("label"), f"{where}.label")
        if not isinstance(cell.get("values"), dict):
            raise _fail(f"{where}.values", "expected a mapping")
        if not isinstance(cell.get("notes", []), list) or not all(isinstance(n, str) for n in cell.get("notes", [])):
            raise _fail(f"{where}.notes", "expected a list of text")
        _text(cell.get("error"), f"{where}.error", optional=True)
        run_id = cell.get("run_id")
        if run_id is not None:
            try:
                check_run_id(run_id)
            except RunStoreError:
                raise _fail(f"{where}.run_id", f"{str(run_id)[:80]!r} is not a run id inside the runs "
                                               "directory") from None
            if run_id in runs:
                raise _fail(f"{where}.run_id", f"{run_id} is the run of another cell too")
            runs.add(run_id)
    units = data.get("units")
    if not isinstance(units, dict):
        raise _fail("units", f"expected a mapping, got {type(units).__name__}")
    for key, unit in units.items():
        where = f"units.{str(key)[:40]}"
        if not isinstance(unit, dict):
            raise _fail(where, f"expected a mapping, got {type(unit).__name__}")
        if unit.get("status") not in UNIT_STATUSES:
            raise _fail(f"{where}.status", f"unknown status {str(unit.get('status'))[:40]!r} (one of "
                                           f"{', '.join(UNIT_STATUSES)})")
        if key != f"{unit.get('cell')}/seed-{unit.get('seed')}":
            raise _fail(where, "its cell and seed do not match its name")
        _int(unit.get("attempts"), f"{where}.attempts")
        _text(unit.get("error"), f"{where}.error", optional=True)
    for i, cell in enumerate(cells):
        for seed in spec.seeds if cell.get("error") is None else ():
            if f"c{i:03d}/seed-{seed}" not in units:
                raise _fail("units", f"cell c{i:03d} has no unit for seed {seed}")
    if not isinstance(data.get("runs", []), list):
        raise _fail("runs", "expected a list")
    return data


def read_state(store, sweep_id: str) -> dict[str, Any]:
    """The checked ``sweep.json`` of a sweep folder, with its cells' runs found in ``store`` as experiment runs."""
    try:
        state = check_state(read_json(store.root / sweep_id, SWEEP_FILE))
        kinds = store.kinds()
        for i, cell in enumerate(state["cells"]):
            run_id = cell["run_id"]
            if run_id is not None and kinds.get(run_id) != "experiment":
                found = f"a {kinds[run_id]} run" if run_id in kinds else "not in this runs directory"
                raise _fail(f"cells[{i}].run_id", f"run {run_id} is {found}")
    except Damaged as exc:
        raise exc.for_run(sweep_id) from None
    return state


def _open(folder: Path, name: str):
    """The file opened for reading after the bounded checks (no symlink, a regular file, under TABLE_BYTES); None
    when absent."""
    path = inside(folder, name, TABLE_BYTES, must_exist=False)
    if path is None:
        return None
    try:
        fh = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)), "rb")
    except OSError as exc:
        raise Damaged(name, f"cannot be opened ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise Damaged(name, "is not a regular file")
    return fh


def _columns(schema, axes: list[str]) -> None:
    import pyarrow as pa

    names = list(schema.names)
    missing = [c for c in (*NEEDED, *axes) if c not in names]
    if missing:
        raise Damaged(TABLE_PARQUET, f"lacks the column(s) {', '.join(missing)[:200]}")
    if len(set(names)) != len(names):
        raise Damaged(TABLE_PARQUET, "names a column twice")
    for field in schema:
        t, text = field.type, pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        number = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
        ok = (pa.types.is_integer(t) if field.name == "seed" else text or pa.types.is_null(t)
              if field.name in TEXT else text or number if field.name in axes else number)
        if not ok:
            wanted = "integers" if field.name == "seed" else "text" if field.name in TEXT else "numbers"
            raise Damaged(TABLE_PARQUET, f"column {field.name[:60]!r} holds {t}, not {wanted}")


def _parquet(folder: Path, state: dict[str, Any]):
    """(open file, ParquetFile) after the byte, row and column checks; None when there is no table yet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fh = _open(folder, TABLE_PARQUET)
    if fh is None:
        return None
    try:
        table = pq.ParquetFile(fh)
        rows, bound = table.metadata.num_rows, max(len(state["units"]), 1) * ROWS_PER_UNIT
        if rows > bound:
            raise Damaged(TABLE_PARQUET, f"holds {rows:,} rows, more than the {bound:,} its "
                                         f"{len(state['units'])} unit(s) can produce")
        if rows:
            _columns(table.schema_arrow, [k for k, _ in state["spec"]["axes"]])
        return fh, table
    except (pa.ArrowException, OSError, ValueError) as exc:
        fh.close()
        raise Damaged(TABLE_PARQUET, f"not a readable Parquet table ({str(exc).splitlines()[0][:120]})") from None
    except BaseException:
        fh.close()
        raise


def _csv_header(folder: Path, columns: list[str]) -> None:
    fh = _open(folder, TABLE_CSV)
    if fh is None:
        return
    with fh:
        head = fh.read(1 << 16).split(b"\n", 1)[0]
    try:
        header = next(csv.reader(io.StringIO(head.decode("utf-8"))), [])
    except (UnicodeDecodeError, csv.Error):
        header = None
    if columns and header != columns:
        raise Damaged(TABLE_CSV, "its header does not match results.parquet's columns")


def table_damage(store, sweep_id: str, state: dict[str, Any]) -> None:
    """Raise Damaged when the sweep's written table is not one this version can read (checks the footer only)."""
    try:
        opened = _parquet(store.root / sweep_id, state)
        if opened is not None:
            fh, table = opened
            with fh:
                columns = list(table.schema_arrow.names) if table.metadata.num_rows else []
            _csv_header(store.root / sweep_id, columns)
    except Damaged as exc:
        raise exc.for_run(sweep_id) from None


def read_table(store, sweep_id: str, state: dict[str, Any]):
    """The written ``results.parquet`` as a DataFrame after every check, or None when there is none yet."""
    import pyarrow as pa

    try:
        opened = _parquet(store.root / sweep_id, state)
        if opened is None:
            return None
        fh, _ = opened
        with fh:
            fh.seek(0)
            try:
                table = pd.read_parquet(fh)
            except (pa.ArrowException, OSError, ValueError, MemoryError) as exc:
                raise Damaged(TABLE_PARQUET, f"not a readable Parquet table ({str(exc)[:120]})") from None
        if not table.empty:
            _values(table, state)
        return table
    except Damaged as exc:
        raise exc.for_run(sweep_id) from None


def _values(table, state: dict[str, Any]) -> None:
    for col, allowed, what in (("cell", {c["key"] for c in state["cells"]}, "a cell of this sweep"),
                               ("run_id", {c["run_id"] for c in state["cells"]} - {None}, "a run of its cells"),
                               ("seed", set(state["spec"]["seeds"]), "a seed of this sweep")):
        stray = set(table[col].dropna().tolist()) - allowed
        if stray or table[col].isna().any():
            shown = str(sorted(map(str, stray))[0])[:60] if stray else "nothing"
            raise Damaged(TABLE_PARQUET, f"column {col!r} holds {shown!r}, not {what}")
    pairs = table[["cell", "run_id"]].drop_duplicates()
    owner = {c["key"]: c["run_id"] for c in state["cells"]}
    if any(owner.get(c) != r for c, r in pairs.itertuples(index=False)):
        raise Damaged(TABLE_PARQUET, "a row's run is not its cell's run")


_VERDICTS: dict[tuple, str | None] = {}


def _signature(folder: Path) -> tuple:
    out = [str(folder)]
    for name in (SWEEP_FILE, TABLE_PARQUET, TABLE_CSV):
        try:
            st = os.lstat(folder / name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode))
        except OSError:
            out.append(None)
    return tuple(out)


def sweep_damage(store, sweep_id: str) -> str | None:
    """Why a sweep that is not running cannot be read (``run ID: damaged: file: reason``), or None; the files are
    parsed once per change (the check against the index runs each time)."""
    key = _signature(store.root / sweep_id)
    try:
        state = read_state(store, sweep_id)
        if key not in _VERDICTS:
            table_damage(store, sweep_id, state)
    except Damaged as exc:
        return str(exc)
    if len(_VERDICTS) > 256:
        _VERDICTS.clear()
    _VERDICTS[key] = None
    return None


def rebuild_table(store, sweep_id: str) -> int:
    """Write the sweep's table again from its cells' runs (the source of truth), recording the new files in its
    manifest when it has one; returns the number of rows. A damaged ``sweep.json`` cannot be rebuilt (raises)."""
    state = read_state(store, sweep_id)
    table = sweep_table(store, state)
    folder = store.root / sweep_id
    writers = {TABLE_PARQUET: lambda tmp: table.to_parquet(tmp, index=False),
               TABLE_CSV: lambda tmp: table.to_csv(tmp, index=False)}
    run = Run(folder, "sweep") if (folder / "manifest.json").exists() else None
    for name, write in writers.items():
        if run is not None:
            run.write_artifact(name, write)
        else:
            with atomic_write(folder / name) as tmp:
                write(tmp)
    return len(table)


register_run_kind("sweep", lambda data: SweepSpec.from_dict(data["sweep"] if isinstance(data, dict) else None),
                  "a sweep: a grid of experiments over some axes", damage=sweep_damage)
