"""Off-policy evaluation of a candidate policy on the router's own decision log.

The log holds, per decision, the context (or the prompt), the model chosen, the reward
that came back and the propensity of that choice under the logging policy. Estimators of
the candidate's value ``V(pi) = E_x sum_a pi(a|x) r(x, a)``:

- IPS: ``mean(w_i r_i)``, ``w_i = pi(a_i|x_i) / p_i`` (unbiased, high variance);
- SNIPS: ``sum(w_i r_i) / sum(w_i)`` (self-normalised: a little bias, much less variance);
- DR: ``mean(sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)))`` with ``q`` a per-model
  ridge regression of the reward on the context, cross-fitted (``folds``), unbiased if
  either the propensities or ``q`` are right.

Intervals are percentile bootstraps over the logged events. ``target_probabilities``
turns a policy into ``pi(.|x_i)`` for every event; with ``learn=True`` the candidate
learns from the logged events as it goes (its probabilities at event i depend only on
events before i), which estimates the value of "this policy, trained on this traffic".

Log file format (CSV or JSONL, one decision per row), read by ``load_log``:

=============  ==========================================================================
column         meaning
=============  ==========================================================================
``model``      the model the logging policy chose (required)
``reward``     the feedback for it, in [0, 1] (required)
``propensity`` probability the logging policy gave to that model, in (0, 1] (required)
``context``    the featurized context as a JSON list of floats, or
``prompt``     the query text (embedded with ``--embedder``, featurized like the router)
``run``        the logging run (policy, seed, budget) that made the decision: a log
               that mixes runs is evaluated one run at a time (``select_runs``)
``decision_id``, ``user``, ``cost``: optional, kept for reference
=============  ==========================================================================

Importance weighting only sees what the logging policy could have chosen. ``diagnostics``
reports the effective sample size ``(sum w)^2 / sum w^2`` and the share of the candidate's
probability mass on choices the logger never makes (a deterministic logger, propensity 1,
never takes another model; a model the log never chose is never taken): on that share the
estimators are blind, and ``evaluate_candidate`` flags the estimate as unsupported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bandit_router.errors import InvalidInputError
from bandit_router.policies.base import Policy
from bandit_router.tables import read_table
from bandit_router.text import prompt_text


class LogFormatError(InvalidInputError):
    """A decision log misses a column or has invalid rewards or propensities."""


@dataclass
class LoggedData:
    """Logged bandit feedback: ``X (n, d)``, ``actions (n,)`` int in ``arms``,
    ``rewards (n,)``, ``propensities (n,)``.

    >>> d = LoggedData(np.ones((2, 1)), np.array([0, 1]), np.array([1.0, 0.0]),
    ...                np.array([0.5, 0.5]), ["a", "b"])
    >>> d.n, d.n_arms
    (2, 2)
    """

    X: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    arms: list[str]
    reward_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        self.actions = np.asarray(self.actions, dtype=np.int64)
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.propensities = np.asarray(self.propensities, dtype=np.float64)
        n = len(self.actions)
        if self.X.shape[0] != n or len(self.rewards) != n or len(self.propensities) != n:
            raise LogFormatError("contexts, actions, rewards and propensities differ in length.")
        if n == 0:
            raise LogFormatError("the log is empty.")
        if not np.isfinite(self.rewards).all():
            raise LogFormatError(
                f"{int((~np.isfinite(self.rewards)).sum())} values of the column 'reward' are "
                "missing or not numbers."
            )
        lo, hi = self.reward_range
        out = (self.rewards < lo) | (self.rewards > hi)
        if out.any():
            first = int(np.flatnonzero(out)[0])
            raise LogFormatError(
                f"the column 'reward' must lie in [{lo:g}, {hi:g}] (the reward scale); "
                f"{int(out.sum())} of {n} rows are outside (first at row {first}: "
                f"{self.rewards[first]:g}). Rescale the rewards to [{lo:g}, {hi:g}]."
            )
        p = self.propensities
        bad = ~(np.isfinite(p) & (p > 0) & (p <= 1))
        if bad.any():
            raise LogFormatError(
                f"{int(bad.sum())} values of the column 'propensity' are not in (0, 1] (first at row "
                f"{int(np.flatnonzero(bad)[0])}); off-policy estimates need the logging "
                "policy's probability of every logged choice."
            )
        if self.actions.min() < 0 or self.actions.max() >= len(self.arms):
            raise LogFormatError("an action index is outside the list of models.")

    @property
    def n(self) -> int:
        return len(self.actions)

    @property
    def n_arms(self) -> int:
        return len(self.arms)


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a decision log (``.csv``, ``.jsonl`` / ``.json`` lines, ``.parquet``)."""
    try:
        return read_table(path)
    except InvalidInputError as exc:
        raise LogFormatError(f"{exc} (a decision log: .csv, .jsonl or .parquet)") from None


