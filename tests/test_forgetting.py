"""Forgetting (discounted ridge) stays exact, non-singular and bounded over long runs (issue 8).

Only the data is discounted: after ``n`` updates (of any arm) arm ``k`` is the ridge
regression ``A_k = lambda_k I + sum_s gamma^(n - s) x_s x_s'``,
``b_k = lambda_k theta0_k + sum_s gamma^(n - s) r_s x_s`` over the updates ``s`` of arm ``k``.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bandit_router.errors import StateError
from bandit_router.policies import ArmPrior, LinTS, LinUCB, from_state

ARMS = ["a", "b", "c"]
LAMBDA = {"a": 1.0, "b": 2.0, "c": 0.5}


def subspace_stream(n: int, d: int, rank: int = 20, seed: int = 0):
    """Unit contexts in a random ``rank``-dimensional subspace, arms in runs, rewards."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0]
    X = rng.normal(size=(n, rank)) @ basis.T
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    # runs of one arm with geometric lengths: arms sit idle for short and long stretches
    arms = np.repeat(rng.integers(0, len(ARMS), n), rng.geometric(0.2, n))[:n]
    r = rng.random(n)
    return X, arms, r, basis


def discounted_ridge(X, arms, r, k, lam, theta0, gamma):
    """``(theta, A)`` of arm ``k`` after all ``len(r)`` updates, from scratch."""
    n = len(r)
    sel = arms == k
    w = gamma ** (n - 1 - np.flatnonzero(sel)).astype(float)
    Xk = X[sel]
    A = lam * np.eye(X.shape[1]) + (Xk * w[:, None]).T @ Xk
    b = lam * theta0 + (Xk * w[:, None]).T @ r[sel]
    return np.linalg.solve(A, b), A


def rel_err(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(1.0, np.linalg.norm(b)))


def policy(d: int, gamma: float, cls=LinUCB, seed: int = 0):
    rng = np.random.default_rng(seed + 100)
    priors = {a: ArmPrior(rng.normal(0, 0.1, d), LAMBDA[a]) for a in ARMS}
    return cls(ARMS, d, priors=priors, forgetting=gamma, seed=seed), priors


@pytest.mark.parametrize("d", [129, 513])
@pytest.mark.parametrize("gamma", [0.99, 0.95])
def test_long_forgetting_run_is_exact_and_bounded(d, gamma):
    """10,000 updates, d > 1/(1 - gamma): today's main raised LinAlgError near update 3,500
    (d=129, 0.99) after widths far above the prior's; now no error, every width below the
    prior's ``||x|| / sqrt(lambda)``, and the state equals the batch discounted ridge."""
    n = 10_000
    X, arms, r, basis = subspace_stream(n, d, seed=d)
    pol, priors = policy(d, gamma)
    rng = np.random.default_rng(1)
    lam = np.array([LAMBDA[a] for a in ARMS])
    with threadpool_limits(limits=1, user_api="blas"):  # d=513 on a busy 2-core machine
        for i in range(n):
            pol.update(ARMS[arms[i]], X[i], float(r[i]))
            if i % 500 == 0 or i == n - 1:
                # a context of the stream, one outside the subspace and a mixture
                off = rng.normal(size=d)
                off -= basis @ (basis.T @ off)
                for x in (X[i], off, 0.6 * X[i] + off / np.linalg.norm(off)):
                    s = pol.score(x)
                    assert np.isfinite(s.mean).all() and np.isfinite(s.width).all()
                    bound = np.linalg.norm(x) / np.sqrt(lam)
                    assert (s.width <= bound * (1 + 1e-9)).all(), (i, s.width, bound)
                # outside the data's span the width is exactly the prior's
                off_width = np.linalg.norm(off) / np.sqrt(lam)
                np.testing.assert_allclose(pol.score(off).width, off_width, rtol=1e-9)
        theta_inc, A_inv_inc = pol.state.theta, pol.state.A_inv
    for k, a in enumerate(ARMS):
        theta, A = discounted_ridge(X, arms, r, k, LAMBDA[a], priors[a].theta0, gamma)
        assert rel_err(theta_inc[k], theta) < 1e-8
        assert rel_err(A_inv_inc[k], np.linalg.inv(A)) < 1e-8


def test_idle_arm_width_grows_by_exactly_the_missed_events():
    """1-d closed form: after ``m`` updates of ``a`` then ``n`` of ``b``, arm ``a`` has
    ``A = lambda + gamma^n S`` with ``S = sum_{j<m} gamma^j``; no clamp on the discount
    (0.99^3000 = 8e-14 is far below the old 1e-6 cap)."""
    gamma, lam, theta0, m = 0.99, 2.0, 0.25, 40
    pol = LinUCB(["a", "b"], 1, priors={"a": ArmPrior([theta0], lam)}, forgetting=gamma)
    x = np.array([1.0])
    for _ in range(m):
        pol.update("a", x, 1.0)
    S = sum(gamma**j for j in range(m))
    missed = 0
    for n in (0, 1, 7, 100, 3000):
        while missed < n:
            pol.update("b", x, 0.0)
            missed += 1
        g = gamma**n
        s = pol.score(x)
        assert s.width[0] == pytest.approx((lam + g * S) ** -0.5, rel=1e-12)
        assert s.mean[0] == pytest.approx((lam * theta0 + g * S) / (lam + g * S), rel=1e-12)
    # after 3,000 missed events the arm is back at its prior, and no wider
    assert s.width[0] == pytest.approx(lam**-0.5, rel=1e-9)


