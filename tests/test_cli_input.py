"""Bad command-line values: one ``error:`` line naming the flag, exit code 2, no traceback,
and nothing embedded or trained first."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.cli.app import main
from bandit_router.errors import ConfigurationError
from bandit_router.policies import POLICY_CLASSES
from bandit_router.policies.registry import parse_policy_options, policy_options
from tests.sim_tables import two_topic_table


def cli_error(argv: list[str], monkeypatch, capsys) -> str:
    """Run the console script; it must exit with code 2 and print one ``error:`` line."""
    monkeypatch.setattr(sys, "argv", ["bandit-router", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    assert exc.value.code == 2, out
    err = out.err.strip()
    assert "Traceback" not in out.err + out.out
    return err


@pytest.fixture
def no_embedding(monkeypatch):
    """Fail the test if anything builds an embedder (the checks must come first)."""
    import bandit_router.embeddings as emb

    def refuse(*args, **kwargs):
        raise AssertionError("an embedder was built before the options were checked")

    monkeypatch.setattr(emb, "make_embedder", refuse)


@pytest.fixture
def table(tmp_path):
    return str(two_topic_table(tmp_path, n=30, seed=0)[0])


@pytest.fixture
def prompt_log(tmp_path):
    """A decision log with prompts (evaluate would embed them)."""
    path = tmp_path / "log.csv"
    pd.DataFrame(
        {
            "prompt": ["a", "b", "c"],
            "model": ["small", "large", "small"],
            "reward": [1.0, 0.0, 1.0],
            "propensity": [0.5, 0.5, 0.5],
        }
    ).to_csv(path, index=False)
    return str(path)


BAD_SETS = [
    (["alpha=abc"], "--set alpha=abc: alpha must be a number"),
    (["alpha=nan"], "--set alpha=nan: alpha must be a finite number"),
    (["alpha=-1"], "--set alpha=-1: alpha must be >= 0"),
    (["refactor_every=abc"], "--set refactor_every=abc: refactor_every must be a whole number"),
    (["refactor_every=0"], "--set refactor_every=0: refactor_every must be >= 1"),
    (["forgetting=1.5"], "--set forgetting=1.5: forgetting must be in (0, 1]"),
    (["seed=3"], "--set seed=3: the seed is set by --seed"),
    (["priors=x"], "--set priors=x: the prior is given with --prior FILE"),
    (["alpha"], "--set takes KEY=VALUE"),
    (["drift=maybe"], "--set drift=maybe: drift must be true or false"),
]


@pytest.mark.parametrize(("items", "message"), BAD_SETS)
@pytest.mark.parametrize("command", ["simulate", "replay", "evaluate"])
def test_bad_set_values_fail_before_any_work(
    command, items, message, table, prompt_log, no_embedding, monkeypatch, capsys
):
    argv = {
        "simulate": ["simulate", "-n", "20", "--no-save"],
        "replay": ["replay", table, "--no-save"],
        "evaluate": ["evaluate", prompt_log, "--no-save"],
    }[command]
    sets = [a for item in items for a in ("--set", item)]
    err = cli_error([*argv, "-p", "linucb", *sets], monkeypatch, capsys)
    assert err.startswith("error: --set") and message in err, err


def test_unknown_key_lists_the_real_options_only(monkeypatch, capsys):
    err = cli_error(["simulate", "-p", "linucb,random", "--set", "alpah=1"], monkeypatch, capsys)
    assert "no chosen policy has an option 'alpah'" in err
    assert "alpha" in err and "ridge" in err
    for internal in ("args", "kwargs", "priors", "seed", "_from_state"):
        assert f" {internal}," not in err and f" {internal};" not in err, err


def test_a_key_goes_only_to_the_policies_that_take_it():
    from bandit_router.cli.checks import policy_settings

    opts, notes = policy_settings(["linucb", "lints", "random"], ["alpha=0.5", "v=0.2"])
    assert opts == {"linucb": {"alpha": 0.5}, "lints": {"v": 0.2}, "random": {}}
    assert notes == [
        "--set alpha applies to linucb, not to lints, random",
        "--set v applies to lints, not to linucb, random",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "fixed:larg"], "--policy: fixed:larg names no model of"),
        (["--allocator", "knapsak"], "--allocator: unknown allocator 'knapsak'"),
        (["--users", "hash:0"], "--users: unknown users spec 'hash:0'"),
        (["--users", "column:nope"], "--users: no column 'nope'"),
        (["--delay", "fixed:x"], "unknown delay 'fixed:x'"),
        (["--order", "random"], "order must be shuffle, blocks or given"),
        (["--embedder", "usem4"], "--embedder: unknown embedder 'usem4'"),
        (["--nan", "skip"], "--nan: use error, drop or zero"),
        (["--tune-on", "split:1.5"], "--tune-on: split:F needs F in (0, 1)"),
        (["--tune-on", "holdout"], "--tune-on: holdout needs --train TABLE"),
        (["--log", "decisions.txt"], "--log: decisions.txt: write a .jsonl or .json or .csv"),
        (["--train", "missing.csv"], "--train: missing.csv does not exist"),
        (["--set", "prior_scale=-2", "-p", "pilot"], "--set prior_scale=-2"),
        (["--order", "random"], "--order: order must be shuffle, blocks or given"),
        (["--delay", "poisson:x"], "--delay: unknown delay 'poisson:x'"),
        (["--budget-fraction", "nan"], "--budget-fraction"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_replay_options_are_checked_before_embedding(
    extra, message, table, no_embedding, monkeypatch, capsys, tmp_path
):
    monkeypatch.chdir(tmp_path)
    err = cli_error(["replay", table, "--no-save", *extra], monkeypatch, capsys)
    assert message in err, err


@pytest.mark.parametrize("command", ["simulate", "evaluate LOG", "demo", "warm-start LOG"])
def test_a_negative_seed_is_a_usage_error(command, prompt_log, no_embedding, monkeypatch, capsys):
    argv = [prompt_log if a == "LOG" else a for a in command.split()]
    err = cli_error([*argv, "--seed", "-1", "--out", "x.npz"][: len(argv) + 2], monkeypatch, capsys)
    assert "--seed" in err


def test_a_text_file_as_prior_gets_our_message(table, tmp_path, no_embedding, monkeypatch, capsys):
    prior = tmp_path / "prior.txt"
    prior.write_text("not a prior\n")
    for argv in (
        ["replay", table, "-p", "pilot", "--prior", str(prior), "--no-save"],
        ["evaluate", table, "-p", "pilot", "--prior", str(prior), "--no-save"],
    ):
        err = cli_error(argv, monkeypatch, capsys)
        assert err.startswith("error: --prior:") and "is not a prior file" in err
        assert "pickle" not in err


def test_evaluate_checks_models_and_prior_needs_before_embedding(
    prompt_log, no_embedding, monkeypatch, capsys
):
    err = cli_error(["evaluate", prompt_log, "-p", "fixed:tiny", "--no-save"], monkeypatch, capsys)
    assert "--policy: fixed:tiny names no model" in err and "small" in err
    err = cli_error(["evaluate", prompt_log, "-p", "pilot", "--no-save"], monkeypatch, capsys)
    assert "--policy: pilot need(s) --prior FILE" in err


def test_simulate_checks_env_and_fixed_models(monkeypatch, capsys):
    err = cli_error(["simulate", "--env", "quadratic", "--no-save"], monkeypatch, capsys)
    assert "--env: use linear or logistic" in err
    err = cli_error(["simulate", "-p", "fixed:arm9", "--arms", "3"], monkeypatch, capsys)
    assert "--policy: fixed:arm9 names no model of the synthetic stream" in err


def test_demo_checks_fixed_models_before_training(no_embedding, monkeypatch, capsys):
    err = cli_error(["demo", "-n", "10", "--policies", "fixed:demo-huge"], monkeypatch, capsys)
    assert "--policies: fixed:demo-huge names no model of the demo catalogue" in err
    assert "demo-large" in err


def test_warm_start_checks_before_embedding(tmp_path, no_embedding, monkeypatch, capsys):
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("prompt,model_a,model_b,winner\nq,a,b,model_a\n")
    out = str(tmp_path / "p.npz")
    for extra, message in (
        (["--calibration", "odd"], "--calibration: unknown calibration 'odd'"),
        (["--strength", "nan"], "--strength: the prior strength must be a positive number"),
        (["--strength", "-1"], "--strength: the prior strength must be a positive number"),
        (["--embedder", "nope"], "--embedder: unknown embedder 'nope'"),
    ):
        err = cli_error(["warm-start", str(prefs), "--out", out, *extra], monkeypatch, capsys)
        assert message in err, err


def test_regret_export_writes_jpeg_or_refuses_other_suffixes(tmp_path, monkeypatch, capsys):
    from bandit_router.cli.runs import write_png

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setattr(
        sys, "argv", ["bandit-router", "simulate", "-p", "random", "-n", "20", "--db", db]
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    capsys.readouterr()
    err = cli_error(
        ["regret", "export", "1", "--png", str(tmp_path / "x.gif"), "--db", db], monkeypatch, capsys
    )
    assert "--png: x.gif: cannot write a .gif figure" in err
    jpg = tmp_path / "x.jpg"
    monkeypatch.setattr(
        sys, "argv", ["bandit-router", "regret", "export", "1", "--png", str(jpg), "--db", db]
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, not a PNG under a .jpg name
    png = tmp_path / "y.png"
    write_png([("a", np.arange(3.0), np.arange(3.0))], png, title="t", ylabel="y")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- the registry's parser -----------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in POLICY_CLASSES if n != "fixed"])
def test_every_listed_option_parses_from_its_default(name):
    """Each option ``--set`` accepts is a real constructor argument of that policy."""
    import inspect

    from bandit_router.policies.registry import _signature

    sig = _signature(POLICY_CLASSES[name])
    for key, kind in policy_options(name).items():
        default = sig[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        text = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        assert parse_policy_options(name, [f"{key}={text}"]) == {key: default}, (key, kind)


@settings(max_examples=50, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5000))
def test_floats_and_ints_round_trip_or_are_refused(alpha, every):
    items = [f"alpha={alpha!r}", f"refactor_every={every}"]
    if not np.isfinite(alpha) or alpha < 0 or every < 1:
        with pytest.raises(ConfigurationError, match=r"^--set "):
            parse_policy_options("linucb", items)
    else:
        assert parse_policy_options("linucb", items) == {"alpha": alpha, "refactor_every": every}


def test_regret_of_an_evaluate_run_says_it_has_no_curve(tmp_path, monkeypatch, capsys):
    from bandit_router.storage import open_store

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    store = open_store(db)
    try:
        run_id = store.runs.create("evaluate", "random", "log.jsonl", 0, params={})
        store.runs.finish(run_id, {"estimates": {}})
    finally:
        store.close()
    err = cli_error(["regret", "show", str(run_id), "--db", db], monkeypatch, capsys)
    assert "are off-policy estimates (`evaluate`), which have no regret curve" in err


def test_replay_checks_that_a_prior_policy_has_a_prior_before_embedding(
    table, no_embedding, monkeypatch, capsys
):
    err = cli_error(["replay", table, "-p", "linucb,pilot-ts", "--no-save"], monkeypatch, capsys)
    assert err.startswith("error: --policy: pilot-ts need(s) a preference prior")
    assert "--train-split F" in err
