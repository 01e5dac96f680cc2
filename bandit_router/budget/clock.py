"""Clocks: seconds since the Unix epoch (UTC). Inject a ``ManualClock`` in tests and replays."""

from __future__ import annotations

import time
from collections.abc import Callable

from bandit_router.errors import InvalidInputError

#: anything that returns the current time in seconds since the epoch
Clock = Callable[[], float]


def system_clock() -> float:
    """The wall clock, ``time.time()``."""
    return time.time()


class ManualClock:
    """A clock that moves only when told to (tests, simulations).

    >>> clock = ManualClock(100.0)
    >>> clock.advance(5)
    105.0
    >>> clock()
    105.0
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if not seconds >= 0:
            raise InvalidInputError(f"a clock only moves forward; got {seconds} seconds.")
        self.now += float(seconds)
        return self.now

    def set(self, t: float) -> float:
        if not t >= self.now:
            raise InvalidInputError(f"a clock only moves forward; {t} < {self.now}.")
        self.now = float(t)
        return self.now
