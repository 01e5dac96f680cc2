"""Non-stationarity: the drift watch fires on a change and forgetting tracks the new world."""

from __future__ import annotations

import numpy as np

from bandit_router.policies import LinUCB, from_state


def switching_world(policy, steps=3000, switch=1500, seed=0):
    """Two arms swap which one is better halfway; returns regret after the switch."""
    rng = np.random.default_rng(seed)
    regret_after = 0.0
    for t in range(steps):
        x = np.array([1.0])
        means = np.array([0.8, 0.3]) if t < switch else np.array([0.3, 0.8])
        d = policy.decide(x)
        if t >= switch:
            regret_after += means.max() - means[d.index]
        policy.update(d.arm, x, float(rng.random() < means[d.index]))
    return regret_after


def test_drift_watch_detects_the_switch_and_survives_round_trip():
    pol = LinUCB(["a", "b"], 1, alpha=0.3, drift=True, seed=0)
    switching_world(pol)
    assert pol.watch.events >= 1
    twin = from_state(pol.get_state())
    assert twin.watch.events == pol.watch.events


def test_forgetting_recovers_faster_than_a_stationary_ridge():
    # forgetting returns an idle arm to its prior N(0, 1): its index tends to alpha * 1,
    # which must beat the failing arm's new mean 0.3 (at alpha = 0.3 the two tie)
    stationary = switching_world(LinUCB(["a", "b"], 1, alpha=0.5, seed=0))
    forgetting = switching_world(LinUCB(["a", "b"], 1, alpha=0.5, forgetting=0.99, seed=0))
    assert forgetting < 0.5 * stationary, (forgetting, stationary)
