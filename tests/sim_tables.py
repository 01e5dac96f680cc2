"""A tiny two-topic outcome table for the simulator's CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def two_topic_table(tmp_path: Path, n: int, seed: int) -> tuple[Path, pd.DataFrame]:
    """``small`` answers poetry right and costs little; ``large`` is always right and dear."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 2, n)
    df = pd.DataFrame(
        {
            "sample_id": [f"q{i}" for i in range(n)],
            "prompt": [
                ("integrate the polynomial " if t else "write a haiku about ") + str(i)
                for i, t in enumerate(topic)
            ],
            "eval_name": np.where(topic, "math", "poetry"),
            "small": (topic == 0).astype(float),
            "small|total_cost": np.full(n, 0.0001),
            "large": np.ones(n),
            "large|total_cost": np.full(n, 0.002),
        }
    )
    path = tmp_path / "outcomes.csv"
    df.to_csv(path, index=False)
    return path, df
