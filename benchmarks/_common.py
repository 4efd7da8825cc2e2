"""Helpers shared by the benchmark scripts: repo on sys.path, best-of-N timing, the closing JSON line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs, in seconds: the least disturbed measurement on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def emit(figures: dict[str, Any]) -> None:
    """Print the one JSON line that ends every benchmark."""
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
