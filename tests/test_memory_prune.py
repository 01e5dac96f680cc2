"""``Router.prune``: a long-lived router forgets the history nothing needs, and nothing else.

A router on in-memory stores kept every decision, feedback and settlement (~2.5 KB per
query at d = 64). Pruning must leave every answer the same as a twin that never prunes
(routes, budgets, feedback, expiry), except that feedback on a pruned decision is unknown;
and the state must still rebuild from the snapshot the prune writes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.budget import Budget, ManualClock
from bandit_router.catalogue import ModelSpec
from bandit_router.config import RouterConfig
from bandit_router.errors import InvalidInputError, StateError, UnknownDecisionError
from bandit_router.policies import make_policy
from bandit_router.router import Router, counter_ids

SPECS = [ModelSpec("small", 100.0, 400.0), ModelSpec("large", 2000.0, 6000.0)]
USERS = {
    "ann": Budget(1.0, "daily"),
    "bob": Budget(0.5, "rolling:600"),
    "cy": None,  # unbudgeted: nothing reserved
}


def make_router(clock: ManualClock) -> Router:
    router = Router(
        SPECS, None, None, make_policy("linucb", ["small", "large"], 3, seed=0),
        clock=clock, feedback_wait_seconds=300.0, ids=counter_ids("d"),
    )  # fmt: skip
    for user, budget in USERS.items():
        router.set_user(user, budget)
    return router


def books(router: Router) -> list[tuple]:
    out = []
    for user in ("ann", "bob"):  # cy has no budget, hence no account
        s = router.stores.ledger.state(user)
        out.append((s.spent, s.reserved, s.n_decisions, s.remaining))
    return out


op = st.one_of(
    st.tuples(st.just("route"), st.sampled_from(sorted(USERS)), st.integers(0, 7)),
    st.tuples(st.just("feedback"), st.integers(0, 50), st.floats(0, 1), st.floats(0, 0.3)),
    st.tuples(st.just("again"), st.integers(0, 50)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 60.0, 400.0, 3600.0, 86_400.0])),
    st.tuples(st.just("prune"), st.sampled_from([0.0, 30.0, 500.0, 7200.0])),
    st.tuples(st.just("expire")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=5, max_size=60))
def test_pruning_changes_no_answer_but_feedback_on_what_it_forgot(ops):
    X = np.random.default_rng(0).standard_normal((8, 3))
    clock = ManualClock(1e9)
    pruned, twin = make_router(clock), make_router(clock)
    routed: list[str] = []
    answered: list[str] = []
    for o in ops:
        if o[0] == "route":
            a = pruned.route_context(o[1], X[o[2]], input_tokens=100.0)
            b = twin.route_context(o[1], X[o[2]], input_tokens=100.0)
            assert (a.decision_id, a.model, a.reason, a.budget_remaining) == (
                b.decision_id, b.model, b.reason, b.budget_remaining,
            )  # fmt: skip
            if a.model is not None:
                routed.append(a.decision_id)
        elif o[0] == "feedback" and routed:
            did = routed[o[1] % len(routed)]
            if did in answered:
                continue  # "again" sends feedback twice
            outcomes = []
            for router in (pruned, twin):
                try:
                    f = router.feedback(did, o[2], cost=o[3])
                    outcomes.append((f.feedback_id, f.reward, f.cost, f.applied))
                except Exception as exc:  # expired: the same error on both
                    outcomes.append(type(exc).__name__)
            assert outcomes[0] == outcomes[1]
            answered.append(did)
        elif o[0] == "again" and answered:
            did = answered[o[1] % len(answered)]
            known = twin.stores.decisions.feedback_for(did)
            if pruned.stores.decisions.get(did) is None:  # pruned: now an unknown decision
                with pytest.raises(UnknownDecisionError, match="give the decision_id"):
                    pruned.feedback(did, 0.5)
            elif known is not None and not known.is_default:
                a = pruned.feedback(did, known.reward, cost=known.cost)
                b = twin.feedback(did, known.reward, cost=known.cost)
                assert a.duplicate and b.duplicate and a.feedback_id == b.feedback_id
        elif o[0] == "advance":
            clock.advance(o[1])
        elif o[0] == "prune":
            pruned.prune(older_than=o[1])
        elif o[0] == "expire":
            a = [(r.decision_id, r.feedback_id) for r in pruned.expire()]
            b = [(r.decision_id, r.feedback_id) for r in twin.expire()]
            assert a == b
        assert books(pruned) == books(twin)  # the same arithmetic: exactly
        assert pruned.last_feedback_id == twin.last_feedback_id
        np.testing.assert_allclose(pruned.policy.theta, twin.policy.theta, rtol=0, atol=1e-12)


def test_a_long_lived_router_holds_a_bounded_history():
    clock = ManualClock(1e9)
    router = make_router(clock)
    X = np.random.default_rng(1).standard_normal((3000, 3))
    for i in range(3000):
        r = router.route_context("ann" if i % 2 else "cy", X[i], input_tokens=10.0)
        router.feedback(r.decision_id, 0.5, cost=1e-6)
        clock.advance(1.0)
        if i % 500 == 499:
            router.prune(older_than=100.0)
    log, ledger = router.stores.decisions, router.stores.ledger
    # what is left: the last ~100 s of history (and the 499 since the last prune at most)
    assert len(log) < 600 and len(log._log) < 600
    assert len(ledger._settled) < 600 and len(ledger._queue) < 600
    # the ids go on without a gap, and the books still count the whole period
    assert router.last_feedback_id == 3000
    assert [f.feedback_id for f in log.feedback_since(2990)] == list(range(2991, 3001))
    assert ledger.state("ann").n_decisions == 1500


def test_the_state_rebuilds_from_what_a_prune_leaves():
    clock = ManualClock(1e9)
    cfg = RouterConfig.from_dict(
        {"models": [{"name": "small", "input_price_per_mtok": 0.1, "output_price_per_mtok": 0.4},
                    {"name": "large", "input_price_per_mtok": 5, "output_price_per_mtok": 15}],
         "embedder": "hashing-8", "policy": "linucb", "seed": 0, "snapshot_every": 0}
    )  # fmt: skip
    router = Router.from_config(cfg, clock=clock)
    E = np.random.default_rng(2).standard_normal((60, 8))
    for i in range(40):
        r = router.route("u", embedding=E[i])
        router.feedback(r.decision_id, float(i % 3) / 2)
    clock.advance(3600.0)
    assert router.prune(older_than=60.0)["feedback"] == 40
    for i in range(40, 60):  # feedback after the prune's snapshot: replayed on rebuild
        r = router.route("u", embedding=E[i])
        router.feedback(r.decision_id, 1.0)
    rebuilt = Router.from_config(cfg, stores=router.stores, clock=clock)
    assert rebuilt.last_feedback_id == router.last_feedback_id == 60
    np.testing.assert_allclose(rebuilt.policy.state.A_inv, router.policy.state.A_inv, atol=1e-9)
    np.testing.assert_allclose(rebuilt.policy.theta, router.policy.theta, atol=1e-9)
    with pytest.raises(StateError, match=r"feedback up to #40 was pruned"):
        router.stores.decisions.feedback_since(10)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "soon", None])
def test_older_than_must_be_seconds(bad):
    router = make_router(ManualClock(0.0))
    with pytest.raises(InvalidInputError, match="older_than must be a"):
        router.prune(older_than=bad)
