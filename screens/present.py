"""Present page: a guided step-through of one run for a lecture — the film, its PCA picture, the predictions, the warm
oracle, downstream — one headline and one figure per screen, with Previous / Next (``?run=ID&step=N`` in the URL)."""

from __future__ import annotations

import streamlit as st

from know_core.api import KnowError, continuation_headline
from screens._common import (
    continuation,
    experiment_runs,
    finished_or_welcome,
    forget_runs,
    load_film,
    load_results,
    md,
    pick_run,
    runs_dir,
    seed_weights,
    show_figure,
    sync_url,
    url_value,
)
from screens._imported import imported_runs
from screens._presentation import presenting, prose
from screens._steps import (
    EXPLAIN,
    STEPS,
    TITLES,
    Screen,
    downstream_screen,
    film_screen,
    forget_warm_screen,
    pca_screen,
    predictions_screen,
    warm_screen,
)

PAGE = {"title": "Present", "icon": ":material/co_present:", "order": 80}  # read by screens._routing unrun

N = len(STEPS)
FORGET_ONLY = "A forgetting-only run: it has a film (and warm oracles) but no downstream task."
FORGET_NOTE = ("This step needs an experiment run (pick one in the sidebar): a forget run stops after the film, its "
               "warm oracles and the predictions stored in it.")

if not presenting():  # a lecture's screen keeps its height for the headline and the figure
    st.title("Present", anchor=False)
prose("One run, step by step, for a lecture: the film, its PCA picture, the predictions, the warm oracle and "
      "downstream accuracy, each as one headline and one figure. Turn on *Presentation mode* in the sidebar for large "
      "type without these explanations; the run and the step are in the URL, so a slide can be linked to.")
runs = experiment_runs() + forget_runs()
finished_or_welcome(runs)
ids = [r.id for r in runs]
asked_run, asked_step = st.query_params.get("run"), st.query_params.get("step")
with st.sidebar:
    fresh = "present-run" not in st.session_state
    info = pick_run(runs, "present-run")
if fresh and asked_run is not None and asked_run not in ids:
    if asked_run in {r.id for r in imported_runs()}:
        st.info(f"Run {md(asked_run)} is an imported film: Present steps through experiment and forget runs; the "
                f"Trajectory and Compare pages show an imported film. Showing {md(info.name)}.")
    else:
        st.warning(f"There is no finished run {md(asked_run)} here: showing {md(info.name)}.")
if "present-step" not in st.session_state:
    st.session_state["present-step"] = url_value("step", 1, list(range(1, N + 1)), int)
    if asked_step is not None and asked_step != str(st.session_state["present-step"]):
        st.warning(f"There is no step {md(asked_step)} (the steps are 1 to {N}): showing step 1.")


def move(by: int) -> None:
    st.session_state["present-step"] = min(max(st.session_state["present-step"] + by, 1), N)


step = st.session_state["present-step"]
name = STEPS[step - 1]
# One row, so the figure keeps the screen's height: "Back" and columns wide enough that presentation mode's large type
# is not cut at 1024 px ("Previous" in a narrower column showed as "P.")
back, where, ahead = st.columns([2, 3, 2], vertical_alignment="center")
back.button("Back", key="present-prev", on_click=move, args=(-1,), disabled=step == 1,
            icon=":material/arrow_back:", width="stretch", help="the previous step")
where.markdown(f"**Step {step}/{N}** · {TITLES[name]} · {md(info.name)}")
ahead.button("Next", key="present-next", on_click=move, args=(1,), disabled=step == N,
             icon=":material/arrow_forward:", width="stretch", help="the next step")
where.progress(step / N)


def screen() -> Screen | None:
    """This step's screen for the picked run; None (with the reason on the page) when the run cannot be read."""
    if info.kind == "forget":  # the film, its PCA picture, the predictions stored in it, its warm oracles
        res = load_film(info)
        if res is None:
            return None
        if name == "film":
            return film_screen(res, res.seeds[0])
        if name == "downstream":
            return Screen(FORGET_ONLY, note=FORGET_NOTE)
        try:
            sw = seed_weights(runs_dir(), info.id, info.updated, res.seeds[0])
        except KnowError as exc:
            st.error(f"This run's weights cannot be read: {md(exc)}")
            return None
        if name == "predictions":
            return predictions_screen(sw, res.r, forget=True)
        if name == "pca":
            return pca_screen(sw, res.r)
        nearest = continuation_headline(continuation(runs_dir(), info.id, info.updated, res.seeds[0], res.r, None))
        return forget_warm_screen(res, sw, nearest)
    res = load_results(info)
    if res is None:
        return None
    seeds = res.seeds
    with st.sidebar:
        if "present-seed" not in st.session_state or st.session_state["present-seed"] not in seeds:
            st.session_state["present-seed"] = url_value("seed", seeds[0], seeds, int)
        seed = st.selectbox("Seed", seeds, key="present-seed")
    sync_url(seed=seed if len(seeds) > 1 else None)
    if name == "film":
        return film_screen(res, seed)
    if name == "downstream":
        return downstream_screen(res)
    try:
        sw = seed_weights(runs_dir(), info.id, info.updated, seed)
    except KnowError as exc:
        st.error(f"This run's weights cannot be read: {md(exc)}")
        return None
    return {"pca": pca_screen, "predictions": predictions_screen}[name](sw, res.r) if name != "warm" else \
        warm_screen(res, sw)


sync_url(run=info.id, step=step)
shown = screen()
if shown is not None:
    st.header(md(shown.headline), anchor=False)
    if shown.figure is not None:
        show_figure(shown.figure, f"present-{name}")
        prose(shown.explain or EXPLAIN[name], caption=True)
    if shown.note:
        st.info(shown.note)
