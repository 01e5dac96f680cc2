"""``bandit-router serve --workers N``: N router processes on one host, one shared database.

The parent opens the database once (migrations, the demo prior trained if needed, the
admin key and the demo user), binds the listening socket, prints the banner, then starts N
worker processes (forked) that share the socket: the kernel hands each connection to one
of them. Each worker is a full router process (its own ``Router`` restored from the latest
snapshot plus the feedback log, its own connection pool, its own ``StoreSync`` that folds in
the others' feedback and catalogue changes). A worker that dies is restarted (it restores
the same way); SIGTERM / SIGINT stop every worker gracefully (each writes its snapshot if
the latest one is not current).

Only on PostgreSQL: several processes on one SQLite file would serialise every write on the
file lock and poll for each other's feedback, so ``--workers`` > 1 with SQLite is refused
with a message that says how to switch (``--db postgresql://...``).

>>> check_workers(1, "sqlite:////tmp/x.db")
>>> check_workers(4, "sqlite:////tmp/x.db")
Traceback (most recent call last):
...
bandit_router.cli.serve.StartupRefused: --workers 4 needs a PostgreSQL database ...
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bandit_router.cli.serve import (
    SHUTDOWN_GRACE_S,
    StartupRefused,
    admin_key_status,
    banner,
    build_router,
    ensure_demo_user,
    final_snapshot,
    generate_admin_key,
    graceful_server_class,
    stored_admin_hash,
)

#: a worker that dies this soon after its start is not restarted (it would only crash again)
_MIN_UPTIME_S = 5.0


def check_workers(workers: int, url: Any) -> None:
    """Refuse ``--workers`` > 1 on anything but PostgreSQL."""
    from bandit_router.storage.config import display_url, resolve_database_url

    if workers < 1:
        raise StartupRefused(f"--workers must be >= 1, got {workers}.")
    if workers == 1:
        return
    u = resolve_database_url(url)
    if u.get_backend_name() != "postgresql":
        raise StartupRefused(
            f"--workers {workers} needs a PostgreSQL database ({display_url(u)} is "
            f"{u.get_backend_name()}): the worker processes share one learned state through "
            "it. Use --db postgresql+psycopg://user@host/db (or database.url in the config), "
            "or run one worker."
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupRefused(
            f"could not listen on {host}:{port} ({exc.strerror or exc}; is another process "
            "using the port?). Fix: --port N or server.port in the config."
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_main(cfg: Any, sock: socket.socket, index: int) -> None:
    """One worker: its own stores and router on the shared database, serving ``sock``."""
    import uvicorn

    from bandit_router.service import DirectoryKeyStore, create_app
    from bandit_router.storage import open_router_stores
    from bandit_router.storage.config import resolve_database_url

    stores = open_router_stores(resolve_database_url(cfg.database_url))
    router = None
    try:
        router = build_router(cfg, stores, progress=False)
        admin = cfg.admin_key()
        admin_hash = None if admin is not None else stored_admin_hash(admin_key_status())
        settings = dataclasses.replace(cfg.service, admin_key=admin, admin_key_hash=admin_hash)
        app = create_app(router, settings, keys=DirectoryKeyStore(stores.users))

        server = graceful_server_class()(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            )
        )
        server.run(sockets=[sock])
    finally:
        try:
            if router is not None:
                typer.echo(f"worker {index} stopped; {final_snapshot(router)}", err=True)
        finally:
            stores.close()


def run_workers(
    cfg: Any,
    workers: int,
    *,
    t0: float | None = None,
    new_demo_key: bool = False,
    progress: bool = True,
) -> None:
    """Prepare the database, bind, start ``workers`` processes; block until SIGTERM /
    SIGINT, restarting a worker that dies."""
    from bandit_router.storage import open_router_stores
    from bandit_router.storage.config import display_url, resolve_database_url

    t0 = time.perf_counter() if t0 is None else t0
    url_db = resolve_database_url(cfg.database_url)
    check_workers(workers, url_db)
    stores = open_router_stores(url_db)
    try:  # once, before the workers: migrations, the prior, the keys, the demo user
        router = build_router(cfg, stores, progress=progress)
        admin, shown = cfg.admin_key(), None
        hash_path = admin_key_status()
        if admin is not None:
            admin_note = f"from ${cfg.admin_key_env}"
        elif stored_admin_hash(hash_path) is None:
            admin = shown = generate_admin_key(hash_path)
            admin_note = f"generated now and printed once; only its hash is kept ({hash_path})"
        else:
            admin_note = f"the one printed at the first start (its hash is in {hash_path})"
        user_key = ensure_demo_user(router, stores, new_key=new_demo_key)
        final_snapshot(router)
    finally:
        stores.close()
    sock = _bind(cfg.host, cfg.port)
    # fork: a worker starts with the parent's imports (seconds less per start); the parent
    # holds no database connection and runs no thread at this point
    ctx = mp.get_context("fork")
    procs: list[tuple[Any, float]] = []

    def start(i: int) -> tuple[Any, float]:
        p = ctx.Process(target=worker_main, args=(cfg, sock, i), name=f"bandit-router-{i}")
        p.start()
        return p, time.monotonic()

    stopping = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        procs = [start(i) for i in range(workers)]
        shown_host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
        typer.echo(
            banner(
                cfg,
                router,
                url=f"http://{shown_host}:{cfg.port}",
                admin_key=shown,
                admin_note=admin_note,
                user_key=user_key,
                database=display_url(url_db) + f"  ({workers} worker processes)",
                seconds=time.perf_counter() - t0,
            )
        )
        sys.stdout.flush()
        while not stopping:
            time.sleep(0.2)
            for i, (p, started) in enumerate(procs):
                if p.exitcode is not None and not stopping:
                    if time.monotonic() - started < _MIN_UPTIME_S:
                        raise StartupRefused(
                            f"worker {i} exited with code {p.exitcode} right after its start; "
                            "see its error above."
                        )
                    typer.echo(f"worker {i} died (exit code {p.exitcode}); restarting", err=True)
                    procs[i] = start(i)
    finally:
        for p, _ in procs:
            if p.exitcode is None:
                p.terminate()  # SIGTERM: graceful, then its snapshot
        for p, _ in procs:
            p.join(SHUTDOWN_GRACE_S + 30)
            if p.exitcode is None:  # pragma: no cover - a worker stuck in shutdown
                p.kill()
        sock.close()
        for s, handler in old.items():
            signal.signal(s, handler)


__all__ = ["check_workers", "run_workers", "worker_main"]

if __name__ == "__main__":  # pragma: no cover
    print(Path(__file__).name, "is started by `bandit-router serve --workers N`")
