"""Runs page: every stored run — filter, rename, delete, export results and predicted weights."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    BASELINE,
    KnowError,
    collapse_verdicts,
    delete,
    fmt,
    load_forget_run,
    method_label,
    protocol_line,
    rename,
    resume,
    stored_headline,
)
from screens._common import (
    PAGES,
    damage,
    list_runs,
    load_results,
    md,
    runs_dir,
    seed_weights,
    show_figure,
    store,
    sync_url,
    url_list,
    welcome,
)
from screens._imported import runs_view as imported_view
from screens._importform import import_form
from screens._predictform import predict_form
from screens._presentation import prose

PAGE = {"title": "Runs", "icon": ":material/folder_open:", "order": 70}  # read by screens._routing unrun

STATUSES = ["running", "done", "damaged", "failed", "cancelled"]
KINDS = ["experiment", "forget", "imported", "sweep"]

st.title("Runs")
prose(
    "Every run stored in the runs directory: **experiment** runs (the whole KNOW pipeline, launched from the "
    "Experiments page), **forget** runs (a forgetting trajectory alone, from the command line) and **imported** films "
    "(your own checkpoints: import one below). A run whose files "
    "no longer match their checksums is listed as *damaged*, with the reason. Pick one to rename it, delete it, or "
    "download its results and predicted weights.")

FLASH = "runs-flash"  # what the last rename or delete did, shown once after the rerun it triggers
if st.session_state.get(FLASH):
    st.success(st.session_state.pop(FLASH))

with st.expander("Import a film", icon=":material/upload:", expanded=bool(st.session_state.get("runs-import-job"))):
    import_form()

runs = list_runs()
if not runs:
    welcome()
    st.stop()


def status_of(info) -> tuple[str, str]:
    if info.status == "done":
        reason = damage(runs_dir(), info.id, info.updated)
        if reason:
            return "damaged", reason
    return info.status, info.error or ""


rows = []
for info in runs:
    status, reason = status_of(info)
    cfg = info.config.get("source", info.config)
    rows.append({"id": info.id, "name": info.name, "kind": info.kind, "status": status, "note": reason,
                 "created": dt.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M"),
                 "preset": info.config.get("preset", ""), "dataset": cfg.get("dataset"), "model": cfg.get("model"),
                 "r": cfg.get("r"), "stages": cfg.get("stages"), "forgot": info.summary.get("forgot")})
table = pd.DataFrame(rows)

c1, c2, c3 = st.columns([2, 1, 2])
if "runs-q" not in st.session_state:
    st.session_state["runs-q"] = st.query_params.get("q", "")
    st.session_state["runs-kind"] = url_list("kind", [], KINDS)
    st.session_state["runs-status"] = url_list("status", [], STATUSES)
query = c1.text_input("Filter by name or id", key="runs-q")
kinds = c2.multiselect("Kind", KINDS, key="runs-kind")
statuses = c3.multiselect("Status", STATUSES, key="runs-status")
shown = table
if query:
    shown = shown[shown["name"].str.contains(query, case=False, regex=False)
                  | shown["id"].str.contains(query, case=False, regex=False)]
if kinds:
    shown = shown[shown["kind"].isin(kinds)]
if statuses:
    shown = shown[shown["status"].isin(statuses)]
st.dataframe(fmt.labelled(shown, keep=("id", "name", "created")), hide_index=True, width="stretch")
if shown.empty:
    sync_url(q=query, kind=kinds, status=statuses, run=None)
    st.info("No run matches these filters.")
    st.stop()

ids = list(shown["id"])
if st.session_state.get("runs-pick") not in ids:
    wanted = st.query_params.get("run") or st.session_state.get("current_run")
    st.session_state["runs-pick"] = wanted if wanted in ids else ids[0]
run_id = st.selectbox("Run", ids, key="runs-pick",
                      format_func=lambda i: f"{table.set_index('id').loc[i, 'name']} ({i})")
sync_url(q=query, kind=kinds, status=statuses, run=run_id)
info = next(r for r in runs if r.id == run_id)
status, reason = status_of(info)
if status == "done":
    st.session_state["current_run"] = run_id
st.markdown(f"**{md(stored_headline(runs_dir(), run_id))}**")  # this run's answer before its details

a, b = st.columns([3, 1])
with a.form("rename"):
    new_name = st.text_input("Name", value=info.name)
    if st.form_submit_button("Rename"):
        if not new_name.strip():
            st.error("Name: give a non-empty name.")
        else:
            try:
                rename(store(), run_id, new_name.strip())
            except KnowError as exc:
                st.error(md(exc))
            else:
                st.session_state[FLASH] = f"Renamed {md(info.name)} to {md(new_name.strip())}."
                st.rerun()


@st.dialog("Delete this run?")
def confirm_delete(run_id: str, name: str, force: bool = False) -> None:
    st.write(f"**{md(name)}** (`{run_id}`) and all its files will be removed from disk. This cannot be undone.")
    if force:
        st.warning("It is listed as running, but its owner is on another host or its record cannot be trusted. "
                   "Delete it only if that process is gone (a live process on this host is never deleted).")
    if st.button("Delete for good", type="primary", key="runs-delete-yes"):
        try:
            delete(store(), run_id, force=force)
        except KnowError as exc:
            st.error(md(exc))
            return
        st.session_state.pop("runs-pick", None)
        st.session_state.pop("current_run", None)
        st.session_state[FLASH] = f"Deleted {md(name)} ({md(run_id)}) and its files."
        st.rerun()


with b:
    st.write("")
    if st.button("Delete…", icon=":material/delete:", key="runs-delete",
                 disabled=info.status == "running"):
        confirm_delete(run_id, info.name)
    if info.status == "running":
        st.caption("Cancel it on the Experiments page first.")
        if st.button("Delete anyway…", key="runs-force-delete", help="for a run whose owner is on another host or "
                     "whose record cannot be trusted (runs delete ID --force)"):
            confirm_delete(run_id, info.name, force=True)
    if status in ("failed", "cancelled") and st.button("Resume", icon=":material/replay:", key="runs-resume",
                                                       help="Experiments continue from their finished seeds; a "
                                                            "forget run is run again from its config."):
        try:
            resume(runs_dir(), run_id)
        except KnowError as exc:
            st.error(md(exc))
        else:
            st.switch_page(PAGES["experiments"]) if info.kind == "experiment" else st.rerun()

if status == "damaged":
    st.error(f"This run is damaged: {md(reason)}")
    st.stop()
if status in ("failed", "cancelled"):
    st.warning(f"This run is {status}" + (f": {md(reason)}" if reason else "."))
    st.stop()
if status == "running":
    st.info("Still running — watch it on the Experiments page.")
    st.page_link(PAGES["experiments"], label="Experiments", icon=":material/play_circle:")
    st.stop()


def forget_run_view() -> None:
    try:
        run = load_forget_run(runs_dir(), run_id)
    except KnowError as exc:
        st.error(f"This run is damaged: {md(exc)}")
        return
    cfg, traj = run.config, run.trajectory
    st.caption(protocol_line(cfg))
    fig = go.Figure(go.Scatter(
        x=list(range(len(traj.source_acc))), y=traj.source_acc, mode="lines+markers", name="source test accuracy",
        customdata=traj.stage_sizes,
        hovertemplate="stage %{x}<br>|D_s| = %{customdata}<br>accuracy %{y:.4f}<extra></extra>"))
    fig.update_layout(title=f"Source accuracy along the forgetting stages ({cfg.dataset}, {cfg.model}, r={cfg.r})",
                      xaxis_title="stage s (training samples |D_s| = |D0|·r^s, on hover)",
                      yaxis_title="source test accuracy (fraction)", xaxis=dict(dtick=1))
    show_figure(fig, "runs-forget-accuracy")
    (st.success if traj.forgot else st.warning)(traj.verdict())
    st.subheader("Predict")
    control = traj.control.states if traj.control else []
    predict_form(run_id, len(traj.states), cfg.r, "runs-forget", has_embed="embed" in traj.groups.values(),
                 has_control=len(control) >= len(traj.states) - 1)
    try:
        sw = seed_weights(runs_dir(), run_id, info.updated, cfg.seed)
    except KnowError as exc:
        st.error(f"The predictions stored in this run cannot be read: {md(exc)}")
        return
    if not sw.predictions:
        return
    st.subheader("Predicted weights")
    st.caption("Each stored prediction as a safetensors file (load with `safetensors.torch.load_file`); the "
               "Trajectory page sets it beside the warm oracle at its scale.")
    choices = [(m, s) for m, by in sw.predictions.items() for s in sorted(by)]
    c1, c2 = st.columns([2, 1])
    method, scale = c1.selectbox("Network", choices, key="runs-forget-net",
                                 format_func=lambda c: f"{method_label(c[0])} {fmt.scale(c[1])}")
    with c2:
        st.write("")
        st.download_button("Download (safetensors)", data=lambda: weights_bytes(cfg.seed, method, scale),
                           file_name=f"{run_id}-{method}-x{scale:g}.safetensors", mime="application/octet-stream",
                           icon=":material/download:", on_click="ignore", key="runs-forget-download")


def weights_bytes(seed: int, method: str, scale: float) -> bytes:
    from safetensors.torch import save

    sw = seed_weights(runs_dir(), run_id, info.updated, seed, notice=False)  # a download: no page to warn on
    state = sw.stages[0] if method == BASELINE else (sw.oracles[scale] if method == "oracle"
                                                    else sw.predictions[method][scale])
    meta = {"run": run_id, "method": method, "scale": f"{scale:g}", "seed": str(seed)}
    return save({k: v.contiguous() for k, v in state.items()}, metadata=meta)


def experiment_view() -> None:
    res = load_results(info)
    if res is None:
        return
    st.caption(protocol_line(res.config))
    rows_df = pd.DataFrame(res.rows)
    st.subheader("Results")
    st.dataframe(fmt.labelled(rows_df, keep=("seed",)), hide_index=True, width="stretch")
    st.download_button("Download all result rows (CSV)", rows_df.to_csv(index=False), f"{run_id}-results.csv",
                       "text/csv", icon=":material/download:", on_click="ignore")
    for line in collapse_verdicts(res.verdicts):
        st.markdown(f"- {md(line)}")
    st.subheader("Predicted weights")
    st.caption("Any stored network of this run as a safetensors file (load with `safetensors.torch.load_file`).")
    seeds = res.seeds
    c1, c2, c3 = st.columns(3)
    seed = c1.selectbox("Seed", seeds, key="runs-w-seed")
    try:
        sw = seed_weights(runs_dir(), run_id, info.updated, seed)
    except KnowError as exc:
        st.error(f"The weights of this run cannot be read: {md(exc)}")
        return
    choices = [(BASELINE, 1.0)] + [(m, s) for m, by in sw.predictions.items() if m != BASELINE for s in sorted(by)]
    choices += [("oracle", s) for s in sorted(sw.oracles)]
    method, scale = c2.selectbox("Network", choices, key="runs-w-net",
                                 format_func=lambda c: f"Θ0 ({BASELINE})" if c[0] == BASELINE
                                 else f"{c[0]} {fmt.scale(c[1])}")
    with c3:
        st.write("")
        st.download_button("Download (safetensors)", data=lambda: weights_bytes(seed, method, scale),
                           file_name=f"{run_id}-seed{seed}-{method}-x{scale:g}.safetensors",
                           mime="application/octet-stream", icon=":material/download:", on_click="ignore")


if info.kind == "forget":
    forget_run_view()
elif info.kind == "imported":
    imported_view(info)
elif info.kind == "sweep":
    st.info("A sweep: its cells are the experiment runs named after it; its heatmaps are on the Sweeps page.")
    if "sweeps" in PAGES:
        st.page_link(PAGES["sweeps"], label="Sweeps", icon=":material/grid_on:")
else:
    experiment_view()
