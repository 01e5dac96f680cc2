"""Issue 13: the shortcuts of the route path build the same records and ids as before."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bandit_router.budget import Budget, BudgetAllocator
from bandit_router.budget.costs import CostModel
from bandit_router.budget.ledger import AccountState, Reservation, Settlement
from bandit_router.catalogue import ModelSpec
from bandit_router.records import record_maker
from bandit_router.router import FeedbackResult, Route, uuid7
from bandit_router.stores import DecisionRecord, FeedbackRecord

X = np.arange(3.0)
VALUES = {
    DecisionRecord: ("d", "u", 1.0, "m", X, {}, 0.5, 0.01, "linucb", 4, "e", None, "admitted",
                     2.0, True),
    FeedbackRecord: ("d", 1.0, 0.02, 3.0, "m", X, "u", False, 7),
    Route: ("d", "u", "m", 0.01, 1.0, "admitted", None, 0.5, 9.0, {}, 0.3, ""),
    FeedbackResult: ("d", "m", 1.0, 0.02, 0.01, 7, False, True, False),
    AccountState: ("u", Budget(1.0, "daily"), 5.0, 0.2, 0.1, 0.0, 86_400.0, 86_400.0, 3, None,
                   0.0),
    Reservation: ("d", "u", 0.01, 5.0, 0.0),
    Settlement: ("d", "u", 0.01, 0.02, True),
}  # fmt: skip


@pytest.mark.parametrize("cls", list(VALUES))
def test_record_maker_builds_what_the_constructor_builds(cls):
    made = record_maker(cls)(*VALUES[cls])
    want = cls(*VALUES[cls])
    assert type(made) is cls and made == want
    for f in dataclasses.fields(cls):  # every field holds the very value given
        assert getattr(made, f.name) is getattr(want, f.name), f.name
    assert dataclasses.asdict(made).keys() == dataclasses.asdict(want).keys()
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.user = "other"  # still frozen


def test_record_maker_refuses_shortcuts_it_cannot_take():
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self):
            if self.a < 0:
                raise ValueError("negative")

    made = record_maker(Slotted)(3)  # slots: written through their descriptors
    assert type(made) is Slotted and made == Slotted(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 4
    assert record_maker(Checked) is Checked  # its check must run: no shortcut
    assert record_maker(dict) is dict
    with pytest.raises(TypeError):  # every field, positionally
        record_maker(FeedbackRecord)("d", 1.0)


def test_uuid7_ids_stay_unique_and_ordered_across_random_pool_refills():
    ids = [uuid7() for _ in range(3 * 512 + 5)]  # 512 ids per 4 KiB pool
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "7" and i[19] in "89ab" for i in ids)
    rand = {i[20:] for i in ids}  # the random tails differ too
    assert len(rand) == len(ids)


def test_cost_estimate_is_kept_per_length_and_renewed_on_observation():
    cm = CostModel([ModelSpec("a", 1.0, 2.0), ModelSpec("b", 3.0, 4.0)])
    c = cm.estimate(input_tokens=100)
    assert cm.estimate(input_tokens=100) is c and not c.flags.writeable
    np.testing.assert_allclose(c, cm._base + cm.input_price * 100)
    other = cm.estimate(input_tokens=200)
    assert other is not c and other[0] > c[0]
    before = cm.estimate(input_tokens=200).copy()
    cm.observe("a", 10_000)  # model a now answers longer: its estimate rises
    after = cm.estimate(input_tokens=200)
    assert after[0] > before[0] and after[1] == before[1]


def test_allocator_shortcuts_choose_as_the_full_comparisons():
    """A read-only cost array (cheapest and dearest kept, every model fitting) and a
    writable copy (compared one by one) give the same allocations."""
    from bandit_router.budget.ledger import AccountState
    from bandit_router.policies import ArmScores, make_policy

    rng = np.random.default_rng(0)
    pol = make_policy("linucb", ["a", "b", "c", "d"], dim=2, seed=0)
    costs = np.array([0.001, 0.004, 0.02, 0.05])
    frozen = costs.copy()
    frozen.flags.writeable = False
    fast, slow = BudgetAllocator(), BudgetAllocator()
    for i in range(300):
        spent = float(rng.choice([0.0, 0.5, 0.9, 0.99, 0.9999]))
        state = AccountState("u", Budget(1.0, "daily", expected_queries=200), now=0.0,
                             spent=spent, n_decisions=i % 200)  # fmt: skip
        value = rng.random(4)
        scores = ArmScores(pol.arms, value - 0.1, np.full(4, 0.1), value)
        a = fast.choose(pol, scores, frozen, state)
        b = slow.choose(pol, scores, costs.copy(), state)
        assert (a.arm, a.reason, a.threshold) == (b.arm, b.reason, b.threshold)
        if a.selection is not None:
            np.testing.assert_array_equal(a.selection.candidates, b.selection.candidates)