def log_from_frame(
    df: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    featurize: Any | None = None,
    source: str = "the log",
) -> LoggedData:
    """Validate a log frame. ``featurize(prompts) -> (n, d)`` is needed when the log has
    prompts instead of contexts. ``arms`` fixes the model order (default: sorted names).

    >>> df = pd.DataFrame({"context": ["[1, 0]", "[0, 1]"], "model": ["a", "b"],
    ...                    "reward": [1, 0], "propensity": [0.5, 0.5]})
    >>> log_from_frame(df).X.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    missing = [c for c in ("model", "reward", "propensity") if c not in df.columns]
    if missing:
        raise LogFormatError(
            f"{source} lacks the column(s) {missing}; a decision log needs model, reward, "
            "propensity and either context (JSON list) or prompt."
        )
    models = df["model"].astype(str)
    names = list(arms) if arms is not None else sorted(models.unique())
    index = {m: k for k, m in enumerate(names)}
    unknown = sorted(set(models) - set(index))
    if unknown:
        raise LogFormatError(f"{source} chose models {unknown} that are not in {names}.")
    if "context" in df.columns:
        ctx = [json.loads(c) if isinstance(c, str) else c for c in df["context"]]
        try:
            X = np.asarray(ctx, dtype=np.float64)
        except ValueError as exc:
            raise LogFormatError(f"{source}: contexts have different lengths.") from exc
        if X.ndim != 2:
            raise LogFormatError(f"{source}: every context must be a list of numbers.")
    elif "prompt" in df.columns:
        if featurize is None:
            raise LogFormatError(f"{source} has prompts; give an embedder to featurize them.")
        texts = [prompt_text(v) for v in df["prompt"]]
        empty = [i for i, t in enumerate(texts) if t is None]
        if empty:
            raise LogFormatError(
                f"{source}: {len(empty)} row(s) have no prompt text (first at row {empty[0]})."
            )
        X = np.asarray(featurize(texts), dtype=np.float64)
    else:
        raise LogFormatError(f"{source} has neither a context nor a prompt column.")
    rewards = pd.to_numeric(df["reward"], errors="coerce").to_numpy(dtype=np.float64)
    props = pd.to_numeric(df["propensity"], errors="coerce").to_numpy(dtype=np.float64)
    try:
        return LoggedData(X, models.map(index).to_numpy(), rewards, props, names)
    except LogFormatError as exc:
        raise LogFormatError(f"{source}: {exc}") from None


class MixedLogError(LogFormatError):
    """A decision log mixes several logging runs and none was selected."""


def run_labels(df: pd.DataFrame) -> pd.Series | None:
    """The logging run of every row: the ``run`` column, else ``policy/s<seed>`` from the
    ``policy`` and ``seed`` columns older logs have; None when the log names no run.

    >>> run_labels(pd.DataFrame({"policy": ["random", "linucb"], "seed": [0, 0]})).tolist()
    ['random/s0', 'linucb/s0']
    """
    if "run" in df.columns:
        return df["run"].astype(str)
    if "policy" in df.columns:
        if "seed" in df.columns:
            return df["policy"].astype(str) + "/s" + df["seed"].astype(str)
        return df["policy"].astype(str)
    return None


def select_runs(
    df: pd.DataFrame, runs: Sequence[str] | None = None, *, source: str = "the log"
) -> dict[str, pd.DataFrame]:
    """The log split by logging run, ``{run: rows}`` in order of first appearance.

    Off-policy estimates weigh each decision by the propensity of *its* logging policy, so
    they are only meaningful one logging run at a time. ``runs`` selects runs by name
    (``["all"]``: every run, each evaluated on its own). A log that names no run is one
    run (``"log"``). A log with several runs and no selection raises ``MixedLogError``
    listing the runs and how to pick one.

    >>> df = pd.DataFrame({"run": ["a", "b", "a"], "x": [1, 2, 3]})
    >>> {k: v["x"].tolist() for k, v in select_runs(df, ["a"]).items()}
    {'a': [1, 3]}
    """
    labels = run_labels(df)
    if labels is None:
        if runs and list(runs) != ["all"]:
            raise LogFormatError(
                f"{source} has no 'run' column, so --run {', '.join(runs)} selects nothing; "
                "drop --run (the whole log is one run)."
            )
        return {"log": df}
    names = list(dict.fromkeys(labels))
    if not runs:
        if len(names) == 1:
            return {names[0]: df}
        shown = ", ".join(names[:8]) + (f" ... ({len(names)} runs)" if len(names) > 8 else "")
        raise MixedLogError(
            f"{source} mixes {len(names)} logging runs ({shown}); each logged a different "
            "policy's propensities, and pooling them gives meaningless estimates. Evaluate "
            f"one run with --run {names[0]} (repeat --run for several), or every run "
            "separately with --run all. Pick a run whose policy explores (random, "
            "epsilon-greedy, lints): a deterministic logger (linucb, fixed) supports no "
            "other policy."
        )
    wanted = names if list(runs) == ["all"] else list(dict.fromkeys(runs))
    unknown = [r for r in wanted if r not in names]
    if unknown:
        raise LogFormatError(
            f"{source} has no run {', '.join(unknown)}; its runs are: {', '.join(names)}."
        )
    return {r: df[(labels == r).to_numpy()] for r in wanted}


# ---- the candidate's action probabilities ---------------------------------------------------


def target_probabilities(
    policy: Policy,
    data: LoggedData,
    *,
    learn: bool = True,
    seed: int = 0,
    n_mc: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """The candidate's ``pi(.|x_i)`` for every logged event, ``(n, K)``.

    With ``learn`` the candidate is updated with each logged (model, reward) after its
    probabilities for that event are taken (progressive validation).
    """
    from tqdm.auto import tqdm

    if list(policy.arms) != list(data.arms):
        raise LogFormatError(
            f"the candidate's models {policy.arms} differ from the log's {data.arms}."
        )
    out = np.empty((data.n, data.n_arms))
    lo, hi = policy.reward_range
    for i in tqdm(range(data.n), desc="candidate", unit="ev", disable=not progress):
        x = data.X[i]
        scores = policy.score(x)
        out[i] = policy.action_probabilities(scores)
        if learn:
            policy.update(data.arms[data.actions[i]], x, float(np.clip(data.rewards[i], lo, hi)))
    return out


# ---- reward model and estimators -----------------------------------------------------------


def ridge_reward_model(
    data: LoggedData, ridge: float = 1.0, folds: int = 2, seed: int = 0
) -> np.ndarray:
    """Cross-fitted per-model ridge predictions ``q(x_i, a)`` for every event, ``(n, K)``.

    Each fold is predicted by models fitted on the other folds (``folds=1``: in-sample).
    A model with no events in the training folds predicts the mean reward.
    """
    n, K, d = data.n, data.n_arms, data.X.shape[1]
    fold = np.random.default_rng([seed, 9]).integers(0, max(folds, 1), n) if folds > 1 else None
    q = np.empty((n, K))
    splits = range(folds) if fold is not None else [None]
    for f in splits:
        test = np.ones(n, bool) if f is None else fold == f
        train = np.ones(n, bool) if f is None else ~test
        base = float(data.rewards[train].mean()) if train.any() else 0.5
        for k in range(K):
            rows = train & (data.actions == k)
            if not rows.any():
                q[test, k] = base
                continue
            Xk, rk = data.X[rows], data.rewards[rows]
            A = Xk.T @ Xk + ridge * np.eye(d)
            theta = np.linalg.solve(A, Xk.T @ (rk - base))
            q[test, k] = data.X[test] @ theta + base
    return q


@dataclass(frozen=True)
class Estimate:
    """An estimate with its bootstrap interval (``lo``, ``hi``) and standard error.

    >>> Estimate("ips", 0.5, 0.4, 0.6, 0.05).as_dict()["hi"]
    0.6
    """

    name: str
    value: float
    lo: float
    hi: float
    se: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "estimator": self.name,
            "value": self.value,
            "lo": self.lo,
            "hi": self.hi,
            "se": self.se,
        }


def _bootstrap(
    num: np.ndarray, den: np.ndarray | None, B: int, level: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    n = len(num)
    stats = np.empty(B)
    chunk = max(1, min(B, 4_000_000 // max(n, 1)))
    for s in range(0, B, chunk):
        b = min(chunk, B - s)
        idx = rng.integers(0, n, size=(b, n))
        top = num[idx].sum(axis=1)
        stats[s : s + b] = top / (den[idx].sum(axis=1) if den is not None else n)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi), float(stats.std(ddof=1))


def estimate_value(
    pi: np.ndarray,
    data: LoggedData,
    *,
    q: np.ndarray | None = None,
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clip: float | None = None,
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of the value of ``pi`` ``(n, K)`` on ``data``.

    ``q`` is the reward model ``(n, K)`` for DR (default: cross-fitted ridge);
    ``clip`` caps the importance weights (a bias-variance trade; None = unclipped).

    >>> rng = np.random.default_rng(0)
    >>> n = 4000; acts = rng.integers(0, 2, n); r = (acts == 1).astype(float)
    >>> data = LoggedData(np.ones((n, 1)), acts, r, np.full(n, 0.5), ["a", "b"])
    >>> pi = np.tile([0.0, 1.0], (n, 1))     # always "b": true value 1
    >>> est = estimate_value(pi, data, bootstrap=200)
    >>> round(est["snips"].value, 6), est["ips"].lo <= 1.0 <= est["ips"].hi
    (1.0, True)
    """
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (data.n, data.n_arms):
        raise InvalidInputError(f"pi has shape {pi.shape}, expected {(data.n, data.n_arms)}.")
    rows = np.arange(data.n)
    w = pi[rows, data.actions] / data.propensities
    if clip is not None:
        w = np.minimum(w, float(clip))
    r = data.rewards
    if q is None:
        q = ridge_reward_model(data, seed=seed)
    dr_terms = (pi * q).sum(axis=1) + w * (r - q[rows, data.actions])
    rng = np.random.default_rng([seed, 13])
    out: dict[str, Estimate] = {}
    ips_terms = w * r
    out["ips"] = Estimate(
        "ips", float(ips_terms.mean()), *_bootstrap(ips_terms, None, bootstrap, level, rng)
    )
    sw = float(w.sum())
    snips = float(ips_terms.sum() / sw) if sw > 0 else float("nan")
    out["snips"] = Estimate("snips", snips, *_bootstrap(ips_terms, w, bootstrap, level, rng))
    out["dr"] = Estimate(
        "dr", float(dr_terms.mean()), *_bootstrap(dr_terms, None, bootstrap, level, rng)
    )
    return out


