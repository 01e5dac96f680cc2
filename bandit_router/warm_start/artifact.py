"""The prior artifact: everything a router needs to start from the preference prior.

One ``.npz`` file (no pickles) with the arrays and a JSON header::

    header   JSON: format, version, embedder name and dim, models, scale, calibration,
             training metrics, configuration, data fingerprint
    W (p, D), c (p,)                the projection (the bandit's Featurizer)
    theta (K, p), beta (K,)         the preference model (unit model vectors, BT biases)
    theta0 (K, p + 1)               the prior means on the reward scale (see calibration.py)
    strength (K,)                   the prior strengths lambda_a (how they were chosen:
                                    header calibration["strength"], see ``strength_method``)
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bandit_router.errors import ConfigurationError, DimensionMismatchError, StateError
from bandit_router.features import Featurizer, Projection
from bandit_router.policies.prior import ArmPrior
from bandit_router.warm_start.model import PilotModel

FORMAT = "bandit-router/pilot-prior"
VERSION = 1
_ARRAYS = ("W", "c", "theta", "beta", "theta0", "strength")


@dataclass
class PriorArtifact:
    """A trained PILOT prior, ready to seed the ``pilot`` / ``pilot-ts`` policies.

    ``priors(arms)`` returns an ``ArmPrior(theta0_a, lambda_a)`` for every arm the prior
    knows. Arms absent from the preference data are **left out**, so the policy's own rule
    applies: they start from the pooled mean of the given priors with strength
    ``cold_strength`` (weak by default).

    >>> import tempfile, os
    >>> art = PriorArtifact.example()
    >>> art.featurizer().dim, sorted(art.priors(["m0", "m1", "new"]))
    (3, ['m0', 'm1'])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = art.save(os.path.join(d, "prior.npz"))
    ...     back = PriorArtifact.load(os.path.join(d, "prior.npz"))
    >>> back.models, bool(np.array_equal(back.theta0, art.theta0))
    (['m0', 'm1'], True)
    """

    embedder_name: str
    embedder_dim: int
    models: list[str]
    W: np.ndarray
    c: np.ndarray
    theta: np.ndarray
    beta: np.ndarray
    scale: float
    theta0: np.ndarray
    strength: np.ndarray
    calibration: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.models = [str(m) for m in self.models]
        for name in _ARRAYS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        K, p, D = len(self.models), self.W.shape[0], self.W.shape[1]
        expect = {
            "W": (p, int(self.embedder_dim)),
            "c": (p,),
            "theta": (K, p),
            "beta": (K,),
            "theta0": (K, p + 1),
            "strength": (K,),
        }
        for name, shape in expect.items():
            if getattr(self, name).shape != shape:
                raise StateError(
                    f"prior artifact: {name} has shape {getattr(self, name).shape}, expected "
                    f"{shape} (K={K} models, p={p}, D={D}); the file is corrupted or was edited."
                )
        if len(set(self.models)) != K:
            raise StateError(f"prior artifact: duplicate model names in {self.models}.")
        if not all(np.isfinite(getattr(self, n)).all() for n in _ARRAYS):
            raise StateError("prior artifact contains NaN or infinite values.")
        if not (self.strength > 0).all():
            raise StateError("prior artifact: strengths must be positive.")

    # ---- views --------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension ``p`` of the shared space (the bandit context has ``p + 1``)."""
        return int(self.W.shape[0])

    @property
    def context_dim(self) -> int:
        """Dimension of the bandit context, ``p + 1``: build the policy with this ``dim``."""
        return self.dim + 1

    def featurizer(self) -> Featurizer:
        """The bandit's featurizer: ``[normalize(W phi + c), 1]``, dimension ``p + 1``."""
        return Featurizer(in_dim=int(self.embedder_dim), projection=Projection(self.W, self.c))

    def model(self) -> PilotModel:
        """The preference model (for ``P(a beats b | q)``)."""
        return PilotModel(self.W, self.c, self.theta, self.beta, self.scale)

    def expected_reward(self, embeddings: np.ndarray) -> np.ndarray:
        """The prior's reward estimate ``x @ theta0_a`` for each query and model, ``(n, K)``."""
        return self.featurizer().transform(embeddings) @ self.theta0.T

    def strengths(self) -> dict[str, float]:
        return {m: float(s) for m, s in zip(self.models, self.strength, strict=True)}

    def strength_method(self) -> str:
        """How the stored strengths lambda_a were chosen, in words.

        Artifacts written before the strengths were estimated by empirical Bayes carry no
        record of it; their stored lambda is used as it is (the accuracy rule, at most 10).

        >>> PriorArtifact.example().strength_method()
        'stored (no record of how it was chosen: used as stored)'
        """
        info = self.calibration.get("strength")
        if not isinstance(info, dict) or "method" not in info:
            rule = self.calibration.get("strength_rule")
            if rule:
                return f"{rule} (an artifact from before empirical-Bayes strengths: used as stored)"
            return "stored (no record of how it was chosen: used as stored)"
        text = str(info["method"])
        if info.get("overridden"):
            text += ", overridden by --strength"
        at_cap = info.get("at_cap") or []
        if at_cap:
            text += f"; at the cap (the prior's effective observations) for {', '.join(at_cap)}"
        return text

    def priors(
        self,
        arms: Sequence[str],
        strength: float | Mapping[str, float] | None = None,
        require_all: bool = False,
    ) -> dict[str, ArmPrior]:
        """``{arm: ArmPrior(theta0_a, lambda_a)}`` for the arms the prior knows.

        ``strength`` overrides lambda: one number for every arm, or a mapping per arm
        (arms missing from the mapping keep the learned value). Arms without preference
        data are left out (the policy starts them from the pooled mean with its
        ``cold_strength``), or raise with ``require_all=True``.
        """
        index = {m: i for i, m in enumerate(self.models)}
        unknown = [a for a in arms if a not in index]
        if require_all and unknown:
            raise ConfigurationError(
                f"the prior has no data on model(s) {unknown}; it knows {self.models}. Retrain "
                "with data on them, or allow cold arms (they start from the pooled mean)."
            )
        if not any(a in index for a in arms):
            raise ConfigurationError(
                f"the prior knows none of the models {list(arms)} (it was trained on "
                f"{self.models}); is it the prior of another pool?"
            )
        out: dict[str, ArmPrior] = {}
        for arm in arms:
            k = index.get(arm)
            if k is None:
                continue
            lam = float(self.strength[k])
            if isinstance(strength, Mapping):
                lam = float(strength.get(arm, lam))
            elif strength is not None:
                lam = float(strength)
            out[arm] = ArmPrior(self.theta0[k].copy(), lam)
        return out

    def check_compatible(
        self, embedder_name: str, dim: int, arms: Sequence[str] | None = None
    ) -> list[str]:
        """Raise if the router's embedder or models do not fit this prior.

        ``dim`` is the embedder's output dimension. The embedder must be the one the prior
        was trained with; at least one arm must be known. Returns the arms without prior
        (they start from the pooled mean).
        """
        if str(embedder_name) != self.embedder_name or int(dim) != int(self.embedder_dim):
            raise DimensionMismatchError(
                f"the prior was trained on {self.embedder_name!r} embeddings ({self.embedder_dim}-d) "
                f"but the router uses {embedder_name!r} ({dim}-d); route with --embedder "
                f"{self.embedder_name} or retrain the prior with this embedder."
            )
        if arms is None:
            return []
        known = [a for a in arms if a in self.models]
        if not known:
            raise ConfigurationError(
                f"the prior knows none of the router's models {list(arms)} (it was trained on "
                f"{self.models}); is it the prior of another pool?"
            )
        return [a for a in arms if a not in self.models]

    def summary(self) -> str:
        """A short human-readable description."""
        m = self.metrics
        acc = m.get("accuracy", {})
        lines = [
            f"PILOT prior: {len(self.models)} models, {self.embedder_name} ({self.embedder_dim}-d)"
            f" -> {self.dim}-d, scale {self.scale:.2f}, calibration {self.calibration.get('method', '?')}",
        ]
        lines.append(
            "prior strengths lambda: "
            + ", ".join(f"{m} {v:.3g}" for m, v in self.strengths().items())
            + f" ({self.strength_method()})"
        )
        if acc:
            lines.append(
                "held-out pairwise accuracy: "
                + ", ".join(f"{k} {v:.3f}" for k, v in acc.items() if v == v)
            )
        return "\n".join(lines)

    # ---- files --------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "embedder": {"name": self.embedder_name, "dim": int(self.embedder_dim)},
            "models": self.models,
            "dim": self.dim,
            "scale": float(self.scale),
            "calibration": self.calibration,
            "metrics": self.metrics,
            "config": self.config,
            "fingerprint": self.fingerprint,
        }

    def save(self, path: str | Path) -> Path:
        """Write the artifact to ``path`` (exactly that name; ``.npz`` is conventional)."""
        p = Path(path)
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps(self.header(), sort_keys=True, default=_json_default)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, header=np.array(header), **arrays)
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> PriorArtifact:
        """Read an artifact written by ``save``; clear errors for anything else."""
        p = Path(path)
        if not p.exists():
            raise ConfigurationError(
                f"prior file {p} does not exist; train one with `bandit-router warm-start`."
            )
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise StateError(f"{p} is not a prior artifact (not a readable .npz): {exc}") from exc
        if "header" not in data:
            raise StateError(f"{p} is an .npz but not a prior artifact (no header).")
        try:
            head = json.loads(str(data["header"]))
        except json.JSONDecodeError as exc:
            raise StateError(f"{p}: the artifact header is not valid JSON.") from exc
        if head.get("format") != FORMAT:
            raise StateError(f"{p} is not a bandit-router prior (format {head.get('format')!r}).")
        if int(head.get("version", 0)) > VERSION:
            raise StateError(
                f"{p} was written by a newer bandit-router (prior format v{head['version']}); "
                "upgrade bandit-router."
            )
        missing = [n for n in _ARRAYS if n not in data]
        if missing:
            raise StateError(f"{p}: the artifact lacks array(s) {missing}.")
        return cls(
            embedder_name=head["embedder"]["name"],
            embedder_dim=int(head["embedder"]["dim"]),
            models=list(head["models"]),
            scale=float(head["scale"]),
            calibration=head.get("calibration", {}),
            metrics=head.get("metrics", {}),
            config=head.get("config", {}),
            fingerprint=head.get("fingerprint", ""),
            **{n: data[n] for n in _ARRAYS},
        )

    @classmethod
    def example(cls) -> PriorArtifact:
        """A tiny hand-made artifact (2 models, 3-d embeddings, 2-d space) for examples."""
        theta = np.array([[1.0, 0.0], [0.0, 1.0]])
        return cls(
            embedder_name="hashing-3",
            embedder_dim=3,
            models=["m0", "m1"],
            W=np.eye(2, 3),
            c=np.zeros(2),
            theta=theta,
            beta=np.zeros(2),
            scale=1.0,
            theta0=np.array([[0.3, 0.0, 0.5], [0.0, 0.3, 0.5]]),
            strength=np.array([5.0, 2.0]),
            calibration={"method": "example"},
        )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
