"""The model catalogue: names and prices. A small demo catalogue ships for the quick start."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

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


def _price(row: dict[str, str], column: str, where: str, default: float | None = None) -> float:
    raw = (row.get(column) or "").strip()
    if not raw:
        if default is None:
            raise ConfigurationError(f"{where}: column {column!r} is empty; give a price in USD.")
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{where}: {column}={raw!r} is not a number.") from None


def load_catalogue(path: str | os.PathLike[str]) -> tuple[ModelSpec, ...]:
    """Read a catalogue CSV: ``model`` (or ``name``), ``input_price_per_mtok``,
    ``output_price_per_mtok``, optionally ``price_per_call`` and ``expected_output_tokens``;
    other columns (size, description...) are ignored.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "models.csv"
    >>> _ = p.write_text("model,input_price_per_mtok,output_price_per_mtok,size\\nm1,0.2,0.6,7B\\n")
    >>> load_catalogue(p)[0].output_price_per_mtok
    0.6
    """
    path = Path(path)
    if not path.exists():
        raise ConfigurationError(f"catalogue file {path} does not exist; check the path.")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        name_col = "model" if "model" in fields else "name" if "name" in fields else None
        missing = {"input_price_per_mtok", "output_price_per_mtok"} - fields
        if name_col is None or missing:
            raise ConfigurationError(
                f"{path}: a catalogue needs the columns model (or name), input_price_per_mtok "
                f"and output_price_per_mtok; it has {sorted(fields)}."
            )
        specs: list[ModelSpec] = []
        for i, row in enumerate(reader, start=2):
            where = f"{path}:{i}"
            specs.append(
                ModelSpec(
                    name=(row.get(name_col) or "").strip(),
                    input_price_per_mtok=_price(row, "input_price_per_mtok", where),
                    output_price_per_mtok=_price(row, "output_price_per_mtok", where),
                    price_per_call=_price(row, "price_per_call", where, 0.0),
                    expected_output_tokens=_price(row, "expected_output_tokens", where, 256.0),
                )
            )
    if not specs:
        raise ConfigurationError(f"{path} lists no models.")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{path}: model names must be unique, got {names}.")
    return tuple(specs)
