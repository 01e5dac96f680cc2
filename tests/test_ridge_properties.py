"""Incremental rank-one state equals the batch ridge solution (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.policies import ArmPrior, LinTS, LinUCB
from bandit_router.policies.ridge import RidgeArms, ridge_arms

finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


@st.composite
def streams(draw, max_dim=6, max_arms=3, max_len=60):
    d = draw(st.integers(1, max_dim))
    K = draw(st.integers(1, max_arms))
    n = draw(st.integers(0, max_len))
    X = np.array(draw(st.lists(st.lists(finite, min_size=d, max_size=d), min_size=n, max_size=n)))
    X = X.reshape(n, d)
    arms = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)), dtype=int)
    r = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    lam = np.array(draw(st.lists(st.floats(0.5, 5.0), min_size=K, max_size=K)))
    theta0 = np.array(
        draw(st.lists(st.lists(finite, min_size=d, max_size=d), min_size=K, max_size=K))
    )
    return d, K, X, arms, r, lam, theta0.reshape(K, d)


def batch_ridge(X, r, lam, theta0, weights=None):
    """Closed form: (lam I + X'WX)^-1 (lam theta0 + X'W r)."""
    d = theta0.shape[0]
    w = np.ones(len(r)) if weights is None else weights
    A = lam * np.eye(d) + (X * w[:, None]).T @ X
    b = lam * theta0 + (X * w[:, None]).T @ r
    return np.linalg.solve(A, b), A


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(1.0, np.linalg.norm(b))


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(1, 1000))
def test_incremental_matches_batch_ridge(stream, refactor_every):
    d, K, X, arms, r, lam, theta0 = stream
    state = RidgeArms(K, d, lam, theta0, refactor_every=refactor_every)
    for x, k, y in zip(X, arms, r, strict=True):
        state.update(int(k), x, float(y))
    for k in range(K):
        sel = arms == k
        theta, A = batch_ridge(X[sel], r[sel], lam[k], theta0[k])
        assert rel_err(state.theta[k], theta) < 1e-8
        assert rel_err(state.A_inv[k], np.linalg.inv(A)) < 1e-8
        np.testing.assert_allclose(state.A[k], A, rtol=1e-12, atol=1e-9)


def discounted_batch(X, r, arms, k, lam, theta0, gamma):
    """Discounted ridge from scratch: only the data is discounted, the prior is a floor.

    After ``n`` updates (of any arm) the observation of update ``s`` (1-based) weighs
    ``gamma ** (n - s)``; ``A = lam I + sum w x x'``, ``b = lam theta0 + sum w r x``.
    """
    n = len(r)
    w = gamma ** (n - np.arange(1, n + 1, dtype=float))
    return batch_ridge(X[arms == k], r[arms == k], lam, theta0, w[arms == k])


@settings(max_examples=150, deadline=None)
@given(streams(), st.floats(0.5, 0.999), st.integers(1, 50), st.data())
def test_forgetting_matches_discounted_batch(stream, gamma, refactor_every, data):
    """Incremental discounted arms == the batch discounted ridge, pending discounts included.

    (Before issue 8 this oracle discounted the prior with the data, ``lam * gamma**n``: the
    semantics that drove ``A`` to singular. The prior is now an undiscounted floor.)
    """
    d, K, X, arms, r, lam, theta0 = stream
    state = ridge_arms(K, d, lam, theta0, forgetting=gamma, refactor_every=refactor_every)
    cached = data.draw(st.lists(st.booleans(), min_size=len(r), max_size=len(r)))
    for x, k, y, use_cache in zip(X, arms, r, cached, strict=True):
        if use_cache:  # the policy's path: score first, pass the projection to the update
            mean, _, U = state.mean_and_variance(x)
            state.update(int(k), x, float(y), U[k], float(mean[k]))
        else:
            state.update(int(k), x, float(y))
    probe = np.linspace(-1.0, 1.0, d) + 0.5
    mean, var, _ = state.mean_and_variance(probe)
    theta_inc, A_inv_inc = state.theta, state.A_inv
    for k in range(K):
        theta, A = discounted_batch(X, r, arms, k, lam[k], theta0[k], gamma)
        A_inv = np.linalg.inv(A)
        assert rel_err(theta_inc[k], theta) < 1e-8
        assert rel_err(A_inv_inc[k], A_inv) < 1e-8
        np.testing.assert_allclose(state.A[k], A, rtol=1e-10, atol=1e-10)
        assert abs(mean[k] - probe @ theta) < 1e-8 * max(1.0, abs(probe @ theta))
        assert abs(var[k] - probe @ A_inv @ probe) < 1e-8 * (probe @ A_inv @ probe)


@settings(max_examples=60, deadline=None)
@given(streams(max_len=0))
def test_first_estimate_is_the_prior(stream):
    d, K, _, _, _, lam, theta0 = stream
    arms = [f"m{k}" for k in range(K)]
    priors = {a: ArmPrior(theta0[k], lam[k]) for k, a in enumerate(arms)}
    for cls in (LinUCB, LinTS):
        pol = cls(arms, d, priors=priors, seed=0)
        np.testing.assert_array_equal(pol.theta, theta0)
        x = np.ones(d)
        np.testing.assert_allclose(pol.score(x).mean, theta0 @ x, rtol=1e-12, atol=1e-12)


def test_policy_updates_use_the_cached_projection_correctly():
    """decide() then update() with the same array takes the cached A^-1 x; a changed array must not."""
    rng = np.random.default_rng(0)
    # reward range centred on 0: the prior-free policy learns the raw reward (no offset)
    pol = LinUCB(["a", "b"], 4, seed=0, reward_range=(-1.0, 1.0))
    ref = RidgeArms(2, 4, np.ones(2), np.zeros((2, 4)))
    for i in range(200):
        x = rng.normal(size=4)
        d = pol.decide(x)
        if i % 3 == 0:
            x[0] += 1.0  # mutate in place after scoring: the cache must notice
        pol.update(d.arm, x, 0.3)
        ref.update(d.index, x, 0.3)
    np.testing.assert_allclose(pol.theta, ref.theta, rtol=1e-10, atol=1e-12)


def test_thompson_draw_matches_the_posterior_law():
    """The 1-d shortcut and the Cholesky draw sample the same distribution of x' theta."""
    rng = np.random.default_rng(1)
    pol = LinTS(["a"], 3, v=0.7, seed=4, reward_range=(-1.0, 1.0))  # no offset
    for _ in range(20):
        x = rng.normal(size=3)
        pol.update("a", x, float(rng.random()))
    x = np.array([0.3, -0.5, 1.0])
    fast = np.array([pol.score(x).value[0] for _ in range(4000)])
    full = np.array([pol.sample_parameters(scale=0.7)[0] @ x for _ in range(4000)])
    sd = np.sqrt(x @ pol.state.A_inv[0] @ x) * 0.7
    for draws in (fast, full):
        assert abs(draws.mean() - pol.theta[0] @ x) < 5 * sd / np.sqrt(4000)
        assert abs(draws.std() / sd - 1.0) < 0.06


