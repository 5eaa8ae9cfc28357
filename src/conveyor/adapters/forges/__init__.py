"""Forges: where ready ticket branches are integrated (ARCHITECTURE.md §4)."""
