"""Alembic environment of the store.

Programmatic use (what :func:`storage.open_store` does): :func:`storage.migrate.upgrade`
passes an open connection in ``config.attributes["connection"]`` inside a transaction it
has already begun, so the whole upgrade is one transaction.

Command-line use, for developers writing a new revision::

    alembic -c storage/migrations/alembic.ini revision --autogenerate -m "add decisions"
    alembic -c storage/migrations/alembic.ini upgrade head

takes the URL from ``-x url=...``, else ``$BANDIT_ROUTER_DATABASE_URL``, else the default
SQLite file.
"""

from __future__ import annotations

from alembic import context

from bandit_router.storage.models import Base


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from bandit_router.storage.config import resolve_database_url
    from bandit_router.storage.engine import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(resolve_database_url(url))
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    from bandit_router.storage.config import resolve_database_url

    url = context.get_x_argument(as_dictionary=True).get("url")
    context.configure(
        url=resolve_database_url(url),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic executes this file; importing it any other way (doctest collection) does nothing.
if getattr(context, "_proxy", None) is not None:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
