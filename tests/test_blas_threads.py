"""A router runs its products on one BLAS thread (``bandit_router.blas``).

With OpenBLAS's default (a thread per core) a routed query at d = 513 took 8.0 ms instead
of 0.14 ms on two cores (``benchmarks/blas_threads.py``): a second thread on a
microsecond gemv only waits.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bandit_router import router as router_module
from bandit_router.catalogue import ModelSpec
from bandit_router.errors import ConfigurationError
from bandit_router.policies import make_policy
from bandit_router.router import Router


def make_router(**kw) -> Router:
    names = ["small", "large"]
    specs = [ModelSpec("small", 0.1, 0.4), ModelSpec("large", 5.0, 15.0)]
    return Router(specs, None, None, make_policy("linucb", names, 4, seed=0), **kw)


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_a_router_sets_the_threads_it_is_given_and_none_leaves_them(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(router_module, "limit_blas_threads", calls.append)
    make_router()
    assert calls == [1]  # the default
    make_router(blas_threads=None)
    assert calls == [1]
    make_router(blas_threads=2)
    assert calls == [1, 2]


def test_after_a_router_is_built_every_blas_library_runs_one_thread():
    with threadpool_limits(limits=2, user_api="blas"):  # as OpenBLAS starts on two cores
        make_router()
        assert blas_threads() == {1}
        router = make_router(blas_threads=None)  # leaves the setting as it is
        assert blas_threads() == {1}
    r = router.route_context("u", np.array([1.0, 0.0, 0.0, 1.0]))
    assert r.model in ("small", "large")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_blas_threads_that_are_not_a_count_are_a_clear_error(bad):
    with pytest.raises(ConfigurationError, match="blas_threads must be a whole number of threads"):
        make_router(blas_threads=bad)
