"""Policy names are checked before any embedding or training starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bandit_router.cli.app import app
from bandit_router.cli.replay import split_policies
from bandit_router.errors import ConfigurationError


def test_split_policies_accepts_registry_names_and_fixed_models():
    assert split_policies(["linucb,lints", "fixed:best"]) == ["linucb", "lints", "fixed:best"]
    with pytest.raises(ConfigurationError, match="unknown policy linucbb"):
        split_policies(["linucb,linucbb"])
    with pytest.raises(ConfigurationError, match="unknown policy fixed"):
        split_policies(["fixed"])
    with pytest.raises(ConfigurationError, match="at least one policy"):
        split_policies([" , "])


@pytest.mark.parametrize("command", [["simulate"], ["replay", "no-such-table.csv"]])
def test_a_typo_fails_fast_with_the_list_of_names(command):
    result = CliRunner().invoke(app, [*command, "-p", "linucbb", "--no-save"])
    assert isinstance(result.exception, ConfigurationError)
    assert "choose from: linucb" in str(result.exception)
