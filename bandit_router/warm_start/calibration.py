"""Calibration of the preference model into the bandit's reward space, and prior strengths.

The bandit's context is ``x = [u, 1]`` with ``u = normalize(W phi + c)`` (``Featurizer`` with
the learned ``Projection``), its reward estimate is ``x @ theta0_a`` on the reward scale
([0, 1]). The preference model only knows *differences* of Bradley-Terry scores, so each
model's prior mean is fitted per model by least squares on the training prompts:

    reward_a(q) ~ s_a cos(psi(q), theta_a) + b_a        =>  theta0_a = [s_a theta_a, b_a]

(``theta_a`` has unit length, so ``x @ theta0_a`` is exactly the right-hand side.)

- **outcome tables** (``calibrate_from_scores``): the target is the model's own score on
  the prompt (0/1 correctness or a score in [0, 1]).
- **preferences only** (``calibrate_from_preferences``): no absolute scale exists; the
  target is the model's predicted probability of beating an opponent drawn uniformly
  from the other models of the data, ``mean_b sigmoid(f_a(q) - f_b(q))``, a number in [0, 1].

A small ridge (``ridge``) on ``s_a`` keeps the fit stable when the cosines barely vary.
"""

from __future__ import annotations

import numpy as np

from bandit_router.errors import ConfigurationError


def _fit_line(cos: np.ndarray, target: np.ndarray, ridge: float) -> tuple[float, float, float, int]:
    """Least squares ``target ~ s cos + b`` (ridge on ``s`` only); returns (s, b, R^2, n)."""
    ok = np.isfinite(cos) & np.isfinite(target)
    n = int(ok.sum())
    if n == 0:
        return 0.0, float("nan"), float("nan"), 0
    c, t = cos[ok], target[ok]
    cm, tm = c.mean(), t.mean()
    var = float(np.sum((c - cm) ** 2))
    s = float(np.sum((c - cm) * (t - tm)) / (var + ridge)) if n > 1 else 0.0
    b = float(tm - s * cm)
    resid = t - (s * c + b)
    tot = float(np.sum((t - tm) ** 2))
    r2 = 1.0 - float(resid @ resid) / tot if tot > 0 else 0.0
    return s, b, r2, n


def calibrate_from_scores(
    cos: np.ndarray, scores: np.ndarray, ridge: float = 1.0
) -> dict[str, np.ndarray]:
    """Per model ``s_a, b_a`` with ``scores[:, a] ~ s_a cos[:, a] + b_a``.

    ``cos`` and ``scores`` are ``(n_q, K)`` over the training prompts (NaN scores skipped).
    Returns arrays ``s``, ``b``, ``r2``, ``n`` of shape ``(K,)``. A model without any score
    gets ``s = 0`` and ``b`` = the mean score of all models.

    >>> cos = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]])
    >>> out = calibrate_from_scores(cos, np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), ridge=0)
    >>> out["s"].round(3).tolist(), out["b"].round(3).tolist()
    ([1.0, 1.0], [0.5, 0.5])
    """
    if cos.shape != scores.shape:
        raise ConfigurationError(f"cos {cos.shape} and scores {scores.shape} differ in shape.")
    K = cos.shape[1]
    out = {k: np.zeros(K) for k in ("s", "b", "r2", "n")}
    for k in range(K):
        out["s"][k], out["b"][k], out["r2"][k], out["n"][k] = _fit_line(
            cos[:, k], scores[:, k], ridge
        )
    missing = out["n"] == 0
    if missing.any():
        out["b"][missing] = float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.5
    return out


def expected_win_rate(F: np.ndarray) -> np.ndarray:
    """``mean_{b != a} sigmoid(F[:, a] - F[:, b])`` for BT scores ``F`` ``(n, K)`` -> ``(n, K)``.

    >>> expected_win_rate(np.array([[0.0, 0.0, 0.0]])).tolist()
    [[0.5, 0.5, 0.5]]
    """
    n, K = F.shape
    if K < 2:
        return np.full((n, K), 0.5)
    D = F[:, :, None] - F[:, None, :]
    P = 1.0 / (1.0 + np.exp(-D))
    return (P.sum(axis=2) - 0.5) / (K - 1)  # drop the diagonal's sigmoid(0) = 1/2


