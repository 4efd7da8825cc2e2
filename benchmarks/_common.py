"""Helpers shared by the benchmark scripts: best-of-N timing, the closing JSON line.

The scripts import ``know_core`` as an installed package (``scripts/setup.sh`` installs it in editable mode)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

from know_core.common.fsio import write_json


def best_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs, in seconds: the least disturbed measurement on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


RESULTS = Path(__file__).resolve().parent / "results"


def rounded(value: float) -> float:
    """``value`` to 4 decimals, or to 4 significant digits where that keeps more (a 7.5e-8 difference stays)."""
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, max(4, 3 - math.floor(math.log10(abs(value)))))


def previous() -> dict[str, Any]:
    """The figures this script last kept in ``results/<script>.json`` (empty when there are none)."""
    path = RESULTS / f"{Path(sys.argv[0]).stem}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def emit(figures: dict[str, Any], name: str | None = None) -> None:
    """Print the one JSON line that ends every benchmark, and keep it in ``results/<name>.json`` (default: the
    script's name; with the date) so that every figure quoted in the README can be traced to a run."""
    line = {k: rounded(v) if isinstance(v, float) else v for k, v in figures.items()}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / f"{name or Path(sys.argv[0]).stem}.json", {"measured": time.strftime("%Y-%m-%d %H:%M"),
                                                                     **line})
    print(json.dumps(line))
