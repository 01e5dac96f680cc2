"""The BLAS threads of the decision path: one.

Every product on a routed query is one context against the policy's state: a gemv to
score every arm, a rank-one update to learn. They are memory-bound and take microseconds,
so a second BLAS thread adds only its wake-up and synchronisation. OpenBLAS (numpy's and
scipy's) threads such products from about 10,000 elements with one thread per core by
default, and that turns microseconds into milliseconds: ``Router.route`` + ``feedback``
at d = 513 (a 512-d embedding without a prior, five models) took 8.0 ms per query with a
thread per core on a two-core machine, 0.14 ms with one (55x; the same at d = 65 and
1.1x at d = 257; ``python benchmarks/blas_threads.py``).

So a ``Router`` sets its process to one BLAS thread when it is built (``blas_threads``;
None leaves the process as it is), and a replay runs in ``single_threaded_blas``.

>>> from threadpoolctl import threadpool_info
>>> with single_threaded_blas():
...     all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
True
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits

from bandit_router.errors import ConfigurationError


def check_threads(threads: Any) -> int | None:
    """``threads`` as an int >= 1, or None; a ``ConfigurationError`` that says so otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigurationError(
            "blas_threads must be a whole number of threads >= 1 (or None to leave BLAS as it "
            f"is), got {threads!r}."
        )
    return threads


def limit_blas_threads(threads: int = 1) -> None:
    """Set every BLAS library loaded in the process to ``threads`` threads; it stays so
    (threadpoolctl, about 1 ms: once per router, not per call)."""
    threadpool_limits(limits=int(threads), user_api="blas")


def single_threaded_blas() -> Any:
    """A context with one BLAS thread that restores the previous setting on exit."""
    return threadpool_limits(limits=1, user_api="blas")


__all__ = ["check_threads", "limit_blas_threads", "single_threaded_blas"]
