"""Alembic revision scripts, one per schema change, oldest first by ``down_revision``."""
