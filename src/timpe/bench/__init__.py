"""bin/benchmark: where the time of a transfer goes (docs/benchmarks.rst)."""
