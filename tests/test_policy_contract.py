"""One contract, run over every registered policy."""

from __future__ import annotations

import numpy as np
import pytest

from bandit_router.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    StateError,
    UnknownArmError,
)
from bandit_router.policies import from_state, make_policy, policy_names
from tests.policy_factories import ALL_NAMES, ARMS, DIM, build, contexts


def run(policy, X, seed=1):
    """Decide and learn on X; returns the chosen arms and values."""
    rng = np.random.default_rng(seed)
    arms, values = [], []
    for x in X:
        d = policy.decide(x)
        arms.append(d.arm)
        values.append(d.scores.value.copy())
        policy.update(d.arm, x, float(rng.random()))
    return arms, np.array(values)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_seeded_runs_are_identical(name):
    X = contexts(40)
    a1, v1 = run(build(name, seed=7), X)
    a2, v2 = run(build(name, seed=7), X)
    assert a1 == a2
    np.testing.assert_array_equal(v1, v2)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_state_round_trip_continues_identically(name):
    X = contexts(60)
    pol = build(name, seed=3)
    run(pol, X[:30])
    twin = from_state(pol.get_state())
    assert type(twin) is type(pol)
    assert twin.arms == pol.arms and twin.config() == pol.config()
    a1, v1 = run(pol, X[30:], seed=5)
    a2, v2 = run(twin, X[30:], seed=5)
    assert a1 == a2
    np.testing.assert_allclose(v1, v2, rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_rejects_bad_input(name):
    pol = build(name)
    x = contexts(1)[0]
    with pytest.raises(DimensionMismatchError):
        pol.decide(np.ones(DIM + 1))
    bad = x.copy()
    bad[0] = np.nan
    with pytest.raises(InvalidInputError):
        pol.decide(bad)
    bad[0] = np.inf
    with pytest.raises(InvalidInputError):
        pol.update(ARMS[0], bad, 0.5)
    with pytest.raises(UnknownArmError):
        pol.update("gpt-17", x, 0.5)
    for reward in (1.5, -0.1, float("nan")):
        with pytest.raises(InvalidInputError):
            pol.update(ARMS[0], x, reward)
    with pytest.raises(InvalidInputError):
        pol.decide(x, allowed=[])
    with pytest.raises(UnknownArmError):
        pol.decide(x, allowed=["nope"])


@pytest.mark.parametrize("name", ALL_NAMES)
def test_decisions_respect_the_allowed_set_and_report_propensity(name):
    pol = build(name, seed=2)
    rng = np.random.default_rng(0)
    for x in contexts(40):
        allowed = [a for a in ARMS if rng.random() < 0.6] or [ARMS[-1]]
        d = pol.decide(x, allowed=allowed)
        assert d.arm in allowed
        assert 0.0 < d.propensity <= 1.0
        assert d.scores.value.shape == (len(ARMS),)
        assert d.scores.mean.shape == (len(ARMS),)
        pol.update(d.arm, x, 0.5)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_corrupted_state_never_loads(name):
    pol = build(name, seed=1)
    run(pol, contexts(10))
    blob = pol.get_state()
    flipped = bytearray(blob)
    flipped[-20] ^= 0xFF
    for bad in (bytes(flipped), blob[:-10], blob[:12], b"not a state", b""):
        with pytest.raises(StateError):
            from_state(bad)
    with pytest.raises(StateError):
        from_state(blob, expected="something-else")
    header_end = blob.index(b'"version": 1')
    wrong_version = blob[:header_end] + b'"version": 9' + blob[header_end + 12 :]
    with pytest.raises(StateError, match="version"):
        from_state(wrong_version)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_arms_can_be_added_and_retired(name):
    pol = build(name, seed=4)
    run(pol, contexts(10))
    pol.add_arm("xl")
    assert pol.arms[-1] == "xl"
    for x in contexts(15, seed=9):
        d = pol.decide(x)
        pol.update(d.arm, x, 0.5)
    pol.update("xl", contexts(1)[0], 0.9)
    pol.remove_arm("nano")
    assert "nano" not in pol.arms
    d = pol.decide(contexts(1)[0])
    assert d.arm in pol.arms
    twin = from_state(pol.get_state())
    assert twin.arms == pol.arms
    with pytest.raises(ConfigurationError):
        pol.add_arm("xl")


def test_registry_names_and_errors():
    names = policy_names()
    for required in (
        "linucb",
        "lints",
        "pilot",
        "pilot-ts",
        "epsilon-greedy",
        "random",
        "fixed:<model>",
    ):
        assert required in names
    with pytest.raises(ConfigurationError, match="unknown policy"):
        make_policy("linucbb", ARMS, DIM)
    with pytest.raises(ConfigurationError, match="takes no option"):
        make_policy("linucb", ARMS, DIM, alpah=1.0)
    with pytest.raises(ConfigurationError, match="needs a preference prior"):
        make_policy("pilot", ARMS, DIM)
    with pytest.raises(ConfigurationError, match="names no arm"):
        make_policy("fixed:gpt-9", ARMS, DIM)
    with pytest.raises(ConfigurationError):
        make_policy("linucb", ["a", "a"], DIM)
