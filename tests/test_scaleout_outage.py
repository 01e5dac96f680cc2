"""The database restarts mid-traffic: clear errors during the outage (a typed
``StorageError``; HTTP 503 ``store_unavailable`` and a /readyz that says so), full
recovery after, nothing lost.

The test starts a PostgreSQL server of its own (initdb + pg_ctl from
/usr/lib/postgresql/*/bin, as the ``postgres`` user, in a temporary folder, on a free
port) so stopping it disturbs no other test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bandit_router.service import MemoryKeyStore, ServiceSettings, create_app
from bandit_router.storage import open_router_stores
from bandit_router.storage.errors import StorageError
from bandit_router.stores_memory import memory_stores
from bandit_router.sync import StoreSync
from tests.test_storage_support import ON_CI, POSTGRES_ENV
from tests.test_store_support import event, make_router

pytestmark = pytest.mark.postgres


def until(condition, guard_s: float = 180.0) -> None:
    """Wait until ``condition()`` holds; ``guard_s`` is a guard against a hang, not a speed
    limit (the assertions after the wait say what failed)."""
    deadline = time.monotonic() + guard_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        if ON_CI:
            pytest.fail("no /usr/lib/postgresql/*/bin/pg_ctl on CI: .ci/run installs it.")
        pytest.skip("PostgreSQL server binaries are not installed")
    if not os.environ.get(POSTGRES_ENV) and not ON_CI:
        pytest.skip(f"{POSTGRES_ENV} is not set (no PostgreSQL for this run)")
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str]) -> None:
    if os.geteuid() == 0:  # initdb refuses root; .ci/run runs as root
        cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Server:
    """A throw-away PostgreSQL server: ``stop()`` / ``start()`` it at will."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir, self.root, self.port = bindir, root, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        opts = f"'-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1'"
        _as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-o", opts,
             "-l", str(self.root / "log"), "-w", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop"]
        )


@pytest.fixture
def server() -> Iterator[Server]:
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="br-pg-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = Server(bindir, root, port)
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres"]
        )
        srv.start()
        yield srv
    finally:
        try:
            srv.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def test_database_restart_mid_traffic(server):
    sa, sb = open_router_stores(server.url), open_router_stores(server.url)
    a, current = make_router(sa)
    b, _ = make_router(sb)
    sync = StoreSync(b, interval=0.1).start()
    keys = MemoryKeyStore(users=lambda u: True)
    key = keys.issue("learner")
    app = create_app(a, ServiceSettings(sync_interval_s=0.1, expire_interval_s=None), keys=keys)
    routed: list[str] = []  # decisions the client got
    acked: list[str] = []  # feedback the client got an answer for
    pending: list[tuple[str, float]] = []  # feedback refused during the outage: retried
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            for did, reward in list(pending):  # the client retries refused feedback
                try:
                    a.feedback(did, reward, cost=0.0001)
                    with lock:
                        pending.remove((did, reward))
                        acked.append(did)
                except StorageError as exc:
                    errors.append(str(exc))
                    break
            e, rewards = event(i)
            current["id"] = f"e{i:06d}"
            try:
                r = a.route("learner", embedding=e, input_tokens=100)
            except StorageError as exc:
                errors.append(str(exc))
                time.sleep(0.02)
                i += 1
                continue
            routed.append(r.decision_id)
            reward = float(rewards[list(a.models).index(r.model)])
            try:
                a.feedback(r.decision_id, reward, cost=0.0001)
                acked.append(r.decision_id)
            except StorageError as exc:
                errors.append(str(exc))
                pending.append((r.decision_id, reward))
            i += 1
            time.sleep(0.005)

    with TestClient(app) as client:
        t = threading.Thread(target=traffic)
        t.start()
        try:
            until(lambda: len(acked) >= 5)  # traffic is flowing
            n_before = len(acked)
            assert n_before > 0
            server.stop("fast")  # terminates every connection
            time.sleep(0.5)
            # during the outage: typed errors, 503s that say why, an unhealthy sync
            down = client.get("/readyz")
            assert down.status_code == 503 and down.json()["store"] == "unreachable"
            fb = client.post(
                "/v1/feedback",
                json={"decision_id": "e000000", "reward": 1.0},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert fb.status_code == 503
            assert fb.json()["error"]["code"] == "store_unavailable"
            assert "Nothing was recorded" in fb.json()["error"]["message"]
            assert fb.headers["retry-after"]
            until(lambda: not sync.healthy and bool(errors))
            assert not sync.healthy and sync.last_error
            assert "router_store_up 0.0" in client.get("/metrics").text
            assert errors, "no request failed during the outage"
            assert all("unreachable" in m or "refused" in m for m in errors)
            server.start()
            until(lambda: len(acked) >= n_before + 20 and not pending)
        finally:
            stop.set()
            t.join(30)
        assert not pending, "refused feedback was not accepted after the restart"
        assert len(acked) >= n_before + 20, "traffic did not recover"
        assert client.get("/readyz").status_code == 200
    # nothing lost: every decision the client got is stored, every acknowledged feedback
    # is in the log exactly once, and both processes hold the state of one learner
    sync.sync_once()
    sync.stop()
    log = sa.decisions.feedback_since(0)
    logged = [f.decision_id for f in log]
    assert len(logged) == len(set(logged)) and set(acked) <= set(logged)
    assert all(sa.decisions.get(d) is not None for d in routed)
    ref, _ = make_router(memory_stores())
    ref.apply_feedback(log)
    for r in (a, b):
        r.catch_up()
        assert r.policy.n_updates == ref.policy.n_updates == len(log)
        np.testing.assert_allclose(r.policy.theta, ref.policy.theta, rtol=0, atol=1e-9)
        np.testing.assert_allclose(r.policy.state.A_inv, ref.policy.state.A_inv, rtol=0, atol=1e-9)
    assert sync.healthy
    sa.close()
    sb.close()
