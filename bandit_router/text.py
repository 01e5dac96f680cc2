"""The one normalisation of a prompt cell into the text that is embedded.

Training (the warm start's preference and outcome loaders) and replay (the simulator's
outcome tables) both read prompts through ``prompt_text``, so a prior's projection is
applied to exactly the text it was fitted on.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: roles whose turns make up the prompt (assistant and system turns are left out)
USER_ROLES = ("user", "human")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    try:  # pandas' NA and NaT
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def _parse_turns(s: str) -> Any:
    """A list of turns (or one turn dict) written as JSON or as a Python literal, else None."""
    if not (s.startswith("[") or s.startswith("{")):
        return None
    try:
        value = json.loads(s)
    except ValueError:
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if isinstance(value, Mapping):
        return value if "content" in value else None
    if isinstance(value, list | tuple):
        # only a list of texts or of turn dicts is a conversation: "[1, 2, 3]" stays text
        if all(isinstance(t, str | Mapping) or _missing(t) for t in value):
            return value
    return None


def _content_text(content: Any) -> str:
    """A turn's content: a string, or a list of parts (``{"type": "text", "text": ...}``)."""
    if _missing(content):
        return ""
    if isinstance(content, list | tuple):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                part = part.get("text")
            if not _missing(part):
                parts.append(str(part).strip())
        return "\n".join(p for p in parts if p)
    return str(content).strip()


def prompt_text(value: Any) -> str | None:
    """The text of a prompt cell, or ``None`` if it holds none.

    A cell may hold plain text, a list of turns (strings, or ``{"role", "content"}`` dicts
    of which the user's are kept), or such a list written as JSON or as a Python literal
    (RouterBench stores ``"['...']"``). Turns are stripped and joined by newlines.

    >>> prompt_text("  What is 2 + 2?\\n")
    'What is 2 + 2?'
    >>> prompt_text("['hi', 'there']")
    'hi\\nthere'
    >>> prompt_text('["hi", "there"]')
    'hi\\nthere'
    >>> prompt_text(["hi", "there"]) == prompt_text(np.array(["hi", "there"]))
    True
    >>> prompt_text([{"role": "system", "content": "Be brief."},
    ...              {"role": "user", "content": "Name a prime."},
    ...              {"role": "assistant", "content": "2"},
    ...              {"role": "user", "content": "Another?"}])
    'Name a prime.\\nAnother?'
    >>> prompt_text("[{'role': 'user', 'content': 'hi'}]")
    'hi'
    >>> prompt_text({"content": [{"type": "text", "text": "Describe this."}]})
    'Describe this.'
    >>> prompt_text("[1, 2, 3]"), prompt_text("[not a list")
    ('[1, 2, 3]', '[not a list')
    >>> [prompt_text(v) for v in (None, float("nan"), "", "   ", [], "[]", ["", None])]
    [None, None, None, None, None, None, None]
    """
    if _missing(value):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        s = value.strip()
        parsed = _parse_turns(s)
        if parsed is None:
            return s or None
        value = parsed
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, list | tuple):
        parts: list[str] = []
        for turn in value:
            if isinstance(turn, Mapping):
                if str(turn.get("role", "user")).lower() in USER_ROLES:
                    parts.append(_content_text(turn.get("content")))
            elif not _missing(turn):
                parts.append(str(turn).strip())
        text = "\n".join(p for p in parts if p)
        return text or None
    return str(value).strip() or None
