from __future__ import annotations

from pathlib import Path

from conveyor.domain.ticket import ModelTier
from conveyor.services.agents import role_tier
from conveyor.settings import load_settings


def test_role_tiers_come_from_the_build_spec(tmp_path: Path) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text("agents:\n  role_tiers: {reviewer: complex}\n")
    settings = load_settings(tmp_path)
    assert role_tier(settings, "reviewer") is ModelTier.COMPLEX
    assert role_tier(settings, "planner") is None
