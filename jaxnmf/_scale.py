"""Fit every representable data scale like scale 1: V is fitted as V / M, M = max V.

Why: the solvers' floors and the objective's arithmetic are tuned to data of order 1. Data in
other units broke them silently: float32 KL/IS floor ``WH`` near 3e-10, so data at 1e-10
"converged" unfitted after one iteration; ``‖V‖²`` of float32 data at 1e-20 underflows to 0
(objective 0, "converged") and at 1e20 overflows (``nonfinite`` at the first iteration).

The β-divergences are homogeneous, ``d_β(c x | c y) = c^β d_β(x | y)``, so fitting
``V' = V / M`` with factors ``W' = W / √M``, ``H' = H / √M`` (``W'H' = WH / M``) is the same
problem, its objective multiplied by ``M^-β``, once the penalty weights are rescaled to keep
their share of it: ``Σ H = √M Σ H'`` and ``½‖H‖² = M · ½‖H'‖²``, so an L1 weight becomes
``α M^(½-β)`` and an L2 weight ``α M^(1-β)``. The iterates are those of scale 1 up to
rounding (the relative-change stopping rule is unchanged by the constant factor), and every
reported quantity is mapped back on the host in float64:

===================  ==========================
quantity             in the user's units
===================  ==========================
W, H                 ``√M · W'``, ``√M · H'``
objective, losses    ``M^β · f'``
KKT residual         ``M^(β-½) · r'`` (∇_W f = M^(β-½) ∇_W' f')
held-out RMSE        ``M · rmse'``
===================  ==========================

Losses whose data terms are not all β-divergences of one β (a custom term, or a mix of β)
are not homogeneous: they are fitted as given (``M = 1``). Penalties are not scale-free
either: with a fixed weight, ``cV`` is another problem than ``V``; the rescaled weights above
make the internal problem *equal* to the user's, which is all that is claimed.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import numpy as np

from ._sparse import SparseMatrix
from .losses import BetaDivergence, Loss, Penalty


@dataclasses.dataclass(frozen=True)
class Scaling:
    """``V`` is fitted as ``V / M``; the methods map the fit back to ``V``'s units.

    Attributes:
      M: the divisor (the largest observed entry of V; 1 when no scaling applies).
      beta: degree of homogeneity of the data terms (their common β).
    """

    M: float = 1.0
    beta: float = 2.0

    @property
    def identity(self) -> bool:
        return self.M == 1.0

    # --- user units -> internal ------------------------------------------------------------
    def data(self, V):
        """``V / M`` in V's dtype (dense array or SparseMatrix): exact power-of-two part first,
        so that neither an overflowing ``1/M`` nor a float64 copy of V is needed."""
        if self.identity:
            return V
        if isinstance(V, SparseMatrix):
            return V.with_values(self.data(V.values))
        frac, exp = np.frexp(self.M)  # M = frac · 2**exp, frac in [0.5, 1)
        return (np.ldexp(V, -int(exp)) / V.dtype.type(frac)).astype(V.dtype, copy=False)

    def factors_in(self, W, H):
        """User-given initial factors ``(W0, H0)`` in internal units (``/ √M``)."""
        if self.identity:
            return W, H
        r = 1.0 / np.sqrt(self.M)
        return _times(W, r), _times(H, r)

    def loss(self, loss: Loss) -> Loss:
        """The loss of the internal problem: penalty weights rescaled (see the module doc)."""
        if self.identity:
            return loss
        weights = []
        for term, w in zip(loss.terms, loss.weights, strict=True):
            if isinstance(term, Penalty):
                power = 0.5 - self.beta if term.kind == "l1" else 1.0 - self.beta
                dtype = np.asarray(w).dtype
                w = _clip_to(np.asarray(w, np.float64) * self._power(power), dtype)
            weights.append(w)
        return Loss(loss.terms, tuple(weights))

    # --- internal -> user units ------------------------------------------------------------
    def factors_out(self, W, H):
        """``(√M W', √M H')`` in the factors' dtype."""
        if self.identity:
            return W, H
        r = np.sqrt(self.M)
        return _times(W, r), _times(H, r)

    def run_state(self, state):
        """A final :class:`~jaxnmf._driver.RunState` on the host (one member, or stacked
        members) in V's units: factors and histories keep their dtype, the objectives and
        KKT residuals become float64 (they may exceed the compute dtype's range)."""
        dtype = np.asarray(state.history).dtype
        W, H = self.factors_out(state.W, state.H)
        return state._replace(
            W=W,
            H=H,
            history=in_dtype(self.objective(state.history), dtype),
            kkt_history=in_dtype(self.kkt(state.kkt_history), dtype),
            loss=self.objective(state.loss),
            loss0=self.objective(state.loss0),
            kkt=self.kkt(state.kkt),
            kkt0=self.kkt(state.kkt0),
        )

    def objective(self, f):
        """``M^β f'`` (float64; ``inf`` where the user-unit objective exceeds float64)."""
        return self._times64(f, self._power(self.beta))

    def kkt(self, r):
        """``M^(β-½) r'``: the KKT residual in V's units."""
        return self._times64(r, self._power(self.beta - 0.5))

    def rmse(self, x):
        return self._times64(x, self._power(1.0))

    def _power(self, p: float) -> np.float64:
        """``M^p`` in float64: ``inf`` or 0 beyond its range, rather than an OverflowError."""
        with np.errstate(over="ignore", under="ignore"):
            return np.power(np.float64(self.M), p)

    @staticmethod
    def _times64(x, c):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(x, np.float64) * c


def _times(X, c: float):
    """``c · X`` in X's dtype (computed in float64 so that the product rounds once)."""
    X = np.asarray(X)
    with np.errstate(over="ignore"):
        return (X.astype(np.float64) * c).astype(X.dtype)


def _clip_to(x, dtype):
    """``x`` in ``dtype``, finite: a weight beyond the dtype's range is clipped to its max."""
    finfo = np.finfo(dtype)
    return np.asarray(np.minimum(x, finfo.max), dtype)


def in_dtype(x, dtype):
    """A user-unit array (from :meth:`Scaling.objective` and friends) in the compute dtype;
    values beyond its range read ±inf there (the float fields of results keep them)."""
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(dtype)


def data_scale(V, mask, loss: Loss) -> Scaling:
    """The :class:`Scaling` of a fit of ``V`` (as :func:`jaxnmf.api.prepare` returns it:
    masked entries zeroed, or a SparseMatrix) with ``loss``."""
    data_terms = [t for t, _ in loss.data_terms]
    if not data_terms or not all(isinstance(t, BetaDivergence) for t in data_terms):
        return Scaling()
    betas = {t.beta for t in data_terms}
    if len(betas) != 1:
        return Scaling()
    values = V.values if isinstance(V, SparseMatrix) else V
    if values.size == 0:
        return Scaling()
    M = float(np.max(values))
    if not np.isfinite(M) or M <= 0:
        return Scaling()
    return Scaling(M=M, beta=betas.pop())
