"""The KNOW experiment: seeds, retrodiction, backtests, and the records the pages show."""
