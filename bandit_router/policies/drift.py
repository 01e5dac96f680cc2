"""Drift watch: ADWIN (from river) on the chosen arm's reward residuals."""

from __future__ import annotations


class DriftWatch:
    """Raises an exploration boost for a while after the residuals' mean shifts.

    >>> w = DriftWatch(boost=2.0, boost_steps=10)
    >>> w.scale
    1.0
    >>> for i in range(2000):
    ...     _ = w.observe(0.0 if i < 1000 else 0.9)
    >>> w.events >= 1
    True
    """

    def __init__(self, delta: float = 0.002, boost: float = 2.0, boost_steps: int = 200) -> None:
        self.delta = float(delta)
        self.boost = float(boost)
        self.boost_steps = int(boost_steps)
        from river.drift import ADWIN  # river is imported lazily: it costs ~2 s at start-up

        self.detector = ADWIN(delta=self.delta)
        self.events = 0
        self.boost_left = 0

    @property
    def scale(self) -> float:
        """Multiplier on the exploration term (1.0 unless drift was seen recently)."""
        return self.boost if self.boost_left > 0 else 1.0

    def observe(self, residual: float) -> bool:
        if self.boost_left > 0:
            self.boost_left -= 1
        self.detector.update(residual)
        if self.detector.drift_detected:
            self.events += 1
            self.boost_left = self.boost_steps
            return True
        return False
