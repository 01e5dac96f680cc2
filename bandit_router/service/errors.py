"""HTTP errors: the project's typed errors -> status codes, in an OpenAI-style body
``{"error": {"message", "type", "code"}}`` that says what to fix.

>>> status_of(UnknownDecisionError("x")), status_of(BudgetExhaustedError("y"))
(404, 402)
>>> error_body("no such model", "invalid_request_error", "unknown_model")["error"]["code"]
'unknown_model'
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bandit_router.errors import (
    BanditRouterError,
    BudgetError,
    BudgetExhaustedError,
    ConfigurationError,
    DecisionExpiredError,
    EmbedderError,
    FeedbackConflictError,
    InvalidInputError,
    StateError,
    UnknownArmError,
    UnknownDecisionError,
)

#: most specific first
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (BudgetExhaustedError, 402, "budget_exhausted"),
    (UnknownDecisionError, 404, "unknown_decision"),
    (DecisionExpiredError, 410, "decision_expired"),
    (FeedbackConflictError, 409, "feedback_conflict"),
    (UnknownArmError, 400, "unknown_model"),
    (InvalidInputError, 422, "invalid_input"),
    (BudgetError, 422, "invalid_budget"),
    (ConfigurationError, 400, "invalid_request"),
    (EmbedderError, 503, "embedder_unavailable"),
    (StateError, 500, "state_error"),
)


def _store_unavailable(exc: BaseException) -> bool:
    """A ``storage.StorageError`` (the database cannot be read or written): 503. Looked up
    only when ``storage`` is loaded (the core does not import it; without it, no store
    error can be raised)."""
    mod = sys.modules.get("bandit_router.storage.errors")
    return mod is not None and isinstance(exc, mod.StorageError)


def status_of(exc: BaseException) -> int:
    """The HTTP status of a typed error (500 for anything else).

    >>> from bandit_router.storage.errors import StorageError
    >>> status_of(StorageError("the database refused a write")), code_of(StorageError("x"))
    (503, 'store_unavailable')
    """
    for cls, status, _ in _STATUS:
        if isinstance(exc, cls):
            return status
    if _store_unavailable(exc):
        return 503
    return 500


def code_of(exc: BaseException) -> str:
    for cls, _, code in _STATUS:
        if isinstance(exc, cls):
            return code
    if _store_unavailable(exc):
        return "store_unavailable"
    return "internal_error"


def error_body(message: str, type_: str, code: str, **extra: Any) -> dict[str, Any]:
    """The OpenAI-style error body (extra keys go next to message/type/code)."""
    return {"error": {"message": message, "type": type_, "code": code, **extra}}


def error_response(
    status: int, message: str, code: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    type_ = (
        "authentication_error"
        if status == 401
        else "permission_error"
        if status == 403
        else "insufficient_quota"
        if status == 402
        else "upstream_error"
        if status in (502, 504)
        else "server_error"
        if status >= 500
        else "invalid_request_error"
    )
    return JSONResponse(
        error_body(message, type_, code, **extra), status_code=status, headers=headers
    )


class ServiceError(Exception):
    """An error the service raises itself, with its status and code (``extra`` goes into
    the error body).

    >>> e = ServiceError(402, "budget exhausted", "budget_exhausted", resets_at="2026-12-01T00:00:00Z")
    >>> e.status, e.extra
    (402, {'resets_at': '2026-12-01T00:00:00Z'})
    """

    def __init__(
        self, status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers
        self.extra = extra


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = str(e.get("msg", "is invalid"))
        parts.append(f"{loc}: {msg}")
    return "invalid request: " + "; ".join(parts) + ". See /docs for the request schema."


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as an OpenAI-style JSON body; typed errors keep their message."""

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, headers=exc.headers, **exc.extra)

    @app.exception_handler(BanditRouterError)
    async def _typed(_: Request, exc: BanditRouterError) -> JSONResponse:
        status = status_of(exc)
        if status == 503 and _store_unavailable(exc):
            # nothing was recorded: the decision, feedback or reservation is refused, not
            # lost; the client retries (the router keeps its learned state in memory)
            return error_response(
                503,
                f"{exc} Nothing was recorded; retry in a few seconds.",
                "store_unavailable",
                headers={"Retry-After": "2"},
            )
        return error_response(status, str(exc), code_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "invalid_api_key",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }
        return error_response(
            exc.status_code,
            str(exc.detail),
            code.get(exc.status_code, "http_error"),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            500, f"internal error ({type(exc).__name__}); see the server log.", "internal_error"
        )
