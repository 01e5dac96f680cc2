"""The cost model: expected USD per model for a query, learned online from settled calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from river import stats

from bandit_router.budget.tokens import HeuristicTokenCounter, TokenCounter
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import ConfigurationError, InvalidInputError, UnknownArmError


class CostModel:
    """Expected cost of a query for every model of a catalogue, vectorised.

    ``cost_k = price_per_call_k + input_tokens * in_price_k + E[output tokens_k] * out_price_k``
    with prices per token. The expected output length of each model starts at the
    catalogue's ``expected_output_tokens`` and is learned from settled calls with a river
    statistic: ``EWMean`` (default, follows drift) or ``Mean`` seeded with ``prior_weight``
    pseudo-observations.

    Parameters
    ----------
    catalogue
        The models, in arm order.
    token_counter
        Counts the prompt's tokens (default: the heuristic, 4 characters per token).
    output_stat
        ``"ewmean"`` or ``"mean"``.
    fading_factor
        Weight of a new observation in the ``EWMean``.
    prior_weight
        Pseudo-observations of the catalogue value in the ``Mean``.

    >>> from bandit_router.catalogue import ModelSpec
    >>> cm = CostModel([ModelSpec("a", 1.0, 2.0, expected_output_tokens=100),
    ...                 ModelSpec("b", 10.0, 30.0, expected_output_tokens=100)])
    >>> cm.estimate(input_tokens=1000).round(6).tolist()
    [0.0012, 0.013]
    >>> cm.observe("a", output_tokens=300)
    >>> round(float(cm.expected_output_tokens[0]), 1)
    110.0
    >>> cm.estimate("x" * 4000, models=["a"]).round(6).tolist()
    [0.00122]
    """

    def __init__(
        self,
        catalogue: Sequence[ModelSpec],
        token_counter: TokenCounter | None = None,
        *,
        output_stat: str = "ewmean",
        fading_factor: float = 0.05,
        prior_weight: float = 10.0,
    ) -> None:
        specs = list(catalogue)
        if not specs:
            raise ConfigurationError("a cost model needs at least one model in the catalogue.")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"model names must be unique, got {names}.")
        if output_stat not in ("ewmean", "mean"):
            raise ConfigurationError(
                f"output_stat must be 'ewmean' or 'mean', got {output_stat!r}."
            )
        if not 0.0 < fading_factor <= 1.0:
            raise ConfigurationError(f"fading_factor must be in (0, 1], got {fading_factor}.")
        if not prior_weight > 0:
            raise ConfigurationError(f"prior_weight must be positive, got {prior_weight}.")
        self.catalogue = tuple(specs)
        self.models = names
        self._index = {n: i for i, n in enumerate(names)}
        self.token_counter: TokenCounter = token_counter or HeuristicTokenCounter()
        self.output_stat = output_stat
        #: USD per input token, per output token, per call; shape (K,)
        self.input_price = np.array([s.input_price_per_mtok for s in specs]) / 1e6
        self.output_price = np.array([s.output_price_per_mtok for s in specs]) / 1e6
        self.call_price = np.array([s.price_per_call for s in specs], dtype=np.float64)
        self._stats: list[stats.EWMean | stats.Mean] = []
        for s in specs:
            if output_stat == "ewmean":
                st = stats.EWMean(fading_factor=fading_factor)
                st.update(s.expected_output_tokens)
            else:
                st = stats.Mean()
                st.update(s.expected_output_tokens, prior_weight)
            self._stats.append(st)
        #: learned expected output tokens per model, shape (K,)
        self.expected_output_tokens = np.array([s.expected_output_tokens for s in specs], float)
        self._refresh_base()

    def _refresh_base(self) -> None:
        self._base = self.call_price + self.output_price * self.expected_output_tokens
        self._memo: tuple[float, np.ndarray] | None = None  # see ``estimate``

    def index(self, models: Sequence[str]) -> np.ndarray:
        """Positions of ``models`` in the catalogue, shape ``(len(models),)``."""
        try:
            return np.array([self._index[m] for m in models], dtype=np.intp)
        except KeyError as exc:
            raise UnknownArmError(
                f"unknown model {exc.args[0]!r}; the catalogue has: {', '.join(self.models)}."
            ) from None

    def input_tokens(self, query: str) -> int:
        return int(self.token_counter.count(query))

    def estimate(
        self,
        query: str | None = None,
        models: Sequence[str] | None = None,
        *,
        input_tokens: float | None = None,
    ) -> np.ndarray:
        """Expected USD per model, shape ``(K,)`` (or ``(len(models),)``).

        Give the prompt, or its precomputed ``input_tokens`` (e.g. from a log). The
        estimate of every model is read-only and kept until the next call with other
        ``input_tokens`` (or until an observation changes the expected output): a router
        whose queries have the same length computes it once.
        """
        if input_tokens is None:
            if query is None:
                raise InvalidInputError("give the query text or its input_tokens.")
            input_tokens = self.token_counter.count(query)
        n_in = float(input_tokens)
        if not n_in >= 0 or n_in == float("inf"):
            raise InvalidInputError(
                f"input_tokens must be a finite count >= 0, got {input_tokens}."
            )
        if models is None:
            memo = self._memo
            if memo is not None and memo[0] == n_in:
                return memo[1]
        cost = self._base + self.input_price * n_in
        if models is not None:
            return cost[self.index(models)]
        cost.flags.writeable = False
        self._memo = (n_in, cost)
        return cost

    def estimate_many(self, input_tokens: np.ndarray) -> np.ndarray:
        """Expected USD for a batch: ``input_tokens`` shape ``(n,)`` -> ``(n, K)``."""
        n_in = np.asarray(input_tokens, dtype=np.float64)
        if n_in.ndim != 1 or not np.all(np.isfinite(n_in)) or np.any(n_in < 0):
            raise InvalidInputError("input_tokens must be a 1-d array of finite counts >= 0.")
        return self._base[None, :] + n_in[:, None] * self.input_price[None, :]

    def cost(self, model: str, input_tokens: float, output_tokens: float) -> float:
        """Actual USD of a call with these token counts."""
        k = self.index([model])[0]
        return float(
            self.call_price[k]
            + self.input_price[k] * float(input_tokens)
            + self.output_price[k] * float(output_tokens)
        )

    def observe(self, model: str, output_tokens: float) -> None:
        """Learn from a settled call: ``model`` produced ``output_tokens`` tokens."""
        k = self.index([model])[0]
        n_out = float(output_tokens)
        if not (n_out >= 0 and np.isfinite(n_out)):
            raise InvalidInputError(
                f"output_tokens must be a finite count >= 0, got {output_tokens}."
            )
        self._stats[k].update(n_out)
        self.expected_output_tokens[k] = float(self._stats[k].get())
        self._base[k] = self.call_price[k] + self.output_price[k] * self.expected_output_tokens[k]
        self._memo = None

    def cost_range(self, input_tokens: float) -> tuple[float, float]:
        """(cheapest, dearest) expected USD at this prompt length: bounds for the allocator."""
        c = self.estimate(input_tokens=input_tokens)
        return float(c.min()), float(c.max())
