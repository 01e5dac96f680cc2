"""Per-user budgets: token counting, the cost model, budgets and periods, the ledger, the
allocator (online multi-choice knapsack with the ZCL threshold and PILOT's bins) and the
hindsight LP optimum.

>>> import numpy as np
>>> from bandit_router.budget import Budget, BudgetAllocator, InMemoryLedger, ManualClock
>>> from bandit_router.policies import make_policy
>>> ledger = InMemoryLedger(clock=ManualClock(0.0))
>>> ledger.set_budget("alice", Budget(0.02, expected_queries=100))
>>> pol = make_policy("linucb", ["small", "large"], dim=2, seed=0)
>>> alloc = BudgetAllocator()
>>> a = alloc.route(pol, pol.score(np.ones(2)), np.array([0.0001, 0.002]), ledger, "alice", "q1")
>>> a.reason, round(ledger.state("alice").reserved, 6) == round(a.cost, 6)
('admitted', True)
"""

from bandit_router.budget.allocator import Allocation, BudgetAllocator
from bandit_router.budget.baselines import naive_split
from bandit_router.budget.clock import Clock, ManualClock, system_clock
from bandit_router.budget.costs import CostModel
from bandit_router.budget.hindsight import HindsightOptimum, hindsight_optimum
from bandit_router.budget.ledger import (
    AccountState,
    InMemoryLedger,
    Ledger,
    Reservation,
    Settlement,
)
from bandit_router.budget.periods import Budget, BudgetPeriod
from bandit_router.budget.protocol import AffordableAllocator, Allocator
from bandit_router.budget.threshold import zcl_threshold
from bandit_router.budget.tokens import (
    HeuristicTokenCounter,
    TiktokenCounter,
    TokenCounter,
    make_token_counter,
)

__all__ = [
    "AccountState",
    "AffordableAllocator",
    "Allocation",
    "Allocator",
    "Budget",
    "BudgetAllocator",
    "BudgetPeriod",
    "Clock",
    "CostModel",
    "HeuristicTokenCounter",
    "HindsightOptimum",
    "InMemoryLedger",
    "Ledger",
    "ManualClock",
    "Reservation",
    "Settlement",
    "TiktokenCounter",
    "TokenCounter",
    "hindsight_optimum",
    "make_token_counter",
    "naive_split",
    "system_clock",
    "zcl_threshold",
]
