"""Benchmarks: each prints its figures next to a reference measured in the same run.

Run from the project folder, e.g. `.venv/bin/python -m bench.outbox`; see docs/performance.md.
"""
