"""The HTTP service in front of a ``Router`` (FastAPI; never SQLAlchemy: it is handed a
``Router`` and a ``KeyStore``).

``create_app(router, settings, keys=...)`` builds the app: ``/v1/route``, ``/v1/feedback``,
the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``, ``/admin/*``,
``/metrics``, ``/healthz``, ``/readyz``. ``bandit-router serve`` runs it on uvicorn.
"""

from __future__ import annotations

from bandit_router.service.app import create_app
from bandit_router.service.auth import (
    CachedKeyStore,
    DirectoryKeyStore,
    KeyStore,
    MemoryKeyStore,
)
from bandit_router.service.settings import ServiceSettings, Upstream

__all__ = [
    "CachedKeyStore",
    "DirectoryKeyStore",
    "KeyStore",
    "MemoryKeyStore",
    "ServiceSettings",
    "Upstream",
    "create_app",
]
