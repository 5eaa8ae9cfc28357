"""Agent backends and what they share: tools, prompts, logs, replay (ARCHITECTURE.md §5)."""
