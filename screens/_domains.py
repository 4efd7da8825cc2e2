"""The held-out-domain selector of the Compare and Scaling pages, shown only when a picked run has domains (a
``rotated:`` target, leave-one-domain-out): the page then draws one held-out domain at a time."""

from __future__ import annotations

import streamlit as st

from know_core.api import ExperimentResult
from screens._url import sync_url, url_value


def pick_domain(results: list[ExperimentResult], key: str) -> int | str | None:
    """The held-out domain to show, or ``mean`` (the average over them), kept in the URL as ``?domain=``; None when
    no run in ``results`` has domains. Overlaid with those, a run without domains is shown whole, and a run that
    did not hold out the picked domain shows nothing for it."""
    found = {d for res in results for d in res.domains}
    if not found:
        sync_url(domain=None)
        return None
    domains = sorted(d for d in found if isinstance(d, int)) + [d for d in found if not isinstance(d, int)]
    if key not in st.session_state or st.session_state[key] not in domains:
        cast = lambda text: text if text in found else int(text)  # noqa: E731
        st.session_state[key] = url_value("domain", domains[-1], domains, cast=cast)
    domain = st.selectbox("Held-out domain (the target's test domain; training used the others)", domains, key=key,
                          format_func=lambda d: f"{d}°" if isinstance(d, int) else "mean over the held-out domains")
    sync_url(domain=domain)
    return domain
