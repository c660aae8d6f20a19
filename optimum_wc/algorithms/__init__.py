"""Algorithms that decide or refine how weights are compressed (numpy only)."""
