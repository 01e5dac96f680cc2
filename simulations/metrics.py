"""Regret, the hindsight LP optimum under a budget, quality/cost shares and RouterBench's AIQ.

Conventions: ``expected`` is the ``(n, K)`` matrix of every model's (expected) reward on
every query (the logged scores for a real table, the true means for a synthetic one),
``costs`` the ``(n, K)`` USD costs, ``chosen`` the ``(n,)`` model index per step (``-1``
when no model was called, e.g. the budget was exhausted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandit_router.errors import InvalidInputError


def per_query_oracle(expected: np.ndarray) -> np.ndarray:
    """Best reward on every query, ``(n,)`` (ties: any best model).

    >>> per_query_oracle(np.array([[0.1, 0.9], [1.0, 0.0]])).tolist()
    [0.9, 1.0]
    """
    return np.asarray(expected, dtype=np.float64).max(axis=1)


def chosen_values(matrix: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``matrix[t, chosen[t]]`` per step, 0 where ``chosen[t] == -1``; shape ``(n,)``.

    >>> chosen_values(np.array([[0.2, 0.8], [0.5, 0.6]]), np.array([1, -1])).tolist()
    [0.8, 0.0]
    """
    chosen = np.asarray(chosen)
    out = np.zeros(len(chosen))
    ok = chosen >= 0
    out[ok] = np.asarray(matrix)[np.flatnonzero(ok), chosen[ok]]
    return out


