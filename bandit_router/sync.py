"""Scale-out: keep one process's ``Router`` in step with the other processes on one store.

Several router processes (uvicorn workers, hosts behind a load balancer) share one
PostgreSQL database. The feedback table is the replicated log: every process folds in the
feedback the others wrote after its own watermark (``Router.last_feedback_id``), in
feedback-id order, so every process holds the state of one process that saw all of it.

``StoreSync`` runs one daemon thread per process:

- **wake-up**: on PostgreSQL it holds its own psycopg connection that ``LISTEN``s on
  ``storage.decisions.FEEDBACK_CHANNEL`` (every feedback transaction ``NOTIFY``s at
  commit), so another process's feedback is folded in within milliseconds; it also polls
  every ``interval`` seconds (the fallback when a notification is lost, and the only
  mechanism on SQLite).
- **no lost feedback**: feedback ids are assigned under a transaction-scoped advisory lock
  (``storage.decisions``), so they become visible in id order and a watermark never skips
  a row that commits late. The log is read outside the router's lock and applied under it
  (``Router.apply_feedback``), so routing is not held up by the read.
- **catalogue and budgets**: once per interval a round also reads the models table
  (``Router.refresh_catalogue``) and drops the router's cached user budgets
  (``Router.forget_budgets``): models added, retired or repriced and budgets changed by
  another process's admin API reach this one within the same interval. (Spend, holds and
  the arrival count the allocator paces with are read from the ledger on every route.)
- **snapshots**: one process at a time writes the periodic snapshots, the holder of a
  session-level advisory lock (``pg_try_advisory_lock``) on the listener connection; when
  that process dies its connection closes and another process takes the lock at its next
  round. On SQLite (one process) this process is always the writer.
- **outage**: a round that cannot reach the database marks the sync unhealthy
  (``healthy``, ``last_error``); the router keeps its in-memory state, and the next round
  after the database returns catches up with everything logged meanwhile.

>>> from bandit_router.catalogue import ModelSpec
>>> from bandit_router.policies import make_policy
>>> from bandit_router.router import Router
>>> from bandit_router.storage import open_router_stores
>>> stores = open_router_stores("sqlite://")
>>> a = Router([ModelSpec("m", 0.1, 0.2)], None, None, make_policy("linucb", ["m"], 2),
...            stores=stores)
>>> b = Router([ModelSpec("m", 0.1, 0.2)], None, None, make_policy("linucb", ["m"], 2),
...            stores=stores)
>>> r = a.route_context("u", [1.0, 0.0])
>>> _ = a.feedback(r.decision_id, 1.0)
>>> sync = StoreSync(b, interval=60.0)
>>> sync.sync_once(), b.last_feedback_id == a.last_feedback_id, sync.healthy
(1, True, True)
>>> stores.close()
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("bandit_router.sync")

#: session-level advisory lock key of the snapshot writer ("bandit-s" in ASCII)
PG_SNAPSHOT_LOCK = 0x62616E6469742D73


def _psycopg_url(engine: Any) -> str | None:
    """A libpq URL for ``engine`` when it is PostgreSQL, else None."""
    if engine is None or engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class StoreSync:
    """Folds the feedback and catalogue changes of other processes into ``router``.

    Parameters
    ----------
    router
        The process's ``Router`` (on SQL stores; with in-memory stores there is nothing
        to sync but ``sync_once`` still works).
    interval
        Seconds between polls (the bound on how stale this process's state may be when
        notifications are lost; with LISTEN/NOTIFY the usual lag is milliseconds).
    listen
        Use LISTEN/NOTIFY and the snapshot advisory lock on PostgreSQL (False, or without
        the psycopg driver: polling only, and this process writes its snapshots).
    clock
        Monotonic seconds (tests).

    Attributes
    ----------
    healthy
        False after a round that could not read the database (until one succeeds).
    last_ok
        ``clock()`` of the last successful round (None before the first).
    last_error
        The message of the last failed round.
    rounds, applied
        Successful rounds, feedback applied by them.
    last_lag_s
        For the newest feedback a round applied: seconds from its being written (by
        another process) to its being applied here: the observed state lag.
    """

    def __init__(
        self,
        router: Any,
        *,
        interval: float = 1.0,
        listen: bool = True,
        clock: Any = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"the sync interval must be > 0 seconds, got {interval}.")
        self.router = router
        self.interval = float(interval)
        self.clock = clock
        engine = getattr(router.stores, "engine", None)
        self._pg_url = _psycopg_url(engine) if listen else None
        if self._pg_url is not None:
            try:
                import psycopg  # noqa: F401  (the listener's driver; psycopg2 engines too)
            except ImportError:
                log.warning(
                    "psycopg is not installed: no LISTEN/NOTIFY (polling every %.3g s) and "
                    "every process writes its snapshots; pip install 'bandit-router[postgres]'",
                    self.interval,
                )
                self._pg_url = None
        self.healthy = True
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.rounds = 0
        self.applied = 0
        self.notifications = 0
        self.last_lag_s: float | None = None
        self.last_lag_id = 0  # the feedback ``last_lag_s`` was measured on
        self._last_full: float | None = None
        self.wall = time.time
        self._leader = self._pg_url is None  # SQLite / memory: the only process writes
        self._conn: Any | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._round_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        router.snapshot_gate = self.is_snapshot_writer

    # ---- one round ---------------------------------------------------------------------
    def sync_once(self, full: bool = True) -> int:
        """Catalogue changes and budgets (``full``), then the feedback logged after the
        watermark; returns how many feedback records were applied. Raises nothing: a
        failure marks the sync unhealthy and returns 0. (A notification runs a round
        without ``full``: the catalogue and budgets are refreshed once per interval, not
        once per feedback.)"""
        with self._round_lock:
            r = self.router
            try:
                if full:
                    r.refresh_catalogue()
                    r.forget_budgets()  # budgets changed by another process's admin API
                    self._last_full = self.clock()
                n = 0
                while True:
                    batch = r.stores.decisions.feedback_since(r.last_feedback_id, 5_000)
                    k = r.apply_feedback(batch)
                    if k:
                        # wall-clock age of the newest record at the moment it was applied
                        # (feedback times are the writing process's clock: one host, or
                        # synchronised clocks)
                        self.last_lag_s = max(self.wall() - batch[-1].created_at, 0.0)
                        self.last_lag_id = batch[-1].feedback_id
                    n += k
                    if len(batch) < 5_000:
                        break
            except Exception as exc:  # the database is unreachable, or a bad row
                if self.healthy:
                    log.warning("sync with the store failed: %s", exc)
                self.healthy = False
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return 0
            self.healthy = True
            self.last_error = None
            self.last_ok = self.clock()
            self.rounds += 1
            self.applied += n
            return n

    def age(self) -> float | None:
        """Seconds since the last successful round (None before the first)."""
        return None if self.last_ok is None else max(self.clock() - self.last_ok, 0.0)

    def is_snapshot_writer(self) -> bool:
        """Whether this process writes the periodic snapshots now."""
        return self._leader

    def wake(self) -> None:
        """Run a round now (as a notification does)."""
        self._wake.set()

    # ---- the threads -------------------------------------------------------------------
    def start(self) -> StoreSync:
        """Start the background thread(s); returns self."""
        if self._threads:
            return self
        self._stop.clear()
        t = threading.Thread(target=self._poll_loop, name="bandit-router-sync", daemon=True)
        self._threads.append(t)
        if self._pg_url is not None:
            lt = threading.Thread(
                target=self._listen_loop, name="bandit-router-listen", daemon=True
            )
            self._threads.append(lt)
            lt.start()
        t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads and close the listener connection (releases the snapshot lock)."""
        self._stop.set()
        self._wake.set()
        conn = self._conn
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass
        self._conn = None
        if self._pg_url is not None:
            self._leader = False

    def __enter__(self) -> StoreSync:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            due = self._last_full is None or self.clock() - self._last_full >= self.interval
            self.sync_once(full=due or not self.healthy)

    def _listen_loop(self) -> None:
        import psycopg

        from bandit_router.storage.decisions import FEEDBACK_CHANNEL

        while not self._stop.is_set():
            try:
                conn = psycopg.connect(self._pg_url, autocommit=True, connect_timeout=5)
            except Exception as exc:
                self._leader = False
                log.debug("listener cannot connect: %s", exc)
                self._stop.wait(self.interval)
                continue
            self._conn = conn
            try:
                conn.execute(f"LISTEN {FEEDBACK_CHANNEL}")
                self._wake.set()  # anything missed while not listening
                while not self._stop.is_set():
                    if not self._leader:
                        row = conn.execute(
                            "SELECT pg_try_advisory_lock(%s)", (PG_SNAPSHOT_LOCK,)
                        ).fetchone()
                        self._leader = bool(row and row[0])
                    got = False
                    for _ in conn.notifies(timeout=self.interval, stop_after=1):
                        got = True
                    if got:
                        self.notifications += 1
                        self._wake.set()
            except Exception as exc:
                if not self._stop.is_set():
                    log.debug("listener connection lost: %s", exc)
            finally:
                self._leader = False
                self._conn = None
                try:
                    conn.close()
                except Exception:  # pragma: no cover
                    pass
            self._stop.wait(min(self.interval, 1.0))


__all__ = ["PG_SNAPSHOT_LOCK", "StoreSync"]
