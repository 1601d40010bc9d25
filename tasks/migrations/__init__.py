"""Alembic migrations of the warehouse schema (`newsflow db upgrade`; see tasks/migrate.py)."""
