"""The Runs page's "Import a film" form: a path on the server or an uploaded zip, checked and shown (checkpoints, the
group table) before it is confirmed, then imported by a background worker whose progress and Cancel are shown here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from know_core.api import (
    FILM_KINDS,
    ORDERS,
    OVERRIDE_GROUPS,
    KnowError,
    cancel_import,
    import_status,
    inspect_import,
    parse_overrides,
    start_import,
    unpack_upload,
    upload_limit_mb,
)
from screens._common import md, runs_dir

JOB = "runs-import-job"


def import_form() -> None:
    """Import a film: a path on the server or an uploaded zip, the inferred groups shown (a dry run) before the
    import is confirmed; the import runs in a background worker, its progress shown here."""
    job = st.session_state.get(JOB)
    if job:
        import_progress(job)
        return
    source = st.radio("Checkpoints", ["a path on the server", "a zip to upload"], horizontal=True,
                      key="runs-imp-source")
    if source == "a path on the server":
        text = st.text_area("Path(s), one per line: a folder of checkpoints, or the files in film order",
                            key="runs-imp-paths")
        paths, upload = [p for p in text.splitlines() if p.strip()], None
    else:
        try:
            limit = upload_limit_mb()
        except KnowError as exc:
            st.error(md(exc))
            return
        file = st.file_uploader(f"A zip of the checkpoints (at most {limit:g} MB; KNOW_IMPORT_MAX_MB)", type=["zip"],
                                key="runs-imp-zip-file")
        paths, upload = [], file
    c1, c2, c3, c0 = st.columns([3, 3, 3, 2])
    kind = c1.selectbox("Kind", FILM_KINDS, key="runs-imp-kind",
                        help="forgetting: the files are Θ0 … Θ_{S−1}, most data first; training: checkpoints along "
                             "training, earliest first")
    order = c2.selectbox("Order", ["given", *ORDERS], key="runs-imp-order",
                         help="given: the paths in the order written (a folder's checkpoints by name, Trainer "
                              "folders by step); name: natural name order; mtime: oldest file first; step: the "
                              "training step in trainer_state.json or the name")
    r = c3.number_input("r (data ratio per stage)", 0.05, 0.95, 0.5, 0.05, key="runs-imp-r")
    reverse = c0.checkbox("saved the other way round", key="runs-imp-reverse")
    overrides_text = st.text_area(
        "Group overrides (optional JSON, like import --groups)", key="runs-imp-groups-json",
        placeholder='{"lm_head.weight": "carry", "*.attn.c_attn.weight": "fc"}',
        help="shell patterns matched against whole tensor names, later ones winning; groups: "
             f"{', '.join(OVERRIDE_GROUPS)}")
    c4, c5, c6 = st.columns([2, 2, 1])
    name = c4.text_input("Name (optional)", key="runs-imp-name")
    hook = c5.text_input("--eval module:function (optional)", key="runs-imp-eval",
                         help="your function taking a state dict and returning {\"loss\": …, \"acc\": …}, run on "
                              "every snapshot in a child process")
    timeout = c6.number_input("seconds per snapshot", 1.0, 3600.0, 60.0, key="runs-imp-timeout")
    if upload is not None and st.session_state.get("runs-imp-unpacked", (None,))[0] != upload.file_id:
        try:
            folder, cleanup = unpack_upload(runs_dir(), upload.name, upload.getvalue())
        except KnowError as exc:
            st.error(md(exc))
            return
        st.session_state["runs-imp-unpacked"] = (upload.file_id, folder, cleanup)
    unpacked = st.session_state.get("runs-imp-unpacked") if upload is not None else None
    if unpacked:
        paths = [unpacked[1]]
    if not paths:
        st.caption("Give a path or upload a zip, then look at the inferred groups before importing.")
        return
    try:
        overrides = parse_overrides(overrides_text, "group overrides") if overrides_text.strip() else None
        preview = inspect_import(paths, kind, None if order == "given" else order, reverse, r, overrides)
    except KnowError as exc:
        st.error(md(exc))
        return
    st.markdown(f"**{preview.stages} {preview.format} checkpoints, Θ0 first:**")
    st.dataframe(pd.DataFrame(preview.files), hide_index=True, width="stretch", key="runs-imp-files")
    st.markdown("**Inferred parameter groups** (the rule, first match decides):")
    st.code("\n".join(preview.rule), language=None)
    st.dataframe(pd.DataFrame([{k: (", ".join(v) if isinstance(v, list) else v) for k, v in row.items()}
                               for row in preview.table]), hide_index=True, width="stretch", key="runs-imp-groups")
    if st.button("Import this film", type="primary", key="runs-imp-go", icon=":material/upload:"):
        try:
            key = start_import(runs_dir(), paths, kind, None if order == "given" else order, reverse, r, name,
                               hook or None, timeout, unpacked[2] if unpacked else None, overrides)
        except KnowError as exc:
            st.error(md(exc))
            return
        st.session_state.pop("runs-imp-unpacked", None)
        st.session_state[JOB] = key
        st.rerun()


@st.fragment(run_every=1.0)
def import_progress(key: str) -> None:
    try:
        status = import_status(runs_dir(), key)
    except KnowError as exc:
        st.error(md(exc))
        st.session_state.pop(JOB, None)
        return
    state = status["state"]
    if state == "running":
        total, done = status.get("total") or 0, status.get("done") or 0
        st.progress(done / total if total else 0.0, text=f"{status.get('phase', 'starting')}: {done} of {total}")
        if st.button("Cancel the import", key="runs-imp-cancel"):
            cancel_import(runs_dir(), key)
        return
    if state == "done":
        st.success(f"Imported as run {status['run_id']}; pick it below (reload the list).")
    else:
        st.error(f"The import {state}: {md(status.get('error') or 'no reason given')}. Nothing was stored.")
    if st.button("Import another film", key="runs-imp-again"):
        st.session_state.pop(JOB, None)
        st.rerun()

