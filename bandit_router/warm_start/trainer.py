"""PILOT training: query split, triplet mining, phase 1 (projection), phase 2 (model vectors).

Both phases run scipy's L-BFGS-B on the analytic gradients of ``model.py`` in chunks of
``chunk_iters`` iterations; after each chunk the loss on the validation queries is checked,
the best parameters are kept, and training stops after ``patience`` chunks without
improvement (early stopping). Every random choice comes from ``numpy.random.default_rng(seed)``:
the same data and seed give the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from bandit_router.errors import ConfigurationError, InvalidInputError
from bandit_router.warm_start.data import PreferenceData
from bandit_router.warm_start.model import PilotModel, bt_loss, triplet_loss


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the PILOT trainer.

    >>> TrainConfig(dim=16).dim
    16
    """

    dim: int = 64
    #: share of the prompts held out for early stopping / for the reported accuracy
    val_frac: float = 0.1
    test_frac: float = 0.2
    # phase 1
    phase1: bool = True
    margin: float = 0.2
    gamma: float = 10.0
    reg_projection: float = 1e-2
    triplets_per_anchor: int = 4
    candidates: int = 16
    # phase 2
    reg_bt: float = 1e-3
    tie_weight: float = 0.5
    init_scale: float = 0.5
    fixed_scale: float | None = None
    # optimisation
    chunk_iters: int = 5
    max_chunks: int = 40
    patience: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.dim) < 1:
            raise ConfigurationError(f"dim must be positive, got {self.dim}.")
        if not (0.0 <= self.val_frac < 1 and 0.0 <= self.test_frac < 1):
            raise ConfigurationError("val_frac and test_frac must lie in [0, 1).")
        if self.val_frac + self.test_frac >= 0.9:
            raise ConfigurationError("val_frac + test_frac leaves too little to train on.")
        if self.fixed_scale is not None and not self.fixed_scale > 0:
            raise ConfigurationError(f"fixed_scale must be positive, got {self.fixed_scale}.")
        if not 0.0 <= self.tie_weight:
            raise ConfigurationError("tie_weight must be >= 0.")


@dataclass
class PilotFit:
    """The trained model, the query split (``split``: 0 train, 1 val, 2 test, ``(n_q,)``)
    and the per-chunk history of both phases."""

    model: PilotModel
    split: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    config: TrainConfig = field(default_factory=TrainConfig)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


# ---- data plumbing --------------------------------------------------------------------
def split_queries(n_q: int, val_frac: float, test_frac: float, seed: int) -> np.ndarray:
    """Random split of ``n_q`` prompts: 0 train, 1 validation, 2 test, ``(n_q,)``.

    >>> s = split_queries(100, 0.1, 0.2, seed=0)
    >>> np.bincount(s).tolist()
    [70, 10, 20]
    """
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(n_q)
    n_test = round(test_frac * n_q)
    n_val = round(val_frac * n_q)
    split = np.zeros(n_q, dtype=np.int64)
    split[order[:n_test]] = 2
    split[order[n_test : n_test + n_val]] = 1
    return split


