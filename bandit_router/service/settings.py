"""The HTTP service's own settings: upstreams of the models, the admin key, batching, limits.

``ServiceSettings`` is a frozen dataclass, checked when built; ``ServiceSettings.from_dict``
reads the ``service:`` part of the YAML config (a plain dict). A bad value raises
``ConfigurationError`` naming the key and what to write instead.

Provider API keys are never in the settings: ``Upstream.api_key_env`` names the environment
variable that holds the key, read when a request is forwarded (never logged or stored).

>>> s = ServiceSettings.from_dict({
...     "admin_key": "admin-secret",
...     "upstreams": {"small": {"base_url": "http://127.0.0.1:9/v1",
...                             "api_key_env": "SMALL_KEY", "upstream_model": "gpt-4o-mini"}},
...     "batch_window_ms": 2})
>>> s.upstreams["small"].model_for("small"), s.upstreams["small"].timeout_s
('gpt-4o-mini', 60.0)
>>> ServiceSettings.from_dict({"max_batch": 0})
Traceback (most recent call last):
...
bandit_router.errors.ConfigurationError: service.max_batch must be an integer >= 1, got 0.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from bandit_router.errors import ConfigurationError


def _positive(value: Any, key: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{key} must be a number, got {value!r}.")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        raise ConfigurationError(
            f"{key} must be a number {'>=' if allow_zero else '>'} 0, got {value!r}."
        )
    return x


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{key} must be an integer >= 1, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class Upstream:
    """Where a catalogue model is served: an OpenAI-compatible API.

    base_url        e.g. ``https://api.openai.com/v1`` (``/chat/completions`` is appended)
    api_key_env     the environment variable holding the provider key (None: no key sent)
    upstream_model  the provider's name of the model (None: the catalogue name)
    timeout_s       seconds to wait for the upstream (connect and each read)

    >>> Upstream("http://localhost:8000/v1/").chat_url
    'http://localhost:8000/v1/chat/completions'
    >>> Upstream("localhost:8000")
    Traceback (most recent call last):
    ...
    bandit_router.errors.ConfigurationError: upstream base_url must be an http(s) URL such as https://api.openai.com/v1, got 'localhost:8000'.
    """

    base_url: str
    api_key_env: str | None = None
    upstream_model: str | None = None
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        url = self.base_url
        if (
            not isinstance(url, str)
            or urlparse(url).scheme not in ("http", "https")
            or not (urlparse(url).netloc)
        ):
            raise ConfigurationError(
                "upstream base_url must be an http(s) URL such as https://api.openai.com/v1, "
                f"got {url!r}."
            )
        if self.api_key_env is not None and (
            not isinstance(self.api_key_env, str) or not self.api_key_env.strip()
        ):
            raise ConfigurationError(
                "upstream api_key_env must be the name of an environment variable "
                f"(e.g. OPENAI_API_KEY), got {self.api_key_env!r}."
            )
        if self.upstream_model is not None and (
            not isinstance(self.upstream_model, str) or not self.upstream_model.strip()
        ):
            raise ConfigurationError(
                f"upstream upstream_model must be the provider's model name, got {self.upstream_model!r}."
            )
        object.__setattr__(self, "timeout_s", _positive(self.timeout_s, "upstream timeout_s"))

    @property
    def chat_url(self) -> str:
        """The chat completions endpoint."""
        return self.base_url.rstrip("/") + "/chat/completions"

    def model_for(self, name: str) -> str:
        """The model name to send upstream for catalogue model ``name``."""
        return self.upstream_model or name

    def api_key(self) -> str | None:
        """The provider key, read from the environment now (None without ``api_key_env``).

        Raises ``ConfigurationError`` when the variable is named but not set."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigurationError(
                f"the environment variable {self.api_key_env} (the upstream's API key) is not "
                "set; export it before starting the router."
            )
        return key

    @classmethod
    def from_dict(cls, data: Any, where: str = "upstream") -> Upstream:
        """From ``{base_url, api_key_env, upstream_model, timeout_s}``."""
        if isinstance(data, Upstream):
            return data
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"{where} must be a mapping like {{base_url: https://api.openai.com/v1, "
                f"api_key_env: OPENAI_API_KEY}}, got {data!r}."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"{where} has unknown key(s) {unknown}; use {sorted(known)}.")
        if "base_url" not in data:
            raise ConfigurationError(f"{where} needs a base_url (an OpenAI-compatible API).")
        try:
            return cls(**dict(data))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ServiceSettings:
    """What the HTTP app needs beyond the ``Router``.

    admin_key           the bearer key of the admin routes (None: admin routes are off, 403)
    admin_key_hash      instead of (or with) ``admin_key``: its hash, ``sha256$<salt hex>$<hex>``
                        (``bandit_router.service.auth.hash_admin_key``)
    upstreams           catalogue model name -> ``Upstream`` (models without one can be
                        routed with ``/v1/route`` but not proxied)
    retry_next_best     on an upstream error or timeout, release the reservation and try
                        the next-best affordable model once
    batch_window_ms     how long the batching embedder waits to gather concurrent prompts
    max_batch           the most prompts embedded in one call
    max_body_bytes      larger request bodies are refused (413)
    cors_origins        origins allowed by CORS (empty: no CORS headers)
    embed_cache_size    exact-text LRU cache of embeddings (0: none beyond the router's)
    expire_interval_s   how often the app settles decisions whose feedback wait is over
                        (None: never; ``Router.expire``)
    sync_interval_s     how often the app folds in the feedback and catalogue changes of
                        the other processes sharing its database (scale-out; on PostgreSQL
                        LISTEN/NOTIFY also wakes it at once); None: never
    retention_s         keep the answered history (decisions, their feedback, closed
                        reservations, old ledger entries) this long, then prune it
                        (``Router.prune``: a snapshot first, so the state still rebuilds;
                        pending decisions and open reservations stay); None (default):
                        keep everything (``bandit-router db prune`` by hand)
    prune_interval_s    how often the app prunes with ``retention_s`` (only the process
                        that writes the snapshots, in scale-out)
    key_cache_s         how long a verified API key is remembered (hashing is slow on
                        purpose); a revoked key stops working after at most that long
                        (at once when revoked through this app)
    inline_store_calls  run ``route`` / ``feedback`` on the event loop when the router is
                        not busy (no thread hop; one SQLite route takes well under a
                        millisecond), else in the thread pool; None (default): on SQLite
                        and in-memory stores, not on PostgreSQL (network round trips)

    >>> ServiceSettings().retry_next_best, ServiceSettings().max_batch
    (True, 64)
    """

    admin_key: str | None = None
    admin_key_hash: str | None = None
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    retry_next_best: bool = True
    batch_window_ms: float = 2.0
    max_batch: int = 64
    max_body_bytes: int = 4_000_000
    cors_origins: tuple[str, ...] = ()
    embed_cache_size: int = 50_000
    expire_interval_s: float | None = 60.0
    retention_s: float | None = None
    prune_interval_s: float = 3600.0
    key_cache_s: float = 60.0
    sync_interval_s: float | None = 1.0
    inline_store_calls: bool | None = None

    def __post_init__(self) -> None:
        if self.admin_key is not None and (
            not isinstance(self.admin_key, str) or len(self.admin_key.strip()) < 8
        ):
            raise ConfigurationError(
                "service.admin_key must be a secret of at least 8 characters "
                "(or leave it out to turn the admin routes off)."
            )
        h = self.admin_key_hash
        if h is not None and (
            not isinstance(h, str) or not re.fullmatch(r"sha256\$[0-9a-f]{2,}\$[0-9a-f]{64}", h)
        ):
            raise ConfigurationError(
                "service.admin_key_hash must be sha256$<salt hex>$<digest hex>, as "
                "bandit_router.service.auth.hash_admin_key(key) writes it."
            )
        ups = self.upstreams
        if not isinstance(ups, Mapping):
            raise ConfigurationError(
                "service.upstreams must map a model name to {base_url, api_key_env, ...}."
            )
        object.__setattr__(
            self,
            "upstreams",
            {str(k): Upstream.from_dict(v, f"service.upstreams.{k}") for k, v in ups.items()},
        )
        if not isinstance(self.retry_next_best, bool):
            raise ConfigurationError(
                f"service.retry_next_best must be true or false, got {self.retry_next_best!r}."
            )
        object.__setattr__(
            self,
            "batch_window_ms",
            _positive(self.batch_window_ms, "service.batch_window_ms", allow_zero=True),
        )
        _count(self.max_batch, "service.max_batch")
        _count(self.max_body_bytes, "service.max_body_bytes")
        origins = self.cors_origins
        if isinstance(origins, str) or not isinstance(origins, Sequence):
            raise ConfigurationError(
                f"service.cors_origins must be a list of origins, got {origins!r}."
            )
        object.__setattr__(self, "cors_origins", tuple(str(o) for o in origins))
        c = self.embed_cache_size
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ConfigurationError(
                f"service.embed_cache_size must be an integer >= 0, got {c!r}."
            )
        if self.expire_interval_s is not None:
            object.__setattr__(
                self,
                "expire_interval_s",
                _positive(self.expire_interval_s, "service.expire_interval_s"),
            )
        if self.retention_s is not None:
            object.__setattr__(
                self, "retention_s", _positive(self.retention_s, "service.retention_s")
            )
        object.__setattr__(
            self, "prune_interval_s", _positive(self.prune_interval_s, "service.prune_interval_s")
        )
        object.__setattr__(
            self, "key_cache_s", _positive(self.key_cache_s, "service.key_cache_s", allow_zero=True)
        )
        if self.sync_interval_s is not None:
            object.__setattr__(
                self,
                "sync_interval_s",
                _positive(self.sync_interval_s, "service.sync_interval_s"),
            )
        if self.inline_store_calls is not None and not isinstance(self.inline_store_calls, bool):
            raise ConfigurationError(
                "service.inline_store_calls must be true, false or left out (auto), got "
                f"{self.inline_store_calls!r}."
            )

    def check_models(self, models: Sequence[str]) -> None:
        """Refuse upstreams named after models the catalogue does not have."""
        unknown = sorted(set(self.upstreams) - set(models))
        if unknown:
            raise ConfigurationError(
                f"service.upstreams names model(s) {unknown} that are not in the catalogue "
                f"({', '.join(models)}); fix the names or add the models."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ServiceSettings:
        """From the ``service:`` mapping of the config file; unknown keys are an error."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"service must be a mapping, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown service key(s) {unknown}; the keys are: {', '.join(sorted(known))}."
            )
        kw = dict(data)
        if "cors_origins" in kw and isinstance(kw["cors_origins"], list):
            kw["cors_origins"] = tuple(kw["cors_origins"])
        return cls(**kw)
