"""Run life-cycle: background jobs, the worker process, progress, and recorded forgetting runs."""