def unsupported_mask(data: LoggedData) -> np.ndarray:
    """``(n, K)`` True where the logger is known never to take model ``a`` at event ``i``.

    Two cases are known from the log alone: a model the log never chose (whatever the
    logger was, it did not explore it), and every other model of an event logged with
    propensity 1 (the logger was deterministic there).

    >>> d = LoggedData(np.ones((2, 1)), np.array([0, 1]), np.array([1.0, 0.0]),
    ...                np.array([1.0, 0.5]), ["a", "b", "c"])
    >>> unsupported_mask(d).astype(int).tolist()
    [[0, 1, 1], [0, 0, 1]]
    """
    never = np.bincount(data.actions, minlength=data.n_arms) == 0  # (K,)
    mask = np.tile(never, (data.n, 1))
    det = data.propensities >= 1.0 - 1e-12
    rows = np.flatnonzero(det)
    mask[rows] = True
    mask[rows, data.actions[rows]] = never[data.actions[rows]]
    return mask


#: above this share of unsupported mass, an estimate is flagged as unsupported
UNSUPPORTED_TOLERANCE = 0.01


def diagnostics(pi: np.ndarray, data: LoggedData) -> dict[str, float]:
    """Effective sample size of the importance weights, max weight, match rate, logged
    value, and the support of the candidate under the logger.

    ``effective_sample_size`` is ``(sum w)^2 / sum w^2`` (``n`` when every weight is
    equal, small when a few events carry the estimate); ``unsupported_mass`` is the mean
    over events of the candidate's probability on models the logger is known never to
    take there (``unsupported_mask``): that part of the value is invisible to the log.

    >>> d = LoggedData(np.ones((2, 1)), np.array([0, 1]), np.array([1.0, 0.0]),
    ...                np.array([0.5, 0.5]), ["a", "b"])
    >>> out = diagnostics(np.array([[1.0, 0.0], [1.0, 0.0]]), d)
    >>> out["match_rate"], out["effective_sample_size"], out["unsupported_mass"]
    (0.5, 1.0, 0.0)
    """
    rows = np.arange(data.n)
    w = pi[rows, data.actions] / data.propensities
    ess = float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0
    unsupported = float((pi * unsupported_mask(data)).sum(axis=1).mean())
    return {
        "events": int(data.n),
        "effective_sample_size": ess,
        "max_weight": float(w.max()),
        "match_rate": float(pi[rows, data.actions].mean()),
        "logged_value": float(data.rewards.mean()),
        "unsupported_mass": unsupported,
        "deterministic_share": float((data.propensities >= 1.0 - 1e-12).mean()),
    }


