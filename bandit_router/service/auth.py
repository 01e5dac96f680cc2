"""Bearer API keys: the ``KeyStore`` Protocol the app verifies keys with, its adapters, and
a short-lived cache of verified keys.

``storage``'s user directory (``SqlUserDirectory``: ``issue_key`` / ``verify_key`` /
``revoke_key``, keys stored as salted scrypt hashes) becomes a ``KeyStore`` through
``DirectoryKeyStore``; ``MemoryKeyStore`` serves tests. Hashing is slow on purpose (tens of
milliseconds), so ``CachedKeyStore`` remembers a verified key for a short time, keyed by
the SHA-256 of the key (the plaintext is never kept); revoking through it forgets it at once.

>>> keys = CachedKeyStore(MemoryKeyStore(), ttl_s=60)
>>> k = keys.issue("alice")
>>> keys.verify(k), keys.verify("br_nope_nope"), keys.verify(k)
('alice', None, 'alice')
>>> keys.revoke(k)
>>> keys.verify(k) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bandit_router.errors import InvalidInputError


@runtime_checkable
class KeyStore(Protocol):
    """Where API keys are issued, verified and revoked. Blocking: the app calls it in a
    worker thread.

    >>> isinstance(MemoryKeyStore(), KeyStore), isinstance(object(), KeyStore)
    (True, False)
    """

    def verify(self, plaintext: str) -> str | None:
        """The user name of a valid, unrevoked key; None otherwise."""
        ...

    def issue(self, user: str) -> str:
        """A new key for ``user`` (who must exist); the plaintext is returned once."""
        ...

    def revoke(self, key_or_prefix: str) -> None:
        """Revoke a key given in full or by its prefix; ``InvalidInputError`` if none."""
        ...


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_") if isinstance(key, str) else []
    if len(parts) != 3 or parts[0] != "br" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class DirectoryKeyStore:
    """A ``KeyStore`` over a user directory with ``issue_key`` / ``verify_key`` /
    ``revoke_key`` (``storage``'s ``SqlUserDirectory``: ``stores.users``).

    >>> from bandit_router.storage import open_router_stores
    >>> from bandit_router.stores import UserRecord
    >>> stores = open_router_stores("sqlite://")
    >>> stores.users.put(UserRecord("bob"))
    >>> keys = DirectoryKeyStore(stores.users)
    >>> keys.verify(keys.issue("bob"))
    'bob'
    >>> stores.close()
    """

    def __init__(self, directory: Any) -> None:
        for method in ("issue_key", "verify_key", "revoke_key"):
            if not callable(getattr(directory, method, None)):
                raise TypeError(
                    f"{type(directory).__name__} has no {method}(); give the storage's user "
                    "directory (stores.users of open_router_stores)."
                )
        self.directory = directory

    def verify(self, plaintext: str) -> str | None:
        rec = self.directory.verify_key(plaintext)
        return None if rec is None else str(getattr(rec, "name", rec))

    def issue(self, user: str) -> str:
        return str(self.directory.issue_key(user))

    def revoke(self, key_or_prefix: str) -> None:
        self.directory.revoke_key(key_or_prefix)

    def keys(self, user: str) -> list[dict[str, Any]]:
        """The user's keys without their secrets: prefix, created, revoked."""
        return [
            {"prefix": k.prefix, "created_at": str(k.created_at),
             "revoked_at": None if k.revoked_at is None else str(k.revoked_at)}
            for k in self.directory.keys(user)
        ]  # fmt: skip


class MemoryKeyStore:
    """Keys in memory (tests, a throw-away router): ``br_<prefix>_<secret>``, the secret
    kept only as a salted SHA-256. ``users`` (optional) says who may get a key.

    >>> keys = MemoryKeyStore(users=lambda u: u == "alice")
    >>> keys.verify(keys.issue("alice"))
    'alice'
    >>> keys.issue("mallory")
    Traceback (most recent call last):
    ...
    bandit_router.errors.InvalidInputError: no user 'mallory'; create the user first (POST /admin/users).
    """

    def __init__(self, users: Callable[[str], bool] | None = None) -> None:
        self._keys: dict[str, tuple[str, bytes, bytes, bool]] = {}
        self._users = users
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        if self._users is not None and not self._users(user):
            raise InvalidInputError(f"no user {user!r}; create the user first (POST /admin/users).")
        prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
        salt = secrets.token_bytes(16)
        with self._lock:
            self._keys[prefix] = (
                user,
                salt,
                hashlib.sha256(salt + secret.encode()).digest(),
                False,
            )
        return f"br_{prefix}_{secret}"

    def keys(self, user: str) -> list[dict[str, Any]]:
        """The user's keys without their secrets."""
        with self._lock:
            return [
                {"prefix": p, "created_at": None, "revoked_at": "revoked" if row[3] else None}
                for p, row in self._keys.items()
                if row[0] == user
            ]

    def verify(self, plaintext: str) -> str | None:
        parts = _split(plaintext)
        if parts is None:
            return None
        with self._lock:
            row = self._keys.get(parts[0])
        if row is None or row[3]:
            return None
        user, salt, h, _ = row
        ok = hmac.compare_digest(hashlib.sha256(salt + parts[1].encode()).digest(), h)
        return user if ok else None

    def revoke(self, key_or_prefix: str) -> None:
        parts = _split(key_or_prefix)
        prefix = parts[0] if parts else str(key_or_prefix).strip()
        with self._lock:
            row = self._keys.get(prefix)
            if row is None or row[3]:
                raise InvalidInputError(f"no active API key with prefix {prefix!r}.")
            self._keys[prefix] = (*row[:3], True)


class CachedKeyStore:
    """Remembers verified keys for ``ttl_s`` seconds (by SHA-256, never the plaintext);
    failures are not cached. ``revoke`` forgets the key's entry at once.

    >>> inner = MemoryKeyStore()
    >>> keys = CachedKeyStore(inner, ttl_s=60)
    >>> k = keys.issue("ann")
    >>> keys.verify(k)
    'ann'
    >>> inner.revoke(k)  # behind the cache's back: remembered until the ttl is over
    >>> keys.verify(k), CachedKeyStore(inner, ttl_s=0).verify(k)
    ('ann', None)
    """

    def __init__(self, inner: KeyStore, ttl_s: float = 60.0, maxsize: int = 10_000) -> None:
        self.inner = inner
        self.ttl_s = float(ttl_s)
        self.maxsize = int(maxsize)
        self._cache: OrderedDict[str, tuple[str, float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, plaintext: str) -> str | None:
        """The user of a key verified less than ``ttl_s`` ago; None otherwise (fast: no
        hashing beyond one SHA-256, so the app checks it without leaving the event loop)."""
        if self.ttl_s <= 0 or not isinstance(plaintext, str) or not plaintext:
            return None
        with self._lock:
            hit = self._cache.get(_digest(plaintext))
        if hit is not None and time.monotonic() - hit[1] < self.ttl_s:
            return hit[0]
        return None

    def verify(self, plaintext: str) -> str | None:
        if not isinstance(plaintext, str) or not plaintext:
            return None
        user = self.cached(plaintext)
        if user is not None:
            return user
        d = _digest(plaintext)
        now = time.monotonic()
        user = self.inner.verify(plaintext)
        if user is not None and self.ttl_s > 0:
            parts = _split(plaintext)
            with self._lock:
                self._cache[d] = (user, now, parts[0] if parts else None)
                self._cache.move_to_end(d)
                while len(self._cache) > self.maxsize:
                    self._cache.popitem(last=False)
        return user

    def issue(self, user: str) -> str:
        return self.inner.issue(user)

    def keys(self, user: str) -> list[dict[str, Any]] | None:
        """The inner store's key list, None when it cannot list keys."""
        lister = getattr(self.inner, "keys", None)
        return lister(user) if callable(lister) else None

    def revoke(self, key_or_prefix: str) -> None:
        self.inner.revoke(key_or_prefix)
        parts = _split(key_or_prefix)
        prefix = parts[0] if parts else str(key_or_prefix).strip()
        with self._lock:
            for d in [d for d, v in self._cache.items() if v[2] == prefix]:
                del self._cache[d]


def hash_admin_key(key: str, salt: bytes | None = None) -> str:
    """``sha256$<salt hex>$<digest hex>`` of ``sha256(salt + key)``: what
    ``ServiceSettings.admin_key_hash`` holds when only the hash of the admin key is kept
    (the key itself is random and long, so a salted SHA-256 is enough).

    >>> h = hash_admin_key("s3cret-admin", bytes(16))
    >>> h.split("$")[0], admin_ok("s3cret-admin", None, h), admin_ok("s3cret-admiN", None, h)
    ('sha256', True, False)
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError("the admin key must be a non-empty text.")
    salt = secrets.token_bytes(16) if salt is None else salt
    return f"sha256${salt.hex()}${hashlib.sha256(salt + key.encode()).hexdigest()}"


def admin_ok(given: str | None, admin_key: str | None, admin_key_hash: str | None = None) -> bool:
    """Constant-time check of a bearer key against the admin key or its hash.

    >>> admin_ok("s3cret-admin", "s3cret-admin"), admin_ok("x", "s3cret-admin"), admin_ok("x", None)
    (True, False, False)
    """
    if not given:
        return False
    if admin_key and hmac.compare_digest(given.encode(), admin_key.encode()):
        return True
    if admin_key_hash:
        try:
            kind, salt, digest = admin_key_hash.split("$")
            want = bytes.fromhex(digest)
            got = hashlib.sha256(bytes.fromhex(salt) + given.encode()).digest()
        except ValueError:
            return False
        return kind == "sha256" and hmac.compare_digest(got, want)
    return False


# ---- FastAPI dependencies ---------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer br_...`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _token(creds: HTTPAuthorizationCredentials | None) -> str | None:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials.strip():
        return None
    return creds.credentials.strip()


async def current_user(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> str:
    """The user of the request's bearer key; 401 without a valid key."""
    from bandit_router.service.errors import ServiceError

    state = request.app.state.service
    token = _token(creds)
    if token is None:
        raise ServiceError(
            401,
            "missing API key: send `Authorization: Bearer <key>` (an admin issues keys with "
            "POST /admin/users/{name}/keys).",
            "missing_api_key",
            headers=_CHALLENGE,
        )
    if admin_ok(token, state.settings.admin_key, state.settings.admin_key_hash):
        raise ServiceError(
            403,
            "the admin key manages the router; route and send feedback with a user's API key.",
            "admin_key_not_a_user",
        )
    user = state.keys.cached(token) or await state.blocking(state.keys.verify, token)
    if user is None:
        raise ServiceError(
            401, "invalid or revoked API key.", "invalid_api_key", headers=_CHALLENGE
        )
    return user


async def require_admin(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """Pass with the admin key; 403 with a user's key; 401 without a valid key."""
    from bandit_router.service.errors import ServiceError

    state = request.app.state.service
    token = _token(creds)
    if token is None:
        raise ServiceError(
            401, "missing API key: admin routes need `Authorization: Bearer <admin key>`.",
            "missing_api_key", headers=_CHALLENGE,
        )  # fmt: skip
    if admin_ok(token, state.settings.admin_key, state.settings.admin_key_hash):
        return
    user = await state.blocking(state.keys.verify, token)
    if user is None:
        raise ServiceError(
            401, "invalid or revoked API key.", "invalid_api_key", headers=_CHALLENGE
        )
    raise ServiceError(
        403,
        f"this route needs the admin key; the key of user {user!r} cannot manage the router"
        + (
            ""
            if state.settings.admin_key or state.settings.admin_key_hash
            else " (no admin key is configured: service.admin_key)"
        )
        + ".",
        "admin_only",
    )