@settings(max_examples=60, deadline=None)
@given(streams(max_len=40), st.floats(0.5, 0.999), st.integers(0, 40), st.integers(1, 30))
def test_discounted_state_round_trip_continues_identically(stream, gamma, cut, refactor_every):
    """Saving the discounted arms (``arrays``) and loading them into fresh ones mid-stream
    changes nothing: the rest of the stream gives bit-identical scores and state."""
    d, K, X, arms, r, lam, theta0 = stream
    cut = min(cut, len(r))
    a = ridge_arms(K, d, lam, theta0, forgetting=gamma, refactor_every=refactor_every)
    for x, k, y in zip(X[:cut], arms[:cut], r[:cut], strict=True):
        a.update(int(k), x, float(y))
    saved = {name: np.array(v, copy=True) for name, v in a.arrays().items()}
    b = ridge_arms(K, d, np.ones(K), np.zeros((K, d)), forgetting=gamma)
    b.refactor_every = refactor_every
    b.check_arrays(saved, K)
    b.load(saved)
    probe = np.full(d, 0.7)
    for x, k, y in zip(X[cut:], arms[cut:], r[cut:], strict=True):
        ma, va, Ua = a.mean_and_variance(x)
        mb, vb, Ub = b.mean_and_variance(x)
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(va, vb)
        a.update(int(k), x, float(y), Ua[k], float(ma[k]))
        b.update(int(k), x, float(y), Ub[k], float(mb[k]))
    for got, want in zip(b.mean_and_variance(probe), a.mean_and_variance(probe), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(b.theta, a.theta)
