"""The loss / accuracy landscape under the Trajectory page's 2-D picture: computed once per grid in a worker."""

from __future__ import annotations

import streamlit as st

from know_core.api import KnowError, contour_key, contour_status, start_contour
from screens._common import md, runs_dir


def landscape(run_id: str, seed: int, layer: str | None) -> dict | None:
    """The expander that computes (in a background job) and returns the loss/accuracy grid over the PCA plane, or
    None while there is none; the page draws it under the points."""
    contours = None
    with st.expander("Loss / accuracy landscape over this plane (computed once in the background)"):
        c1, c2 = st.columns(2)
        grid = c1.slider("Grid size (points per side)", 5, 40, 15, key="traj-grid")
        metric = c2.radio("Contour of", ["accuracy", "loss"], horizontal=True, key="traj-metric")
        key = contour_key(seed, layer, grid)
        state = contour_status(runs_dir(), run_id, key)
        if state["state"] == "done":
            contours = state["grid"]
            st.caption(f"Source {metric} of the networks on a {grid}×{grid} grid over the plane "
                       f"({contours['samples']} test images each; other layers and norms from Θ0).")
        elif state["state"] == "running":
            st.info("Computing in the background… this refreshes by itself.")

            @st.fragment(run_every=2.0)
            def _wait() -> None:
                if contour_status(runs_dir(), run_id, key)["state"] != "running":
                    st.rerun(scope="app")
            _wait()
        else:
            if state["state"] == "failed":
                st.error(f"The last computation failed: {md(state['error'])}")
            if st.button(f"Compute the {grid}×{grid} grid", key="traj-contour"):
                try:
                    start_contour(runs_dir(), run_id, seed, layer, grid)
                except KnowError as exc:
                    st.error(str(exc))
                st.rerun()
    return contours
