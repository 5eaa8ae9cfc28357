"""Checklists shipped as package data; ``documentation.toml`` is the default documentation checklist.

A target repository replaces it with its own ``automations/checklists/documentation.toml``
(:data:`conveyor.domain.doc_checklist.OVERRIDE_PATH`); :mod:`conveyor.domain.doc_checklist` parses either.
"""

from __future__ import annotations

from importlib import resources

DOCUMENTATION_CHECKLIST = "documentation.toml"


def default_documentation_checklist() -> str:
    """The text of the shipped documentation checklist."""
    return resources.files(__name__).joinpath(DOCUMENTATION_CHECKLIST).read_text(encoding="utf-8")
