"""The distribution installs one import name, ``bandit_router``.

``cli/``, ``storage/`` and ``simulations/`` are folders of the repository but install as
``bandit_router.cli``, ``bandit_router.storage`` and ``bandit_router.simulations``: generic
top-level names (``cli``, ``storage``) would clash with other distributions. Checked on a
plain wheel (built here, imported from its unpacked files) and on the editable install the
suite runs on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"bandit_router": "bandit_router", "cli": "bandit_router.cli",
           "storage": "bandit_router.storage", "simulations": "bandit_router.simulations"}  # fmt: skip


def _declared() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_declared():
    expected = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            expected.add(".".join((name, *rel)))
    assert expected == set(_declared())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (whl,) = out.glob("*.whl")
    unpacked = out / "site"
    with zipfile.ZipFile(whl) as z:
        z.extractall(unpacked)
    return unpacked


def test_the_wheel_holds_only_the_bandit_router_import_name(wheel):
    tops = {p.name for p in wheel.iterdir() if not p.name.endswith(".dist-info")}
    assert tops == {"bandit_router"}
    assert (wheel / "bandit_router/storage/migrations/alembic.ini").is_file()
    assert (wheel / "bandit_router/storage/migrations/versions").is_dir()
    entry = next(wheel.glob("*.dist-info")) / "entry_points.txt"
    assert "bandit_router.cli.app:main" in entry.read_text()


def _python(code: str, tmp_path: Path, pythonpath: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


CHECK = """
import importlib.util, sys
import bandit_router, bandit_router.cli.app, bandit_router.simulations.replay
from bandit_router.storage import open_store
store = open_store("sqlite:///pkg.db")
for name in ("cli", "storage", "simulations"):
    assert importlib.util.find_spec(name) is None, name + " is importable at the top level"
print(bandit_router.__file__)
print(bandit_router.storage.__file__)
"""


def test_a_plain_wheel_install_imports_and_migrates(wheel, tmp_path):
    out = _python(CHECK, tmp_path, pythonpath=str(wheel))
    assert out.splitlines()[0].startswith(str(wheel))
    assert out.splitlines()[1].startswith(str(wheel / "bandit_router" / "storage"))


def test_the_editable_install_maps_the_repository_folders(tmp_path):
    out = _python(CHECK, tmp_path)
    assert out.splitlines()[1].startswith(str(ROOT / "storage"))