def mine_triplets(
    profiles: np.ndarray,
    pool: np.ndarray,
    per_anchor: int,
    candidates: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Triplets (anchor, positive, negative) of query indices, ``(T, 3)``.

    ``profiles`` ``(n_q, K)`` are centred preference profiles; only queries of ``pool`` with
    a non-zero profile take part. For each anchor, ``candidates`` random others are drawn
    ``per_anchor`` times; the most similar profile (cosine) is the positive, the least
    similar the negative, kept when the positive is strictly more similar.
    """
    norms = np.linalg.norm(profiles, axis=1)
    live = pool[norms[pool] > 1e-12]
    if len(live) < 3:
        return np.zeros((0, 3), dtype=np.int64)
    Pn = profiles[live] / norms[live][:, None]
    m = min(candidates, len(live) - 1)
    out = []
    for _ in range(per_anchor):
        cand = rng.integers(0, len(live) - 1, size=(len(live), m))
        cand += cand >= np.arange(len(live))[:, None]  # never the anchor itself
        sims = np.einsum("nk,nmk->nm", Pn, Pn[cand])
        jp = cand[np.arange(len(live)), sims.argmax(axis=1)]
        jn = cand[np.arange(len(live)), sims.argmin(axis=1)]
        ok = sims.max(axis=1) > sims.min(axis=1) + 1e-9
        out.append(np.stack([live[ok], live[jp[ok]], live[jn[ok]]], axis=1))
    return np.concatenate(out).astype(np.int64)


def pca_init(X: np.ndarray, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Initial projection: top principal directions of ``X`` ``(n, D)``, centred, scaled so
    that the projections have unit mean squared norm. Returns ``W0 (p, D)``, ``c0 (p,)``.

    When ``dim`` exceeds the rank available, random orthogonal directions fill the rest.
    """
    mu = X.mean(axis=0)
    Xc = X - mu
    _, svals, Vt = np.linalg.svd(Xc, full_matrices=False)
    k = min(dim, int((svals > 1e-10 * max(svals.max(), 1e-300)).sum()))
    W = Vt[:k]
    if k < dim:
        extra = rng.normal(size=(dim - k, X.shape[1]))
        extra -= (extra @ W.T) @ W
        q, _ = np.linalg.qr(extra.T)
        W = np.vstack([W, q.T[: dim - k]])
    msq = float(np.mean(np.sum((Xc @ W.T) ** 2, axis=1)))
    W = W / np.sqrt(max(msq, 1e-12))
    return W, -(W @ mu)


class _Chunked:
    """L-BFGS-B in chunks with early stopping on a validation loss."""

    def __init__(self, cfg: TrainConfig, desc: str, progress: bool):
        self.cfg = cfg
        self.desc = desc
        self.progress = progress

    def run(
        self,
        fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
        x0: np.ndarray,
        val: Callable[[np.ndarray], float],
        bounds: list[tuple[float | None, float | None]] | None = None,
        renorm: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, dict[str, list[float]]]:
        from tqdm.auto import tqdm

        x = x0.copy()
        best_x, best_val = x.copy(), val(x)
        hist: dict[str, list[float]] = {"train": [fun(x)[0]], "val": [best_val]}
        bad = 0
        bar = tqdm(
            total=self.cfg.max_chunks, desc=self.desc, unit="chunk", disable=not self.progress
        )
        for _ in range(self.cfg.max_chunks):
            res = minimize(
                fun,
                x,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": self.cfg.chunk_iters, "gtol": 1e-9, "ftol": 1e-12},
            )
            x = renorm(res.x) if renorm is not None else res.x
            v = val(x)
            hist["train"].append(float(res.fun))
            hist["val"].append(v)
            bar.update(1)
            bar.set_postfix(train=f"{res.fun:.4f}", val=f"{v:.4f}")
            if v < best_val - 1e-6:
                best_val, best_x, bad = v, x.copy(), 0
            else:
                bad += 1
            if bad >= self.cfg.patience or res.nit < self.cfg.chunk_iters:
                break
        bar.close()
        return best_x, hist


# ---- the two phases -------------------------------------------------------------------
def train_projection(
    X: np.ndarray,
    data: PreferenceData,
    split: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[str, list[float]]]:
    """Phase 1: ``W (p, D)``, ``c (p,)`` from the PCA start by the triplet loss."""
    D = X.shape[1]
    p = int(cfg.dim)
    W0, c0 = pca_init(X[split == 0], p, rng)
    if not cfg.phase1:
        return W0, c0, {}
    prof = data.profiles()
    train_q = np.flatnonzero(split == 0)
    val_q = np.flatnonzero(split == 1)
    prof = prof - prof[train_q].mean(axis=0)  # query-specific part of who wins
    trip = mine_triplets(prof, train_q, cfg.triplets_per_anchor, cfg.candidates, rng)
    trip_val = mine_triplets(prof, val_q, cfg.triplets_per_anchor, cfg.candidates, rng)
    if len(trip) == 0 or len(trip_val) == 0:
        return W0, c0, {}
    # each loss only needs the rows its triplets touch
    rows_tr, trip = np.unique(trip, return_inverse=True)
    rows_va, trip_val = np.unique(trip_val, return_inverse=True)
    trip, trip_val = trip.reshape(-1, 3), trip_val.reshape(-1, 3)
    X_tr, X_va = X[rows_tr], X[rows_va]

    def unpack(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return v[: p * D].reshape(p, D), v[p * D :]

    kw = dict(margin=cfg.margin, gamma=cfg.gamma)

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        W, c = unpack(v)
        loss, dW, dc = triplet_loss(W, c, X_tr, trip, reg=cfg.reg_projection, W0=W0, c0=c0, **kw)
        return loss, np.concatenate([dW.ravel(), dc])

    def val(v: np.ndarray) -> float:
        W, c = unpack(v)
        return triplet_loss(W, c, X_va, trip_val, **kw)[0]

    x, hist = _Chunked(cfg, "phase 1 (projection)", progress).run(
        fun, np.concatenate([W0.ravel(), c0]), val
    )
    W, c = unpack(x)
    return W, c, hist


def train_model_vectors(
    U: np.ndarray,
    data: PreferenceData,
    split: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, float, dict[str, list[float]]]:
    """Phase 2: ``theta (K, p)`` (unit rows), ``beta (K,)``, ``scale`` by Bradley-Terry BCE.

    ``U`` ``(n_q, p)`` are the frozen unit projections of every prompt.
    """
    K, p = data.n_models, U.shape[1]
    in_split = split[data.query]
    w_all = np.where(data.y == 0.5, cfg.tie_weight, 1.0)
    tr = (in_split == 0) & (w_all > 0)
    va = (in_split == 1) & (w_all > 0)
    if not tr.any():
        raise InvalidInputError("no training judgement left after the split; add data.")
    q, a, b, y, w = data.query[tr], data.a[tr], data.b[tr], data.y[tr], w_all[tr]
    if not va.any():  # tiny data: validate on the training rows (no real early stopping)
        va = tr
    qv, av, bv, yv, wv = data.query[va], data.a[va], data.b[va], data.y[va], w_all[va]

    # start: each model's vector points to the queries on which it wins more than usual
    prof = data.profiles()
    prof = prof - prof[split == 0].mean(axis=0)
    theta0 = prof[split == 0].T @ U[split == 0] + 1e-3 * rng.normal(size=(K, p))
    fixed = cfg.fixed_scale

    def unpack(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        s = float(fixed) if fixed is not None else float(np.exp(v[-1]))
        return v[: K * p].reshape(K, p), v[K * p : K * p + K], s

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        th, be, s = unpack(v)
        loss, dth, dbe, ds = bt_loss(th, be, s, U, q, a, b, y, weight=w, reg=cfg.reg_bt)
        parts = [dth.ravel(), dbe]
        if fixed is None:
            parts.append(np.array([ds * s]))
        return loss, np.concatenate(parts)

    def val(v: np.ndarray) -> float:
        th, be, s = unpack(v)
        return bt_loss(th, be, s, U, qv, av, bv, yv, weight=wv)[0]

    def renorm(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        th = v[: K * p].reshape(K, p)
        n = np.linalg.norm(th, axis=1, keepdims=True)
        v[: K * p] = (th / np.where(n > 0, n, 1.0)).ravel()
        return v

    # start at the global ranking (Bradley-Terry without the query), so that early stopping
    # only keeps query dependence that helps on the validation prompts
    from bandit_router.warm_start.baselines import GlobalBradleyTerry

    beta0 = GlobalBradleyTerry(reg=cfg.reg_bt).fit(data.subset(tr)).beta_
    x0 = [renorm(np.concatenate([theta0.ravel(), beta0]))]
    bounds: list[tuple[float | None, float | None]] = [(None, None)] * (K * p + K)
    if fixed is None:
        x0.append(np.array([np.log(cfg.init_scale)]))
        bounds.append((np.log(0.05), np.log(50.0)))
    x, hist = _Chunked(cfg, "phase 2 (model vectors)", progress).run(
        fun, np.concatenate(x0), val, bounds=bounds, renorm=renorm
    )
    th, be, s = unpack(x)
    return th, be, s, hist


def train_pilot(
    X: np.ndarray,
    data: PreferenceData,
    config: TrainConfig | None = None,
    progress: bool = False,
    split: np.ndarray | None = None,
) -> PilotFit:
    """Train both phases on the prompt embeddings ``X`` ``(n_q, D)`` (rows = ``data.prompts``).

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8))
    >>> recs = [(f"q{i}", "m0", "m1", float(X[i, 0] > 0)) for i in range(60)]
    >>> fit = train_pilot(X, PreferenceData.from_records(recs), TrainConfig(dim=4))
    >>> fit.model.theta.shape, np.bincount(fit.split).tolist()
    ((2, 4), [42, 6, 12])
    """
    cfg = config or TrainConfig()
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] != data.n_queries:
        raise InvalidInputError(
            f"{X.shape[0]} embeddings for {data.n_queries} prompts; embed data.prompts in order."
        )
    if X.ndim != 2 or cfg.dim > X.shape[1]:
        raise ConfigurationError(
            f"the prior's dimension ({cfg.dim}) cannot exceed the embedding's ({X.shape[1]}): "
            f"pass --dim {X.shape[1]} or less, or use a wider embedder."
        )
    rng = np.random.default_rng(cfg.seed)
    if split is None:
        split = split_queries(data.n_queries, cfg.val_frac, cfg.test_frac, cfg.seed)
    W, c, h1 = train_projection(X, data, split, cfg, rng, progress)
    U = PilotModel(W, c, np.eye(1, W.shape[0]), np.zeros(1), 1.0).project(X)
    theta, beta, scale, h2 = train_model_vectors(U, data, split, cfg, rng, progress)
    history = {f"phase1_{k}": v for k, v in h1.items()}
    history.update({f"phase2_{k}": v for k, v in h2.items()})
    return PilotFit(PilotModel(W, c, theta, beta, scale), split, history, cfg)
