"""Sweeps: a grid of experiment settings (dotted axes) × seeds, run as units of work on an executor.

``spec`` turns ``--axis KEY=V1,V2`` and ``--seeds 0-9`` into checked cells; ``runner`` creates the sweep in the run
store (one experiment run per cell, each seed a unit), runs it resumably and cancellably, and writes ``table``'s tidy
``results.parquet``/``results.csv``; ``summary`` reduces the table to cell means with 95 % intervals.
"""

from .runner import SWEEP_FILE, cancel_sweep, create_sweep, read_sweep, run_sweep, sweep_progress
from .spec import MAX_UNITS, SweepSpec, parse_axis, parse_seeds

__all__ = ["MAX_UNITS", "SWEEP_FILE", "SweepSpec", "cancel_sweep", "create_sweep", "parse_axis", "parse_seeds",
           "read_sweep", "run_sweep", "sweep_progress"]
