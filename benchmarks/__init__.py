"""Benchmarks of mailbot's intake path: ``python -m benchmarks.intake`` (see README)."""