def calibrate_from_preferences(
    cos: np.ndarray, F: np.ndarray, ridge: float = 1.0
) -> dict[str, np.ndarray]:
    """Per model ``s_a, b_a`` with ``expected_win_rate(F)[:, a] ~ s_a cos[:, a] + b_a``.

    ``cos`` and ``F`` (Bradley-Terry scores) are ``(n_q, K)`` over the training prompts.
    """
    return calibrate_from_scores(cos, expected_win_rate(F), ridge)


def calibrate_shared_slope(
    F: np.ndarray, cos: np.ndarray, target: np.ndarray, scale: float, beta: np.ndarray
) -> dict[str, np.ndarray]:
    """One slope ``alpha`` for all models, one intercept per model: ``target ~ alpha F + gamma_a``.

    ``F`` (Bradley-Terry scores), ``cos`` and ``target`` are ``(n_q, K)`` (NaN targets
    skipped). Because ``F[:, a] = scale cos[:, a] + beta_a``, the fit is again of the form
    ``s_a cos + b_a`` with ``s_a = alpha scale`` (the same for every model, so the query
    dependence keeps the relative sizes the preference model learned) and
    ``b_a = alpha beta_a + gamma_a``. Returns ``s``, ``b``, ``r2``, ``n`` as
    ``calibrate_from_scores``; ``alpha`` is clipped at 0 (a negative slope would invert the
    preferences).

    >>> F = np.array([[1.0, -1.0], [-1.0, 1.0]])
    >>> out = calibrate_shared_slope(F, F, np.array([[0.9, 0.1], [0.1, 0.9]]), 1.0, np.zeros(2))
    >>> out["s"].round(2).tolist(), out["b"].round(2).tolist()
    ([0.4, 0.4], [0.5, 0.5])
    """
    ok = np.isfinite(target)
    K = F.shape[1]
    n = ok.sum(axis=0).astype(float)
    Fm = np.array([F[ok[:, k], k].mean() if n[k] else 0.0 for k in range(K)])
    Tm = np.array([target[ok[:, k], k].mean() if n[k] else np.nan for k in range(K)])
    dF = np.where(ok, F - Fm, 0.0)
    dT = np.where(ok, target - np.nan_to_num(Tm), 0.0)
    den = float(np.sum(dF**2))
    alpha = max(float(np.sum(dF * dT)) / den, 0.0) if den > 0 else 0.0
    pooled = float(np.nanmean(target)) if np.isfinite(target).any() else 0.5
    gamma = np.where(n > 0, np.nan_to_num(Tm) - alpha * Fm, pooled - alpha * Fm)
    resid = np.where(ok, target - (alpha * F + gamma), 0.0)
    r2 = np.array(
        [
            1.0 - float(np.sum(resid[:, k] ** 2)) / float(np.sum(dT[:, k] ** 2))
            if np.sum(dT[:, k] ** 2) > 0
            else 0.0
            for k in range(K)
        ]
    )
    return {
        "s": np.full(K, alpha * scale),
        "b": alpha * beta + gamma,
        "r2": r2,
        "n": n,
        "alpha": np.array([alpha]),
    }


