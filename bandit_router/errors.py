"""Typed errors a user can cause. Every message says what went wrong and what to do."""

from __future__ import annotations


class BanditRouterError(Exception):
    """Base class of every error bandit-router raises on purpose."""


class InvalidInputError(BanditRouterError, ValueError):
    """An input has the wrong shape, type or value (NaN, infinity, out of range)."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length does not match what the component was built for."""


class UnknownArmError(BanditRouterError, KeyError):
    """A model name is not one of the policy's arms."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown arm"


class StateError(BanditRouterError):
    """A saved state blob is corrupted, truncated or belongs to something else."""


class ConfigurationError(BanditRouterError, ValueError):
    """A hyper-parameter or option is invalid."""


class EmbedderError(BanditRouterError):
    """The embedder cannot produce vectors (missing package, unknown text, bad output)."""


class BudgetError(BanditRouterError, ValueError):
    """A budget, reservation or settlement is invalid (negative amount, unknown user...)."""


class BudgetExhaustedError(BudgetError):
    """A reservation would exceed what is left of the user's budget."""


class DecisionError(BanditRouterError, LookupError):
    """Feedback names a decision that is unknown, expired, or already has other feedback."""


class UnknownDecisionError(DecisionError):
    """No decision has this id (or it belongs to another user)."""


class DecisionExpiredError(DecisionError):
    """The decision's feedback wait time is over; its reservation was settled."""


class FeedbackConflictError(DecisionError):
    """The decision already has feedback with another reward or cost."""
