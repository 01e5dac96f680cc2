"""``type(p)(**p.config())`` rebuilds an untrained twin, priors included (issue 8)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bandit_router.errors import ConfigurationError
from bandit_router.policies import POLICY_CLASSES, ArmPrior, LinUCB, from_state
from tests.policy_factories import ALL_NAMES, ARMS, DIM, LINEAR_NAMES, build, contexts, priors


def with_priors(name: str, **kwargs):
    """Every policy; the linear ones from priors (three of the four arms: one is cold)."""
    if name in LINEAR_NAMES:
        kwargs.setdefault("priors", priors())
    return build(name, seed=11, **kwargs)


def first_scores(policy, n: int = 3) -> list[tuple[list[float], list[float], list[float]]]:
    out = []
    for x in contexts(n, seed=4):
        s = policy.score(x)
        out.append((s.mean.tolist(), s.width.tolist(), s.value.tolist()))
    return out


@pytest.mark.parametrize("name", ALL_NAMES)
def test_config_rebuilds_a_twin_with_the_same_first_scores(name):
    pol = with_priors(name)
    cfg = pol.config()
    # the state header stores the config as JSON: it must survive it unchanged
    assert json.loads(json.dumps(cfg)) == cfg
    twin = type(pol)(**json.loads(json.dumps(cfg)))
    assert twin.config() == cfg
    assert first_scores(twin) == first_scores(pol)


@pytest.mark.parametrize("name", LINEAR_NAMES)
def test_config_carries_every_arms_prior(name):
    pol = with_priors(name)
    given = priors()
    cfg = pol.config()["priors"]
    assert sorted(cfg) == sorted(ARMS)
    for arm, p in given.items():
        assert ArmPrior.coerce(cfg[arm]) == p
    # the cold arm is listed with the pooled mean it started from
    pooled = np.mean([p.theta0 for p in given.values()], axis=0)
    assert cfg[ARMS[3]]["theta0"] == pooled.tolist()
    assert cfg[ARMS[3]]["strength"] == pol.cold_strength
    np.testing.assert_array_equal(type(pol)(**pol.config()).theta, pol.theta)


def test_added_arms_and_plain_policies():
    plain = LinUCB(ARMS, DIM)
    assert plain.config()["priors"] is None  # the default N(0, I / ridge) needs no list
    plain.add_arm("xl", ArmPrior(np.full(DIM, 0.2), 5.0))
    twin = LinUCB(**plain.config())
    assert twin.arms == plain.arms
    np.testing.assert_array_equal(twin.theta, plain.theta)
    x = contexts(1)[0]
    np.testing.assert_array_equal(twin.score(x).width, plain.score(x).width)


def test_state_round_trip_of_a_pilot_policy_keeps_its_priors():
    pol = build("pilot", seed=1)
    for x in contexts(20):
        pol.update(pol.decide(x).arm, x, 0.5)
    twin = from_state(pol.get_state())
    assert twin.config() == pol.config()
    assert twin.config()["priors"][ARMS[0]]["theta0"] == priors()[ARMS[0]].theta0.tolist()


@pytest.mark.parametrize(
    "bad",
    [{"theta0": "abc", "strength": 1.0}, {"theta0": [0.0] * DIM, "strength": -1.0},
     {"theta0": [0.0] * DIM, "weight": 1.0}, [0.0] * DIM],
)  # fmt: skip
def test_malformed_priors_in_a_config_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        LinUCB(ARMS, DIM, priors={ARMS[0]: bad})


def test_every_registered_policy_is_covered():
    assert set(ALL_NAMES) == set(POLICY_CLASSES)
