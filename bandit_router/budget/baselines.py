"""Naive budget splits over a known stream, the baselines the allocator must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit_router.errors import BudgetError, DimensionMismatchError


@dataclass(frozen=True)
class StreamOutcome:
    """What a rule did on a stream: ``choice`` shape ``(n,)`` (-1 = nothing taken)."""

    value: float
    spend: float
    choice: np.ndarray


def _check_stream(
    values: np.ndarray, costs: np.ndarray, budget: float
) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    if v.ndim != 2 or v.shape != c.shape:
        raise DimensionMismatchError(
            f"values and costs must both have shape (n, K); got {v.shape} and {c.shape}."
        )
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(c)) and np.all(c >= 0)):
        raise BudgetError("values must be finite and costs finite USD amounts >= 0.")
    if not (float(budget) >= 0 and np.isfinite(budget)):
        raise BudgetError(f"the budget must be a finite amount of USD >= 0, got {budget}.")
    return v, c


def naive_split(
    values: np.ndarray, costs: np.ndarray, budget: float, *, carry_over: bool = False
) -> StreamOutcome:
    """Give every query ``B / n``: take the most valuable model that fits the allowance.

    Without carry-over the allowance is ``B / n`` per query; with carry-over it is
    ``B (i + 1) / n`` minus what was spent so far. When no model fits the allowance the
    cheapest one is taken if the whole budget still covers it (the allocator's fallback),
    so the total never exceeds ``budget``. ``values``, ``costs``: shape ``(n, K)``.

    >>> import numpy as np
    >>> v = np.array([[0.5, 1.0], [0.5, 0.6]]); c = np.array([[1.0, 3.0], [1.0, 3.0]])
    >>> naive_split(v, c, 4.0).choice.tolist(), naive_split(v, c, 4.0, carry_over=True).choice.tolist()
    ([0, 0], [0, 1])
    >>> naive_split(v, c, 8.0, carry_over=True).value
    1.6
    """
    v, c = _check_stream(values, costs, budget)
    n = v.shape[0]
    B = float(budget)
    choice = np.full(n, -1, dtype=np.intp)
    spent = 0.0
    total = 0.0
    for i in range(n):
        left = B - spent
        allowance = (B * (i + 1) / n - spent) if carry_over else B / n
        fits = c[i] <= min(allowance, left) + 1e-15
        if fits.any():
            k = int(np.where(fits, v[i], -np.inf).argmax())
        else:
            k = int(c[i].argmin())
            if c[i, k] > left:
                continue
        choice[i] = k
        spent += float(c[i, k])
        total += float(v[i, k])
    return StreamOutcome(total, spent, choice)


def run_allocator(
    allocator: object,
    values: np.ndarray,
    costs: np.ndarray,
    budget: float,
    *,
    expected_queries: int | None = None,
) -> StreamOutcome:
    """Replay a known stream through a ``BudgetAllocator`` whose policy knows the values.

    The policy's scores are the true ``values`` (an oracle), costs are exact and settled
    at once, so the outcome isolates the allocator. ``values``, ``costs``: shape ``(n, K)``.

    >>> import numpy as np
    >>> from bandit_router.budget import BudgetAllocator
    >>> v = np.array([[0.5, 1.0], [0.5, 0.6]]); c = np.array([[1.0, 3.0], [1.0, 3.0]])
    >>> run_allocator(BudgetAllocator(bins=1), v, c, 4.0).choice.tolist()
    [1, 0]
    """
    from bandit_router.budget.ledger import AccountState
    from bandit_router.budget.periods import Budget
    from bandit_router.policies.base import ArmScores
    from bandit_router.policies.linucb import LinUCB

    v, c = _check_stream(values, costs, budget)
    n, K = v.shape
    arms = [f"m{k}" for k in range(K)]
    policy = LinUCB(arms, dim=1)
    b = Budget(float(budget), "total", expected_queries=expected_queries or n)
    zeros = np.zeros(K)
    choice = np.full(n, -1, dtype=np.intp)
    spent = total = 0.0
    for i in range(n):
        state = AccountState("replay", b, now=float(i), spent=spent, n_decisions=i)
        a = allocator.choose(policy, ArmScores(arms, v[i], zeros, v[i]), c[i], state)
        if a.decision is not None:
            k = a.decision.index
            choice[i] = k
            spent += float(c[i, k])
            total += float(v[i, k])
    return StreamOutcome(total, spent, choice)
