"""Why does the preference prior lower early regret? An ablation on llmrouter (500 test queries).

Every variant is LinUCB on the same context (the prior's projection of usem3), so they
differ only in how the arms start and whether adaptive trust may lower the prior's strength:

- ``linucb``: ``A = I``, ``b = 0`` (no prior);
- ``ridge = lambda``: ``A = lambda I``, ``b = 0`` (the prior's mean strength, no mean);
- ``constant prior``: per-model constant mean (the prior's average prediction), the
  prior's strengths lambda_a, without and with adaptive trust;
- ``query-dependent prior, trust off``: the prior ``theta0_a`` with lambda_a, as ``linucb``
  (what ``pilot`` was before adaptive trust);
- ``pilot``: the ``pilot`` policy with its defaults (the prior with the artifact's
  strengths lambda_a, adaptive trust on), and with every lambda_a scaled by 4, 16, 64;
- ``prior only``: greedy on the prior, never learning (alpha 0, lambda_a x 1e6, adaptive
  trust off: no bandit at all);
- the hyper-parameters ``benchmarks/replay_figures.py`` tuned on the held-out rows of
  ``outcomes_train.csv`` (read from ``docs/figures/replay_info.json`` when present): alpha
  alone, and alpha with the tuned lambda multiplier, next to ``linucb`` with its tuned alpha.

Needs the prior trained by ``benchmarks/replay_figures.py`` (it trains one if missing, a
few minutes; the data folder is ``../shared/data`` or ``$BANDIT_ROUTER_SHARED_DATA``).
Writes ``docs/figures/prior_ablation.md``::

    python benchmarks/prior_ablation.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = (
    Path(os.environ.get("BANDIT_ROUTER_SHARED_DATA", ROOT.parent / "shared" / "data")) / "llmrouter"
)
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
    strengths = [float(pr.strength) for pr in p.priors.values()]
    lam = float(np.mean(strengths))
    avg = {a: float((p.X @ pr.theta0).mean()) for a, pr in p.priors.items()}
    const = {
        a: ArmPrior(np.r_[np.zeros(p.dim - 1), avg[a]], pr.strength) for a, pr in p.priors.items()
    }

    def scaled(m: float) -> dict:
        return {a: ArmPrior(pr.theta0, pr.strength * m) for a, pr in p.priors.items()}

    # (policy, options): "pilot" is LinUCB from the prior with adaptive trust on by default;
    # the others are "linucb" (trust off), so "prior only" is the prior alone
    variants = {
        "linucb (A = I, no prior)": ("linucb", {}),
        f"ridge = mean lambda ({lam:.1f}), no prior mean": ("linucb", {"ridge": lam}),
        "per-model constant prior mean, learned lambda, trust off": ("linucb", {"priors": const}),
        "per-model constant prior mean, learned lambda, adaptive trust": (
            "pilot",
            {"priors": const},
        ),
        "query-dependent prior, learned lambda, trust off": ("linucb", {"priors": p.priors}),
        "pilot (defaults: query-dependent prior, learned lambda, adaptive trust)": (
            "pilot",
            {"priors": p.priors},
        ),
        "pilot, lambda x 4": ("pilot", {"priors": scaled(4)}),
        "pilot, lambda x 16": ("pilot", {"priors": scaled(16)}),
        "pilot, lambda x 64": ("pilot", {"priors": scaled(64)}),
        "prior only: lambda x 1e6, alpha 0, trust off (never moves)": (
            "linucb",
            {"priors": scaled(1e6), "alpha": 0.0, "trust": False},
        ),
    }
    info = ROOT / "docs" / "figures" / "replay_info.json"
    tuned, rows = {}, None
    if info.exists():
        tuning = json.loads(info.read_text()).get("llmrouter", {}).get("tuning", {})
        tuned = {k: v["best"] for k, v in tuning.get("policies", {}).items()}
        rows = tuning.get("rows")
    if "pilot" in tuned and "linucb" in tuned:
        # a tuned setting that is already a row above (alpha 1 is the default) is marked
        # there instead of being run twice
        a_lin = tuned["linucb"]["alpha"]
        a, m = tuned["pilot"]["alpha"], tuned["pilot"].get("prior_scale", 1)
        same = {
            ("linucb", 1.0, None): "linucb (A = I, no prior)",
            ("pilot", 1.0, 1): "pilot (defaults: query-dependent prior, learned lambda, "
            "adaptive trust)",
            **{("pilot", 1.0, k): f"pilot, lambda x {k}" for k in (4, 16, 64)},
        }
        rows_tuned = [  # (label, key, note on a row above with the same settings)
            (
                f"linucb, alpha {a_lin:g} (tuned), no prior",
                ("linucb", a_lin, None),
                f" = linucb with its tuned alpha ({a_lin:g})",
            ),
            (
                f"pilot, alpha {a:g} (tuned), learned lambda",
                ("pilot", a, 1),
                f" = pilot with its tuned alpha ({a:g}) alone",
            ),
            (
                f"pilot, alpha {a:g}, lambda x {m:g} (both tuned)",
                ("pilot", a, m),
                f" = pilot with its tuned alpha and lambda (alpha {a:g}, lambda x {m:g})",
            ),
        ]
        for label, key, note in rows_tuned:
            pol, alpha, mult = key
            if key in same:
                old = same[key]
                variants = {(k + note if k == old else k): v for k, v in variants.items()}
                same[key] = old + note
            elif pol == "linucb":
                variants[label] = ("linucb", {"alpha": alpha})
            else:
                variants[label] = ("pilot", {"priors": scaled(mult), "alpha": alpha})
    marks = [49, 99, 249, 499]
    lines = [
        f"LinUCB (alpha = 1 unless stated) on llmrouter/outcomes_test.csv, {args.seeds} seeds; "
        "prior trained on outcomes_train.csv, its strengths lambda_a "
        f"{min(strengths):.1f} to {max(strengths):.1f} (mean {lam:.1f}); 'adaptive trust' and "
        "'pilot' = the `pilot` policy (trust on by default), the rest `linucb` (trust off); "
        f"'tuned' = chosen on the {rows or 'held-out'} rows of outcomes_train.csv the prior "
        "was not fitted on (`benchmarks/replay_figures.py`). Cumulative regret vs the "
        "per-query oracle (mean ± s.e.).\n",
        "| variant | regret @50 | @100 | @250 | @500 | mean reward |",
        "|---|---|---|---|---|---|",
    ]
    trust_runs, trust_events = 0, 0  # runs with adaptive trust on, strength changes in them
    for name, (policy, kw) in variants.items():
        res = []
        for s in range(args.seeds):
            pol = make_policy(policy, p.arms, p.dim, seed=s, **kw)
            res.append(run_replay(p, pol, ReplayConfig(), s))
            if getattr(pol, "trust", False):
                trust_runs += 1
                trust_events += int(pol.trust_events)
        reg = np.array([r.steps["cumulative_regret"].to_numpy()[marks] for r in res])
        m, se = reg.mean(axis=0), reg.std(axis=0, ddof=1) / np.sqrt(len(res))
        mr = np.mean([r.summary["mean_reward"] for r in res])
        cells = " | ".join(f"{a:.1f} ± {b:.1f}" for a, b in zip(m, se, strict=True))
        lines.append(f"| {name} | {cells} | {mr:.3f} |")
        print(lines[-1])
    lines.append(
        f"\nbest single model {t.scores.mean(axis=0).max():.3f}, per-query oracle "
        f"{t.scores.max(axis=1).mean():.3f}. Adaptive trust changed a prior strength "
        f"{trust_events} times in its {trust_runs} runs (rows with `pilot`)."
    )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))


if __name__ == "__main__":
    main()
