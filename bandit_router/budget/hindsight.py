"""The hindsight optimum: the LP relaxation of the multi-choice knapsack over a known stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from bandit_router.budget.baselines import _check_stream
from bandit_router.errors import BudgetError


@dataclass(frozen=True)
class HindsightOptimum:
    """The LP optimum: ``value`` (an upper bound on any allocator's total value),
    ``allocation`` shape ``(n, K)`` with rows summing to at most 1, its ``spend``, and
    ``budget_price``, the shadow price of the budget (value per extra USD).

    At most one query of the LP optimum is split between models, so the best integral
    allocation is worth at least ``value - max(values)``.
    """

    value: float
    allocation: np.ndarray
    spend: float
    budget_price: float


def hindsight_optimum(
    values: np.ndarray, costs: np.ndarray, budget: float, *, exactly_one: bool = False
) -> HindsightOptimum:
    """Solve ``max sum v_ik x_ik`` s.t. ``sum c_ik x_ik <= budget``, ``sum_k x_ik <= 1``
    (``== 1`` with ``exactly_one``), ``0 <= x <= 1``, with HiGHS on sparse matrices.

    ``values``, ``costs``: shape ``(n, K)``. Solves n = 5000, K = 11 in well under a second.

    >>> import numpy as np
    >>> v = np.array([[0.5, 1.0], [0.5, 0.6]]); c = np.array([[1.0, 3.0], [1.0, 3.0]])
    >>> opt = hindsight_optimum(v, c, 4.0)
    >>> round(opt.value, 6), (opt.allocation.round(3) + 0.0).tolist()
    (1.5, [[0.0, 1.0], [1.0, 0.0]])
    """
    v, c = _check_stream(values, costs, budget)
    n, K = v.shape
    nk = n * K
    rows = np.repeat(np.arange(n), K)
    assign = sp.csr_matrix((np.ones(nk), (rows, np.arange(nk))), shape=(n, nk))
    budget_row = sp.csr_matrix(c.reshape(1, nk))
    if exactly_one:
        if float(c.min(axis=1).sum()) > float(budget) * (1 + 1e-12):
            raise BudgetError(
                f"the budget {budget} cannot pay even the cheapest model for every query "
                f"(that costs {float(c.min(axis=1).sum()):.6g}); raise it or use exactly_one=False."
            )
        A_ub, b_ub, A_eq, b_eq = budget_row, np.array([float(budget)]), assign, np.ones(n)
    else:
        A_ub = sp.vstack([budget_row, assign], format="csr")
        b_ub = np.concatenate([[float(budget)], np.ones(n)])
        A_eq = b_eq = None
    res = linprog(
        -v.reshape(nk),
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=(0.0, 1.0),
        method="highs",
    )
    if res.status != 0:
        raise BudgetError(f"the hindsight LP failed: {res.message}")
    x = np.clip(res.x.reshape(n, K), 0.0, 1.0)
    price = float(-res.ineqlin.marginals[0]) if res.ineqlin is not None else 0.0
    return HindsightOptimum(float(-res.fun), x, float((x * c).sum()), max(price, 0.0))
