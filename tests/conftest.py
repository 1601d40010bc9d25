"""Shared fixtures: a temporary Prefect server, warehouses (SQLite, and PostgreSQL when configured),
and the bundled sample site served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

import tasks.settings  # noqa: F401  (telemetry off before Prefect is imported)

POSTGRES_URL = os.environ.get("NEWSFLOW_TEST_POSTGRES_URL")

# Tests serve everything from one local host: a 1 s politeness delay per request would only slow them.
os.environ.setdefault("NEWSFLOW_HOST_DELAY_SECONDS", "0.01")
os.environ.setdefault("NEWSFLOW_RETRY_BACKOFF_SECONDS", "0.01")
# Tests give their files as flow parameters from temporary folders: those may be read.
os.environ.setdefault("NEWSFLOW_FILES_ROOTS", tempfile.gettempdir())


def pytest_configure(config: pytest.Config) -> None:
    # Prefect binds its console log handler to sys.stderr when first imported: import it now, while that
    # is pytest's session-long stream, not the stream of a test's capsys, closed after that test.
    import prefect  # noqa: F401


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real, temporary Prefect API server (its own database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (tests can run twice in a row)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        from tasks.warehouse import dispose_engines

        dispose_engines(forget=True)  # close pooled connections before dropping
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("NEWSFLOW_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path) -> Iterator[str]:
    """Each warehouse test runs on SQLite and, when configured, on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        if not POSTGRES_URL:
            pytest.skip("NEWSFLOW_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        yield from _postgres_database()


@pytest.fixture
def sample_site(monkeypatch) -> Iterator[str]:
    """The bundled sample news site on a free port; NEWSFLOW_SAMPLE_BASE_URL points at it."""
    from flows.sample_site import SampleSite

    with SampleSite() as site:
        monkeypatch.setenv("NEWSFLOW_SAMPLE_BASE_URL", site.base_url)
        yield site.base_url
