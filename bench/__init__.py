"""Benchmarks and soak tests (not part of the test suite)."""
