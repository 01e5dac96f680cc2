"""Runs the service for the subprocess tests: ``python -m tests.service_server SPEC.json``.

SPEC: ``{"database": URL, "config": RouterConfig dict, "service": ServiceSettings dict,
"port": int}``. It builds the durable stores, ``Router.from_config`` (which restores the
latest snapshot plus the feedback logged after it), the app, and serves it on 127.0.0.1;
on a graceful stop it writes a snapshot (as ``bandit-router serve`` does).
"""

from __future__ import annotations

import json
import sys

import uvicorn

from bandit_router.router import Router
from bandit_router.service import DirectoryKeyStore, ServiceSettings, create_app
from bandit_router.storage import open_router_stores


def main(path: str) -> None:
    with open(path) as f:
        spec = json.load(f)
    stores = open_router_stores(spec["database"])
    router = Router.from_config(spec["config"], stores)
    settings = ServiceSettings.from_dict(spec.get("service"))
    app = create_app(router, settings, keys=DirectoryKeyStore(stores.users))
    try:
        uvicorn.run(app, host="127.0.0.1", port=int(spec["port"]), log_level="warning")
    finally:
        router.snapshot()
        stores.close()


if __name__ == "__main__":
    main(sys.argv[1])