def test_sample_parameters_draws_from_the_current_posterior():
    """With a pending discount the draw's covariance is the discounted ``A^-1`` (today's
    main drew from the covariance of the arm's last update: too narrow)."""
    d, gamma = 3, 0.9
    # reward range centred on 0: the prior-free arms learn the raw reward (no offset)
    pol = LinTS(["a", "b"], d, forgetting=gamma, v=1.0, seed=3, reward_range=(-1.0, 1.0))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, d))
    arms = np.array([0] * 40 + [1] * 20)
    r = rng.random(60)
    for x, k, y in zip(X, arms, r, strict=True):
        pol.update(["a", "b"][k], x, float(y))
    theta, A = discounted_ridge(X, arms, r, 0, 1.0, np.zeros(d), gamma)
    cov = np.linalg.inv(A)
    draws = np.array([pol.sample_parameters()[0] for _ in range(6000)])
    x = np.array([0.3, -0.5, 1.0])
    sd = np.sqrt(x @ cov @ x)
    assert pol.score(x).width[0] == pytest.approx(sd, rel=1e-10)
    proj = draws @ x
    assert abs(proj.mean() - theta @ x) < 5 * sd / np.sqrt(len(proj))
    assert abs(proj.std() / sd - 1.0) < 0.05
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.15, atol=0.02 * np.abs(cov).max())


def test_forgetting_state_round_trip_and_arm_changes_stay_exact():
    d, gamma = 8, 0.97
    X, arms, r, _ = subspace_stream(400, d, rank=5, seed=4)
    pol, priors = policy(d, gamma, seed=2)
    for x, k, y in zip(X[:200], arms[:200], r[:200], strict=True):
        pol.update(ARMS[k], x, float(y))
    twin = from_state(pol.get_state())
    for x, k, y in zip(X[200:], arms[200:], r[200:], strict=True):
        s1, s2 = pol.score(x), twin.score(x)
        np.testing.assert_array_equal(s1.value, s2.value)
        pol.update(ARMS[k], x, float(y))
        twin.update(ARMS[k], x, float(y))
    np.testing.assert_array_equal(pol.theta, twin.theta)
    # a retired model disappears, an added one starts from its prior; the others stay exact
    pol.remove_arm("b")
    pol.add_arm("z", ArmPrior(np.full(d, 0.1), 3.0))
    pol.update("z", X[0], 1.0)
    assert pol.arms == ["a", "c", "z"]
    for k, a in ((0, "a"), (1, "c")):
        # the update of z is one more event: the data of a and c is discounted once more
        theta, _ = discounted_ridge(
            np.vstack([X, X[:1]]), np.append(arms, 9), np.append(r, 1.0),
            ARMS.index(a), LAMBDA[a], priors[a].theta0, gamma,
        )  # fmt: skip
        assert rel_err(pol.theta[k], theta) < 1e-8
    z_theta = np.linalg.solve(3.0 * np.eye(d) + np.outer(X[0], X[0]), 0.3 + X[0])
    assert rel_err(pol.theta[2], z_theta) < 1e-10


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_failed_refactorisation_raises_state_error_and_changes_nothing(gamma, monkeypatch):
    pol = LinUCB(["a", "b"], 3, forgetting=gamma, refactor_every=5, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        pol.update("a", rng.normal(size=3), 0.5)
    before = {k: np.array(v, copy=True) for k, v in pol.state.arrays().items()}

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("simulated failure")

    import bandit_router.policies.ridge as ridge

    monkeypatch.setattr(ridge, "cho_factor", broken)
    monkeypatch.setattr(ridge.np.linalg, "qr", broken)
    with pytest.raises(StateError, match="left unchanged"):
        pol.state.refactor(0)
    after = pol.state.arrays()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_a_forgetting_state_of_the_old_format_is_refused_with_a_clear_message():
    """Before issue 8 a forgetting policy saved ``A``/``A_inv`` with a discounted prior."""
    import json
    import struct

    from bandit_router.policies.state import MAGIC

    pol = LinUCB(["a", "b"], 3, seed=0)
    pol.update("a", np.ones(3), 0.5)
    blob = pol.get_state()
    (n,) = struct.unpack(">I", blob[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header = json.loads(blob[start : start + n])
    header["config"]["forgetting"] = 0.9  # what the old release wrote with --set forgetting
    head = json.dumps(header).encode()
    legacy = MAGIC + struct.pack(">I", len(head)) + head + blob[start + n :]
    with pytest.raises(StateError, match="earlier release"):
        from_state(legacy)


def test_full_rank_arms_stay_exact_without_refactorisation():
    """Contexts spanning every direction, a long memory (gamma 0.999: data precision ~10^4
    times the prior's) and no exact refactorisation: the rank-one eigen-updates alone keep
    widths and ``A^-1`` exact (no ``I - V V'`` cancellation once an arm has rank d)."""
    d, n, gamma = 16, 8000, 0.999
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, 2, n)
    r = rng.random(n)
    pol = LinUCB(["a", "b"], d, forgetting=gamma, refactor_every=10**9, reward_range=(-1.0, 1.0))
    for x, k, y in zip(X, arms, r, strict=True):
        pol.update("ab"[k], x, float(y))
    assert (pol.state.rank == d).all()
    probe = rng.normal(size=d)
    width = pol.score(probe).width
    for k in range(2):
        theta, A = discounted_ridge(X, arms, r, k, 1.0, np.zeros(d), gamma)
        A_inv = np.linalg.inv(A)
        assert rel_err(pol.theta[k], theta) < 1e-12
        assert np.linalg.norm(pol.state.A_inv[k] - A_inv) < 1e-12 * np.linalg.norm(A_inv)
        assert abs(width[k] ** 2 / (probe @ A_inv @ probe) - 1) < 1e-12
