"""KNOW Explorer's engine: data, models, training, structured forgetting, predictors and the run store.

This package never imports streamlit; the dashboard in ``app.py``/``screens/`` reads runs through it.
"""

__version__ = "0.1.0"
