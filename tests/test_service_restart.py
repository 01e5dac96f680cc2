"""kill -9 of the real server mid-traffic, then a restart on the same SQLite file:
decisions, feedback, budgets and the learned state survive, and no reservation is lost or
counted twice."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from bandit_router.config import build_policy
from bandit_router.features import Featurizer
from bandit_router.storage import open_router_stores
from tests.fake_upstream import ThreadServer, make_app
from tests.test_service_server import ADMIN, PRICES, Server, add_user, spec_for

USERS = ("u0", "u1")


def _fb(i: int) -> dict:
    return {"reward": (i % 3) / 2, "cost": 1e-4 * (1 + i % 4)}


def _ledger_matches_the_log(url: str) -> dict[str, float]:
    """Per user: spent + held in the ledger == settled costs + estimates of open decisions."""
    stores = open_router_stores(url)
    try:
        with stores.engine.connect() as con:
            rows = con.execute(
                text(
                    "SELECT d.user, SUM(CASE WHEN f.id IS NULL THEN d.estimated_cost ELSE 0 END),"
                    " SUM(CASE WHEN f.id IS NULL THEN 0 ELSE f.cost END), COUNT(*) "
                    "FROM decisions d LEFT JOIN feedback f ON f.decision_id = d.id "
                    "WHERE d.reserved GROUP BY d.user"
                )
            ).all()
        out = {}
        for user, held, settled, _n in rows:
            s = stores.ledger.state(user)
            assert s.reserved == pytest.approx(float(held), abs=1e-12)
            assert s.spent == pytest.approx(float(settled), abs=1e-12)
            out[user] = s.spent + s.reserved
        return out
    finally:
        stores.close()


def test_kill_9_mid_traffic_then_restart(tmp_path):
    up = ThreadServer(make_app()).start()
    spec = spec_for(tmp_path, up.url, snapshot_every=7)
    url = spec["database"]
    server = Server(tmp_path, spec).start()
    try:
        keys = {u: add_user(server.url, u, budget=100.0) for u in USERS}
        routed: dict[str, tuple[str, int]] = {}  # decision id -> (user, i), acknowledged
        acked: dict[str, int] = {}  # decision id -> feedback id, acknowledged
        lock = threading.Lock()
        enough = threading.Event()

        def traffic(t: int) -> None:
            user = USERS[t % 2]
            h = {"Authorization": f"Bearer {keys[user]}"}
            with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
                for i in range(10_000):
                    try:
                        r = c.post("/v1/route", json={"prompt": f"query {t} {i % 17}"})
                        assert r.status_code == 200, r.text
                        did = r.json()["decision_id"]
                        with lock:
                            routed[did] = (user, i)
                        f = c.post("/v1/feedback", json={"decision_id": did, **_fb(i)})
                        assert f.status_code == 200, f.text
                        with lock:
                            acked[did] = f.json()["feedback_id"]
                            if len(acked) >= 30:
                                enough.set()
                    except httpx.TransportError:  # the server was killed
                        return

        threads = [threading.Thread(target=traffic, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        assert enough.wait(120), "the traffic did not get going"
        server.kill()
        for th in threads:
            th.join(60)
        assert len(routed) >= 30
        at_crash = _ledger_matches_the_log(url)
        assert set(at_crash) == set(USERS)

        server.start()  # same database
        for did, fid in acked.items():  # feedback survived, and is not applied twice
            user, i = routed[did]
            r = httpx.post(server.url + "/v1/feedback", json={"decision_id": did, **_fb(i)},
                           headers={"Authorization": f"Bearer {keys[user]}"})  # fmt: skip
            assert r.status_code == 200 and r.json()["duplicate"] and r.json()["feedback_id"] == fid
        assert _ledger_matches_the_log(url) == pytest.approx(at_crash, abs=1e-12)
        for did in set(routed) - set(acked):  # decisions survived: their feedback is accepted
            user, i = routed[did]
            r = httpx.post(server.url + "/v1/feedback", json={"decision_id": did, **_fb(i)},
                           headers={"Authorization": f"Bearer {keys[user]}"})  # fmt: skip
            assert r.status_code == 200, r.text
        _ledger_matches_the_log(url)

        # the learned state: the restarted server == the feedback log replayed from scratch
        stores = open_router_stores(url)
        try:
            log = stores.decisions.feedback_since(0)
        finally:
            stores.close()
        names = list(PRICES)
        feat = Featurizer(64)
        policy = build_policy("linucb", names, feat.dim, seed=0, reward_range=(0.0, 1.0))
        for f in log:
            if f.reward is not None:
                policy.update(f.model, f.context, f.reward)
        stats = httpx.get(server.url + "/admin/stats",
                          headers={"Authorization": f"Bearer {ADMIN}"}).json()  # fmt: skip
        assert stats["last_feedback_id"] == max(f.feedback_id for f in log)
        assert stats["policy_updates"] == sum(f.reward is not None for f in log)
        e = np.random.default_rng(3).normal(size=64)
        r = httpx.post(server.url + "/v1/route", json={"embedding": e.tolist()},
                       headers={"Authorization": f"Bearer {keys['u0']}"})  # fmt: skip
        served = r.json()["scores"]
        want = policy.score(feat.transform_one(e))
        for k, a in enumerate(want.arms):
            assert served[a]["mean"] == pytest.approx(want.mean[k], abs=1e-9)
            assert served[a]["width"] == pytest.approx(want.width[k], abs=1e-9)
    finally:
        server.stop()
        up.stop()
