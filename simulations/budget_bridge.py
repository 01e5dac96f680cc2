"""The replay's side of ``bandit_router.budget``: its online knapsack, driven per query.

The replay keeps each user's spend itself (no ledger: a replay settles every call at once)
and hands the allocator an ``AccountState`` with the user's budget, spend and number of
queries seen, and the known horizon (the user's number of queries in the stream) so that
the allocator paces in PILOT's bins. The cost estimate of each model is the logged cost
of that query (prices times tokens are known at decision time in these tables; a
``CostModel`` estimate would add estimation error on top).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bandit_router.budget import AccountState, Budget, BudgetAllocator
from bandit_router.policies.base import Policy


class KnapsackAllocator:
    """Adapter of ``BudgetAllocator`` (ZCL threshold, PILOT bins) to the replay loop.

    ``choose`` returns the model index or -1 (budget exhausted); the decision it made is
    kept in ``last_decision`` (for the propensity in decision logs); ``reasons`` counts the
    allocator's reasons (admitted, fallback, exhausted).

    >>> import numpy as np
    >>> from bandit_router.policies import make_policy
    >>> pol = make_policy("linucb", ["a", "b"], dim=1, seed=0)
    >>> al = KnapsackAllocator()
    >>> al.reset(np.array([1.0]), np.array([10]), None)
    >>> al.choose(pol, pol.score(np.ones(1)), np.array([0.01, 0.2]), 1.0, {"user": 0, "spent": 0.0})
    0
    """

    name = "knapsack"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = dict(kwargs)
        self.allocator = BudgetAllocator(**self.kwargs)
        self.last_decision = None
        self.reasons: dict[str, int] = {}

    def reset(self, budgets: np.ndarray, horizons: np.ndarray, problem: Any) -> None:
        self.allocator = BudgetAllocator(**self.kwargs)
        self.budgets = [
            Budget(float(b), expected_queries=max(int(h), 1))
            for b, h in zip(budgets, horizons, strict=True)
        ]
        self.seen = np.zeros(len(budgets), dtype=np.int64)
        self.reasons = {}

    def choose(
        self,
        policy: Policy,
        scores: Any,
        costs: np.ndarray,
        remaining: float,
        ctx: Mapping[str, Any],
    ) -> int:
        u = int(ctx["user"])
        state = AccountState(
            user=str(u),
            budget=self.budgets[u],
            now=0.0,
            spent=float(ctx["spent"]),
            n_decisions=int(self.seen[u]),
        )
        self.seen[u] += 1
        alloc = self.allocator.choose(policy, scores, costs, state)
        self.reasons[alloc.reason] = self.reasons.get(alloc.reason, 0) + 1
        self.last_decision = alloc.decision
        return -1 if alloc.decision is None else int(alloc.decision.index)

    def observe(self, user: int, cost: float) -> None:
        """Nothing to do: the replay settles the actual cost in its own spend counter."""