def support_warnings(diag: dict[str, Any], policy: str) -> list[str]:
    """Plain-language warnings for an estimate the log cannot back up.

    >>> support_warnings({"unsupported_mass": 0.4, "deterministic_share": 1.0,
    ...                   "effective_sample_size": 900.0, "events": 1000}, "random")[0][:40]
    'random: 40.0% of its probability is on m'
    """
    out = []
    mass, n = float(diag["unsupported_mass"]), int(diag["events"])
    if mass > UNSUPPORTED_TOLERANCE:
        why = (
            "the logging policy was deterministic (propensity 1) on "
            f"{diag['deterministic_share']:.0%} of the decisions"
            if diag.get("deterministic_share", 0.0) > 0
            else "some models never appear in the log"
        )
        out.append(
            f"{policy}: {mass:.1%} of its probability is on models the logging policy never "
            f"chose there ({why}); the estimate is unsupported (biased towards 0 for IPS). "
            "Evaluate on a log from an exploring policy (random, epsilon-greedy, lints)."
        )
    ess = float(diag["effective_sample_size"])
    if ess < max(30.0, 0.01 * n):
        out.append(
            f"{policy}: effective sample size {ess:.0f} of {n} decisions; a few decisions "
            "carry the estimate, its interval is unreliable."
        )
    return out


