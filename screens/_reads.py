"""The run store and cached reads of runs for the pages.

Reads are cached by (run id, last update), so a finished run is read from disk once per server and a page switch
redraws from memory. A run that cannot be read shows as an error on the page, never as a traceback.
"""

from __future__ import annotations

import os

import streamlit as st

from know_core import api
from know_core.api import DEFAULT_RUNS_DIR, ExperimentResult, KnowError, RunInfo, RunStore
from screens._text import md


def runs_dir() -> str:
    return os.environ.get("KNOW_RUNS_DIR", DEFAULT_RUNS_DIR)


@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return api.open_store(root)


def store() -> RunStore:
    """The run store, or an error on the page (and a stop) when the runs directory cannot be used."""
    try:
        return _store(runs_dir())
    except KnowError as exc:
        st.error(f"Cannot open the runs directory {md(runs_dir())}: {md(exc)}")
        st.stop()


def list_runs(**filters: str) -> list[RunInfo]:
    try:
        return api.list_runs(store(), **filters)
    except KnowError as exc:
        st.error(f"Cannot read the run index: {md(exc)}")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def damage(root: str, run_id: str, updated: float) -> str | None:
    """Why a finished run cannot be read (a file missing, corrupt, too big, outside its folder or of the wrong
    shape), or None when it is whole; read once per run and update."""
    return api.damage(root, run_id)


@st.cache_data(show_spinner=False, max_entries=32)
def results(root: str, run_id: str, updated: float) -> ExperimentResult:
    """A finished experiment's results (verified against its manifest and validated), as typed objects."""
    return api.load_experiment(root, run_id)


@st.cache_resource(show_spinner=False, max_entries=6)
def _seed_weights(root: str, run_id: str, updated: float, seed: int) -> api.SeedWeights:
    return api.load_seed_weights(root, run_id, seed)


def seed_weights(root: str, run_id: str, updated: float, seed: int, notice: bool = True) -> api.SeedWeights:
    """One seed's stored networks (read once per run and update); with ``notice``, a warning on the page for each
    stored prediction that cannot be read and is left out."""
    sw = _seed_weights(root, run_id, updated, seed)
    if notice:
        damaged_predictions_notice(sw.damaged)
    return sw


def damaged_predictions_notice(damaged: dict[str, str]) -> None:
    """One warning a stored prediction whose file cannot be read: the film and the other predictions still show."""
    for method, why in sorted(damaged.items()):
        label = api.method_label(method)
        st.warning(f"The stored predictions of {md(label)} cannot be read and are left out: {md(why)}. Predict "
                   f"{md(label)} again to replace them.", icon=":material/broken_image:")


@st.cache_data(show_spinner=False, max_entries=32)
def continuation(root: str, run_id: str, updated: float, seed: int, r: float, layer: str | None) -> list[dict]:
    """Every stored prediction (and the control film) scored against the warm oracle at its scale
    (:func:`know_core.api.continuation_scores`), once per run, update, seed and layer."""
    return api.continuation_scores(_seed_weights(root, run_id, updated, seed), r, layer)


@st.cache_data(show_spinner="Backtesting every layer…", max_entries=16)
def layer_backtest_rows(run_id: str, updated: float, seed: int, methods: tuple[str, ...],
                        official_known: str | None) -> list[dict]:
    return api.layer_backtest(_seed_weights(runs_dir(), run_id, updated, seed), list(methods), official_known)


def _readable(*kinds: str) -> list[RunInfo]:
    """Finished runs of these kinds that are readable, newest first (damaged ones are listed on the Runs page with
    the reason)."""
    return [r for r in list_runs(status="done") if r.kind in kinds and damage(runs_dir(), r.id, r.updated) is None]


def experiment_runs() -> list[RunInfo]:
    """Finished experiment runs that are readable."""
    return _readable("experiment")


def film_runs() -> list[RunInfo]:
    """Finished, readable runs with a forgetting film: experiments and forget runs (from ``forget`` or
    ``record_forgetting``), newest first."""
    return _readable("experiment", "forget")


def forget_runs() -> list[RunInfo]:
    """Finished, readable forget runs (from ``forget`` or ``record_forgetting``, on a registered or the user's own
    model), newest first."""
    return _readable("forget")


def damaged_notice(runs: list[RunInfo]) -> None:
    """One error line when the URL asks for a finished run that is left out of ``runs`` because it is damaged (a file
    that no longer matches its checksum, a stored prediction that cannot be read), in place of showing another run
    without a word."""
    asked = st.query_params.get("run")
    if not asked or asked in {r.id for r in runs}:
        return
    found = next((r for r in list_runs(status="done") if r.id == asked), None)
    reason = found and damage(runs_dir(), found.id, found.updated)
    if reason:
        st.error(f"Run {md(found.name)} is damaged: {md(reason)} (the Runs page lists it).")


@st.cache_data(show_spinner=False, max_entries=32)
def film_result(root: str, run_id: str, updated: float) -> ExperimentResult:
    """An experiment's results, or a forget run read as an experiment of one seed (no predictions or oracles)."""
    return api.load_film_result(root, run_id)


def _read_or_say(read, info: RunInfo) -> ExperimentResult | None:
    """``read(root, run_id, updated)`` for ``info``, or None with one error line on the page when it is damaged."""
    try:
        return read(runs_dir(), info.id, info.updated)
    except KnowError as exc:
        st.error(f"Run {md(info.name)} is damaged: {md(exc)}")
        return None


def load_film(info: RunInfo) -> ExperimentResult | None:
    return _read_or_say(film_result, info)


def load_results(info: RunInfo) -> ExperimentResult | None:
    return _read_or_say(results, info)
