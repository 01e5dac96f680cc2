"""The runs repository against an in-memory and a temporary-file SQLite database."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from bandit_router.storage import (
    InvalidRunDataError,
    RunRecord,
    StorageError,
    UnknownRunError,
    open_store,
)
from bandit_router.storage.config import ENV_VAR, default_database_path, resolve_database_url
from tests.test_storage_support import make_steps


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    url = "sqlite://" if request.param == "memory" else str(tmp_path / "runs.db")
    s = open_store(url)
    yield s
    s.close()


def test_round_trip_of_runs_and_steps(store):
    rid = store.runs.create(
        "replay",
        "pilot",
        "llmrouter/outcomes_test.csv",
        seed=3,
        budget=1.25,
        budget_fraction=0.25,
        params={"alpha": np.float64(0.5), "arms": np.array(["a", "b"]), "nan": float("nan")},
        dataset_fingerprint="sha1:abc",
        notes="first",
    )
    steps = make_steps(200, budgeted=True)
    assert store.runs.add_steps(rid, steps) == 200
    store.runs.finish(rid, {"mean_reward": np.float64(0.7), "model_share": {"a": 0.5}})

    rec = store.runs.get(rid)
    assert isinstance(rec, RunRecord)
    assert (rec.kind, rec.policy, rec.dataset, rec.seed) == (
        "replay",
        "pilot",
        "llmrouter/outcomes_test.csv",
        3,
    )
    assert rec.budget == pytest.approx(1.25) and isinstance(rec.budget, float)
    assert rec.budget_fraction == pytest.approx(0.25)
    assert rec.params == {"alpha": 0.5, "arms": ["a", "b"], "nan": None}
    assert rec.summary == {"mean_reward": 0.7, "model_share": {"a": 0.5}}
    assert rec.status == "done" and rec.finished_at is not None
    assert rec.created_at.tzinfo is not None
    assert rec.dataset_fingerprint == "sha1:abc" and rec.notes == "first"
    assert rec.n_steps == 200

    back = store.runs.steps([rid])
    assert list(back.columns) == [
        "run_id",
        "step",
        "reward",
        "cost",
        "oracle_reward",
        "spend",
        "cumulative_regret",
        "budgeted_regret",
        "model",
    ]
    assert (back["run_id"] == rid).all()
    for col in ["step", "reward", "oracle_reward", "cumulative_regret", "budgeted_regret"]:
        np.testing.assert_allclose(back[col].to_numpy(), steps[col].to_numpy(), rtol=1e-12)
    # Money is Numeric(20, 12): exact to 1e-12 USD.
    np.testing.assert_allclose(back["cost"], steps["cost"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(back["spend"], steps["spend"], atol=1e-12, rtol=0)
    assert back["model"].tolist() == steps["model"].tolist()
    assert rec.to_dict()["created_at"].endswith("+00:00")


def test_steps_of_several_runs_sorted_and_optional_columns(store):
    a = store.runs.create("simulate", "linucb", "synthetic", seed=0)
    b = store.runs.create("simulate", "lints", "synthetic", seed=0)
    store.runs.add_steps(b, make_steps(5, seed=1).iloc[::-1])  # unsorted on input
    df = make_steps(4, seed=2)
    df.loc[1, "model"] = None  # budget exhausted: no model called
    df["extra"] = "ignored"
    store.runs.add_steps(a, df)
    out = store.runs.steps([b, a])
    assert out["run_id"].tolist() == [a] * 4 + [b] * 5
    assert out.loc[out.run_id == b, "step"].tolist() == [1, 2, 3, 4, 5]
    assert out["budgeted_regret"].isna().all()
    assert out.loc[1, "model"] is None or pd.isna(out.loc[1, "model"])
    assert store.runs.steps(a).shape == (4, 9)  # a single id works too


def test_add_steps_in_chunks(store):
    rid = store.runs.create("replay", "random", "t", seed=0)
    steps = make_steps(30)
    store.runs.add_steps(rid, steps.iloc[:10])
    store.runs.add_steps(rid, steps.iloc[10:])
    assert store.runs.get(rid).n_steps == 30


def test_failed_add_steps_leaves_no_partial_steps(store):
    rid = store.runs.create("replay", "linucb", "t", seed=0)
    store.runs.add_steps(rid, make_steps(10))
    # A duplicate step number in the middle of a large batch: the database refuses it
    # after many rows were sent; the transaction must take them all back.
    bad = make_steps(500, start=11)
    bad.loc[400, "step"] = 11
    with pytest.raises(InvalidRunDataError, match="nothing was written"):
        store.runs.add_steps(rid, bad)
    assert store.runs.get(rid).n_steps == 10
    # A step that is already stored.
    with pytest.raises(InvalidRunDataError):
        store.runs.add_steps(rid, make_steps(20, start=5))
    assert store.runs.steps(rid)["step"].tolist() == list(range(1, 11))


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("reward", np.nan, "NaN or infinite"),
        ("cumulative_regret", np.inf, "NaN or infinite"),
        ("cost", -1.0, ">= 0"),
        ("step", 1.5, "integers"),
        ("reward", "high", "numbers"),
    ],
)
def test_add_steps_rejects_bad_values(store, column, value, match):
    rid = store.runs.create("replay", "linucb", "t", seed=0)
    df = make_steps(10)
    df[column] = df[column].astype(object)
    df.loc[5, column] = value
    with pytest.raises(InvalidRunDataError, match=match):
        store.runs.add_steps(rid, df)
    assert store.runs.get(rid).n_steps == 0


def test_add_steps_rejects_missing_columns(store):
    rid = store.runs.create("replay", "linucb", "t", seed=0)
    with pytest.raises(InvalidRunDataError, match="oracle_reward"):
        store.runs.add_steps(rid, make_steps(3).drop(columns=["oracle_reward"]))
    with pytest.raises(InvalidRunDataError, match="DataFrame"):
        store.runs.add_steps(rid, {"step": [1]})
    assert store.runs.add_steps(rid, make_steps(0)) == 0


def test_create_validates(store):
    with pytest.raises(InvalidRunDataError, match="replay, simulate, evaluate"):
        store.runs.create("train", "linucb", "t", seed=0)
    with pytest.raises(InvalidRunDataError, match="policy"):
        store.runs.create("replay", " ", "t", seed=0)
    with pytest.raises(InvalidRunDataError, match="budget"):
        store.runs.create("replay", "linucb", "t", seed=0, budget=-1)
    with pytest.raises(InvalidRunDataError, match="seed"):
        store.runs.create("replay", "linucb", "t", seed=1.5)
    with pytest.raises(InvalidRunDataError, match="status"):
        rid = store.runs.create("replay", "linucb", "t", seed=np.int64(2))
        store.runs.finish(rid, {}, status="exploded")
    assert store.runs.count() == 1


def test_list_newest_first_with_limit_and_kind(store):
    ids = [store.runs.create(k, "p", "t", seed=i) for i, k in enumerate(["replay", "simulate"] * 3)]
    listed = store.runs.list()
    assert [r.id for r in listed] == ids[::-1]
    assert [r.id for r in store.runs.list(limit=2)] == ids[::-1][:2]
    assert {r.kind for r in store.runs.list(kind="simulate")} == {"simulate"}
    assert len(store.runs.list(kind="evaluate")) == 0
    assert store.runs.count(kind="replay") == 3
    with pytest.raises(InvalidRunDataError):
        store.runs.list(kind="bogus")


def test_unknown_ids_raise_a_typed_error_naming_the_list_command(store):
    with pytest.raises(UnknownRunError, match="no runs yet"):
        store.runs.get(1)
    rid = store.runs.create("replay", "p", "t", seed=0)
    for call in (
        lambda: store.runs.get(rid + 1),
        lambda: store.runs.steps([rid, rid + 7]),
        lambda: store.runs.add_steps(rid + 1, make_steps(2)),
        lambda: store.runs.finish(rid + 1, {}),
        lambda: store.runs.delete(rid + 1),
    ):
        with pytest.raises(UnknownRunError, match="bandit-router runs list") as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, StorageError)
        assert str(info.value).startswith("no run id")


def test_delete_removes_run_and_steps(store):
    a = store.runs.create("replay", "p", "t", seed=0)
    b = store.runs.create("replay", "q", "t", seed=0)
    store.runs.add_steps(a, make_steps(10))
    store.runs.add_steps(b, make_steps(10))
    store.runs.delete(a)
    assert [r.id for r in store.runs.list()] == [b]
    with store.engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM run_steps WHERE run_id = :a"), {"a": a}
        ).scalar()
    assert n == 0
    assert store.runs.get(b).n_steps == 10


def test_foreign_keys_and_wal_are_on_for_files(tmp_path):
    with open_store(tmp_path / "x.db") as s:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            with pytest.raises(Exception, match="FOREIGN KEY"):
                conn.exec_driver_sql(
                    "INSERT INTO run_steps (run_id, step, reward, cost, oracle_reward, spend, "
                    "cumulative_regret, model) VALUES (999, 1, 0, 0, 0, 0, 0, 'a')"
                )


def test_in_memory_store_is_shared_within_the_store_and_private_across_stores():
    with open_store(":memory:") as s1, open_store("sqlite://") as s2:
        rid = s1.runs.create("replay", "p", "t", seed=0)
        s1.runs.add_steps(rid, make_steps(3))
        assert s1.runs.get(rid).n_steps == 3
        assert s2.runs.count() == 0


def test_bulk_insert_round_trips_every_step(tmp_path):
    # the speed (15k steps) is measured by benchmarks/storage_bulk_insert.py, not asserted here
    with open_store(tmp_path / "big.db") as s:
        rid = s.runs.create("replay", "p", "t", seed=0)
        steps = make_steps(3_000, budgeted=True)
        assert s.runs.add_steps(rid, steps) == 3_000
        back = s.runs.steps(rid)
        assert back.shape == (3_000, 9) and s.runs.get(rid).n_steps == 3_000
    assert back["step"].tolist() == list(range(1, 3_001))
    for col in ["reward", "oracle_reward", "cumulative_regret", "budgeted_regret"]:
        np.testing.assert_allclose(back[col].to_numpy(), steps[col].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(back["cost"], steps["cost"], atol=1e-12, rtol=0)
    assert back["model"].tolist() == steps["model"].tolist()


def test_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_database_url(None).database == str(default_database_path())
    assert default_database_path().name == "bandit-router.db"
    monkeypatch.setenv(ENV_VAR, "postgresql+psycopg://u:pw@h/db")
    assert resolve_database_url(None).get_backend_name() == "postgresql"
    assert resolve_database_url("sqlite://").get_backend_name() == "sqlite"  # explicit wins
    assert resolve_database_url(tmp_path / "a.db").database == str(tmp_path / "a.db")


def test_environment_variable_is_used_by_open_store(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'env.db'}")
    with open_store() as s:
        s.runs.create("replay", "p", "t", seed=0)
    assert (tmp_path / "env.db").exists()


def test_bad_urls_give_clear_errors():
    from bandit_router.storage import DatabaseURLError

    with pytest.raises(DatabaseURLError, match="cannot"):
        open_store("nosuchdialect://x/y")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(StorageError, match="cannot open the database"):
        open_store(junk)
