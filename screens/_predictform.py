"""The "Predict" form of a stored film (an imported film or a forget run, on the Trajectory and Runs pages): pick a
method, its options (those the registry declares, as the command's ``--lam``, ``--weights`` …) and how far to go (×2,
×4 …), and a background worker stores its predictions in the run (as ``predict --run``
does), its progress and Cancel shown here. The stored prediction moves the run's update time, so the page's cached
reads of the run are redone and the new method appears in its charts and lists."""

from __future__ import annotations

import streamlit as st

from know_core.api import (
    MAX_PREDICT_STEPS,
    KnowError,
    cancel_predict,
    method_label,
    predict_choices,
    predict_status,
    start_predict,
)
from screens._common import md, runs_dir

DONE = "predict-done"  # the last finished prediction's line, shown once after the rerun that shows it


def _job(run_id: str) -> str:
    return f"predict-job-{run_id}"


def predict_form(run_id: str, stages: int, r: float, where: str, has_embed: bool = False,
                 has_control: bool = False) -> None:
    """The form (or the running job's progress) for the stored film ``run_id`` of ``stages`` stages and ratio ``r``;
    ``where`` keeps the widget keys of two pages apart. Embeddings and drift correction are offered where the film
    has them (``has_embed``: an embed group; ``has_control``: a control film)."""
    done = st.session_state.get(DONE)
    if done and done[0] == run_id:
        st.success(done[1])
    job = st.session_state.get(_job(run_id))
    if job:
        predict_progress(job, run_id)
        return
    choices = {c["method"]: c for c in predict_choices(stages)}
    usable = [m for m, c in choices.items() if c["reason"] is None]
    c1, c2 = st.columns(2)
    method = c1.selectbox("Method", list(choices), key=f"{where}-pred-method",
                          index=list(choices).index(usable[0]) if usable else 0,
                          format_func=lambda m: choices[m]["label"] + (" (cannot run here)" if choices[m]["reason"]
                                                                       else ""))
    steps = c2.select_slider("Predict up to", list(range(1, MAX_PREDICT_STEPS + 1)), value=3, key=f"{where}-pred-k",
                             format_func=lambda k: f"×{(1 / r) ** k:g}",
                             help="K rolled steps: predictions for ×(1/r), ×(1/r)² … ×(1/r)^K the data of Θ0")
    # the switches in a row of their own: in a narrow third column a projector's 1024 px cut them to "reset norma…"
    flags = iter(st.columns(1 + has_embed + has_control))
    reset = next(flags).checkbox("reset normalisation", key=f"{where}-pred-reset",
                                 help="reset normalisation layers as the official release does (default: keep Θ0's)")
    embed = has_embed and next(flags).checkbox("predict embeddings", key=f"{where}-pred-embed",
                                               help="predict positional embeddings and class tokens with the fc "
                                                    "weights")
    drift = has_control and next(flags).checkbox("drift correction", key=f"{where}-pred-dc",
                                                 help="predict from the film with the control film's drift removed; "
                                                      "stored as '<method>+dc'")
    options = {}
    if choices[method]["options"]:
        with st.expander(f"Options of {choices[method]['label']}"):
            options = option_inputs(choices[method]["options"], f"{where}-pred-opt-{method}")
    reason = choices[method]["reason"]
    if reason and choices[method]["missing_checkpoint"] and any(
            o["kind"] == "path" and o["name"] in options for o in choices[method]["options"]):
        reason = None  # the weights named in the options stand in for the missing default checkpoint
    if reason:
        st.caption(f"{md(choices[method]['label'])} cannot predict this film: {md(reason)}.")
    chosen = ", ".join(f"{name} = {value}" for name, value in options.items())
    st.caption(f"Stores {md(method_label(method + ('+dc' if drift else '')))} at "
               + ", ".join(f"×{(1 / r) ** k:g}" for k in range(1, steps + 1))
               + (f" with {md(chosen)}" if chosen else "")
               + " in this run (replacing an earlier one of the same method), from a background worker.")
    if st.button("Predict", type="primary", key=f"{where}-pred-go", icon=":material/auto_graph:",
                 disabled=reason is not None):
        try:
            key = start_predict(runs_dir(), run_id, method, steps, reset, embed, drift, options)
        except KnowError as exc:
            st.error(md(exc))
            return
        st.session_state.pop(DONE, None)
        st.session_state[_job(run_id)] = key
        st.rerun()


def option_inputs(options: list[dict], key: str) -> dict[str, float | int | str]:
    """One input per predictor option as :func:`~know_core.api.predict_choices` lists them (a number for float and
    int, text for str and path), its help the registry's; returns those filled in. An empty input is left out: the
    registry's default, which its placeholder shows."""
    chosen: dict[str, float | int | str] = {}
    for option in options:
        name, kind, default = option["name"], option["kind"], option["default"]
        shown = f"default: {default:g}" if isinstance(default, (int, float)) else \
            f"default: {default}" if default else "default"
        if kind in ("float", "int"):
            value = st.number_input(name, value=None, step=1 if kind == "int" else 0.1,
                                    format="%d" if kind == "int" else "%g", key=f"{key}-{name}", help=option["help"],
                                    placeholder=shown)
        else:
            value = st.text_input(name, key=f"{key}-{name}", help=option["help"], placeholder=shown).strip() or None
        if value is not None:
            chosen[name] = value
    return chosen


@st.fragment(run_every=1.0)
def predict_progress(key: str, run_id: str) -> None:
    """The running job's progress bar and Cancel; once it ends, the page is drawn again with what it stored (or the
    reason nothing was stored)."""
    try:
        status = predict_status(runs_dir(), key)
    except KnowError as exc:
        st.error(md(exc))
        st.session_state.pop(_job(run_id), None)
        return
    state = status["state"]
    if state == "running":
        total, done = status.get("total") or 0, status.get("done") or 0
        st.progress(done / total if total else 0.0, text=f"{status.get('phase', 'starting')}: {done} of {total}")
        if st.button("Cancel", key=f"pred-cancel-{run_id}", disabled=status.get("cancel_requested", False)):
            cancel_predict(runs_dir(), key)
        return
    if state == "done":
        scales = ", ".join(f"×{s:g}" for s in status.get("scales") or [])
        st.session_state[DONE] = (run_id, f"Stored the {method_label(str(status.get('method')))} predictions "
                                          f"({scales}) in this run.")
        st.session_state.pop(_job(run_id), None)
        st.rerun(scope="app")  # the page's charts and lists read the run again (its update time moved)
    st.error(f"The prediction {state}: {md(status.get('error') or 'no reason given')}. Nothing was stored.")
    if st.button("Predict again", key=f"pred-again-{run_id}"):
        st.session_state.pop(_job(run_id), None)
        st.rerun(scope="app")
