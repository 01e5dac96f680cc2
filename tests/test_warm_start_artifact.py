"""The prior artifact: round trip, clear errors, compatibility, priors in a policy, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bandit_router.errors import ConfigurationError, DimensionMismatchError, StateError
from bandit_router.policies import make_policy
from bandit_router.warm_start import (
    PriorArtifact,
    TrainConfig,
    train_prior_from_outcomes,
    train_prior_from_preferences,
)
from bandit_router.warm_start.model import _sigmoid
from bandit_router.warm_start.synthetic import planted_preferences


@pytest.fixture(scope="module")
def planted_artifact() -> PriorArtifact:
    s = planted_preferences(n_queries=300, seed=5)
    return train_prior_from_preferences(
        s.data, s.embedder, config=TrainConfig(dim=6, seed=0), progress=False
    )


def test_round_trip_keeps_everything(planted_artifact: PriorArtifact, tmp_path: Path) -> None:
    path = planted_artifact.save(tmp_path / "prior.bin")  # any name: no ".npz" appended
    assert path == tmp_path / "prior.bin" and path.exists()
    back = PriorArtifact.load(path)
    for name in ("W", "c", "theta", "beta", "theta0", "strength"):
        np.testing.assert_array_equal(getattr(back, name), getattr(planted_artifact, name))
    assert back.models == planted_artifact.models
    assert back.scale == planted_artifact.scale
    assert back.fingerprint == planted_artifact.fingerprint and len(back.fingerprint) == 64
    assert back.embedder_name == "planted-24" and back.embedder_dim == 24
    assert back.metrics["accuracy"] == planted_artifact.metrics["accuracy"]
    assert back.calibration["method"].startswith("shared")
    assert back.config["dim"] == 6
    X = np.random.default_rng(0).normal(size=(5, 24))
    np.testing.assert_allclose(back.expected_reward(X), planted_artifact.expected_reward(X))


def test_load_errors(tmp_path: Path, planted_artifact: PriorArtifact) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        PriorArtifact.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(StateError, match="not a prior artifact"):
        PriorArtifact.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(StateError, match="no header"):
        PriorArtifact.load(tmp_path / "other.npz")
    arrays = {n: getattr(planted_artifact, n) for n in ("W", "c", "theta", "beta", "theta0")}
    head = planted_artifact.header()
    for change, msg in [({"format": "x"}, "not a bandit-router prior"), ({"version": 99}, "newer")]:
        np.savez(
            tmp_path / "h.npz",
            header=np.array(json.dumps({**head, **change})),
            strength=planted_artifact.strength,
            **arrays,
        )
        with pytest.raises(StateError, match=msg):
            PriorArtifact.load(tmp_path / "h.npz")
    np.savez(tmp_path / "s.npz", header=np.array(json.dumps(head)), strength=np.ones(2), **arrays)
    with pytest.raises(StateError, match="strength has shape"):
        PriorArtifact.load(tmp_path / "s.npz")


def test_check_compatible(planted_artifact: PriorArtifact) -> None:
    art = planted_artifact
    assert art.check_compatible("planted-24", 24, ["m0", "m1", "brand-new"]) == ["brand-new"]
    with pytest.raises(DimensionMismatchError, match="--embedder planted-24"):
        art.check_compatible("usem3", 512, ["m0"])
    with pytest.raises(DimensionMismatchError):
        art.check_compatible("planted-24", 25)
    with pytest.raises(ConfigurationError, match="none of the router's models"):
        art.check_compatible("planted-24", 24, ["x", "y"])


def test_priors_seed_the_policy_exactly(planted_artifact: PriorArtifact) -> None:
    art = planted_artifact
    arms = ["m0", "m3", "m1", "cold"]
    priors = art.priors(arms)
    assert sorted(priors) == ["m0", "m1", "m3"]  # unknown arms are left out
    policy = make_policy("pilot", arms, art.context_dim, priors=priors, alpha=0.0)
    X = np.random.default_rng(1).normal(size=(4, 24))
    ctx = art.featurizer().transform(X)
    want = art.expected_reward(X)
    pooled = np.mean([priors[a].theta0 for a in priors], axis=0)
    for x, w in zip(ctx, want, strict=True):
        mean = policy.score(x).mean
        for k, arm in enumerate(arms):
            expect = x @ pooled if arm == "cold" else w[art.models.index(arm)]
            assert mean[k] == pytest.approx(expect, abs=1e-9)
    assert priors["m0"].strength == pytest.approx(art.strengths()["m0"])
    assert all(p.strength == 3.0 for p in art.priors(arms, strength=3.0).values())
    mixed = art.priors(arms, strength={"m1": 0.5})
    assert mixed["m1"].strength == 0.5 and mixed["m0"].strength == priors["m0"].strength
    with pytest.raises(ConfigurationError, match="no data on model"):
        art.priors(arms, require_all=True)
    with pytest.raises(ConfigurationError, match="knows none"):
        art.priors(["x"])


def test_strength_follows_held_out_accuracy(planted_artifact: PriorArtifact) -> None:
    art = planted_artifact
    acc = np.array([art.metrics["per_model_accuracy"][m][0] for m in art.models])
    order = np.argsort(acc)
    assert np.all(np.diff(art.strength[order]) >= -1e-12)  # monotone in accuracy
    assert (art.strength > 0).all() and (art.strength <= 10.0).all()


def _planted_outcomes(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, object]:
    s = planted_preferences(n_queries=n, n_models=4, seed=seed)
    p = _sigmoid(s.truth.scores(s.X) - 0.5)  # P(model a answers query q right), (n, K)
    rng = np.random.default_rng(seed + 100)
    scores = (rng.random(p.shape) < p).astype(float)
    df = pd.DataFrame(scores, columns=s.data.models)
    df.insert(0, "prompt", s.data.prompts)
    return df, p, s.embedder


def test_calibrated_prior_estimates_rewards_and_routes_well() -> None:
    df, p, emb = _planted_outcomes(900, seed=3)
    art = train_prior_from_outcomes(df, emb, config=TrainConfig(dim=6, seed=0), progress=False)
    X = emb.embed(df.prompt.tolist())
    est = art.expected_reward(X)
    # reward estimates on the reward scale, close to the true success probabilities
    assert np.mean(np.abs(est - p)) < 0.6 * np.mean(np.abs(p - p.mean(axis=0)))
    assert np.corrcoef(est.ravel(), p.ravel())[0, 1] > 0.8
    fit = art.metrics["reward_fit_test"]
    assert fit["route_prior"] > fit["route_best_single"] + 0.05
    assert fit["mae_prior"] < fit["mae_constant"]
    # the greedy pilot policy with no update routes like the prior
    policy = make_policy(
        "pilot", art.models, art.context_dim, priors=art.priors(art.models), alpha=0
    )
    ctx = art.featurizer().transform(X[:50])
    chosen = [art.models.index(policy.decide(x).arm) for x in ctx]
    assert chosen == est[:50].argmax(axis=1).tolist()


def test_preferences_only_calibration_is_a_win_rate() -> None:
    s = planted_preferences(n_queries=400, seed=6)
    art = train_prior_from_preferences(
        s.data, s.embedder, config=TrainConfig(dim=6, seed=0), progress=False
    )
    assert art.calibration["method"].startswith("shared: each model's expected win rate")
    est = art.expected_reward(s.X)
    assert est.min() > -0.1 and est.max() < 1.1
    true_wr = np.mean(
        [
            [np.mean(_sigmoid(f[a] - np.delete(f, a))) for a in range(5)]
            for f in s.truth.scores(s.X)
        ],
        axis=0,
    )
    assert np.corrcoef(est.mean(axis=0), true_wr)[0, 1] > 0.9
    per = train_prior_from_preferences(
        s.data,
        s.embedder,
        config=TrainConfig(dim=6, seed=0),
        progress=False,
        calibration="per-model",
    )
    assert per.calibration["method"].startswith("per-model")
    assert not np.allclose(per.theta0, art.theta0)
