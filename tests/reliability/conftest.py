"""Fixtures the reliability suites share (see reliability_support for sizes and figures)."""
