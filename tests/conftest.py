"""Shared fixtures: paths to ../shared/data, a temporary home for the whole session, and a
guard against silently skipped suites.

The suite never writes into the user's home: ``isolate_user_dirs`` (session-scoped, autouse,
registered as a plugin so that it also covers the doctests of ``bandit_router``, ``storage``
and ``simulations``) points ``HOME``, the XDG folders, the embedding cache and matplotlib's
config folder at one temporary folder, and removes ``$BANDIT_ROUTER_DATABASE_URL`` so no test
can reach the user's own database. Tests that embed the same prompts share the session's
embedding cache (``$BANDIT_ROUTER_CACHE_DIR``), so each prompt is embedded once per run.
``tests/test_leaves_no_trace.py`` proves it with a fake home in a subprocess.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BANDIT_ROUTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# No timed asserts, hypothesis's included: its per-example deadline (200 ms) and its "too
# slow" health check fail on a busy machine. Speed is measured in benchmarks/.
settings.register_profile(
    "bandit-router", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("bandit-router")

#: Every variable that decides where the code, or a library it uses, writes user files.
#: ``None`` removes the variable for the session.
USER_DIR_VARIABLES = (
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "BANDIT_ROUTER_CACHE_DIR",
    "BANDIT_ROUTER_DATABASE_URL",
    "MPLCONFIGDIR",
)


def isolated_environment(root: Path) -> dict[str, str | None]:
    """The environment under which nothing is written outside ``root``.

    ``HOME`` and the XDG folders cover ``platformdirs`` (the default SQLite store lives in
    ``user_data_dir``, the embedding cache in ``user_cache_dir``) and any library that writes
    under ``~``; ``BANDIT_ROUTER_CACHE_DIR`` is the embedding cache shared by the session;
    ``BANDIT_ROUTER_DATABASE_URL`` is removed so that a test that opens the default store
    gets a temporary SQLite file, never the database the user configured.

    >>> env = isolated_environment(Path("/t"))
    >>> env["XDG_CACHE_HOME"], env["BANDIT_ROUTER_DATABASE_URL"]
    ('/t/home/.cache', None)
    >>> sorted(env) == sorted(USER_DIR_VARIABLES)
    True
    """
    home = root / "home"
    return {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "BANDIT_ROUTER_CACHE_DIR": str(root / "embeddings"),
        "BANDIT_ROUTER_DATABASE_URL": None,
        "MPLCONFIGDIR": str(root / "matplotlib"),
    }


class _IsolationPlugin:
    """Holds the session fixture; registered as a plugin so that it applies to every item
    of the session (a conftest fixture would only reach the items under ``tests/``)."""

    @pytest.fixture(scope="session", autouse=True)
    @classmethod
    def isolate_user_dirs(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
        """Point every cache / data / config folder at a session temporary folder."""
        root = tmp_path_factory.mktemp("user-dirs")
        with pytest.MonkeyPatch.context() as mp:
            for name, value in isolated_environment(root).items():
                if value is None:
                    mp.delenv(name, raising=False)
                else:
                    Path(value).mkdir(parents=True, exist_ok=True)
                    mp.setenv(name, value)
            yield root


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("bandit-router-isolation"):
        config.pluginmanager.register(_IsolationPlugin(), "bandit-router-isolation")


def shared_file(relative: str) -> Path:
    """Path of a file in ../shared/data; skip locally, fail on CI, if it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        if ON_CI:
            pytest.fail(f"{path} is missing: CI must run with ../shared/data beside the project.")
        pytest.skip(f"{path} is absent (the shared data folder is not beside the project)")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if ON_CI:
            pytest.fail(f"{SHARED_DATA} is missing on CI.")
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items:
        raise pytest.UsageError("no tests were collected: the suite must never pass empty.")
