"""Token counters: how many input tokens a prompt costs.

The default is a fast heuristic (about four characters per token, the rule of thumb of
the OpenAI tokenizers on English text, and the rule the LLMRouter cost columns were built
with); ``TiktokenCounter`` counts exactly for OpenAI-style BPE vocabularies when the
optional ``tiktoken`` package is installed (``pip install 'bandit-router[tokens]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from bandit_router.errors import ConfigurationError, InvalidInputError


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a prompt. ``count_many`` returns shape ``(n,)``."""

    name: str

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> np.ndarray: ...


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"a prompt must be a string, got {type(text).__name__}.")
    return text


class HeuristicTokenCounter:
    """``ceil(characters / chars_per_token)`` tokens, at least 1 for a non-empty prompt.

    >>> HeuristicTokenCounter().count("What is the capital of France?")
    8
    >>> HeuristicTokenCounter().count_many(["", "abcd", "abcde"]).tolist()
    [0, 1, 2]
    """

    def __init__(self, chars_per_token: float = 4.0) -> None:
        if not chars_per_token > 0:
            raise ConfigurationError(f"chars_per_token must be positive, got {chars_per_token}.")
        self.chars_per_token = float(chars_per_token)
        self.name = f"heuristic:{self.chars_per_token:g}"

    def count(self, text: str) -> int:
        return math.ceil(len(_check_text(text)) / self.chars_per_token)

    def count_many(self, texts: Sequence[str]) -> np.ndarray:
        n = np.fromiter((len(_check_text(t)) for t in texts), dtype=np.float64, count=len(texts))
        return np.ceil(n / self.chars_per_token).astype(np.int64)


class TiktokenCounter:
    """Exact counts with a tiktoken encoding (needs the optional ``tiktoken`` package).

    >>> try:
    ...     TiktokenCounter().count("hello world")
    ... except ConfigurationError:
    ...     2  # tiktoken not installed here
    2
    """

    def __init__(self, encoding: str = "cl100k_base") -> None:
        try:
            import tiktoken
        except ImportError:
            raise ConfigurationError(
                "the tiktoken token counter needs the optional package: "
                "pip install 'bandit-router[tokens]' (or use the heuristic counter)."
            ) from None
        try:
            self._enc = tiktoken.get_encoding(encoding)
        except Exception as exc:  # unknown name, or the vocabulary cannot be fetched offline
            raise ConfigurationError(
                f"tiktoken cannot load the encoding {encoding!r} ({exc}); use a known encoding "
                "such as cl100k_base, pre-fetch it, or use the heuristic counter."
            ) from exc
        self.name = f"tiktoken:{encoding}"

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(_check_text(text)))

    def count_many(self, texts: Sequence[str]) -> np.ndarray:
        for t in texts:
            _check_text(t)
        return np.array([len(e) for e in self._enc.encode_ordinary_batch(list(texts))], np.int64)


def make_token_counter(name: str = "heuristic") -> TokenCounter:
    """``"heuristic"`` (default), ``"tiktoken"`` / ``"tiktoken:<encoding>"``, or ``"auto"``
    (tiktoken when it is installed and its vocabulary loads, else the heuristic).

    >>> make_token_counter().name
    'heuristic:4'
    """
    if name == "heuristic":
        return HeuristicTokenCounter()
    if name.startswith("heuristic:"):
        return HeuristicTokenCounter(float(name.split(":", 1)[1]))
    if name == "tiktoken" or name.startswith("tiktoken:"):
        enc = name.split(":", 1)[1] if ":" in name else "cl100k_base"
        return TiktokenCounter(enc)
    if name == "auto":
        try:
            return TiktokenCounter()
        except ConfigurationError:
            return HeuristicTokenCounter()
    raise ConfigurationError(
        f"unknown token counter {name!r}; use 'heuristic', 'heuristic:<chars per token>', "
        "'tiktoken[:<encoding>]' or 'auto'."
    )
