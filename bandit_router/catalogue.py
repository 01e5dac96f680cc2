"""The model catalogue: names and prices. A small demo catalogue ships for the quick start."""

from __future__ import annotations

from dataclasses import dataclass

from bandit_router.errors import ConfigurationError


@dataclass(frozen=True)
class ModelSpec:
    """One model a router can call, with its list prices in USD.

    >>> ModelSpec("tiny", 0.1, 0.4).cost(1_000_000, 0)
    0.1
    """

    name: str
    input_price_per_mtok: float
    output_price_per_mtok: float
    price_per_call: float = 0.0
    expected_output_tokens: float = 256.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigurationError("a model needs a non-empty name.")
        for field in ("input_price_per_mtok", "output_price_per_mtok", "price_per_call"):
            value = getattr(self, field)
            if not (value >= 0):
                raise ConfigurationError(f"{self.name}: {field} must be >= 0 USD, got {value}.")
        if not self.expected_output_tokens >= 0:
            raise ConfigurationError(f"{self.name}: expected_output_tokens must be >= 0.")

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """USD for one call with these token counts."""
        return (
            self.price_per_call
            + input_tokens * self.input_price_per_mtok / 1e6
            + output_tokens * self.output_price_per_mtok / 1e6
        )


#: a demo pool: fictitious names, prices in the range of real 2025 list prices
DEMO_CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec("demo-nano", 0.05, 0.20, expected_output_tokens=200),
    ModelSpec("demo-small", 0.15, 0.60, expected_output_tokens=250),
    ModelSpec("demo-coder", 0.50, 1.50, expected_output_tokens=350),
    ModelSpec("demo-medium", 1.00, 4.00, expected_output_tokens=300),
    ModelSpec("demo-large", 5.00, 15.00, expected_output_tokens=400),
)
