"""Many policies x seeds x budgets in parallel processes, over one shared ``Problem``.

The problem (feature matrix, outcomes, costs, priors) is built once in the parent and
handed to each worker once, through the pool's initializer (with the ``fork`` start
method it is inherited without pickling), so a sweep embeds and featurizes each prompt
exactly once. Results come back as ``RunResult`` objects; the parent saves them (one
writer for the database).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from tqdm.auto import tqdm

from bandit_router.errors import ConfigurationError
from bandit_router.simulations.replay import Problem, ReplayConfig, RunResult, run_replay


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a policy name, a seed and the run's options.

    >>> RunSpec("linucb", 0, ReplayConfig(budget_fraction=0.5)).label
    'linucb seed=0 budget_fraction=0.5'
    """

    policy: str
    seed: int
    config: ReplayConfig = field(default_factory=ReplayConfig)

    @property
    def label(self) -> str:
        c = self.config
        b = (
            f" budget_fraction={c.budget_fraction:g}"
            if c.budget_fraction is not None
            else (f" budget={c.budget:g}" if c.budget is not None else "")
        )
        return f"{self.policy} seed={self.seed}{b}"


def grid(
    policies: Sequence[str],
    seeds: Iterable[int],
    budget_fractions: Sequence[float | None] = (None,),
    base: ReplayConfig | None = None,
    budgets: Sequence[float] | None = None,
) -> list[RunSpec]:
    """The cross product policies x seeds x budgets (fractions, or USD amounts if given).

    >>> len(grid(["linucb", "random"], range(3), [0.1, 0.5]))
    12
    """
    base = base or ReplayConfig()
    seeds = list(seeds)
    if budgets is not None:
        cfgs = [replace(base, budget=b, budget_fraction=None) for b in budgets]
    else:
        cfgs = [replace(base, budget_fraction=f, budget=None) for f in budget_fractions]
    return [RunSpec(p, s, c) for c, p, s in itertools.product(cfgs, policies, seeds)]


_PROBLEM: Problem | None = None


def _init_worker(problem: Problem) -> None:
    global _PROBLEM
    _PROBLEM = problem
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run_spec(spec: RunSpec, log_decisions: bool) -> RunResult:
    assert _PROBLEM is not None, "worker not initialised"
    return run_replay(_PROBLEM, spec.policy, spec.config, spec.seed, log_decisions=log_decisions)


def run_sweep(
    problem: Problem,
    specs: Sequence[RunSpec],
    *,
    workers: int = 2,
    progress: bool = True,
    log_decisions: bool = False,
    on_result: Callable[[RunSpec, RunResult], Any] | None = None,
) -> list[RunResult]:
    """Run every spec, ``workers`` processes at a time (1 = in this process), in spec order.

    ``on_result`` is called in the parent as each run finishes (e.g. to save it).

    >>> import numpy as np
    >>> p = Problem.from_arrays(np.ones((20, 2)), np.full((20, 2), 0.5), np.ones((20, 2)))
    >>> [r.summary["queries"] for r in run_sweep(p, grid(["random"], [0, 1]), workers=1,
    ...                                           progress=False)]
    [20, 20]
    """
    if workers < 1:
        raise ConfigurationError(f"workers must be >= 1, got {workers}.")
    for s in specs:  # fail fast on a bad name or a missing prior, before forking
        if s.policy in ("pilot", "pilot-ts") and not problem.priors:
            raise ConfigurationError(
                f"policy {s.policy!r} needs a preference prior; give --prior FILE, --train "
                "TABLE or --train-split F, or use linucb / lints."
            )
    results: list[RunResult | None] = [None] * len(specs)
    bar = tqdm(total=len(specs), desc="runs", unit="run", disable=not progress)
    if workers == 1 or len(specs) <= 1:
        global _PROBLEM
        saved, _PROBLEM = _PROBLEM, problem
        try:
            for j, s in enumerate(specs):
                results[j] = _run_spec(s, log_decisions)
                if on_result is not None:
                    on_result(s, results[j])
                bar.update()
        finally:
            _PROBLEM = saved
    else:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(
            max_workers=min(workers, len(specs)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(problem,),
        ) as pool:
            futures = {pool.submit(_run_spec, s, log_decisions): j for j, s in enumerate(specs)}
            for fut in as_completed(futures):
                j = futures[fut]
                results[j] = fut.result()
                if on_result is not None:
                    on_result(specs[j], results[j])
                bar.set_postfix_str(specs[j].label, refresh=False)
                bar.update()
    bar.close()
    return [r for r in results if r is not None]
