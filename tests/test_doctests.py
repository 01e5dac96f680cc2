"""Doctests of the packages that live in top-level folders but install under bandit_router.

``cli/``, ``storage/`` and ``simulations/`` are installed as ``bandit_router.cli``,
``bandit_router.storage`` and ``bandit_router.simulations`` (setuptools ``package-dir``), so
pytest cannot collect their doctests by path; this test imports every module by its
installed name and runs its examples.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("bandit_router.cli", "bandit_router.simulations", "bandit_router.storage")


def _modules() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        names.append(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg_name}."):
            if ".migrations.versions." in info.name or info.name.endswith("migrations.env"):
                continue  # Alembic scripts run only inside a migration context
            names.append(info.name)
    return names


@pytest.mark.parametrize("module", _modules())
def test_module_doctests(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {module}"


def test_the_installed_packages_are_the_repository_folders():
    import bandit_router.cli
    import bandit_router.simulations
    import bandit_router.storage

    root = bandit_router.__file__.rsplit("/", 2)[0]
    for pkg, folder in (
        (bandit_router.cli, "cli"),
        (bandit_router.simulations, "simulations"),
        (bandit_router.storage, "storage"),
    ):
        assert pkg.__file__.startswith(f"{root}/{folder}/") or "site-packages" in pkg.__file__
