"""The pairwise-preference data set every warm-start step works on."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bandit_router.errors import InvalidInputError


@dataclass(frozen=True)
class PreferenceData:
    """Pairwise judgements ``(query, model a, model b, outcome)`` over a set of prompts.

    Attributes
    ----------
    prompts
        The distinct prompt texts, ``(n_q,)``.
    models
        The distinct model names, ``(K,)``.
    query, a, b
        Integer arrays ``(n,)``: prompt index and the two model indices of each judgement.
    y
        Float array ``(n,)``: 1.0 if ``a`` won, 0.0 if ``b`` won, 0.5 for a tie.
    scores
        Optional ``(n_q, K)`` absolute scores (NaN where unknown), present when the
        preferences were derived from an outcome table; used to calibrate the prior on the
        reward scale.
    dropped
        Counts of rows that were not kept, by reason (e.g. ``missing prompt``).
    source
        Where the data came from (a path or a description).

    >>> d = PreferenceData.from_records(
    ...     [("2+2?", "big", "small", 1.0), ("hi", "big", "small", 0.5)])
    >>> d.models, d.n_pairs, d.n_queries
    (['big', 'small'], 2, 2)
    >>> d.win_rates().round(2).tolist()
    [0.75, 0.25]
    """

    prompts: list[str]
    models: list[str]
    query: np.ndarray
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    scores: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        q = np.asarray(self.query, dtype=np.int64).reshape(-1)
        a = np.asarray(self.a, dtype=np.int64).reshape(-1)
        b = np.asarray(self.b, dtype=np.int64).reshape(-1)
        y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        n = len(q)
        if not (len(a) == len(b) == len(y) == n):
            raise InvalidInputError(
                f"query, a, b and y must have the same length; got {len(q)}, {len(a)}, "
                f"{len(b)}, {len(y)}."
            )
        if n == 0:
            raise InvalidInputError(
                "the preference data has no usable judgement; check the file and its prompts."
            )
        K, nq = len(self.models), len(self.prompts)
        if q.min() < 0 or q.max() >= nq or min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= K:
            raise InvalidInputError("preference indices point outside the prompts or models.")
        if np.any(a == b):
            raise InvalidInputError("a judgement compares a model with itself.")
        if not np.isin(y, (0.0, 0.5, 1.0)).all():
            raise InvalidInputError("outcomes y must be 1 (a wins), 0 (b wins) or 0.5 (tie).")
        if len(set(self.models)) != K:
            raise InvalidInputError(f"model names must be unique, got {self.models}.")
        object.__setattr__(self, "query", q)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "prompts", [str(p) for p in self.prompts])
        object.__setattr__(self, "models", [str(m) for m in self.models])
        if self.scores is not None:
            s = np.asarray(self.scores, dtype=np.float64)
            if s.shape != (nq, K):
                raise InvalidInputError(f"scores must be (n_q, K) = {(nq, K)}, got {s.shape}.")
            object.__setattr__(self, "scores", s)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Sequence[tuple[str, str, str, float]],
        models: Sequence[str] | None = None,
        dropped: dict[str, int] | None = None,
        source: str = "",
    ) -> PreferenceData:
        """Build from ``(prompt, model_a, model_b, y)`` tuples (y: 1 a wins, 0 b wins, 0.5 tie)."""
        prompt_index: dict[str, int] = {}
        model_list = list(models) if models is not None else []
        model_index = {m: i for i, m in enumerate(model_list)}
        q, a, b, y = [], [], [], []
        for prompt, ma, mb, out in records:
            q.append(prompt_index.setdefault(prompt, len(prompt_index)))
            for m in (ma, mb):
                if m not in model_index:
                    model_index[m] = len(model_list)
                    model_list.append(m)
            a.append(model_index[ma])
            b.append(model_index[mb])
            y.append(float(out))
        return cls(
            prompts=list(prompt_index),
            models=model_list,
            query=np.array(q, dtype=np.int64),
            a=np.array(a, dtype=np.int64),
            b=np.array(b, dtype=np.int64),
            y=np.array(y, dtype=np.float64),
            dropped=dict(dropped or {}),
            source=source,
        )

    # ---- views ----------------------------------------------------------------------
    @property
    def n_pairs(self) -> int:
        return len(self.y)

    @property
    def n_queries(self) -> int:
        return len(self.prompts)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def subset(self, rows: np.ndarray) -> PreferenceData:
        """The same prompts and models, only the judgements ``rows`` (indices or mask)."""
        rows = np.asarray(rows)
        return PreferenceData(
            self.prompts,
            self.models,
            self.query[rows],
            self.a[rows],
            self.b[rows],
            self.y[rows],
            self.scores,
            dict(self.dropped),
            self.source,
        )

    def win_rates(self) -> np.ndarray:
        """Share of its judgements each model won (ties count half), ``(K,)``; NaN if none."""
        K = self.n_models
        wins = np.bincount(self.a, self.y, K) + np.bincount(self.b, 1.0 - self.y, K)
        games = np.bincount(self.a, minlength=K) + np.bincount(self.b, minlength=K)
        with np.errstate(invalid="ignore", divide="ignore"):
            return wins / games

    def profiles(self) -> np.ndarray:
        """Per-query preference profile ``(n_q, K)``: mean of +1 (won) / -1 (lost) / 0 (tie).

        Zero where a model was not judged on the query. Phase 1 of the trainer treats two
        queries as similar when their (centred) profiles point the same way.
        """
        nq, K = self.n_queries, self.n_models
        sign = 2.0 * self.y - 1.0
        total = np.zeros((nq, K))
        count = np.zeros((nq, K))
        np.add.at(total, (self.query, self.a), sign)
        np.add.at(total, (self.query, self.b), -sign)
        np.add.at(count, (self.query, self.a), 1.0)
        np.add.at(count, (self.query, self.b), 1.0)
        return np.divide(total, count, out=np.zeros_like(total), where=count > 0)

    def fingerprint(self) -> str:
        """sha256 of the judgements (prompt texts, model names, outcomes), order-independent."""
        h = hashlib.sha256()
        keys = [hashlib.sha1(p.encode("utf-8")).hexdigest() for p in self.prompts]
        rows = sorted(
            f"{keys[q]}|{self.models[a]}|{self.models[b]}|{y:g}"
            for q, a, b, y in zip(self.query, self.a, self.b, self.y, strict=True)
        )
        for r in rows:
            h.update(r.encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def describe(self) -> str:
        """One line: counts of judgements, prompts, models, ties and dropped rows."""
        ties = int((self.y == 0.5).sum())
        text = (
            f"{self.n_pairs} judgements on {self.n_queries} prompts, {self.n_models} models, "
            f"{ties} ties"
        )
        if any(self.dropped.values()):
            parts = ", ".join(f"{v} {k}" for k, v in self.dropped.items() if v)
            text += f"; dropped rows: {parts}"
        return text
