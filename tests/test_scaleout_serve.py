"""``bandit-router serve --workers N`` as a user runs it: two worker processes on one
PostgreSQL database learn as one; SQLite refuses more than one worker with what to do."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from tests.test_serve_process import CONFIG, Server, free_port
from tests.test_storage_support import postgres_url, temporary_postgres_database


def test_workers_on_sqlite_are_refused_with_what_to_do(tmp_path):
    (tmp_path / "router.yaml").write_text(CONFIG)
    server = Server(tmp_path, free_port(), "--workers", "2")
    assert server.proc.wait(60) == 2
    err = server.err.read_text()
    assert "--workers 2 needs a PostgreSQL database" in err and "--db postgresql" in err


@pytest.mark.postgres
def test_two_workers_share_one_learned_state(tmp_path):
    (tmp_path / "router.yaml").write_text(CONFIG)
    with temporary_postgres_database(postgres_url()) as url:
        server = Server(tmp_path, free_port(), "--workers", "2", "--db", url)
        try:
            out = server.wait_ready()
            assert "(2 worker processes)" in out
            key = re.search(r"user key\s+(br_\S+)", out).group(1)
            auth = {"Authorization": f"Bearer {key}"}
            fresh = httpx.Limits(max_keepalive_connections=0)  # each request: any worker
            with httpx.Client(base_url=server.url, limits=fresh, timeout=30) as c:
                last = 0
                for i in range(8):
                    r = c.post("/v1/route", json={"prompt": f"question {i}"}, headers=auth)
                    assert r.status_code == 200, r.text
                    f = c.post(
                        "/v1/feedback",
                        json={"decision_id": r.json()["decision_id"], "reward": 1.0},
                        headers=auth,
                    )
                    assert f.status_code == 200, f.text
                    last = f.json()["feedback_id"]
                seen: dict[int, int] = {}  # pid -> its watermark
                deadline = time.monotonic() + 180  # a guard against a hang, not a speed limit
                while time.monotonic() < deadline:
                    sync = c.get("/readyz").json()["sync"]
                    seen[sync["pid"]] = sync["last_feedback_id"]
                    if len(seen) == 2 and all(v == last for v in seen.values()):
                        break
                    time.sleep(0.01)
                assert len(seen) == 2, "the requests reached one worker only"
                assert all(v == last for v in seen.values()), seen
        finally:
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(60) == 0
        assert server.err.read_text().count("stopped;") == 2  # both workers shut down cleanly
