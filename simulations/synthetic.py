"""Synthetic environments whose expected rewards are known, so regret is exact.

``LinearEnvironment`` draws contexts directly; ``TaskEnvironment`` writes real-looking
prompts from templates of a few task families, each model having a known quality per
family, so the whole path (text -> embedder -> featurizer -> policy) runs on it. It is the
project's own small data generator for the quick start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandit_router.catalogue import DEMO_CATALOGUE, ModelSpec


@dataclass
class Step:
    """One query of a synthetic stream: its context or text and every arm's expected reward."""

    x: np.ndarray | None
    text: str | None
    task: str | None
    expected: np.ndarray  # (K,) expected reward of each arm


class LinearEnvironment:
    """Contexts on the unit sphere plus a bias; arm ``a`` has mean reward ``x' theta_a``.

    Rewards are Bernoulli with that mean (kept in [0.05, 0.95]), so the expected reward
    is exact and linear in ``x``.

    >>> env = LinearEnvironment(n_arms=3, dim=5, seed=0)
    >>> s = env.step()
    >>> s.x.shape, s.expected.shape
    ((5,), (3,))
    """

    def __init__(self, n_arms: int = 5, dim: int = 8, spread: float = 0.4, seed: int = 0):
        self.n_arms, self.dim = int(n_arms), int(dim)
        self.rng = np.random.default_rng(seed)
        w = self.rng.standard_normal((self.n_arms, self.dim - 1))
        w *= spread / np.linalg.norm(w, axis=1, keepdims=True)
        base = self.rng.uniform(0.35, 0.55, size=(self.n_arms, 1))
        self.theta = np.hstack([w, base])  # (K, d); the last coordinate multiplies the bias

    def context(self) -> np.ndarray:
        z = self.rng.standard_normal(self.dim - 1)
        return np.append(z / np.linalg.norm(z), 1.0)

    def expected(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.theta @ x, 0.05, 0.95)

    def step(self) -> Step:
        x = self.context()
        return Step(x=x, text=None, task=None, expected=self.expected(x))

    def reward(self, step: Step, k: int) -> float:
        return float(self.rng.random() < step.expected[k])


_TEMPLATES: dict[str, tuple[str, ...]] = {
    "math": (
        "What is {a} times {b}? Show your working.",
        "Solve for x: {a}x + {b} = {c}.",
        "A shop sells pens at ${a} each. How much do {b} pens cost after a {c}% discount?",
        "Compute the sum of the first {a} odd numbers.",
    ),
    "code": (
        "Write a Python function that returns the {a}th Fibonacci number.",
        "Fix the bug in this loop: for i in range({a}): total += i / ({b} - i)",
        "Implement binary search over a sorted list of {a} integers in Rust.",
        "Write a SQL query that returns the top {a} customers by revenue.",
    ),
    "chat": (
        "Suggest a name for my {a}-year-old golden retriever.",
        "How do I politely decline a meeting invitation from a colleague?",
        "Give me {a} ideas for a rainy Sunday afternoon.",
        "Write a short thank-you note to my neighbour for the {a} tomatoes.",
    ),
    "reasoning": (
        "If all {a} bloops are razzies and some razzies are lazzies, must some bloops be lazzies?",
        "Explain step by step why the Monty Hall switch wins {a} times out of {b}.",
        "Plan a {a}-day itinerary that visits {b} cities with minimal travel time.",
        "A train leaves at {a}:00 at {b} km/h; another at {c}:00 at 90 km/h. When do they meet?",
    ),
    "knowledge": (
        "Who wrote the novel that begins 'Call me Ishmael'?",
        "Summarise the causes of the French Revolution in {a} sentences.",
        "What is the capital of the country with the {a}th largest population?",
        "Explain how vaccines train the immune system, for a {a}-year-old.",
    ),
}

#: expected quality of each demo model per task family (rows follow DEMO_CATALOGUE)
_DEMO_QUALITY = {
    "demo-nano": {"math": 0.30, "code": 0.25, "chat": 0.80, "reasoning": 0.20, "knowledge": 0.55},
    "demo-small": {"math": 0.50, "code": 0.45, "chat": 0.85, "reasoning": 0.40, "knowledge": 0.70},
    "demo-coder": {"math": 0.60, "code": 0.90, "chat": 0.60, "reasoning": 0.50, "knowledge": 0.55},
    "demo-medium": {"math": 0.75, "code": 0.70, "chat": 0.85, "reasoning": 0.65, "knowledge": 0.80},
    "demo-large": {"math": 0.92, "code": 0.88, "chat": 0.88, "reasoning": 0.90, "knowledge": 0.90},
}


