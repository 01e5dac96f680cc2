"""``bandit-router warm-start``: both inputs, the printed report, help text, user errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer.main
from typer.testing import CliRunner

from bandit_router.cli.app import app, main
from bandit_router.warm_start import PriorArtifact

TOPICS = {
    "code": "write a python function that sorts a list of numbers",
    "poem": "compose a short poem about the autumn sea and the wind",
    "math": "compute the integral of x squared from zero to three",
}


def _prefs(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        winner = {"code": "model_a", "poem": "model_b", "math": "tie"}[topic]
        if rng.random() < 0.1:
            winner = "model_b" if winner == "model_a" else "model_a"
        rows.append((f"{TOPICS[topic]} (variant {i})", "coder", "poet", winner))
    return pd.DataFrame(rows, columns=["prompt", "model_a", "model_b", "winner"])


def test_every_option_has_help() -> None:
    cmd = typer.main.get_command(app).commands["warm-start"]
    assert (cmd.help or "").strip()
    for param in cmd.params:
        assert (getattr(param, "help", None) or "").strip(), param.name


def test_warm_start_from_preferences(tmp_path: Path) -> None:
    _prefs().to_csv(tmp_path / "prefs.csv", index=False)
    out = tmp_path / "prior.npz"
    res = CliRunner().invoke(
        app,
        [
            "warm-start",
            str(tmp_path / "prefs.csv"),
            "--out",
            str(out),
            "--embedder",
            "hashing-64",
            "--dim",
            "8",
            "--no-disk-cache",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    for text in ("PILOT (query-conditional)", "global Bradley-Terry", "majority winner", "lambda"):
        assert text in res.output
    # preferences have no absolute scores: no noise-variance / cap columns full of NaN
    assert "nan" not in res.output and "noise var" not in res.output
    art = PriorArtifact.load(out)
    assert art.models == ["coder", "poet"] and art.dim == 8 and art.embedder_name == "hashing-64"
    assert art.metrics["accuracy"]["pilot"] > art.metrics["accuracy"]["global_bt"]


def test_warm_start_from_outcomes(tmp_path: Path) -> None:
    prefs = _prefs()
    df = pd.DataFrame(
        {
            "sample_id": range(len(prefs)),
            "prompt": prefs.prompt,
            "eval_name": "t",
            "coder": (prefs.winner != "model_b").astype(float),
            "poet": (prefs.winner != "model_a").astype(float),
            "coder|total_cost": 0.1,
            "poet|total_cost": 0.2,
        }
    )
    df.to_parquet(tmp_path / "outcomes.parquet")
    out = tmp_path / "p.npz"
    res = CliRunner().invoke(
        app,
        [
            "warm-start",
            "--from-outcomes",
            str(tmp_path / "outcomes.parquet"),
            "-o",
            str(out),
            "--embedder",
            "hashing-64",
            "--dim",
            "8",
            "--no-disk-cache",
            "--no-progress",
            "--strength",
            "2.5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "held-out routing with the prior alone" in res.output
    assert "noise var" in res.output  # the fit of absolute scores has them
    art = PriorArtifact.load(out)
    assert set(art.strengths().values()) == {2.5}
    assert art.calibration["method"].startswith("shared: each model's score")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of PREFS"),
        (["PREFS", "--from-outcomes", "PREFS"], "exactly one of PREFS"),
        (["MISSING"], "does not exist"),
        (["NOWINNER"], "no winner column"),
        (["PREFS", "--embedder", "nope"], "unknown embedder"),
        (["PREFS", "--calibration", "odd"], "unknown calibration"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    prefs = tmp_path / "prefs.csv"
    _prefs(30).to_csv(prefs, index=False)
    _prefs(30).drop(columns=["winner"]).to_csv(tmp_path / "nowin.csv", index=False)
    subst = {
        "PREFS": str(prefs),
        "MISSING": str(tmp_path / "nope.csv"),
        "NOWINNER": str(tmp_path / "nowin.csv"),
    }
    argv = ["bandit-router", "warm-start", *[subst.get(a, a) for a in args]]
    argv += ["--out", str(tmp_path / "x.npz"), "--no-disk-cache", "--no-progress"]
    if "--embedder" not in args:
        argv += ["--embedder", "hashing-16", "--dim", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.npz").exists()


def test_warm_start_from_outcomes_reports_judgements_dropped_for_missing_scores(
    tmp_path: Path,
) -> None:
    """Three models on 90 prompts give 270 judgements; a NaN score of ``poet`` on 8 prompts
    removes its 2 pairs on each, and the command says so (count, total, model, prompts)."""
    prefs = _prefs()
    poet = (prefs.winner != "model_a").to_numpy(dtype=float, copy=True)
    poet[:8] = np.nan
    df = pd.DataFrame(
        {
            "sample_id": range(len(prefs)),
            "prompt": prefs.prompt,
            "eval_name": "t",
            "coder": (prefs.winner != "model_b").astype(float),
            "poet": poet,
            "judge": 0.5,
            "coder|total_cost": 0.1,
            "poet|total_cost": 0.2,
            "judge|total_cost": 0.3,
        }
    )
    df.to_csv(tmp_path / "outcomes.csv", index=False)
    out = tmp_path / "p.npz"
    res = CliRunner().invoke(
        app,
        [
            "warm-start",
            "--from-outcomes",
            str(tmp_path / "outcomes.csv"),
            "-o",
            str(out),
            "--embedder",
            "hashing-64",
            "--dim",
            "8",
            "--no-disk-cache",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (
        "dropped: 16 of 270 judgements of --from-outcomes, because a score is missing (NaN): "
        "poet on 8 prompt(s)"
    ) in res.output
    art = PriorArtifact.load(out)
    assert art.metrics["dropped"]["judgements with a missing score"] == 16
    assert art.metrics["n_judgements"] == 270 - 16
