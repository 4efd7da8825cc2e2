"""The Experiments page's live job cards: one card per experiment, with its progress, Cancel and its verdict."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from know_core.api import KnowError, cancel, fmt, reconcile, run_headline, watch
from screens._common import list_runs, load_results, md, runs_dir
from screens._live import live_panel, note_running
from screens._presentation import prose


def _phase_table(phases: list[dict]) -> pd.DataFrame:
    now = time.time()
    return pd.DataFrame(
        [
            {
                "phase": p["phase"],
                "steps": f"{p['done']}/{p['total']}",
                "seconds": round((p["ended"] or now) - p["started"], 1),
            }
            for p in phases
        ]
    )


def job_card(p: dict, info) -> None:
    status = p["status"]
    with st.container(border=True):
        head, button = st.columns([5, 1])
        head.markdown(f"**{md(p['name'])}** · `{p['run_id']}` · **{status}**")
        if status == "running":
            frac = float(p.get("fraction") or 0.0)
            seeds = f"seed {min(p.get('seeds_done', 0) + 1, p.get('seeds_total', 1))} of {p.get('seeds_total', 1)}"
            st.progress(frac, text=f"overall ≈ {frac:.0%} · {seeds}")
            total = max(int(p.get("total") or 0), 1)
            metrics = ", ".join(f"{k.replace('_', ' ')} {fmt.num(v)}" for k, v in (p.get("metrics") or {}).items())
            st.progress(
                min(int(p.get("done") or 0) / total, 1.0),
                text=f"{p.get('phase')}: {p.get('done')}/{p.get('total')} steps" + (f" · {metrics}" if metrics else ""),
            )
            if p.get("cancel_requested"):
                button.caption("cancelling…")
            elif button.button("Cancel", key=f"cancel-{p['run_id']}", icon=":material/stop_circle:"):
                try:
                    cancel(runs_dir(), p["run_id"])
                except KnowError as exc:
                    st.error(str(exc))
                st.rerun(scope="fragment")
        elif status == "done":
            st.success(md(run_headline(load_results(info))))  # the verdict first, the pages for the detail
            st.caption("See it on the Trajectory, Compare and Scaling pages.")
        else:
            st.caption(md(p.get("error") or ""))
        if p.get("phases"):
            with st.expander("Stages so far"):
                st.dataframe(_phase_table(p["phases"]), hide_index=True, width="stretch")


def jobs_panel() -> None:
    try:
        reconcile(runs_dir())
        runs = list_runs(kind="experiment")[:8]
        reports = [watch(runs_dir(), r.id) for r in runs]
    except KnowError as exc:
        st.error(f"Cannot read the jobs: {md(exc)}")
        return
    note_running("experiment", any(p["status"] == "running" for p in reports))
    if not reports:
        st.caption("No experiment launched yet.")
    for p, info in zip(reports, runs):
        job_card(p, info)


def jobs_section() -> None:
    st.subheader("Jobs")
    prose("Live: refreshed every second while a job runs. Jobs keep running when you close the page.", caption=True)
    live_panel("experiment", jobs_panel, every=1.0)
