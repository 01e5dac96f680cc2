"""Writes through every default location the project uses (no test of the suite's own).

``tests/test_leaves_no_trace.py`` runs it twice in a subprocess under a fake home: as a
plain script (it must then write into that home, or the proof would be vacuous) and inside
a pytest session of this suite (it must then leave the home empty).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_through_defaults(workdir: Path) -> None:
    """A replay saved in the default store with the default embedding cache, a PNG export
    (matplotlib's font cache) and an embedding call with the default disk cache."""
    from typer.testing import CliRunner

    from bandit_router.cli.app import app
    from bandit_router.embeddings import make_embedder
    from tests.sim_tables import two_topic_table

    table = two_topic_table(workdir, n=20, seed=0)[0]
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "replay",
            str(table),
            "-p",
            "random",
            "--embedder",
            "hashing-16",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    run_id = next(json.loads(x) for x in res.stdout.splitlines() if x.startswith("{"))["run_id"]
    png = workdir / "curves.png"
    res = runner.invoke(app, ["regret", "export", str(run_id), "--png", str(png)])
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 0
    emb = make_embedder("hashing-8", disk_cache=True, cache_size=0)
    assert emb.embed(["hello"]).shape == (1, 8)
    emb.close()


def test_write_through_defaults(tmp_path: Path) -> None:
    write_through_defaults(tmp_path)


if __name__ == "__main__":
    write_through_defaults(Path(sys.argv[1]))
