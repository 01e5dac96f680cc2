"""Users and API keys: ``SqlUserDirectory`` implements ``bandit_router.stores.UserDirectory``.

A user has a name and optionally a budget (``put`` writes the ``users`` row and the
ledger account in one transaction, so the directory and the ledger agree). API keys are
``br_<prefix>_<secret>``: the prefix is stored in clear for lookup, the secret only as a
salted scrypt hash (a fresh 16-byte salt per key). ``issue_key`` returns the plaintext
once; ``verify_key`` returns the key's user, or None for a wrong, unknown or revoked key.

>>> from bandit_router.budget.periods import Budget
>>> from bandit_router.stores import UserRecord
>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> stores.users.put(UserRecord("alice", Budget(5.0, "daily")))
>>> stores.users.get("alice").budget.amount_usd
5.0
>>> key = stores.users.issue_key("alice")
>>> stores.users.verify_key(key).name
'alice'
>>> stores.users.revoke_key(key)
>>> stores.users.verify_key(key) is None
True
>>> stores.close()
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, text, update

from bandit_router.errors import InvalidInputError
from bandit_router.storage.ledger import SqlLedger, budget_of
from bandit_router.storage.models import ApiKey, User
from bandit_router.storage.models.base import utcnow
from bandit_router.storage.transactions import PG_DIRECTORY_LOCK, Sessions, name
from bandit_router.stores import UserRecord

KEY_PREFIX = "br"
#: scrypt cost: 2**14 x 8 x 1 (16 MiB, tens of milliseconds), the OWASP minimum for scrypt
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
KDF = f"scrypt:n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"


def _hash(secret: str, salt: bytes, kdf: str = KDF) -> bytes:
    params = dict(kv.split("=") for kv in kdf.partition(":")[2].split(","))
    return hashlib.scrypt(
        secret.encode(),
        salt=salt,
        n=int(params["n"]),
        r=int(params["r"]),
        p=int(params["p"]),
        maxmem=2**26,
        dklen=32,
    )


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known of a key without its secret."""

    id: int
    user: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _split(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_") if isinstance(key, str) else []
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class SqlUserDirectory:
    """The ``users`` and ``api_keys`` tables; budgets go through ``ledger``."""

    def __init__(self, engine: Engine, ledger: SqlLedger):
        self.engine = engine
        self.sessions = Sessions(engine)
        self.ledger = ledger

    # ---- users ------------------------------------------------------------------------
    def get(self, name_: str) -> UserRecord | None:
        with self.sessions.read() as s:
            row = s.get(User, str(name_))
            return None if row is None else _user(row)

    def put(self, user: UserRecord) -> None:
        """Create or replace a user. A budget is applied to the ledger in the same
        transaction (the spend so far is kept); ``budget=None`` makes the user unlimited
        (their ledger account and its history stay, for a budget given again later)."""
        if not isinstance(user, UserRecord):
            raise InvalidInputError(f"expected a UserRecord, got {type(user).__name__}.")
        uname = name(user.name, "the user name")
        with self.sessions.write() as s:
            if self.sessions.postgres:  # processes adding the same user at start-up
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_DIRECTORY_LOCK})
            if user.budget is not None:
                self.ledger.set_budget_in(s, uname, user.budget)
                return
            row = s.get(User, uname)
            if row is None:
                s.add(User(name=uname, created_at=utcnow()))
            else:
                row.budget_usd = row.period_kind = row.window_seconds = None
                row.expected_queries = None

    def list(self) -> list[UserRecord]:
        with self.sessions.read() as s:
            return [_user(r) for r in s.execute(select(User).order_by(User.name)).scalars()]

    # ---- API keys ---------------------------------------------------------------------
    def issue_key(self, user: str) -> str:
        """A new API key for ``user``; the plaintext is returned once and never stored."""
        with self.sessions.write() as s:
            if s.get(User, str(user)) is None:
                raise InvalidInputError(
                    f"no user {user!r}; add them first with `bandit-router users add {user}`."
                )
            prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
            salt = secrets.token_bytes(16)
            s.add(
                ApiKey(
                    user=str(user),
                    prefix=prefix,
                    salt=salt,
                    key_hash=_hash(secret, salt),
                    kdf=KDF,
                    created_at=utcnow(),
                )
            )
        return f"{KEY_PREFIX}_{prefix}_{secret}"

    def verify_key(self, key: str) -> UserRecord | None:
        """The user of a valid, unrevoked key; None otherwise."""
        parts = _split(key)
        if parts is None:
            return None
        prefix, secret = parts
        with self.sessions.read() as s:
            row = s.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(_hash(secret, row.salt, row.kdf), row.key_hash):
                return None
            user = s.get(User, row.user)
            return None if user is None else _user(user)

    def revoke_key(self, key_or_prefix: str) -> None:
        """Revoke a key, given in full or by its prefix (as ``keys`` lists it)."""
        parts = _split(key_or_prefix)
        prefix = parts[0] if parts else str(key_or_prefix).strip()
        with self.sessions.write() as s:
            done = s.execute(
                update(ApiKey)
                .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if done.rowcount == 0:
                raise InvalidInputError(
                    f"no active API key with prefix {prefix!r}; list them with "
                    "`bandit-router users keys USER`."
                )

    def keys(self, user: str | None = None) -> list[ApiKeyInfo]:
        """Keys (never their secrets), of one user or all, oldest first."""
        q = select(ApiKey).order_by(ApiKey.id)
        if user is not None:
            q = q.where(ApiKey.user == user)
        with self.sessions.read() as s:
            return [
                ApiKeyInfo(r.id, r.user, r.prefix, r.created_at, r.revoked_at)
                for r in s.execute(q).scalars()
            ]


def _user(row: User) -> UserRecord:
    budget = None
    if row.budget_usd is not None and row.period_kind is not None:
        budget = budget_of(
            row.budget_usd, row.period_kind, row.window_seconds, row.expected_queries
        )
    return UserRecord(row.name, budget)


__all__ = ["KDF", "ApiKeyInfo", "SqlUserDirectory"]
