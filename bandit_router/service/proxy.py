"""The OpenAI-compatible proxy: ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` is ``"router"`` (route with the configured policy), ``"router:<policy>"`` (only
the configured policy is served; another one is a 400 naming it), or a catalogue model
(no routing: the decision is still logged and its cost reserved, with propensity 1).
Routing hints may come as headers: ``x-router-allowed: a,b`` and ``x-router-max-cost: 0.01``.

The request goes to the chosen model's upstream unchanged but for ``model`` (the
provider's name) and, when streaming, ``stream_options.include_usage`` (so the cost can be
settled from the usage; the extra usage-only chunk is then not passed on). The answer comes
back byte for byte with ``x-router-decision-id``, ``x-router-model`` and
``x-router-estimated-cost`` (an upstream that refuses ``stream_options`` is asked again
without it; the cost then settles at the estimate). An upstream that cannot be reached, times out, or answers
429, 5xx, 401/403/404 releases the reservation (``Router.release``) and the next-best
affordable model is tried once (``service.retry_next_best``); other 4xx answers are the
request's fault and are passed on as they are. The usage the upstream reports is kept
for the decision's feedback (``/v1/feedback`` without a cost settles at it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bandit_router.errors import ConfigurationError, DecisionError
from bandit_router.service.auth import current_user
from bandit_router.service.errors import ServiceError
from bandit_router.service.fastjson import OrjsonRoute
from bandit_router.service.routes_router import ChatMessage, decide, refusal_error
from bandit_router.service.settings import Upstream
from bandit_router.service.state import ServiceState

log = logging.getLogger("bandit_router.service.proxy")

api = APIRouter(tags=["openai"], route_class=OrjsonRoute)

#: upstream answers that mean "this model cannot answer now": release and try another
_RETRYABLE = {401, 403, 404, 408, 409, 429}


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; every other field is passed on unchanged.

    >>> ChatRequest(model="router", messages=[{"role": "user", "content": "hi"}],
    ...             temperature=0.2).model_dump()["temperature"]
    0.2
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "router", "messages": [{"role": "user", "content": "Hello!"}]},
                {"model": "router", "stream": True,
                 "messages": [{"role": "user", "content": "Tell me a story."}]},
            ]
        },
    )  # fmt: skip
    model: str = Field(
        min_length=1,
        max_length=200,
        description='"router", "router:<policy>", or a catalogue model name (no routing).',
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False


@dataclass
class _Failure:
    model: str
    message: str
    outcome: str


def _text(content: Any) -> str:
    """The text of a message's content (a string or OpenAI content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _tail(texts: list[tuple[str, str]], limit: int) -> list[dict[str, str]]:
    """The most recent messages whose text fits in ``limit`` characters (joined by
    newlines); the oldest one kept is cut to its end.

    >>> _tail([("user", "aaaa"), ("assistant", "bbbb"), ("user", "cc")], 6)
    [{'role': 'assistant', 'content': 'bbb'}, {'role': 'user', 'content': 'cc'}]
    """
    out: list[dict[str, str]] = []
    room = limit
    for role, text in reversed(texts):
        if room <= 0:
            break
        piece = text if len(text) <= room else text[len(text) - room :]
        if piece.strip():
            out.append({"role": role, "content": piece})
        room -= len(piece) + 1
    return out[::-1]


def _policies(state: ServiceState) -> list[str]:
    return ["router", f"router:{state.router.policy.name}"]


def _resolve(state: ServiceState, model: str) -> str | None:
    """None: route; a name: that catalogue model."""
    router = state.router
    if model in _policies(state):
        return None
    if model.startswith("router:"):
        raise ServiceError(
            400,
            f"policy {model[7:]!r} is not available on this router; it serves "
            f"{', '.join(repr(p) for p in _policies(state))} (the configured policy).",
            "policy_not_available",
        )
    if model in router.models:
        return model
    raise ServiceError(
        400,
        f"unknown model {model!r}; use one of: "
        + ", ".join(_policies(state) + list(router.models))
        + " (GET /v1/models).",
        "model_not_found",
    )


def _hints(request: Request) -> tuple[list[str] | None, float | None]:
    allowed = request.headers.get("x-router-allowed")
    names = [a.strip() for a in allowed.split(",") if a.strip()] if allowed else None
    raw = request.headers.get("x-router-max-cost")
    max_cost = None
    if raw is not None:
        try:
            max_cost = float(raw)
        except ValueError:
            max_cost = -1.0
        if not (max_cost >= 0 and max_cost != float("inf")):
            raise ServiceError(
                422,
                f"x-router-max-cost must be a USD amount >= 0, got {raw!r}.",
                "invalid_request",
            )
    return names, max_cost


