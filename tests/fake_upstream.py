"""A small fake OpenAI-compatible upstream for the service tests.

``make_app()`` answers ``POST /v1/chat/completions`` with a canned completion whose text
and usage depend only on the requested model, as JSON or as SSE chunks (one per word; a
usage-only last chunk when ``stream_options.include_usage``). Per-model modes
(``POST /_mode {"model", "mode"}``): ``ok``, ``fail`` (HTTP 500), ``slow`` (sleeps
``SLOW_S`` before answering), ``reject`` (HTTP 400, the request's fault), ``no_stream_options`` (HTTP 400 when the
request has ``stream_options``, as some older OpenAI-compatible servers), ``break``
(a stream that breaks off after three words). ``GET /_requests``
lists what it received (model, body, whether an Authorization header came and its value's
SHA-256 prefix, never the key itself).

``ThreadServer(app)`` runs an app on uvicorn in a thread on a free 127.0.0.1 port.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

SLOW_S = 3.0
PROMPT_TOKENS = 1234
WORDS = ("The", "answer", "is", "forty-two,", "said", "the", "model", "é✓.")


def answer_text(model: str) -> str:
    """The canned answer of ``model`` (the upstream's model name)."""
    return " ".join((f"[{model}]", *WORDS))


def usage_of(model: str) -> dict[str, int]:
    n = len(answer_text(model).split(" "))
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 100 * n, "total_tokens": 0}


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.modes = {}
    app.state.requests = []

    @app.post("/_mode")
    async def mode(body: dict[str, str]) -> dict[str, str]:
        app.state.modes[body["model"]] = body["mode"]
        return body

    @app.get("/_requests")
    async def requests() -> list[dict[str, Any]]:
        return app.state.requests

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body["model"]
        auth = request.headers.get("authorization")
        app.state.requests.append(
            {
                "model": model,
                "body": body,
                "auth_sha256": None if auth is None else hashlib.sha256(auth.encode()).hexdigest(),
            }
        )
        mode = app.state.modes.get(model, "ok")
        if mode == "fail":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        if mode == "no_stream_options" and "stream_options" in body:
            return JSONResponse(
                {"error": {"message": "unknown field stream_options", "type": "invalid"}}, 400
            )
        if mode == "reject":
            return JSONResponse(
                {"error": {"message": "bad temperature", "type": "invalid_request_error"}}, 400
            )
        if mode == "slow":
            await asyncio.sleep(SLOW_S)
        text = answer_text(model)
        usage = usage_of(model)
        cid, created = "chatcmpl-fake", int(time.time())
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        include = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            words = text.split(" ")
            for i, w in enumerate(words):
                yield chunk({"content": w if i == 0 else " " + w})
                await asyncio.sleep(0)
                if mode == "break" and i == 2:
                    raise RuntimeError("the fake upstream breaks off mid-stream")
            yield chunk({}, "stop")
            if include:
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield b"data: " + json.dumps(obj).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    """uvicorn in a daemon thread; ``url`` once started; ``stop()`` ends it."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        self.thread.start()
        while not self.server.started:  # bounded by uvicorn's own start-up
            if not self.thread.is_alive():
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
