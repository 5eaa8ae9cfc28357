"""Benchmarks: speed and memory figures that Conveyor prints rather than tests (ARCHITECTURE.md §7)."""
