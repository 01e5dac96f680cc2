"""Where the store lives: an explicit URL, else ``$BANDIT_ROUTER_DATABASE_URL``, else a file.

The default is an SQLite file in the user's data directory
(``platformdirs.user_data_dir("bandit-router")/bandit-router.db``). Any SQLAlchemy URL
works (``postgresql+psycopg://user@host/db`` for many processes). A bare path without
``://`` is read as an SQLite file, and ``:memory:`` as a private in-memory database.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bandit_router.storage.errors import DatabaseURLError

ENV_VAR = "BANDIT_ROUTER_DATABASE_URL"
DEFAULT_FILENAME = "bandit-router.db"


def default_database_path() -> Path:
    """The default SQLite file: ``<user data dir>/bandit-router/bandit-router.db``."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("bandit-router")) / DEFAULT_FILENAME


def resolve_database_url(url: str | os.PathLike[str] | URL | None = None) -> URL:
    """The URL to open: ``url`` > ``$BANDIT_ROUTER_DATABASE_URL`` > the default SQLite file.

    >>> resolve_database_url("sqlite://").render_as_string()
    'sqlite://'
    >>> resolve_database_url(":memory:").render_as_string()
    'sqlite://'
    >>> resolve_database_url("/tmp/runs.db").render_as_string()
    'sqlite:////tmp/runs.db'
    """
    if isinstance(url, URL):
        return url
    if url is None or (isinstance(url, str) and not url.strip()):
        url = os.environ.get(ENV_VAR, "").strip() or None
    if url is None:
        return make_url(f"sqlite:///{default_database_path()}")
    text = os.fspath(url).strip()
    if text in (":memory:", "sqlite:///:memory:"):
        return make_url("sqlite://")
    if "://" not in text:
        return make_url(f"sqlite:///{Path(text).expanduser().resolve()}")
    try:
        return make_url(text)
    except ArgumentError as exc:
        raise DatabaseURLError(
            f"cannot parse the database URL {text!r}: {exc}. Give an SQLAlchemy URL such as "
            "'sqlite:////path/to/runs.db' or 'postgresql+psycopg://user@host/db'."
        ) from None


def display_url(url: URL) -> str:
    """The URL for messages, with any password hidden.

    >>> display_url(make_url("postgresql+psycopg://u:secret@h/db"))
    'postgresql+psycopg://u:***@h/db'
    """
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_memory_sqlite(url: URL) -> bool:
    return is_sqlite(url) and url.database in (None, "", ":memory:")
