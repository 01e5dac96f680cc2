"""Alembic migrations of the store (applied by :func:`storage.migrate.upgrade` on open)."""
