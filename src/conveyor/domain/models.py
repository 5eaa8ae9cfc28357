"""Model tiers → Claude models and their prices, in one table (seed 002: easy Haiku, normal Sonnet, complex Opus).

Prices are per million tokens; cache writes cost 1.25x and cache reads 0.1x of the input price unless a
tier says otherwise (see :class:`conveyor.domain.budget.Price`). Build-spec ``models`` overrides any tier.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.budget import DEFAULT_PRICES, Price, PriceTable
from conveyor.domain.ticket import ModelTier


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="Anthropic model id sent in the request.")
    price: Price
    context_tokens: int = Field(200_000, gt=0, description="Context window; conversations are condensed near it.")
    min_cacheable_tokens: int = Field(
        1024, gt=0, description="Below this prompt length nothing is cached (it differs by model: 512 to 4,096)."
    )


DEFAULT_MODELS: dict[ModelTier, ModelSpec] = {
    ModelTier.EASY: ModelSpec(
        model="claude-haiku-4-5", price=DEFAULT_PRICES[ModelTier.EASY], min_cacheable_tokens=4096
    ),
    ModelTier.NORMAL: ModelSpec(model="claude-sonnet-4-6", price=DEFAULT_PRICES[ModelTier.NORMAL]),
    ModelTier.COMPLEX: ModelSpec(
        model="claude-opus-4-6", price=DEFAULT_PRICES[ModelTier.COMPLEX], min_cacheable_tokens=4096
    ),
}


class ModelTable(BaseModel):
    """The tier table in force; tiers left out keep their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: dict[ModelTier, ModelSpec] = Field(default_factory=lambda: dict(DEFAULT_MODELS))

    def spec(self, tier: ModelTier) -> ModelSpec:
        return self.tiers.get(tier, DEFAULT_MODELS[tier])

    def prices(self) -> PriceTable:
        return PriceTable(prices={tier: self.spec(tier).price for tier in ModelTier})

    def tier_of(self, model: str) -> ModelTier | None:
        return next((tier for tier in ModelTier if self.spec(tier).model == model), None)
