"""The suite writes nothing into the user's home (issue 8): every cache, data and config
folder points at a session temporary folder (``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, USER_DIR_VARIABLES

REAL_HOME = Path(os.path.expanduser("~"))  # read at import, before the session fixture runs


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _user_environment(home: Path) -> dict[str, str]:
    """The environment of a user whose folders all live under ``home`` (none of the suite's
    redirections), with a database URL of their own that the suite must never touch."""
    env = {k: v for k, v in os.environ.items() if k not in USER_DIR_VARIABLES}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        BANDIT_ROUTER_DATABASE_URL=f"sqlite:///{home / 'db' / 'mine.db'}",
    )
    return env


def test_default_locations_point_into_the_session_folder() -> None:
    from bandit_router.embeddings import default_cache_dir
    from bandit_router.storage.config import default_database_path, resolve_database_url

    home = Path(os.environ["HOME"])
    assert home != REAL_HOME and not home.is_relative_to(REAL_HOME)
    assert default_cache_dir().is_relative_to(home.parent)
    assert default_database_path().is_relative_to(home)
    assert resolve_database_url(None).database == str(default_database_path())


def test_a_run_of_the_suite_leaves_a_fake_home_empty(tmp_path: Path) -> None:
    probe = "tests/default_paths_probe.py"
    # control: the probe alone writes its cache, database and font cache into the home,
    # so an empty home afterwards really means the suite redirected them
    control = tmp_path / "control-home"
    control.mkdir()
    (tmp_path / "control-work").mkdir()
    script = (
        "import sys; from pathlib import Path; from tests.default_paths_probe import "
        "write_through_defaults as w; w(Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "control-work")],
        cwd=ROOT,
        env=_user_environment(control),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = _files_under(control)
    assert "db/mine.db" in written
    assert ".cache/bandit-router/embeddings/hashing-16-16.sqlite" in written
    assert ".cache/bandit-router/embeddings/hashing-8-8.sqlite" in written
    assert any(f.startswith(".cache/matplotlib/") for f in written), written

    # the same probe as a test of this suite: the session fixture keeps the home empty
    home = tmp_path / "home"
    home.mkdir()
    basetemp = f"--basetemp={tmp_path / 'basetemp'}"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", probe, "-q", "-p", "no:cacheprovider", basetemp],
        cwd=ROOT,
        env=_user_environment(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    assert _files_under(home) == []
