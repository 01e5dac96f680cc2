"""What every policy returns and the interface every policy implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from bandit_router.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    UnknownArmError,
)
from bandit_router.policies.prior import ArmPrior
from bandit_router.policies.selection import Selection


class ArmScores:
    """Per-arm figures of one decision, all of shape ``(K,)`` in the order of ``arms``.

    ``mean`` is the estimated reward, ``width`` the uncertainty (0 where a policy has none),
    ``value`` the index the policy maximises (UCB, a posterior draw, the mean...).

    >>> s = ArmScores(["a", "b"], np.array([0.2, 0.5]), np.zeros(2), np.array([0.2, 0.5]))
    >>> s.as_dict()["b"]["value"]
    0.5
    """

    __slots__ = ("arms", "mean", "value", "width")

    def __init__(
        self,
        arms: Sequence[str],
        mean: np.ndarray,
        width: np.ndarray,
        value: np.ndarray,
    ):
        self.arms = arms
        self.mean = mean
        self.width = width
        self.value = value

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            a: {"mean": float(m), "width": float(w), "value": float(v)}
            for a, m, w, v in zip(self.arms, self.mean, self.width, self.value, strict=True)
        }


_new = object.__new__


class Decision:
    """The chosen arm with every arm's scores and the propensity of the choice.

    ``propensity`` is the probability that the whole decision (the policy's randomness and
    the allocator's selection together) picks this arm for the same context and state:
    exact where a closed form exists, a Monte-Carlo estimate over ``mc_draws`` redraws for
    Thompson sampling (computed on first access, so a caller that does not log it does not
    pay for it); ``propensity_se`` is its standard error (0 when exact).

    >>> d = Decision("a", 0, None, 0.25, mc_draws=400)
    >>> d.propensity, round(d.propensity_se, 4)
    (0.25, 0.0217)
    """

    __slots__ = ("_propensity", "_propensity_fn", "arm", "explored", "index", "mc_draws", "scores")

    def __init__(
        self,
        arm: str,
        index: int,
        scores: ArmScores | None,
        propensity: float | Callable[[], float],
        explored: bool = False,
        mc_draws: int = 0,
    ):
        self.arm = arm
        self.index = index
        self.scores = scores
        self.explored = explored
        self.mc_draws = int(mc_draws)
        if callable(propensity):
            self._propensity = None
            self._propensity_fn = propensity
        else:
            self._propensity = float(propensity)
            self._propensity_fn = None

    @classmethod
    def certain(cls, arm: str, index: int, scores: ArmScores | None) -> Decision:
        """``Decision(arm, index, scores, 1.0)`` (a deterministic choice) without the
        argument checks of ``__init__``: the per-query path of LinUCB.

        >>> Decision.certain("a", 0, None).propensity
        1.0
        """
        d = _new(cls)
        d.arm = arm
        d.index = index
        d.scores = scores
        d.explored = False
        d.mc_draws = 0
        d._propensity = 1.0
        d._propensity_fn = None
        return d

    @property
    def propensity(self) -> float:
        if self._propensity is None:
            self._propensity = float(self._propensity_fn())
            self._propensity_fn = None
        return self._propensity

    @property
    def propensity_se(self) -> float:
        """Standard error of ``propensity`` (0 for an exact probability)."""
        if self.mc_draws <= 0:
            return 0.0
        p = self.propensity
        return math.sqrt(max(p * (1.0 - p), 0.0) / self.mc_draws)

    def __repr__(self) -> str:
        return f"Decision(arm={self.arm!r}, propensity={self.propensity:.3f})"


class Policy(ABC):
    """A contextual bandit over named arms (models).

    Hyper-parameters are constructor arguments (kept in ``config()``); learned state is
    saved with ``get_state()`` and restored with ``bandit_router.policies.from_state``.
    """

    #: the registry name (``linucb``, ``lints``...)
    name: ClassVar[str] = "policy"

    def __init__(
        self,
        arms: Sequence[str],
        dim: int,
        *,
        reward_range: tuple[float, float] = (0.0, 1.0),
        seed: int | None = None,
    ) -> None:
        arms = [str(a) for a in arms]
        if not arms:
            raise ConfigurationError("a policy needs at least one arm (model).")
        if len(set(arms)) != len(arms):
            raise ConfigurationError(f"arm names must be unique, got {arms}.")
        if int(dim) < 1:
            raise ConfigurationError(f"dim must be positive, got {dim}.")
        lo, hi = (float(reward_range[0]), float(reward_range[1]))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigurationError(
                f"reward_range must be (low, high) with low < high, got {reward_range}."
            )
        self._arms: list[str] = arms
        self._index: dict[str, int] = {a: i for i, a in enumerate(arms)}
        self.dim = int(dim)
        self._shape = (self.dim,)
        self.reward_range = (lo, hi)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.n_updates = 0
        self._everything: Selection | None = None

    # ---- arms -----------------------------------------------------------------------
    @property
    def arms(self) -> list[str]:
        return list(self._arms)

    @property
    def n_arms(self) -> int:
        return len(self._arms)

    def arm_index(self, arm: str) -> int:
        try:
            return self._index[arm]
        except KeyError:
            raise UnknownArmError(
                f"unknown model {arm!r}; the policy's models are: {', '.join(self._arms)}."
            ) from None

    def _rename_arms(self, arms: list[str]) -> None:
        self._arms = arms
        self._index = {a: i for i, a in enumerate(arms)}

    def add_arm(self, arm: str, prior: ArmPrior | None = None) -> None:
        """Add a model at run time (starts from ``prior``, else from the pooled mean)."""
        arm = str(arm)
        if arm in self._index:
            raise ConfigurationError(f"model {arm!r} is already an arm of this policy.")
        self._add_arm_state(arm, prior)
        self._rename_arms([*self._arms, arm])

    def remove_arm(self, arm: str) -> None:
        """Retire a model; its learned state is dropped."""
        k = self.arm_index(arm)
        if self.n_arms == 1:
            raise ConfigurationError("cannot retire the last model; add another one first.")
        self._remove_arm_state(k)
        self._rename_arms([a for a in self._arms if a != arm])

    def _add_arm_state(self, arm: str, prior: ArmPrior | None) -> None:  # noqa: B027
        """Grow learned state by one arm (policies with per-arm state override this)."""

    def _remove_arm_state(self, k: int) -> None:  # noqa: B027
        """Drop arm ``k`` from learned state."""

    # ---- validation -----------------------------------------------------------------
    def check_context(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            x = np.asarray(x, dtype=np.float64)
        if x.shape != self._shape:
            raise DimensionMismatchError(
                f"context has shape {x.shape}, expected ({self.dim},); featurize with the "
                "same embedder and projection the policy was built for."
            )
        if not math.isfinite(float(x @ x)):
            raise InvalidInputError("context contains NaN or infinite values.")
        return x

    def check_reward(self, reward: float) -> float:
        r = float(reward)
        lo, hi = self.reward_range
        if not (lo <= r <= hi):  # also rejects NaN
            raise InvalidInputError(
                f"reward {reward!r} is outside the configured range [{lo}, {hi}]; rescale "
                "the feedback or set reward_range."
            )
        return r

    def allowed_mask(self, allowed: Iterable[str] | np.ndarray | None) -> np.ndarray | None:
        """Turn an allowed set (names or a boolean mask of shape (K,)) into a mask."""
        if allowed is None:
            return None
        if isinstance(allowed, np.ndarray) and allowed.dtype == bool:
            if allowed.shape != (self.n_arms,):
                raise DimensionMismatchError(
                    f"allowed mask has shape {allowed.shape}, expected ({self.n_arms},)."
                )
            mask = allowed
        else:
            mask = np.zeros(self.n_arms, dtype=bool)
            for a in allowed:
                mask[self.arm_index(a)] = True
        if not mask.any():
            raise InvalidInputError("no model is allowed for this query; allow at least one.")
        return mask

    def selection(self, allowed: Iterable[str] | np.ndarray | Selection | None) -> Selection:
        """The ``Selection`` of a choice: an allocator's, or one built from an allowed set."""
        if isinstance(allowed, Selection):
            if allowed.n_arms != self.n_arms:
                raise DimensionMismatchError(
                    f"selection covers {allowed.n_arms} models, the policy has {self.n_arms}."
                )
            return allowed
        mask = self.allowed_mask(allowed)
        if mask is None:
            sel = self._everything
            if sel is None or sel.n_arms != self.n_arms:
                sel = self._everything = Selection.everything(self.n_arms)
            return sel
        return Selection.among(mask)

    # ---- the bandit -----------------------------------------------------------------
    @abstractmethod
    def score(self, x: np.ndarray) -> ArmScores:
        """Score all arms for context ``x`` of shape ``(d,)``."""

    @abstractmethod
    def choose(
        self, scores: ArmScores, allowed: Iterable[str] | np.ndarray | Selection | None = None
    ) -> Decision:
        """Pick one arm from ``scores`` under ``allowed``: an allowed set of names, a boolean
        mask ``(K,)``, an allocator's ``Selection``, or None (every arm)."""

    @abstractmethod
    def action_probabilities(
        self, scores: ArmScores, allowed: Iterable[str] | np.ndarray | Selection | None = None
    ) -> np.ndarray:
        """Probability of each arm under ``choose(scores, allowed)``, shape ``(K,)``.

        For policies whose ``score`` draws (Thompson sampling) the probability is over that
        draw too (the values in ``scores`` are then not used, only mean and width). The one
        function that logging (``Decision.propensity``) and off-policy evaluation share.
        """

    def decide(
        self, x: np.ndarray, allowed: Iterable[str] | np.ndarray | Selection | None = None
    ) -> Decision:
        """Score and choose in one call."""
        return self.choose(self.score(x), allowed)

    def _epsilon_choice(self, scores: ArmScores, sel: Selection, epsilon: float) -> Decision:
        """Explore uniformly over ``sel``'s pool with probability ``epsilon``, else exploit
        ``scores.value``; the propensity is the exact mixture probability."""
        best = sel.exploit(scores.value)
        if epsilon <= 0.0:
            if best < 0:
                raise InvalidInputError("no model clears its price and there is no fallback.")
            return Decision.certain(self._arms[best], best, scores)
        explored = bool(self.rng.random() < epsilon)
        pool = sel.explore_pool()
        k = int(pool[self.rng.integers(pool.size)]) if explored else best
        if k < 0:
            raise InvalidInputError("no model clears its price and there is no fallback.")
        p = (epsilon / pool.size if bool((pool == k).any()) else 0.0) + (
            1.0 - epsilon if k == best else 0.0
        )
        return Decision(self._arms[k], k, scores, p, explored=explored)

    @abstractmethod
    def update(self, arm: str, x: np.ndarray, reward: float) -> None:
        """Learn from the reward of ``arm`` on context ``x``."""

    # ---- state ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Hyper-parameters: enough to rebuild an untrained copy with ``type(self)(**config)``."""
        return {
            "arms": self.arms,
            "dim": self.dim,
            "reward_range": list(self.reward_range),
            "seed": self.seed,
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _state_extra(self) -> dict[str, Any]:
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:  # noqa: B027
        """Install learned state (already validated) into a freshly built policy."""

    def _validate_state(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:  # noqa: B027
        """Raise StateError if arrays do not fit this policy; called before ``_restore``."""

    def get_state(self) -> bytes:
        """Serialise hyper-parameters and learned state to a checksummed blob."""
        from bandit_router.policies.state import dump_state

        return dump_state(self)