def prior_means(theta: np.ndarray, s: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``theta0_a = [s_a theta_a, b_a]``, ``(K, p + 1)``, for unit rows ``theta`` ``(K, p)``.

    >>> prior_means(np.array([[1.0, 0.0]]), np.array([0.2]), np.array([0.5])).tolist()
    [[0.2, 0.0, 0.5]]
    """
    return np.hstack([theta * s[:, None], b[:, None]])


def strengths_from_accuracy(
    correct: np.ndarray,
    n: np.ndarray,
    base: float = 10.0,
    floor: float = 0.05,
) -> np.ndarray:
    """Prior strength per model from its held-out pairwise accuracy, ``(K,)``.

    ``acc_a = (correct_a + 1) / (n_a + 2)`` (Laplace-smoothed, so that a model with few
    held-out judgements is not trusted blindly) and
    ``lambda_a = base * clip(2 acc_a - 1, floor, 1)``: a model the preference model ranks
    no better than a coin gets the floor, a perfectly ranked one the full ``base`` (the
    prior then weighs as much as ``base`` unit-norm observations along each direction).

    >>> strengths_from_accuracy(np.array([98.0, 5.0]), np.array([98.0, 10.0])).round(2).tolist()
    [9.8, 0.5]
    """
    if not base > 0 or not 0 < floor <= 1:
        raise ConfigurationError("base must be > 0 and floor in (0, 1].")
    acc = (np.asarray(correct, float) + 1.0) / (np.asarray(n, float) + 2.0)
    return base * np.clip(2.0 * acc - 1.0, floor, 1.0)


def _log_evidence(
    e: np.ndarray, z2: np.ndarray, rr: float, n: int, sigma2: float, lam: np.ndarray
) -> np.ndarray:
    """Log density of ``n`` residuals under ``N(0, sigma2 (I + X X' / lam))`` for every
    ``lam`` ``(m,)``, from the eigenvalues ``e`` of ``X' X`` ``(d,)``, the squared
    projections ``z2 = (V' X' r)^2`` ``(d,)`` and ``rr = r' r``."""
    L = lam[:, None]
    logdet = n * np.log(sigma2) + np.sum(np.log1p(e / L), axis=1)
    quad = (rr - np.sum(z2 / (L + e), axis=1)) / sigma2
    return -0.5 * (n * np.log(2.0 * np.pi) + logdet + quad)


def strengths_by_evidence(
    X_fit: np.ndarray,
    Y_fit: np.ndarray,
    X_held: np.ndarray,
    Y_held: np.ndarray,
    theta0: np.ndarray,
    *,
    n_grid: int = 121,
    low: float = 0.1,
) -> dict[str, np.ndarray]:
    """Empirical-Bayes prior strength per model: the ``lambda_a`` under which the rows the
    prior did not fit on are most likely.

    The bandit's arm ``a`` is the ridge model ``r = x' theta + eps``, ``eps ~ N(0,
    sigma_a^2)``, with the prior ``theta ~ N(theta0_a, (sigma_a^2 / lambda_a) I)`` (so
    ``A = lambda_a I + sum x x'``). Integrating ``theta`` out, the held-out rewards ``y``
    ``(n,)`` of contexts ``X`` ``(n, d)`` are ``N(X theta0_a, sigma_a^2 (I + X X' /
    lambda_a))``; ``lambda_a`` maximises that predictive likelihood on a log grid of
    ``n_grid`` points from ``low`` to the cap. ``sigma_a^2`` is the noise of the linear
    reward model: the residual variance (``RSS / (m - d)``) of its least-squares fit on
    the rows the prior was fitted on (``X_fit`` ``(m, d)``, ``Y_fit`` ``(m, K)``). The cap is the prior's effective number of observations per
    direction, ``trace(X_fit' X_fit) / d`` (a prior fitted on ``m`` rows is never trusted
    more than a ridge regression on those ``m`` rows would be): with held-out residuals no
    larger than the fit's noise the likelihood keeps rising and the cap is taken.

    NaN rewards are skipped. Returns ``strength``, ``noise_var``, ``cap``, ``n_held``
    (``(K,)``), ``at_cap`` and ``at_low`` (bool ``(K,)``: the optimum is on the grid's edge)
    and ``log_evidence_gain`` ``(K,)`` (best minus the value at ``low``). Models without
    held-out or fit rows get NaN (the caller falls back to another rule).

    >>> rng = np.random.default_rng(0)
    >>> d, lam, sigma = 50, 10.0, 0.2                     # plant lambda = 10
    >>> theta0 = rng.normal(scale=0.1, size=(1, d))
    >>> theta = theta0 + rng.normal(scale=sigma / np.sqrt(lam), size=(1, d))
    >>> X = rng.normal(size=(4000, d))
    >>> Y = X @ theta.T + rng.normal(scale=sigma, size=(4000, 1))
    >>> out = strengths_by_evidence(X[:3000], Y[:3000], X[3000:], Y[3000:], theta0)
    >>> bool(5 < out["strength"][0] < 20), round(float(out["noise_var"][0]), 2)
    (True, 0.04)
    """
    X_fit, X_held = np.asarray(X_fit, float), np.asarray(X_held, float)
    Y_fit, Y_held = np.asarray(Y_fit, float), np.asarray(Y_held, float)
    K, d = theta0.shape
    out = {k: np.full(K, np.nan) for k in ("strength", "noise_var", "cap", "log_evidence_gain")}
    out["n_held"] = np.zeros(K)
    out["at_cap"] = np.zeros(K, dtype=bool)
    out["at_low"] = np.zeros(K, dtype=bool)
    for k in range(K):
        okf = np.isfinite(Y_fit[:, k])
        okh = np.isfinite(Y_held[:, k])
        if okf.sum() < 2 or okh.sum() < 1:
            continue
        Xf, yf = X_fit[okf], Y_fit[okf, k]
        # the noise of the linear reward model: residuals of its least-squares fit
        coef = np.linalg.lstsq(Xf.T @ Xf + 1e-8 * np.eye(d), Xf.T @ yf, rcond=None)[0]
        dof = max(len(yf) - d, 1)
        sigma2 = max(float(np.sum((yf - Xf @ coef) ** 2)) / dof, 1e-6)
        cap = max(float(np.einsum("nd,nd->", Xf, Xf)) / d, low * 10)
        Xh = X_held[okh]
        r = Y_held[okh, k] - Xh @ theta0[k]
        e, V = np.linalg.eigh(Xh.T @ Xh)
        e = np.maximum(e, 0.0)
        z2 = (V.T @ (Xh.T @ r)) ** 2
        grid = np.geomspace(low, cap, n_grid)
        ll = _log_evidence(e, z2, float(r @ r), len(r), sigma2, grid)
        i = int(ll.argmax())
        out["strength"][k] = grid[i]
        out["noise_var"][k] = sigma2
        out["cap"][k] = cap
        out["n_held"][k] = len(r)
        out["at_cap"][k] = i == n_grid - 1
        out["at_low"][k] = i == 0
        out["log_evidence_gain"][k] = float(ll[i] - ll[0])
    return out


def strengths_for_decisions(
    X_fit: np.ndarray,
    Y_fit: np.ndarray,
    X_held: np.ndarray,
    Y_held: np.ndarray,
    theta0: np.ndarray,
    *,
    n_grid: int = 241,
    low: float = 0.1,
) -> dict[str, np.ndarray]:
    """Empirical-Bayes prior strength per model for *routing*: how sure the prior is of
    what sets each model apart from the others, in units of the bandit's observations.

    A model's reward on a query is mostly what every model shares there (a query harder
    than the training ones is harder for all of them) plus what is particular to the
    model. Routing only depends on the particular part: a misfit the prior shares across
    all models leaves the best model the best. ``strengths_by_evidence`` on the absolute
    scores counts the shared misfit as doubt in every model, so the bandit relearns each
    model's level from its own few, unpaired observations (the prior learned them from
    paired rows, every model on the same query) and routes worse than the prior alone.

    Here every row's scores and the prior means are centred across the models (rows
    without a score for every model are skipped): ``y_a - mean_b y_b ~ x' (theta_a -
    mean_b theta_b)``. ``strengths_by_evidence`` on those gives the prior variance of
    the centred part, ``noise_c_a / lambda_c_a``; with independent particular parts of
    variance ``tau_a^2`` that is ``(1 - 1/K) tau_a^2`` (the mean over the models takes
    its share), and disjoint arms with prior variances ``tau_a^2`` give every difference
    between two models its variance. The bandit's arm sees the whole reward with the
    noise ``sigma_a^2`` of the absolute fit, so its strength is ``lambda_a = sigma_a^2 /
    tau_a^2 = lambda_c_a (1 - 1/K) sigma_a^2 / noise_c_a``, capped at the fitted rows'
    effective observations in the same units (``cap (1 - 1/K) sigma_a^2 / noise_c_a``: a
    paired row tells more about a difference than an unpaired one). Shapes as ``strengths_by_evidence``: ``X_*`` ``(n, d)``, ``Y_*`` ``(n, K)``,
    ``theta0`` ``(K, d)``. Returns its keys (``strength``, ``noise_var`` = ``sigma_a^2``,
    ``cap``, ``n_held``, ``at_cap``, ``at_low``, ``log_evidence_gain``) plus
    ``likelihood_strength`` (the absolute fit's lambda) and ``noise_var_centred``. With
    one model, or too few complete rows (fewer than ``d + 2`` fitted or 1 held out), it
    is ``strengths_by_evidence`` on the absolute scores.

    >>> rng = np.random.default_rng(0)
    >>> d, n = 10, 3000
    >>> X = rng.normal(size=(n, d)) / np.sqrt(d)
    >>> theta0 = rng.normal(scale=0.3, size=(2, d))
    >>> shared = rng.normal(scale=0.5, size=d)    # a misfit every model shares
    >>> Y = X @ (theta0 + shared).T + rng.normal(scale=0.3, size=(n, 2))
    >>> out = strengths_for_decisions(X[:2000], Y[:2000], X[2000:], Y[2000:], theta0)
    >>> bool((out["strength"] > 5 * out["likelihood_strength"]).all())
    True
    """
    X_fit, X_held = np.asarray(X_fit, float), np.asarray(X_held, float)
    Y_fit, Y_held = np.asarray(Y_fit, float), np.asarray(Y_held, float)
    theta0 = np.asarray(theta0, float)
    raw = strengths_by_evidence(X_fit, Y_fit, X_held, Y_held, theta0, n_grid=n_grid, low=low)
    raw["likelihood_strength"] = raw["strength"].copy()
    raw["noise_var_centred"] = np.full(theta0.shape[0], np.nan)
    K, d = theta0.shape
    okf, okh = np.isfinite(Y_fit).all(axis=1), np.isfinite(Y_held).all(axis=1)
    if K < 2 or okf.sum() < d + 2 or okh.sum() < 1:
        return raw

    def centred(Y: np.ndarray) -> np.ndarray:
        return Y - Y.mean(axis=1, keepdims=True)

    cen = strengths_by_evidence(
        X_fit[okf],
        centred(Y_fit[okf]),
        X_held[okh],
        centred(Y_held[okh]),
        theta0 - theta0.mean(axis=0),
        n_grid=n_grid,
        low=low,
    )
    ratio = (1.0 - 1.0 / K) * raw["noise_var"] / cen["noise_var"]  # (1 - 1/K) sigma^2 / noise_c
    ok = np.isfinite(cen["strength"]) & np.isfinite(ratio) & (ratio > 0)
    out = dict(raw)
    out["strength"] = np.where(ok, cen["strength"] * ratio, raw["strength"])
    out["cap"] = np.where(ok, cen["cap"] * ratio, raw["cap"])
    out["n_held"] = np.where(ok, cen["n_held"], raw["n_held"])
    for key in ("at_cap", "at_low", "log_evidence_gain"):
        out[key] = np.where(ok, cen[key], raw[key])
    out["noise_var_centred"] = np.where(ok, cen["noise_var"], np.nan)
    return out