class TaskEnvironment:
    """Prompts from templates of five task families; Bernoulli rewards with known means.

    >>> env = TaskEnvironment(seed=1)
    >>> s = env.step()
    >>> isinstance(s.text, str) and s.task in env.tasks
    True
    """

    def __init__(
        self,
        models: Sequence[ModelSpec] = DEMO_CATALOGUE,
        quality: dict[str, dict[str, float]] | None = None,
        seed: int = 0,
    ):
        self.models = list(models)
        self.quality = quality or _DEMO_QUALITY
        self.tasks = list(_TEMPLATES)
        self.rng = np.random.default_rng(seed)
        self.table = np.array([[self.quality[m.name][t] for m in self.models] for t in self.tasks])

    @property
    def arms(self) -> list[str]:
        return [m.name for m in self.models]

    def prompt(self, task: str) -> str:
        templates = _TEMPLATES[task]
        template = templates[self.rng.integers(len(templates))]
        a, b, c = (int(v) for v in self.rng.integers(2, 99, size=3))
        return template.format(a=a, b=b, c=c)

    def step(self) -> Step:
        t = int(self.rng.integers(len(self.tasks)))
        return Step(
            x=None, text=self.prompt(self.tasks[t]), task=self.tasks[t], expected=self.table[t]
        )

    def reward(self, step: Step, k: int) -> float:
        return float(self.rng.random() < step.expected[k])


# ---- synthetic problems for the replay machinery (exact regret) ---------------------------


def make_synthetic_problem(
    kind: str = "linear",
    n: int = 2000,
    n_arms: int = 4,
    dim: int = 8,
    *,
    drift: bool = False,
    noise: str = "bernoulli",
    spread: float = 0.4,
    seed: int = 0,
):
    """A ``simulations.replay.Problem`` with known expected rewards, so regret is exact.

    ``kind``: ``linear`` (mean ``clip(x' theta_a, 0.05, 0.95)``) or ``logistic`` (mean
    ``sigmoid(4 x' theta_a)``, which a linear policy can only approximate). Contexts are on
    the unit sphere plus a bias term; ``observed`` rewards are Bernoulli draws of the means
    (``noise="bernoulli"``) or the means themselves (``"none"``). Arms get prices that rise
    with their average quality (a budget matters). ``drift=True`` redraws every arm's
    weights at the midpoint (an abrupt change); the stream must then be replayed in the
    ``given`` order (``Problem.natural_order`` is set). Shapes: ``X (n, dim)``,
    ``expected``/``costs (n, n_arms)``.

    >>> p = make_synthetic_problem("logistic", n=50, n_arms=3, dim=4, drift=True, seed=1)
    >>> p.X.shape, p.expected.shape, p.natural_order
    ((50, 4), (50, 3), True)
    """
    from bandit_router.simulations.replay import Problem

    if kind not in ("linear", "logistic"):
        from bandit_router.errors import ConfigurationError

        raise ConfigurationError(f"synthetic kind must be linear or logistic, got {kind!r}.")
    rng = np.random.default_rng([seed, 3])
    env = LinearEnvironment(n_arms=n_arms, dim=dim, spread=spread, seed=seed)
    thetas = [env.theta.copy()]
    if drift:
        thetas.append(
            LinearEnvironment(n_arms=n_arms, dim=dim, spread=spread, seed=seed + 1000).theta
        )
    Z = rng.standard_normal((n, dim - 1))
    X = np.hstack([Z / np.linalg.norm(Z, axis=1, keepdims=True), np.ones((n, 1))])
    half = n // 2 if drift else n
    lin = np.empty((n, n_arms))
    lin[:half] = X[:half] @ thetas[0].T
    if drift:
        lin[half:] = X[half:] @ thetas[1].T
    if kind == "linear":
        expected = np.clip(lin, 0.05, 0.95)
    else:
        expected = 1.0 / (1.0 + np.exp(-4.0 * (lin - 0.45)))
    quality = expected.mean(axis=0)
    rank = np.argsort(np.argsort(quality))  # 0 = worst arm
    price = 1e-4 * 4.0**rank  # the best arm costs 4^(K-1) times the worst
    costs = price[None, :] * rng.uniform(0.5, 1.5, size=(n, 1))  # longer prompts cost more
    observed = (
        (rng.random((n, n_arms)) < expected).astype(np.float64)
        if noise == "bernoulli"
        else expected
    )
    return Problem(
        arms=[f"arm{k}" for k in range(n_arms)],
        X=X,
        observed=observed,
        expected=expected,
        costs=costs,
        tasks=np.array(["before" if i < half else "after" for i in range(n)], dtype=object),
        users=np.array(["default"] * n, dtype=object),
        sample_ids=np.array([f"syn-{i}" for i in range(n)], dtype=object),
        name=f"synthetic-{kind}{'-drift' if drift else ''}",
        natural_order=drift,
        info={"kind": kind, "drift": drift, "n_arms": n_arms, "dim": dim, "seed": seed},
    )
