"""Benchmarks against reference implementations and of the train step, one script each.

Run from the repository root as modules, e.g. `python -m benchmarks.train_step`; the tables
they print are in docs/benchmarks.md.
"""