def evaluate_candidate(
    policy: Policy,
    data: LoggedData,
    *,
    learn: bool = True,
    bootstrap: int = 1000,
    level: float = 0.95,
    clip: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Off-policy estimates of ``policy``'s value on the log, with diagnostics.

    Returns ``{"estimates": {name: Estimate.as_dict()}, **diagnostics, "supported",
    "warnings"}``: ``supported`` is False when more than ``UNSUPPORTED_TOLERANCE`` of the
    candidate's probability lies on choices the logger never makes (see ``diagnostics``).

    >>> from bandit_router.policies import make_policy
    >>> rng = np.random.default_rng(1)
    >>> n = 2000; X = np.eye(2)[rng.integers(0, 2, n)]; acts = rng.integers(0, 2, n)
    >>> r = (acts == X[:, 1]).astype(float)          # model 1 is right on context [0, 1]
    >>> data = LoggedData(X, acts, r, np.full(n, 0.5), ["m0", "m1"])
    >>> out = evaluate_candidate(make_policy("linucb", ["m0", "m1"], 2, seed=0), data,
    ...                          bootstrap=200)
    >>> out["estimates"]["dr"]["value"] > 0.9
    True
    """
    pi = target_probabilities(policy, data, learn=learn, seed=seed, progress=progress)
    est = estimate_value(pi, data, bootstrap=bootstrap, level=level, seed=seed, clip=clip)
    diag = diagnostics(pi, data)
    return {
        "policy": policy.name,
        "learn": bool(learn),
        "estimates": {k: v.as_dict() for k, v in est.items()},
        **diag,
        "supported": diag["unsupported_mass"] <= UNSUPPORTED_TOLERANCE,
        "warnings": support_warnings(diag, policy.name),
    }
