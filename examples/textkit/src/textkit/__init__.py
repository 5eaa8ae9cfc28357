"""textkit: word and line counts for text, with a small command line (standard library only)."""

__version__ = "0.0.1"
