"""How one query's model is picked from a policy's values: the rule shared by every policy.

A decision has two parts. The *selection* is fixed before the policy draws anything: which
models may be chosen at all (``candidates``: allowed by the request, affordable, within the
budget allocator's cap), the price each must clear (``price``, in reward units: the
allocator's ``psi(z) * cost``), and the model taken when none clears its price
(``fallback``). The *policy* then supplies values (a UCB index, a posterior draw, an
estimate) and, for exploring policies, a coin:

- exploit: the admitted model (candidate, ``value >= price``) with the best surplus
  ``value - price`` (or the best value when ``surplus=False``), else the fallback;
- explore (epsilon-greedy, LinUCB's epsilon floor, random): uniform over the exploration
  pool, the candidates (the fallback alone when there is none).

Because the selection does not depend on the policy's random draw, the probability of each
model under the whole decision (policy randomness and allocator together) has a closed form
for every policy whose values are deterministic, and an unbiased Monte-Carlo estimate
(``exploit_many`` over redrawn values) for Thompson sampling. ``Policy.action_probabilities``
computes it; logging (``Decision.propensity``) and off-policy evaluation both call it.
"""

from __future__ import annotations

import numpy as np


class Selection:
    """The policy-independent part of one decision, arrays of shape ``(K,)``.

    ``candidates`` (bool): models that may be chosen; ``price`` (float, or None for no
    price: every candidate is admitted); ``fallback``: index taken when no candidate is
    admitted (-1: no decision then); ``surplus``: exploit the best ``value - price``
    (True) or the best ``value`` among the admitted (False).

    >>> sel = Selection(np.array([True, True, False]), np.array([0.1, 0.5, 0.0]), fallback=0)
    >>> sel.exploit(np.array([0.3, 0.7, 0.9]))   # surpluses 0.2, 0.2 (tie: first), 2 excluded
    0
    >>> sel.exploit(np.array([0.05, 0.4, 0.9]))  # nothing clears its price: the fallback
    0
    >>> sel.exploit_many(np.array([[0.3, 0.8, 0.0], [0.0, 0.0, 0.0]])).tolist()
    [1, 0]
    >>> Selection.everything(3).explore_pool().tolist()
    [0, 1, 2]
    """

    __slots__ = ("_all", "_pool", "candidates", "fallback", "price", "surplus")

    def __init__(
        self,
        candidates: np.ndarray,
        price: np.ndarray | None = None,
        fallback: int = -1,
        surplus: bool = True,
    ) -> None:
        self.candidates = candidates
        self.price = price
        self.fallback = int(fallback)
        self.surplus = bool(surplus)
        self._pool: np.ndarray | None = None
        self._all = False  # every model a candidate (``everything``): exploit is an argmax

    @classmethod
    def everything(cls, n_arms: int) -> Selection:
        """Every model may be chosen, no price: the plain bandit without an allocator."""
        sel = cls(np.ones(n_arms, dtype=bool))
        sel._all = True
        return sel

    @classmethod
    def among(cls, mask: np.ndarray) -> Selection:
        """Only the models of a boolean mask ``(K,)``, no price."""
        return cls(mask)

    @property
    def n_arms(self) -> int:
        return int(self.candidates.shape[0])

    # ---- exploit ------------------------------------------------------------------------
    def admitted(self, value: np.ndarray) -> np.ndarray:
        """Candidates whose value clears their price, ``(K,)`` bool (or ``(n, K)``)."""
        if self.price is None:
            return np.broadcast_to(self.candidates, np.shape(value))
        return self.candidates & (value >= self.price)

    def exploit(self, value: np.ndarray) -> int:
        """The exploiting choice for values ``(K,)``: an index, or -1 for no decision."""
        if self._all:  # the same first maximum as the masked argmax below
            return int(value.argmax())
        if self.price is None:
            v = value
            ok = self.candidates
        elif self.surplus:
            # the best candidate's surplus: admitted (>= 0) means it is the best admitted
            # one, first index on ties like the masked argmax below; NaN takes that path
            s = np.where(self.candidates, value - self.price, -np.inf)
            k = int(s.argmax())
            best = s[k]
            if best >= 0.0:
                return k
            if best < 0.0:
                return self.fallback
            ok = self.candidates & (s >= 0.0)
            v = s
        else:
            s = value - self.price
            ok = self.candidates & (s >= 0.0)
            v = s if self.surplus else value
        masked = np.where(ok, v, -np.inf)
        k = int(masked.argmax())
        return k if ok[k] else self.fallback

    def exploit_many(self, values: np.ndarray) -> np.ndarray:
        """``exploit`` row by row for values ``(n, K)``; returns ``(n,)`` int (-1: none)."""
        if self.price is None:
            v = values
            ok = np.broadcast_to(self.candidates, values.shape)
        else:
            s = values - self.price
            ok = self.candidates & (s >= 0.0)
            v = s if self.surplus else values
        masked = np.where(ok, v, -np.inf)
        k = masked.argmax(axis=1)
        hit = ok[np.arange(len(k)), k]
        return np.where(hit, k, self.fallback)

    # ---- explore ------------------------------------------------------------------------
    def explore_pool(self) -> np.ndarray:
        """Indices an exploring step picks uniformly from: the candidates, else the fallback."""
        if self._pool is None:
            pool = np.flatnonzero(self.candidates)
            if pool.size == 0 and self.fallback >= 0:
                pool = np.array([self.fallback])
            self._pool = pool
        return self._pool

    def mixture(self, k_exploit: int, epsilon: float) -> np.ndarray:
        """Probabilities ``(K,)`` of "explore uniformly with probability epsilon, else
        ``k_exploit``"; all zeros when there is no decision (``k_exploit`` is -1)."""
        p = np.zeros(self.n_arms)
        if k_exploit < 0:
            return p
        if epsilon > 0.0:
            pool = self.explore_pool()
            p[pool] = epsilon / pool.size
        p[k_exploit] += 1.0 - epsilon
        return p
