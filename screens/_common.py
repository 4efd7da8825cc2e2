"""What every page shares, in one import: the run store and cached reads (:mod:`screens._reads`), Markdown-safe
text (:mod:`screens._text`), URL-backed widget state (:mod:`screens._url`), figures and their export
(:mod:`screens._figures`), the first open (:mod:`screens._welcome`), where the pages live (:mod:`screens._routing`)
(method colours and labels come from the façade, ``know_core.api``).

The server process itself never trains: jobs run in ``know_core.jobs.worker`` processes, and the few numbers computed
here
(PCA of a few dozen points) use one thread so they never fight a worker for the cores.
"""

from __future__ import annotations

import torch

from screens._figures import kaleido_ready, scale_axis, show_figure
from screens._reads import (
    continuation,
    damage,
    damaged_notice,
    experiment_runs,
    film_runs,
    forget_runs,
    layer_backtest_rows,
    list_runs,
    load_film,
    load_results,
    runs_dir,
    seed_weights,
    store,
)
from screens._routing import PAGES, REPO
from screens._text import legend_name, md, run_label
from screens._url import pick_run, pick_runs, sync_url, url_list, url_value
from screens._welcome import finished_or_welcome, welcome

torch.set_num_threads(1)


__all__ = [
    "PAGES",
    "REPO",
    "continuation",
    "damage",
    "damaged_notice",
    "experiment_runs",
    "film_runs",
    "finished_or_welcome",
    "forget_runs",
    "kaleido_ready",
    "layer_backtest_rows",
    "legend_name",
    "list_runs",
    "load_film",
    "load_results",
    "md",
    "pick_run",
    "pick_runs",
    "run_label",
    "runs_dir",
    "scale_axis",
    "seed_weights",
    "show_figure",
    "store",
    "sync_url",
    "url_list",
    "url_value",
    "welcome",
]
