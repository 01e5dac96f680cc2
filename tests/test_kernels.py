"""Issue 13: the optional compiled kernels (``pip install bandit-router[fast]``) decide
like the numpy path: in lockstep on a stream, the same arms, the same budgeted choices and
states within 1e-12; without numba the policies run on numpy alone."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.budget import Budget, BudgetAllocator, InMemoryLedger, ManualClock
from bandit_router.errors import InvalidInputError
from bandit_router.policies import LinUCB, _kernels, make_policy

# the kernels as plain Python always; compiled too when numba is installed
KERNELS = [pytest.param(_kernels.PY, id="python")]
if _kernels.KERNELS is not None:
    KERNELS.append(pytest.param(_kernels.KERNELS, id="numba"))


def _pair(kernels=None, name="linucb", **kw):
    arms = [f"m{k}" for k in range(7)]
    a = make_policy(name, arms, dim=9, seed=3, **kw)
    b = make_policy(name, arms, dim=9, seed=3, **kw)
    a.state.kernels = kernels
    b.state.kernels = None  # the numpy path
    return a, b


def _stream(n, d=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, -1] = 1.0
    theta = rng.normal(scale=0.3, size=(7, d))
    return X, np.clip(X @ theta.T + 0.5, 0.0, 1.0), rng


def test_numpy_path_is_used_without_the_kernels():
    _a, b = _pair()
    assert b.state.kernels is None
    assert make_policy("linucb", ["a"], dim=2).state.kernels is _kernels.KERNELS
    # a policy is correct on numpy alone (the quick start's path); the kernels are optional
    X, P, _ = _stream(50)
    for i in range(50):
        d = b.decide(X[i])
        b.update(d.arm, X[i], float(P[i, d.index]))
    assert b.n_updates == 50


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", ["linucb", "lints", "epsilon-greedy"])
def test_kernels_decide_in_lockstep_with_numpy(kernels, name):
    a, b = _pair(kernels, name, refactor_every=97)
    X, P, rng = _stream(1500)
    for i in range(1500):
        da, db = a.decide(X[i]), b.decide(X[i])
        assert da.arm == db.arm, i
        np.testing.assert_allclose(da.scores.value, db.scores.value, rtol=0, atol=1e-12)
        r = float(rng.random() < P[i, da.index])
        a.update(da.arm, X[i], r)
        b.update(db.arm, X[i], r)
    np.testing.assert_allclose(a.state.A_inv, b.state.A_inv, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.state.theta, b.state.theta, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.state.counts, b.state.counts)
    np.testing.assert_array_equal(a.state.since_refactor, b.state.since_refactor)
    np.testing.assert_array_equal(a.state.last, b.state.last)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("spent", [0.0, 0.6, 0.97])
def test_budgeted_choice_is_the_same_as_numpy(kernels, spent):
    """The allocator's priced selection: the compiled choice equals the numpy one, the
    discounted values too (both compute them element by element, in the same order)."""
    a, b = _pair(kernels, alpha=0.7)
    costs = np.geomspace(1e-3, 2e-2, 7)
    alloc = BudgetAllocator()
    ledger = InMemoryLedger(clock=ManualClock(0.0))
    ledger.set_budget("u", Budget(1.0, "daily", expected_queries=500))
    X, P, rng = _stream(600, seed=1)
    for i in range(600):
        state = ledger.state("u")
        if spent:
            state = type(state)(**{**_fields(state), "spent": spent})
        sa, sb = a.score(X[i]), b.score(X[i])
        ca = alloc.choose(a, sa, costs, state)
        cb = alloc.choose(b, sb, costs, state)
        assert (ca.arm, ca.reason) == (cb.arm, cb.reason), i
        if ca.decision is None:
            continue
        np.testing.assert_array_equal(ca.decision.scores.value, _numpy_priced(b, sa, ca))
        r = float(rng.random() < P[i, ca.decision.index])
        a.update(ca.arm, X[i], r)
        b.update(cb.arm, X[i], r)
    np.testing.assert_allclose(a.state.theta, b.state.theta, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_kernels_refuse_a_non_finite_context(kernels, bad):
    a, _ = _pair(kernels)
    x = np.ones(9)
    x[4] = bad
    with pytest.raises(InvalidInputError):
        a.decide(x)
    assert a.n_updates == 0 and a._cache is None


def _fields(state):
    return {f: getattr(state, f) for f in state.__dataclass_fields__}


def _numpy_priced(pol: LinUCB, scores, allocation):
    return pol._priced(scores, allocation.selection).value


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("projected", [False, True])
def test_featurize_kernel_gives_numpys_context(kernels, projected):
    from bandit_router.features import Featurizer, Projection

    rng = np.random.default_rng(4)
    D = 40 if projected else 17
    proj = Projection(rng.normal(size=(16, D)), rng.normal(size=16)) if projected else None
    fast, slow = Featurizer(D, proj), Featurizer(D, proj)
    fast.kernels, slow.kernels = kernels, None
    for scale in (1e-300, 1e-5, 1.0, 1e5, 1e300):
        for _ in range(20):
            e = rng.normal(size=D) * scale
            np.testing.assert_array_equal(fast.transform_one(e), slow.transform_one(e))
    np.testing.assert_array_equal(fast.transform_one(np.zeros(D)), slow.transform_one(np.zeros(D)))
    for bad in (np.nan, np.inf):
        e = np.ones(D)
        e[3] = bad
        with pytest.raises(InvalidInputError):
            fast.transform_one(e)
