"""Query-independent baselines for held-out pairwise accuracy: majority winner, global BT.

Pairwise accuracy is measured on the decisive judgements only (ties have no winner to
predict): the share where the predicted winner won.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from bandit_router.warm_start.data import PreferenceData


def pairwise_accuracy(p_a: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``P(a beats b) > 1/2`` on the decisive rows of ``y`` (``(n,)`` each).

    A predicted probability of exactly 1/2 counts as half right. NaN without decisive rows.

    >>> pairwise_accuracy(np.array([0.9, 0.2, 0.5, 0.7]), np.array([1.0, 1.0, 0.0, 0.5]))
    0.5
    """
    decisive = y != 0.5
    if not decisive.any():
        return float("nan")
    p, t = p_a[decisive], y[decisive]
    right = np.where(p == 0.5, 0.5, ((p > 0.5) == (t == 1.0)).astype(float))
    return float(right.mean())


def log_loss(p_a: np.ndarray, y: np.ndarray, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy of ``P(a beats b)`` against ``y`` (ties count as 1/2).

    >>> round(log_loss(np.array([0.5, 0.5]), np.array([1.0, 0.0])), 4)
    0.6931
    """
    p = np.clip(p_a, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def per_model_accuracy(p_a: np.ndarray, data: PreferenceData) -> np.ndarray:
    """Accuracy on the decisive judgements each model took part in, ``(K,)``, with counts.

    Returns ``(correct, n)`` stacked as ``(2, K)`` so that callers can smooth.
    """
    decisive = data.y != 0.5
    right = np.where(p_a == 0.5, 0.5, ((p_a > 0.5) == (data.y == 1.0)).astype(float))
    K = data.n_models
    r = right[decisive]
    a, b = data.a[decisive], data.b[decisive]
    correct = np.bincount(a, r, K) + np.bincount(b, r, K)
    n = np.bincount(a, minlength=K) + np.bincount(b, minlength=K)
    return np.vstack([correct, n.astype(float)])


class MajorityWinner:
    """For each pair of models, predict the one that won that pair more often in training.

    Pairs never seen in training fall back to the models' overall win rates.

    >>> tr = PreferenceData.from_records([("q", "x", "y", 1.0), ("r", "y", "x", 0.0)])
    >>> MajorityWinner().fit(tr).prob_a_wins(tr).tolist()
    [1.0, 0.0]
    """

    def fit(self, data: PreferenceData) -> MajorityWinner:
        K = data.n_models
        self.wins_ = np.zeros((K, K))
        np.add.at(self.wins_, (data.a, data.b), data.y)
        np.add.at(self.wins_, (data.b, data.a), 1.0 - data.y)
        self.rate_ = np.nan_to_num(data.win_rates(), nan=0.5)
        return self

    def prob_a_wins(self, data: PreferenceData) -> np.ndarray:
        """Hard prediction: 1, 0 or 1/2 (no preference) per judgement, ``(n,)``."""
        wa, wb = self.wins_[data.a, data.b], self.wins_[data.b, data.a]
        pair = np.sign(wa - wb)
        overall = np.sign(self.rate_[data.a] - self.rate_[data.b])
        s = np.where(pair != 0, pair, overall)
        return 0.5 + 0.5 * s


class GlobalBradleyTerry:
    """Bradley-Terry with one strength per model and no query: ``P = sigmoid(beta_a - beta_b)``.

    Fitted by L-BFGS on the BCE with a small L2 penalty (``reg``) that fixes the scale of
    models with only wins or only losses.

    >>> tr = PreferenceData.from_records([("q", "x", "y", 1.0)] * 3 + [("r", "x", "y", 0.0)])
    >>> bt = GlobalBradleyTerry().fit(tr)
    >>> round(float(bt.prob_a_wins(tr)[0]), 2)
    0.75
    """

    def __init__(self, reg: float = 1e-4) -> None:
        self.reg = float(reg)

    def fit(self, data: PreferenceData) -> GlobalBradleyTerry:
        K = data.n_models
        a, b, y = data.a, data.b, data.y
        n = len(y)

        def fun(beta: np.ndarray) -> tuple[float, np.ndarray]:
            z = beta[a] - beta[b]
            loss = np.sum(np.logaddexp(0.0, z) - y * z) / n + 0.5 * self.reg * beta @ beta
            g = (1.0 / (1.0 + np.exp(-z)) - y) / n
            grad = np.bincount(a, g, K) - np.bincount(b, g, K) + self.reg * beta
            return float(loss), grad

        res = minimize(fun, np.zeros(K), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.beta_ = res.x - res.x.mean()
        return self

    def prob_a_wins(self, data: PreferenceData) -> np.ndarray:
        z = self.beta_[data.a] - self.beta_[data.b]
        return 1.0 / (1.0 + np.exp(-z))

    def ranking(self, models: list[str]) -> list[tuple[str, float]]:
        """Models from strongest to weakest, with their strengths."""
        order = np.argsort(-self.beta_)
        return [(models[i], float(self.beta_[i])) for i in order]
