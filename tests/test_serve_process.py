"""``bandit-router serve`` as a user runs it: a subprocess on a free 127.0.0.1 port, a
temporary home and database, the printed keys, SIGTERM -> a snapshot in the store.
(The API itself — auth, 402, proxying, the openai client — is tested in tests/test_service_*.)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bandit_router.storage import open_router_stores

CONFIG = """embedder: hashing-64
policy: {name: linucb, seed: 0}
budget: {default: 1.0, period: daily}
service: {expire_interval_s: 1}
models:
  - {name: small, input_price_per_mtok: 0.1, output_price_per_mtok: 0.4}
  - {name: large, input_price_per_mtok: 5, output_price_per_mtok: 15}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANDIT_ROUTER_")}
    home = tmp_path / "home"
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        BANDIT_ROUTER_DATABASE_URL=f"sqlite:///{tmp_path / 'router.db'}",
        BANDIT_ROUTER_PORT=str(port),
        BANDIT_ROUTER_CACHE_DIR=str(tmp_path / "embeddings"),
        PYTHONUNBUFFERED="1",
    )
    return env


class Server:
    """The command in a subprocess; stdout and stderr go to files."""

    def __init__(self, tmp_path: Path, port: int, *args: str) -> None:
        self.port, self.out, self.err = port, tmp_path / "out.txt", tmp_path / "err.txt"
        code = "import sys; from bandit_router.cli.app import main; sys.argv[0] = 'bandit-router'; main()"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", "--config", "router.yaml", *args],
                cwd=tmp_path,
                env=environment(tmp_path, port),
                stdout=out,
                stderr=err,
            )
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, limit_s: float = 120.0) -> str:
        """Poll /healthz (bounded) until the server answers; returns what it printed."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.err.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    if "is ready at" in self.out.read_text():
                        return self.out.read_text()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.proc.kill()
        raise AssertionError(f"serve did not answer /healthz: {self.err.read_text()}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def test_serve_prints_keys_answers_and_snapshots_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "router.yaml").write_text(CONFIG)
    port = free_port()
    server = Server(tmp_path, port)
    try:
        text = server.wait_ready()
        assert f"bandit-router is ready at http://127.0.0.1:{port}" in text
        user_key = re.search(r"user key\s+(br_\S+)", text).group(1)
        admin_key = re.search(r"admin key\s+(bradmin_\S+)", text).group(1)
        assert "cannot forward" in text  # no upstreams configured: the banner says so
        assert f"curl -s http://127.0.0.1:{port}/v1/route" in text
        auth = {"Authorization": f"Bearer {user_key}"}
        r = httpx.post(f"{server.url}/v1/route", json={"prompt": "2 + 2?"}, headers=auth)
        assert r.status_code == 200, r.text
        route = r.json()
        assert route["model"] in ("small", "large") and 0 < route["budget_remaining"] < 1.0
        fb = httpx.post(
            f"{server.url}/v1/feedback",
            json={"decision_id": route["decision_id"], "reward": 1.0, "cost": 0.001},
            headers=auth,
        )
        assert fb.status_code == 200 and fb.json()["feedback_id"] == 1, fb.text
        admin = {"Authorization": f"Bearer {admin_key}"}
        assert httpx.get(f"{server.url}/admin/stats", headers=admin).status_code == 200
        assert httpx.get(f"{server.url}/admin/stats", headers=auth).status_code == 403
    finally:
        code = server.stop()
    assert code == 0, server.err.read_text()
    assert "policy snapshot" in server.err.read_text()
    assert "Traceback" not in server.err.read_text()
    with open_router_stores(f"sqlite:///{tmp_path / 'router.db'}") as stores:
        snap = stores.snapshots.latest()
        assert snap is not None and snap.last_feedback_id == 1
        assert snap.meta["arms"] == ["small", "large"] and snap.meta["embedder"] == "hashing-64"
        assert stores.decisions.feedback_for(route["decision_id"]).reward == 1.0
    admin_file = tmp_path / "home" / ".local" / "share" / "bandit-router" / "admin_key.sha256"
    assert admin_file.is_file() and admin_key not in admin_file.read_text()

    # a second start restores the state and prints no key again
    server = Server(tmp_path, port)
    try:
        text = server.wait_ready()
        assert not re.search(r"br_[0-9a-f]+_", text) and "bradmin_" not in text
        assert "got one at the first start" in text
        r = httpx.post(f"{server.url}/v1/route", json={"prompt": "2 + 2?"}, headers=auth)
        assert r.status_code == 200, r.text  # the key printed at the first start still works
        # so does the admin key, although only its hash was kept
        admin = {"Authorization": f"Bearer {admin_key}"}
        assert httpx.get(f"{server.url}/admin/stats", headers=admin).status_code == 200
        wrong = {"Authorization": f"Bearer {admin_key[:-1]}x"}
        assert httpx.get(f"{server.url}/admin/stats", headers=wrong).status_code == 401
    finally:
        assert server.stop() == 0, server.err.read_text()
