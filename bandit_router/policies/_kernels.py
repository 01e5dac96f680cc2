"""Optional compiled kernels of one decision (numba), for ``pip install bandit-router[fast]``.

Without numba (or with ``BANDIT_ROUTER_KERNELS=0`` in the environment) ``KERNELS`` is None
and every caller takes its numpy path; nothing here is needed for the quick start. The
kernels are compiled on first use and cached on disk next to this file (numba's
``cache=True``; where that folder is read-only numba compiles in memory each process).

- ``score``: the scoring product over the stacked ``[A_inv_k; theta_k]`` buffer (the same
  BLAS gemv as numpy's) fused with ``x' A_inv_k x``, the widths and the LinUCB values. Its
  ``x' A_inv_k x`` sums in another order than the numpy path's second gemv (``fastmath``:
  vectorised), so widths differ in the last bits: decisions are the same except for two
  arms within ~1e-15 of each other, and the state stays within 1e-12 of the numpy path's
  (``tests/test_kernels.py`` runs both in lockstep).
- ``update``: the Sherman-Morrison update of the chosen arm's block (what ``dger`` does,
  with the arm's counters), from the products ``score`` left in the state's buffers.
- ``priced_choice``: ``exploration_discount`` + ``discounted_values`` + the surplus
  ``Selection.exploit`` in one loop, element by element as numpy does them (no
  ``fastmath``): the same floats and the same choice as the numpy path.
- ``featurize``: ``Featurizer.transform_one`` (projection, scaling, normalisation, bias)
  in one call, with numpy's BLAS for the product and the norm: the same context.
"""

from __future__ import annotations

import math
import os

import numpy as np


def score(M, x, Y, var, out, alpha, offset):
    """Fill ``Y = M @ x`` ``(K (d + 1),)`` (one BLAS gemv, as numpy's), ``var`` ``(K,)``
    and ``out`` ``(3, K)`` (means + offset, widths, widths * alpha + means). Returns the
    first index of the largest value (numpy's ``argmax``), -1 if ``x`` is not finite (then
    every product is not), -2 if a value is not finite (the caller's numpy decides)."""
    K = var.shape[0]
    d = x.shape[0]
    d1 = d + 1
    Y[:] = np.dot(M, x)
    if not (math.isfinite(Y[K * d1 - 1]) and math.isfinite(Y[d])):
        return -1
    best = -1
    top = -math.inf
    finite = True
    for k in range(K):
        base = k * d1
        q = 0.0
        for i in range(d):
            q += Y[base + i] * x[i]
        var[k] = q
        m = Y[base + d] + offset
        w = math.sqrt(q) if q > 0.0 else 0.0
        v = w * alpha + m
        out[0, k] = m
        out[1, k] = w
        out[2, k] = v
        if not math.isfinite(q):
            return -1  # x' A_inv x overflows: as a non-finite context
        if not math.isfinite(v):
            finite = False
        elif v > top:
            top = v
            best = k
    return best if finite else -2


def update(block, v, var, k, reward, t, last, counts, since):
    """``RidgeArms.update_scored`` after ``score``: ``v`` is arm ``k``'s
    ``[A_inv_k x; theta_k' x]`` (becomes ``[u; -residual]``), ``block`` its
    ``[A_inv_k; theta_k]``; the counters of the arm are advanced. Returns the
    residual and the updates since the arm's last refactorisation."""
    d = block.shape[1]
    residual = reward - v[d]
    v[d] = -residual
    a = -1.0 / (1.0 + var[k])
    for j in range(d + 1):
        c = a * v[j]
        for i in range(d):
            block[j, i] += c * v[i]
    last[k] = t
    counts[k] += 1
    since[k] += 1
    return residual, since[k]


def priced_choice(value, mean, price, cand, fallback, lo, span, out):
    """The cost-aware LinUCB choice under a surplus ``Selection``: fills ``out``
    with the discounted values and returns the chosen index, -1 for none, or -2
    when a value is not finite (the caller then takes the numpy path)."""
    K = value.shape[0]
    best = -1
    bs = -np.inf
    for k in range(K):
        p = price[k]
        f = (p - lo) / span
        f = 1.0 - f
        if f < 0.0:
            f = 0.0
        if f > 1.0:
            f = 1.0
        v = value[k]
        m = mean[k]
        dev = v - m
        o = m + (f * dev if dev > 0.0 else dev)
        floor = v if v < p else p
        if o < floor:
            o = floor
        if not (math.isfinite(o) and math.isfinite(p)):
            return -2
        out[k] = o
        if cand[k]:
            s = o - p
            if s > bs:
                bs = s
                best = k
    if best >= 0 and bs >= 0.0:
        return best
    return fallback


def featurize(e, W, c, out, project, bias):
    """``Featurizer.transform_one``'s steps into ``out`` ``(d,)``: ``y = W e + c`` (when
    ``project``; BLAS gemv as numpy's) or ``y = e``, then ``y / max|y|``, then ``y / |y|``
    (the norm by BLAS ddot as numpy's ``y @ y``), then the bias 1. False (``out``
    unspecified) when ``y`` is not finite: the caller's batch path raises."""
    base = out.shape[0] - 1 if bias else out.shape[0]
    if project:
        out[:base] = np.dot(W, e)
        for i in range(base):
            out[i] += c[i]
    else:
        for i in range(base):
            out[i] = e[i]
    hi = -math.inf
    lo = math.inf
    for i in range(base):
        v = out[i]
        if v != v:
            return False
        if v > hi:
            hi = v
        if v < lo:
            lo = v
    peak = hi if hi >= -lo else -lo
    if not math.isfinite(peak):
        return False
    if peak > 0.0:
        for i in range(base):
            out[i] /= peak
        norm = math.sqrt(np.dot(out[:base], out[:base]))
        if norm > 0.0:
            for i in range(base):
                out[i] /= norm
    if bias:
        out[base] = 1.0
    return True


class _Namespace:
    """The kernels as attributes (``score``, ``update``, ``priced_choice``, ``featurize``)."""

    def __init__(self, score, update, priced_choice, featurize) -> None:
        self.score = score
        self.update = update
        self.priced_choice = priced_choice
        self.featurize = featurize


#: the kernels as plain Python (the tests run them against the numpy path without numba)
PY = _Namespace(score, update, priced_choice, featurize)

#: the compiled kernels, or None (numba is not installed, or BANDIT_ROUTER_KERNELS=0)
KERNELS: _Namespace | None = None

if os.environ.get("BANDIT_ROUTER_KERNELS", "1").lower() not in ("0", "", "false", "no"):
    try:
        import numba
    except ImportError:
        numba = None
    if numba is not None:
        # reassociation (vectorised sums) but no "no NaN / no infinity" assumption: the
        # finiteness check of ``score`` must stay
        _fast = numba.njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, nogil=True)
        _exact = numba.njit(cache=True, nogil=True)  # element by element, as numpy does
        KERNELS = _Namespace(_fast(score), _exact(update), _exact(priced_choice), _exact(featurize))
