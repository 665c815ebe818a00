"""Tests of the test infrastructure (tests/support)."""
