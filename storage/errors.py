"""Typed errors of the store. Every message says what went wrong and what to do."""

from __future__ import annotations

from bandit_router.errors import BanditRouterError, ConfigurationError, InvalidInputError


class StorageError(BanditRouterError):
    """The database cannot be opened, migrated, read or written."""


class DatabaseURLError(StorageError, ConfigurationError):
    """The database URL (``--db``, ``BANDIT_ROUTER_DATABASE_URL``) is not usable."""


class SchemaVersionError(StorageError):
    """The database was migrated by a newer bandit-router than the one running."""


class UnknownRunError(StorageError, KeyError):
    """A run id is not in the database."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown run"


class InvalidRunDataError(StorageError, InvalidInputError):
    """Run metadata or steps have the wrong columns, types or values."""
