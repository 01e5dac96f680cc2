"""The floor of a routed query in Python on this machine: a bare router, for comparison.

``FloorRouter`` does what ``Router.route`` + ``Router.feedback`` must do at the least, and
nothing else: one compiled call featurizes the embedding (max-abs scaling, unit norm,
bias), scores every arm (LinUCB: ``theta_k' x + alpha sqrt(x' A_inv_k x)`` over the same
stacked ``[A_inv_k; theta_k]`` state as bandit-router's) and picks the best surplus
``value - price * cost`` among the models that fit; a UUIDv7 id, a dict of open decisions,
a spend counter and one small result object per call; feedback is one compiled
Sherman-Morrison update (bandit-router's own ``_kernels.update``), the spend settled
and the record appended to a list.

Left out, which the real ``Router`` does: input validation and clear errors, budget
pacing (a fixed price here), per-user ledgers, bins and periods, the propensity of the
decision, the fallback and refusal reasons, the decision record and feedback log with
their ids, duplicate and expiry handling, catch-up from other processes, snapshots,
adaptive trust and refactorisation. Its time is a lower bound for any Python router with
this API and this state (K stacked ``(d + 1) x d`` blocks, float64): the ratio of a peer
to it bounds the ratio the real router can reach. ``benchmarks/policy_speed.py`` times it
as the row ``router floor``.

Needs numba (``pip install -e '.[bench]'``): the update is bandit-router's compiled kernel.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np

from bandit_router.policies._kernels import KERNELS
from bandit_router.router import uuid7


@numba.njit(fastmath={"reassoc", "contract", "nsz", "arcp"})
def _route(M, e, x, Y, var, out, alpha, costs, price, cap):  # pragma: no cover - compiled
    d = x.shape[0]
    base = d - 1
    peak = 0.0
    for i in range(base):
        x[i] = e[i]
        a = abs(e[i])
        if a > peak:
            peak = a
    s = 0.0
    for i in range(base):
        x[i] /= peak
        s += x[i] * x[i]
    norm = math.sqrt(s)
    for i in range(base):
        x[i] /= norm
    x[base] = 1.0
    K = var.shape[0]
    d1 = d + 1
    Y[:] = np.dot(M, x)
    best = 0
    top = -math.inf
    for k in range(K):
        b = k * d1
        q = 0.0
        for i in range(d):
            q += Y[b + i] * x[i]
        var[k] = q
        m = Y[b + d]
        w = math.sqrt(q) if q > 0.0 else 0.0
        v = w * alpha + m
        out[0, k] = m
        out[1, k] = w
        out[2, k] = v
        surplus = v - price * costs[k]
        if costs[k] <= cap and surplus > top:
            top = surplus
            best = k
    return best


class FloorRoute:
    """What ``FloorRouter.route`` returns: the id, the model and its index, the cost and
    the ``(3, K)`` scores (means, widths, values)."""

    __slots__ = ("cost", "decision_id", "index", "model", "scores")

    def __init__(self, decision_id: str, model: str, index: int, cost: float, scores) -> None:
        self.decision_id = decision_id
        self.model = model
        self.index = index
        self.cost = cost
        self.scores = scores


class FloorRouter:
    """A bare LinUCB router over ``K`` models with ``dim``-d contexts (``dim - 1``-d
    embeddings plus the bias), one budget and a fixed price per USD.

    >>> import numpy as np
    >>> r = FloorRouter(["small", "large"], dim=4, costs=np.array([0.001, 0.01]))
    >>> out = r.route(np.array([0.5, -1.0, 2.0]))
    >>> out.model in ("small", "large"), r.feedback(out.decision_id, 1.0)
    (True, True)
    """

    def __init__(
        self,
        arms: list[str],
        dim: int,
        costs: np.ndarray,
        *,
        alpha: float = 1.0,
        price: float = 1.0,
        budget: float = 1e6,
    ) -> None:
        K, d = len(arms), int(dim)
        self.arms = list(arms)
        self.M = np.zeros((K * (d + 1), d))
        for k in range(K):
            self.M[k * (d + 1) : k * (d + 1) + d] = np.eye(d)
        self.blocks = [self.M[k * (d + 1) : (k + 1) * (d + 1)] for k in range(K)]
        self.Y = np.zeros(K * (d + 1))
        self.Yblocks = [self.Y[k * (d + 1) : (k + 1) * (d + 1)] for k in range(K)]
        self.var = np.zeros(K)
        # the arm counters the update kernel advances (last update, count, since refactor)
        self.last, self.counts, self.since = (np.zeros(K, dtype=np.int64) for _ in range(3))
        self.t = 0
        self.costs = np.asarray(costs, dtype=np.float64)
        self.alpha, self.price = float(alpha), float(price)
        self.budget, self.spent, self.reserved = float(budget), 0.0, 0.0
        self.d = d
        self.open: dict[str, tuple] = {}
        self.log: list[tuple] = []

    def route(self, embedding: np.ndarray) -> FloorRoute:
        x = np.empty(self.d)
        out = np.empty((3, len(self.arms)))
        cap = self.budget - self.spent - self.reserved
        k = _route(
            self.M, embedding, x, self.Y, self.var, out, self.alpha, self.costs, self.price, cap
        )
        did = uuid7()
        cost = float(self.costs[k])
        self.reserved += cost
        self.open[did] = (k, x, cost, time.time())
        return FloorRoute(did, self.arms[k], k, cost, out)

    def feedback(self, decision_id: str, reward: float) -> bool:
        k, x, cost, _ = self.open.pop(decision_id)
        # as in the real router's benchmark, feedback follows its route at once, so the
        # products the route left in Y are this context's
        self.t += 1
        KERNELS.update(
            self.blocks[k], self.Yblocks[k], self.var, k, float(reward), self.t, self.last,
            self.counts, self.since,
        )  # fmt: skip
        self.reserved -= cost
        self.spent += cost
        self.log.append((decision_id, reward, cost, k, x))
        return True
