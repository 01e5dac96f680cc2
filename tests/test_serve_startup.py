"""``bandit-router serve``'s start-up, in process: config -> SQL stores -> a restored Router,
and the refusals (prior or stored state that does not fit the config) with messages that
name the config key to fix. The real server in a subprocess: tests/test_serve_process.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bandit_router.cli.serve import (
    DEMO_PRIOR_VERSION,
    StartupRefused,
    build_router,
    check_admin_key,
    demo_prior,
    demo_prior_path,
    ensure_demo_user,
    generate_admin_key,
)
from bandit_router.config_file import load_config, load_config_text
from bandit_router.embeddings import make_embedder
from bandit_router.storage import open_router_stores
from bandit_router.warm_start import train_prior_from_outcomes

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, body: str, name: str = "router.yaml"):
    path = tmp_path / name
    path.write_text(body)
    return load_config(path, env={})


SMALL = """embedder: {emb}
policy: {{name: linucb}}
budget: {{default: 1.0}}
models:
  - {{name: small, input_price_per_mtok: 0.1, output_price_per_mtok: 0.4}}
  - {{name: large, input_price_per_mtok: 5, output_price_per_mtok: 15}}
"""


def test_route_feedback_restart_on_the_sql_store(tmp_path: Path) -> None:
    """Decisions reach the SQL decision log (its scores are the Router's lazy mapping),
    feedback settles, and a restart restores the learned state from snapshot + log."""
    cfg = config(tmp_path, SMALL.format(emb="hashing-32"))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_router_stores(url) as stores:
        router = build_router(cfg, stores, progress=False)
        key = ensure_demo_user(router, stores)
        assert stores.users.verify_key(key).name == "demo"
        assert ensure_demo_user(router, stores) is None  # the key is printed once
        r = router.route("demo", "What is the capital of France?")
        assert r.ok and stores.decisions.get(r.decision_id).scores == dict(r.as_dict()["scores"])
        f = router.feedback(r.decision_id, 1.0, cost=0.001)
        assert f.applied and f.feedback_id == 1
        before = router.policy.score(router.context_of("again")[0]).mean.tolist()
        router.snapshot()
    with open_router_stores(url) as stores:
        again = build_router(cfg, stores, progress=False)
        assert again.last_feedback_id == 1
        after = again.policy.score(again.context_of("again")[0]).mean.tolist()
        assert after == pytest.approx(before, abs=1e-12)
        assert stores.snapshots.latest().meta["embedder"] == "hashing-32"


def test_refuses_a_database_learned_on_another_embedder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_router_stores(url) as stores:
        build_router(config(tmp_path, SMALL.format(emb="hashing-32")), stores).snapshot()
    other = config(tmp_path, SMALL.format(emb="hashing-64"), "other.yaml")
    with open_router_stores(url) as stores, pytest.raises(StartupRefused) as info:
        build_router(other, stores, progress=False)
    msg = str(info.value)
    assert "'hashing-32'" in msg and "'hashing-64'" in msg
    assert f"{tmp_path / 'other.yaml'}, line 1" in msg  # where `embedder:` is
    assert "embedder: hashing-32" in msg and "database.url" in msg


def test_refuses_a_database_of_other_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_router_stores(url) as stores:
        build_router(config(tmp_path, SMALL.format(emb="hashing-32")), stores).snapshot()
    body = SMALL.format(emb="hashing-32").replace("small", "tiny").replace("large", "huge")
    with open_router_stores(url) as stores, pytest.raises(StartupRefused) as info:
        build_router(config(tmp_path, body, "other.yaml"), stores, progress=False)
    msg = str(info.value)
    assert "['large', 'small']" in msg and "database.url" in msg and "line 4" in msg


def _prior(tmp_path: Path, embedder: str, models: tuple[str, str]) -> Path:
    import pandas as pd

    df = pd.DataFrame(
        {
            "prompt": [f"task {i} {'code' if i % 2 else 'poem'}" for i in range(40)],
            models[0]: [float(i % 2) for i in range(40)],
            models[1]: [float(1 - i % 2) for i in range(40)],
        }
    )
    art = train_prior_from_outcomes(df, make_embedder(embedder), dim=4, progress=False)
    return art.save(tmp_path / f"prior-{embedder}.npz")


def test_refuses_a_prior_of_another_embedder(tmp_path: Path) -> None:
    prior = _prior(tmp_path, "hashing-16", ("small", "large"))
    body = SMALL.format(emb="hashing-32").replace("linucb", "pilot") + f"prior: {prior}\n"
    with open_router_stores("sqlite://") as stores, pytest.raises(StartupRefused) as info:
        build_router(config(tmp_path, body), stores, progress=False)
    msg = str(info.value)
    assert "'hashing-16'" in msg and "'hashing-32'" in msg and "line 7" in msg
    assert "embedder: hashing-16" in msg


def test_refuses_a_prior_that_knows_none_of_the_models(tmp_path: Path) -> None:
    prior = _prior(tmp_path, "hashing-32", ("coder", "writer"))
    body = SMALL.format(emb="hashing-32").replace("linucb", "pilot") + f"prior: {prior}\n"
    with open_router_stores("sqlite://") as stores, pytest.raises(StartupRefused) as info:
        build_router(config(tmp_path, body), stores, progress=False)
    msg = str(info.value)
    assert "knows none of the configured models" in msg and "['coder', 'writer']" in msg


def test_the_command_refuses_without_a_traceback(tmp_path: Path) -> None:
    """The same refusal through the console script: exit code 2, one clear line."""
    db = tmp_path / "r.db"
    with open_router_stores(f"sqlite:///{db}") as stores:
        build_router(config(tmp_path, SMALL.format(emb="hashing-32")), stores).snapshot()
    (tmp_path / "other.yaml").write_text(SMALL.format(emb="hashing-64"))
    code = (
        "import sys; from bandit_router.cli.app import main; sys.argv[0] = 'bandit-router'; main()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "serve", "--config", "other.yaml", "--db", str(db)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: the database's policy state"), out.stderr
    assert "other.yaml, line 1" in out.stderr


def test_bad_config_file_through_the_command(tmp_path: Path, monkeypatch, capsys) -> None:
    """The console script's entry point, in process: exit code 2 and the file's line."""
    from bandit_router.cli.app import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.format(emb="hashing-32") + "sever: {port: 1}\n")
    monkeypatch.setattr(sys, "argv", ["bandit-router", "serve", "--config", str(bad)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}, line 7: the config has no key 'sever'"), err


def test_demo_prior_is_trained_once_then_read(tmp_path: Path) -> None:
    emb = make_embedder("hashing-32")
    first = demo_prior(emb, progress=False, directory=tmp_path)
    path = demo_prior_path("hashing-32", tmp_path)
    assert path.is_file() and f"v{DEMO_PRIOR_VERSION}-" in path.name
    stamp = path.stat().st_mtime_ns
    second = demo_prior(emb, progress=False, directory=tmp_path)
    assert path.stat().st_mtime_ns == stamp  # read, not retrained
    assert second.fingerprint == first.fingerprint and second.models == first.models
    assert set(first.models) == {
        "demo-nano",
        "demo-small",
        "demo-coder",
        "demo-medium",
        "demo-large",
    }


def test_admin_key_is_stored_only_hashed(tmp_path: Path) -> None:
    path = tmp_path / "admin_key.sha256"
    key = generate_admin_key(path)
    assert key not in path.read_text() and len(key) > 30
    assert check_admin_key(key, path) and not check_admin_key(key[:-1], path)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_builtin_demo_config_builds_on_a_cached_prior(tmp_path: Path, monkeypatch) -> None:
    """The quick-start config (built-in example) with the embedder swapped for speed."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    cfg = load_config(None, env={"BANDIT_ROUTER__EMBEDDER": "hashing-32"})
    with open_router_stores("sqlite://") as stores:
        router = build_router(cfg, stores, progress=False)
        assert router.policy.name == "pilot" and router.models[0] == "demo-nano"
        assert router.prior is not None and router.prior.embedder_name == "hashing-32"
    assert (tmp_path / "data" / "bandit-router" / "priors").is_dir()


def test_load_config_text_relative_prior_is_read_from_the_config_folder(tmp_path: Path) -> None:
    prior = _prior(tmp_path, "hashing-32", ("small", "large"))
    body = SMALL.format(emb="hashing-32").replace("linucb", "pilot") + f"prior: {prior.name}\n"
    cfg = load_config_text(body, base=tmp_path, env={})
    assert cfg.router.prior == str(prior)


def test_shutdown_snapshot_only_when_the_state_changed(tmp_path: Path) -> None:
    from bandit_router.cli.serve import final_snapshot

    cfg = config(tmp_path, SMALL.format(emb="hashing-32"))
    with open_router_stores("sqlite://") as stores:
        router = build_router(cfg, stores, progress=False)
        assert "snapshot 1 written (feedback up to #0)" in final_snapshot(router)
        assert "snapshot 1 is current" in final_snapshot(router)  # a restart without traffic
        router.set_user("u", None)
        r = router.route("u", "hello")
        router.feedback(r.decision_id, 0.5, cost=0.0)
        assert "snapshot 2 written (feedback up to #1)" in final_snapshot(router)


def test_write_example_config_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bandit_router.cli.app import app
    from bandit_router.config_file import example_config_text

    out = tmp_path / "router.yaml"
    res = CliRunner().invoke(app, ["serve", "--write-example-config", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == example_config_text() and f"--config {out}" in res.output
    again = CliRunner().invoke(app, ["serve", "--write-example-config", str(out)])
    assert again.exit_code != 0 and "exists" in str(again.exception)


def test_a_busy_port_is_a_clear_refusal(tmp_path: Path, monkeypatch) -> None:
    import dataclasses
    import socket

    from bandit_router.cli.serve import run

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    cfg = config(tmp_path, SMALL.format(emb="hashing-32"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = dataclasses.replace(cfg, port=port, database_url=str(tmp_path / "r.db"))
        with pytest.raises(StartupRefused, match=f"could not listen on 127.0.0.1:{port}"):
            run(cfg, progress=False)


def test_an_older_snapshot_without_embedder_is_checked_by_its_dimension(tmp_path: Path) -> None:
    """Snapshots written before they named their embedder: the context size still decides."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_router_stores(url) as stores:
        router = build_router(config(tmp_path, SMALL.format(emb="hashing-32")), stores)
        snap = router.snapshot()
        meta = {k: v for k, v in snap.meta.items() if not k.startswith(("embedder", "prior"))}
        stores.snapshots.save(snap.blob, snap.last_feedback_id, meta)
    other = config(tmp_path, SMALL.format(emb="hashing-64"), "other.yaml")
    with open_router_stores(url) as stores, pytest.raises(StartupRefused) as info:
        build_router(other, stores, progress=False)
    msg = str(info.value)
    assert "does not fit this configuration" in msg and "33-d" in msg and "65-d" in msg
    assert f"{tmp_path / 'other.yaml'}, line 1" in msg
