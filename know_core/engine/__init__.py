"""The engine: configs, training, structured forgetting, and whole-model extrapolation."""