def _router_headers(route: Any, retried_from: list[str]) -> dict[str, str]:
    h = {
        "x-router-decision-id": str(route.decision_id),
        "x-router-model": str(route.model),
        "x-router-estimated-cost": f"{route.estimated_cost:.10g}",
    }
    if retried_from:
        h["x-router-retried-from"] = ",".join(retried_from)
    return h


def _upstream_headers(up: Upstream) -> dict[str, str]:
    h = {"content-type": "application/json"}
    key = up.api_key()
    if key:
        h["authorization"] = f"Bearer {key}"
    return h


def _usage_in(event: bytes) -> tuple[dict[str, Any] | None, bool]:
    """The ``usage`` of one SSE event, and whether the event carries nothing else."""
    usage, only = None, False
    for line in event.splitlines():
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if not data or data == b"[DONE]":
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
            usage = obj["usage"]
            only = not obj.get("choices")
    return usage, only


def _error_event(message: str) -> bytes:
    """An SSE event with an OpenAI-style error (the openai client raises on it)."""
    body = {"error": {"message": message, "type": "upstream_error", "code": "upstream_broken"}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _split_events(buf: bytes) -> tuple[list[bytes], bytes]:
    """Complete SSE events (with their blank-line terminator) and the rest."""
    out = []
    while True:
        cut = [(i, n) for i, n in ((buf.find(s), len(s)) for s in (b"\r\n\r\n", b"\n\n")) if i >= 0]
        if not cut:
            return out, buf
        i, n = min(cut)
        out.append(buf[: i + n])
        buf = buf[i + n :]


async def _release(state: ServiceState, route: Any, user: str) -> None:
    try:
        await state.blocking(state.router.release, route.decision_id, user)
    except DecisionError:  # feedback came first: nothing to release
        pass


async def _forward(
    state: ServiceState,
    request: Request,
    route: Any,
    user: str,
    payload: dict[str, Any],
    retried_from: list[str],
) -> Response | _Failure:
    model = route.model
    up = state.upstreams.get(model)
    if up is None:
        return _Failure(model, f"model {model!r} has no upstream configured", "no_upstream")
    body = dict(payload)
    body["model"] = up.model_for(model)
    stream = bool(body.get("stream"))
    injected = False
    if stream:
        so = body.get("stream_options")
        if not (isinstance(so, dict) and so.get("include_usage")):
            body["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
            injected = True
    try:
        headers = _upstream_headers(up)
    except ConfigurationError as exc:
        return _Failure(model, str(exc), "no_key")
    client = state.http()
    timeout = httpx.Timeout(up.timeout_s)
    while True:
        req = client.build_request("POST", up.chat_url, json=body, headers=headers, timeout=timeout)
        try:
            resp = await client.send(req, stream=True)
        except httpx.TimeoutException:
            return _Failure(model, f"{model} timed out after {up.timeout_s:g} s", "timeout")
        except httpx.HTTPError as exc:
            return _Failure(model, f"{model} could not be reached ({type(exc).__name__})", "error")
        status = resp.status_code
        if not (injected and status == 400):
            break
        # an upstream that refuses stream_options: ask again as the client asked
        await resp.aclose()
        body = {k: v for k, v in body.items() if k != "stream_options"}
        if isinstance(payload.get("stream_options"), dict):
            body["stream_options"] = payload["stream_options"]
        injected = False
    if status >= 500 or status in _RETRYABLE:
        await resp.aclose()
        return _Failure(model, f"{model} answered HTTP {status}", f"http_{status}")
    out_headers = _router_headers(route, retried_from)
    ctype = resp.headers.get("content-type", "application/json")
    if not stream or status >= 400 or "text/event-stream" not in ctype:
        try:
            content = await resp.aread()
        except httpx.TimeoutException:
            await resp.aclose()
            return _Failure(model, f"{model} timed out after {up.timeout_s:g} s", "timeout")
        except httpx.HTTPError as exc:
            await resp.aclose()
            return _Failure(model, f"{model} broke off ({type(exc).__name__})", "error")
        await resp.aclose()
        if status >= 400:  # the request's fault: no answer, nothing spent, no decision left
            await _release(state, route, user)
            state.metrics.upstream.labels(model, f"http_{status}").inc()
            headers = {"x-router-model": str(model)}
            return Response(content, status_code=status, media_type=ctype, headers=headers)
        try:
            usage = json.loads(content).get("usage")
        except (ValueError, AttributeError):
            usage = None
        if isinstance(usage, dict):
            state.usage.put(route.decision_id, usage)
        state.metrics.upstream.labels(model, "ok").inc()
        return Response(content, status_code=status, media_type=ctype, headers=out_headers)

    state.metrics.upstream.labels(model, "ok").inc()

    async def events() -> AsyncIterator[bytes]:
        buf = b""
        try:
            async for chunk in resp.aiter_bytes():
                buf += chunk
                done, buf = _split_events(buf)
                for ev in done:
                    usage, only = _usage_in(ev)
                    if usage is not None:
                        state.usage.put(route.decision_id, usage)
                        if injected and only:
                            continue
                    yield ev
            if buf:
                yield buf
        except httpx.HTTPError as exc:  # headers are out: end with an error event
            log.warning("upstream %s broke off mid-stream: %s", model, type(exc).__name__)
            state.metrics.upstream.labels(model, "broken_stream").inc()
            yield _error_event(
                f"the upstream of {model} broke off mid-answer ({type(exc).__name__}); the "
                "answer above is incomplete."
            )
        finally:
            await resp.aclose()

    return StreamingResponse(events(), status_code=status, media_type=ctype, headers=out_headers)


@api.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat completions through the router.",
    responses={
        200: {"description": "The upstream's answer (JSON, or SSE when streaming)"},
        402: {"description": "Budget exhausted"},
        502: {"description": "No upstream could answer"},
    },
)
async def chat_completions(
    body: ChatRequest, request: Request, user: str = Depends(current_user)
) -> Response:
    state: ServiceState = request.app.state.service
    fixed = _resolve(state, body.model)
    allowed, max_cost = _hints(request)
    try:
        payload = json.loads(await request.body())
    except ValueError:  # pragma: no cover - FastAPI parsed it already
        raise ServiceError(422, "the body must be JSON.", "invalid_request") from None
    # the text to route on: messages with text (tool calls and the like carry none); a
    # conversation longer than the router (or its encoder) reads is routed on its most
    # recent part
    texts = [(m.role, _text(m.content)) for m in body.messages]
    texts = [(r, t) for r, t in texts if t.strip()]
    if not texts:
        raise ServiceError(
            422, "the messages carry no text to route on; give at least one message with "
            "text content.", "invalid_request",
        )  # fmt: skip
    limit = state.router.max_prompt_chars
    if state.batcher is not None and state.batcher.max_chars:
        limit = min(limit, state.batcher.max_chars)  # the encoder would read only the start
    messages = _tail(texts, limit)
    count_text = "\n".join(t for _, t in texts)
    state.router.text_of(messages=messages)  # validates before anything is reserved
    if fixed is not None:
        allowed = [fixed]
    tries = 2 if (state.settings.retry_next_best and fixed is None) else 1
    failures: list[_Failure] = []
    for attempt in range(tries):
        names = allowed
        if failures:
            base = allowed if allowed is not None else list(state.router.models)
            names = [m for m in base if m not in {f.model for f in failures}]
            if not names:
                break
        route = await decide(
            state, user, messages=messages, allowed=names, max_cost=max_cost,
            count_text=count_text,
        )  # fmt: skip
        if not route.ok:
            if attempt == 0:
                raise refusal_error(route, state.router.clock())
            break
        result = await _forward(state, request, route, user, payload, [f.model for f in failures])
        if not isinstance(result, _Failure):
            return result
        log.warning("upstream failure (%s); reservation released", result.message)
        state.metrics.upstream.labels(result.model, result.outcome).inc()
        await _release(state, route, user)
        failures.append(result)
        if attempt + 1 < tries:
            state.metrics.retries.inc()
    msgs = "; ".join(f.message for f in failures)
    timeout = failures and all(f.outcome == "timeout" for f in failures)
    raise ServiceError(
        504 if timeout else 502,
        f"no upstream could answer: {msgs}"
        + (
            ". No other model was affordable or allowed to retry with."
            if len(failures) < tries
            else "."
        )
        + " Nothing was charged; try again later.",
        "upstream_timeout" if timeout else "upstream_error",
    )


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "bandit-router"


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


@api.get("/v1/models", response_model=ModelList, summary='"router" and the catalogue.')
async def list_models(request: Request, user: str = Depends(current_user)) -> ModelList:
    state: ServiceState = request.app.state.service
    names = _policies(state) + list(state.router.models)
    return ModelList(data=[ModelCard(id=n) for n in names])