def cumulative_regret(expected: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Cumulative regret against the per-query oracle, ``(n,)``.

    >>> cumulative_regret(np.array([[0.1, 0.9], [1.0, 0.0]]), np.array([0, 0])).tolist()
    [0.8, 0.8]
    """
    return np.cumsum(per_query_oracle(expected) - chosen_values(expected, chosen))


def hindsight_lp(
    expected: np.ndarray,
    costs: np.ndarray,
    budget: float | np.ndarray,
    users: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """The best any router could do in hindsight under the budget (LP relaxation).

    Maximises ``sum_ia r_ia z_ia`` subject to ``sum_a z_ia <= 1`` per query, ``z >= 0``
    and, per user ``u``, ``sum_{i of u, a} c_ia z_ia <= budget_u``: the fractional
    multi-choice knapsack, an upper bound on every online allocator, solved by
    ``bandit_router.budget.hindsight_optimum``. ``budget`` is one number (shared by every user) or one
    per user in the order of ``np.unique(users)``. Returns the optimum and the per-query
    value ``(n,)`` of the optimal fractional choice (its cumulative sum is the optimum's
    curve in any order).

    >>> r = np.array([[0.0, 1.0], [0.0, 1.0]]); c = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(hindsight_lp(r, c, 1.0)[0], 6)
    1.0
    """
    from bandit_router.budget import hindsight_optimum
    from bandit_router.errors import BudgetError

    r = np.asarray(expected, dtype=np.float64)
    try:
        opt = hindsight_optimum(r, costs, budget, users=users)
    except BudgetError as exc:
        raise InvalidInputError(str(exc)) from None
    z = opt.allocation
    per_query = (z * r).sum(axis=1)
    return float(per_query.sum()), per_query


def model_share(chosen: np.ndarray, models: Sequence[str]) -> dict[str, float]:
    """Share of the steps routed to each model (steps with no model count as ``"none"``).

    >>> model_share(np.array([0, 1, 1, -1]), ["a", "b"])
    {'a': 0.25, 'b': 0.5, 'none': 0.25}
    """
    chosen = np.asarray(chosen)
    n = max(len(chosen), 1)
    share = {m: float((chosen == k).sum() / n) for k, m in enumerate(models)}
    none = float((chosen < 0).sum() / n)
    if none > 0:
        share["none"] = none
    return share


def quality_shares(
    mean_reward: float, expected: np.ndarray, costs: np.ndarray, total_cost: float
) -> dict[str, float]:
    """PILOT/RouterBench style ratios of one run.

    ``quality_vs_best_single``: mean reward over that of the best single model;
    ``quality_vs_most_expensive``: over that of the most expensive model (by total cost);
    ``cost_fraction``: total cost over the cost of always calling the most expensive model.

    >>> e = np.array([[1.0, 0.0], [1.0, 1.0]]); c = np.array([[1.0, 0.1], [1.0, 0.1]])
    >>> quality_shares(0.5, e, c, 0.2)["quality_vs_most_expensive"]
    0.5
    """
    e = np.asarray(expected, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    means = e.mean(axis=0)
    k_exp = int(c.sum(axis=0).argmax())
    ref_cost = float(c[:, k_exp].sum())
    best = float(means.max())
    return {
        "best_single_mean_reward": best,
        "most_expensive_mean_reward": float(means[k_exp]),
        "quality_vs_best_single": float(mean_reward / best) if best > 0 else float("nan"),
        "quality_vs_most_expensive": float(mean_reward / means[k_exp])
        if means[k_exp] > 0
        else float("nan"),
        "cost_fraction": float(total_cost / ref_cost) if ref_cost > 0 else float("nan"),
    }


def upper_hull(costs: Sequence[float], qualities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing concave hull of cost-quality points (RouterBench's router curve).

    Any mix of two operating points is reachable (route a share of queries each way), so
    the achievable curve is the upper concave hull; more budget never hurts, so it is made
    non-decreasing. Returns the hull's vertices sorted by cost.

    >>> upper_hull([1, 2, 3], [0.5, 0.4, 0.9])[1].tolist()
    [0.5, 0.9]
    """
    c = np.asarray(costs, dtype=np.float64)
    q = np.asarray(qualities, dtype=np.float64)
    if c.shape != q.shape or c.ndim != 1 or len(c) == 0:
        raise InvalidInputError("costs and qualities must be 1-d arrays of the same length.")
    order = np.lexsort((-q, c))
    hull: list[tuple[float, float]] = []
    for ci, qi in zip(c[order], q[order], strict=True):
        if hull and qi <= hull[-1][1]:
            continue  # dominated: costs more, not better (keeps the hull non-decreasing)
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (q2 - q1) * (ci - c1) <= (qi - q1) * (c2 - c1):  # hull[-1] is under the chord
                hull.pop()
            else:
                break
        hull.append((float(ci), float(qi)))
    hc, hq = np.array([h[0] for h in hull]), np.array([h[1] for h in hull])
    return hc, hq


def aiq(
    costs: Sequence[float],
    qualities: Sequence[float],
    cost_range: tuple[float, float] | None = None,
) -> float:
    """RouterBench's AIQ: the area under the hull of the cost-quality curve over a cost range,
    divided by the range's width (the hull's average quality).

    Past the costliest point the hull stays flat; before the cheapest point, quality is
    that point's (a cheaper budget is not measured; pass ``cost_range`` to fix a common
    range when comparing routers).

    >>> round(aiq([0.0, 1.0], [0.0, 1.0]), 3)
    0.5
    """
    hc, hq = upper_hull(costs, qualities)
    lo, hi = cost_range if cost_range is not None else (float(hc[0]), float(np.max(costs)))
    if hi <= lo:
        return float(hq.max())
    grid = np.linspace(lo, hi, 2001)
    curve = np.interp(grid, hc, hq, left=hq[0], right=hq[-1])
    return float(np.trapezoid(curve, grid) / (hi - lo))


def best_static_mix(
    expected: np.ndarray,
    costs: np.ndarray,
    budget: float | None,
    tasks: np.ndarray | None = None,
) -> float:
    """Mean reward per query of the best *context-free* mix of models under the budget, in
    hindsight (per task with ``tasks``: the best allocation of models to each task).

    Chooses shares ``p_ak >= 0`` of the queries of task ``a`` (one task without ``tasks``)
    sent to model ``k``, ``sum_k p_ak <= 1`` (the rest unanswered, reward 0), to maximise
    ``sum_a n_a sum_k p_ak rbar_ak`` subject to ``sum_a n_a sum_k p_ak cbar_ak <= budget``
    (``rbar``, ``cbar``: the mean reward and cost of model ``k`` on task ``a``). Unlike the
    hindsight LP (per query), a router can reach this with what it learns about models and
    tasks, never about single queries: the reference line of a router that does not see
    the query. ``budget`` None: no budget. ``expected``, ``costs`` ``(n, K)``; ``tasks``
    ``(n,)``.

    >>> e = np.array([[0.9, 0.5], [0.1, 0.5]])      # model 0 wins query 0, model 1 query 1
    >>> c = np.array([[1.0, 0.1], [1.0, 0.1]])
    >>> round(best_static_mix(e, c, None), 3), round(best_static_mix(e, c, 0.2), 3)
    (0.5, 0.5)
    >>> round(best_static_mix(e, c, None, tasks=np.array(["a", "b"])), 3)
    0.7
    """
    from scipy.optimize import linprog

    e = np.asarray(expected, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    n, K = e.shape
    if n == 0:
        return float("nan")
    labels = np.zeros(n, dtype=np.int64) if tasks is None else pd_codes(tasks)
    T = int(labels.max()) + 1
    R = np.zeros((T, K))
    C = np.zeros((T, K))
    for k in range(K):
        R[:, k] = np.bincount(labels, weights=e[:, k], minlength=T)
        C[:, k] = np.bincount(labels, weights=c[:, k], minlength=T)
    if budget is None:
        return float(R.max(axis=1).sum() / n)
    rows = np.zeros((T, T * K))  # one share per task and model; at most 1 per task
    for a in range(T):
        rows[a, a * K : (a + 1) * K] = 1.0
    A = np.vstack([rows, C.reshape(1, -1)])
    b = np.append(np.ones(T), float(budget))
    res = linprog(-R.ravel(), A_ub=A, b_ub=b, bounds=(0, None), method="highs")
    if not res.success:  # pragma: no cover - the LP is always feasible (p = 0)
        raise InvalidInputError(f"the hindsight mix LP failed: {res.message}")
    return float(-res.fun / n)


def pd_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes ``(n,)`` of arbitrary labels, in order of first appearance.

    >>> pd_codes(np.array(["b", "a", "b"], dtype=object)).tolist()
    [0, 1, 0]
    """
    _, first, inv = np.unique(np.asarray(values, dtype=str), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv]
