"""The held-out-domain selector of the Compare and Scaling pages, shown only when a picked run has domains (a
``rotated:`` target, leave-one-domain-out): the page then draws one held-out domain at a time."""

from __future__ import annotations

import streamlit as st

from know_core.api import ExperimentResult
from pages._url import sync_url, url_value


def pick_domain(results: list[ExperimentResult], key: str) -> int | None:
    """The held-out domain to show (kept in the URL as ``?domain=``), or None when no run in ``results`` has
    domains; a run without that domain then shows nothing for it."""
    domains = sorted({d for res in results for d in res.domains})
    if not domains:
        sync_url(domain=None)
        return None
    if key not in st.session_state or st.session_state[key] not in domains:
        st.session_state[key] = url_value("domain", domains[-1], domains, cast=int)
    domain = st.selectbox("Held-out domain (the target's test domain; training used the others)", domains, key=key,
                          format_func=lambda d: f"{d}°")
    sync_url(domain=domain)
    return domain
