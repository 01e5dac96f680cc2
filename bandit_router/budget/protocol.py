"""What the ``Router`` needs from a budget allocator, and the simplest one.

``Allocator`` is the protocol: ``choose(policy, scores, costs, state, max_cost=, allowed=)
-> Allocation``, between ``Policy.score`` and the reservation. ``BudgetAllocator`` (the
online knapsack: ZCL threshold, PILOT bins) implements it; so does ``AffordableAllocator``,
the allocator of last resort, which admits every model whose estimated cost fits what is
left of the budget and lets the policy choose among them (it spends greedily and stops
when nothing fits, where the knapsack paces).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from bandit_router.budget.allocator import Allocation
from bandit_router.budget.ledger import AccountState
from bandit_router.policies.base import ArmScores, Policy

#: float slack of "fits the budget", USD
_SLACK = 1e-15


@runtime_checkable
class Allocator(Protocol):
    """Picks one model for one query under a user's budget (see ``BudgetAllocator``)."""

    def choose(
        self,
        policy: Policy,
        scores: ArmScores,
        costs: np.ndarray,
        state: AccountState,
        *,
        max_cost: float | None = None,
        allowed: Iterable[str] | np.ndarray | None = None,
    ) -> Allocation: ...


class AffordableAllocator:
    """Admit every model whose cost fits the remaining budget; the policy picks among them.

    ``Allocation.reason`` is ``admitted`` (or ``explored`` when the policy explored),
    ``exhausted`` when no model is affordable, ``no_candidate`` when ``allowed`` or
    ``max_cost`` exclude every affordable model. ``threshold`` is 0 (no price).

    >>> import numpy as np
    >>> from bandit_router.budget import AccountState, Budget
    >>> from bandit_router.policies import make_policy
    >>> pol = make_policy("linucb", ["a", "b"], dim=1, seed=0)
    >>> state = AccountState("u", Budget(2.0), now=0.0)
    >>> AffordableAllocator().choose(pol, pol.score(np.ones(1)), np.array([1.0, 5.0]), state).arm
    'a'
    >>> broke = AccountState("u", Budget(2.0), now=0.0, spent=1.5)
    >>> AffordableAllocator().choose(pol, pol.score(np.ones(1)), np.array([1.0, 5.0]), broke).reason
    'exhausted'
    """

    name = "affordable"

    def choose(
        self,
        policy: Policy,
        scores: ArmScores,
        costs: np.ndarray,
        state: AccountState,
        *,
        max_cost: float | None = None,
        allowed: Iterable[str] | np.ndarray | None = None,
    ) -> Allocation:
        c = np.asarray(costs, dtype=np.float64)
        z = state.committed_share
        afford = c <= state.remaining + _SLACK
        if not afford.any():
            return Allocation(None, 0.0, "exhausted", 0.0, z, state.resets_at)
        ok = afford
        if max_cost is not None:
            ok = ok & (c <= float(max_cost))
        mask = policy.allowed_mask(allowed)
        if mask is not None:
            ok = ok & mask
        if not ok.any():
            return Allocation(None, 0.0, "no_candidate", 0.0, z, state.resets_at)
        d = policy.choose(scores, ok)
        reason = "explored" if d.explored else "admitted"
        return Allocation(d, float(c[d.index]), reason, 0.0, z, state.resets_at)
