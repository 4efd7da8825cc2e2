"""KNOW Explorer's engine: data, models, training, structured forgetting, predictors and the run store.

This package never imports streamlit; the dashboard in ``app.py``/``screens/`` reads runs through it.
"""

from know_core.common.version import __version__  # noqa: F401
