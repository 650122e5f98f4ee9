"""Benchmarks of rxcql against ``cassandra.concurrent``: ``python -m bench --help``.

Not part of the installed package. See docs/benchmarks.md for the results and the method.
"""
