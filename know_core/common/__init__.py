"""Foundations every layer may use: errors, registries, atomic files, threads, statistics."""
