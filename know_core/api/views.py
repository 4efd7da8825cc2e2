"""What the pages draw, computed from typed runs: PCA pictures and per-weight curves of a seed's networks, forgetting
films, method comparisons (aggregates over seeds, layer backtests), retrodiction summaries and the labels they use.
The computations live in :mod:`know_core.experiment.panels`, :mod:`know_core.experiment.pca`,
:mod:`know_core.experiment.analysis` and
:mod:`know_core.experiment.landscape`; this module is their one doorway."""

from __future__ import annotations

from typing import Any

from know_core.experiment.analysis import aggregate, invalid_methods, layer_backtest
from know_core.experiment.landscape import contour_key
from know_core.experiment.panels import (
    continuation_scores,
    film_frames,
    natural_key,
    protocol_line,
    retrodiction_summary,
    scale_label,
    scale_ticks,
    stage_tick_labels,
)
from know_core.experiment.panels import film_panel as _film_panel
from know_core.experiment.pca import pca_view, weight_curves
from know_core.experiment.probe import FROZEN_MODEL, frozen_response, reads_tensors
from know_core.experiment.seedweights import layers
from know_core.experiment.transfer import format_transfer, load_transfer, transfer_rows

from .results import SeedTrajectory


def film_panel(film: SeedTrajectory, r: float) -> dict[str, Any]:
    """Everything the forgetting panel draws for one seed (see :func:`know_core.experiment.panels.film_panel`)."""
    return _film_panel(film.record, r)


__all__ = [
    "aggregate",
    "contour_key",
    "continuation_scores",
    "film_frames",
    "film_panel",
    "FROZEN_MODEL",
    "frozen_response",
    "invalid_methods",
    "layer_backtest",
    "layers",
    "natural_key",
    "pca_view",
    "protocol_line",
    "reads_tensors",
    "retrodiction_summary",
    "scale_label",
    "scale_ticks",
    "stage_tick_labels",
    "transfer_rows",
    "format_transfer",
    "load_transfer",
    "weight_curves",
]
