"""Runs page: every stored run, and the per-stage source accuracy of one forgetting trajectory."""

import os

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.errors import KnowError
from know_core.runs import open_forget_run
from know_core.store import DEFAULT_RUNS_DIR, RunStore

st.title("Runs")
st.caption("KNOW fine-tunes a pre-trained network Θ0 on ever smaller nested subsets of its data and records how its "
           "weights forget. Each run below is one such film; pick one to see how source accuracy moved along it. "
           "Forgetting means accuracy *falls* from Θ0 to the last stage — without it, KNOW's premise fails.")

runs_dir = os.environ.get("KNOW_RUNS_DIR", DEFAULT_RUNS_DIR)
try:
    store = RunStore(runs_dir)
    runs = store.list_runs()
except KnowError as exc:
    st.error(f"Cannot open the runs directory: {exc}")
    st.stop()

if not runs:
    st.info(f"No runs in `{runs_dir}` yet. Record one with\n\n"
            "`python -m know_core forget --dataset digits --model simple_cnn`")
    st.stop()

table = pd.DataFrame([{"run": r.id, "name": r.name, "status": r.status, "dataset": r.config.get("dataset"),
                       "model": r.config.get("model"), "r": r.config.get("r"), "stages": r.config.get("stages"),
                       "forgot": r.summary.get("forgot")} for r in runs])
st.dataframe(table, hide_index=True, width="stretch")

done = [r for r in runs if r.status == "done"]
if not done:
    st.info("No finished run to show yet.")
    st.stop()
run_id = st.selectbox("Run", [r.id for r in done], format_func=lambda i: next(r.name for r in done if r.id == i))
try:
    _, cfg, traj = open_forget_run(store, run_id)
except KnowError as exc:
    st.error(f"This run is damaged: {exc}")
    st.stop()

fig = go.Figure(go.Scatter(
    x=list(range(len(traj.source_acc))), y=traj.source_acc, mode="lines+markers", name="source test accuracy",
    customdata=traj.stage_sizes, hovertemplate="stage %{x}<br>|D_s| = %{customdata}<br>accuracy %{y:.4f}<extra></extra>"))
fig.update_layout(title=f"Source accuracy along the forgetting stages ({cfg.dataset}, {cfg.model}, r={cfg.r})",
                  xaxis_title="stage s (training samples |D_s| = |D0|·r^s, on hover)",
                  yaxis_title="source test accuracy (fraction)", xaxis=dict(dtick=1))
st.plotly_chart(fig, width="stretch")
(st.success if traj.forgot else st.warning)(traj.verdict())
