"""The data operator one factor's update runs on: :class:`Side`, and :class:`Statistics`.

Every block (:mod:`jaxnmf.solvers._schedules`) updates one factor with the other fixed, in one
orientation: the factor as ``k`` rows, ``X`` ``(k, p)``, against the other factor ``Y``
``(k, q)``. For H, ``X = H`` ``(k, n)`` and ``Y = Wᵀ`` ``(k, m)``, and the data is V; for W,
``X = Wᵀ`` ``(k, m)``, ``Y = H`` ``(k, n)``, and the data is Vᵀ. A block never sees which: it
asks its :class:`Side` for what it needs,

* Frobenius-family blocks (MU, HALS, ANLS, NeNMF, greedy CD, ...) the sufficient statistics
  of the sub-problem ``min_X a(½⟨G X, X⟩ - ⟨C, X⟩) + l1 ΣX + ½ l2 ‖X‖²``: the cross product
  ``C = Y D`` ``(k, p)`` (``WᵀV`` or ``H Vᵀ``) and the Gram matrix ``G = Y Yᵀ`` ``(k, k)``,
  with the loss's weights — PLANC's separation of "form WᵀV and WᵀW" (where sparsity,
  masks, batching and distribution live) from the local update (Eswar et al. 2021, ACM TOMS
  47(3));
* general-loss blocks (MU for any β, projected gradient, optax) the split gradient, the
  gradient and the objective as functions of ``X``.

The data kinds — dense, :class:`~jaxnmf._sparse.SparseMatrix` (stored entries only, never
densified), entry weights (a mask), row-sharded arrays (by their sharding: the products
below are ordinary jax operations) — are handled here and in :mod:`jaxnmf.losses`, so one
block runs on all of them.

Masks reach Frobenius blocks through the *imputation majorizer*: with weights ``M ∈ [0, 1]``
and the current product ``WH``, ``Σ M (V - X)² ≤ Σ (V̂ - X)² + const`` with
``V̂ = M V + (1 - M) WH``, equal at the current iterate; so a block that decreases the
unmasked objective of ``V̂`` decreases the masked one, and its fixed points are those of the
masked objective (the EM step for missing entries; Zhang, Wang, Ravindran & Plemmons 2006;
Kim & Choi 2009). Weights above 1 are divided by their largest value first (the loss weight
takes the factor). HALS keeps its exact masked coordinate descent instead (its residual
form, :func:`jaxnmf.solvers._hals._hals_rows_masked`).
"""
# ruff: noqa: N802, N803, N806

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._sparse import SparseMatrix, sample
from ._base import Problem, is_quadratic, quadratic_coefficients


class Statistics(NamedTuple):
    """Sufficient statistics of one factor's Frobenius-family sub-problem, rows form:

    ``min_{X ≥ 0} a(½⟨gram X, X⟩ - ⟨cross, X⟩) + l1 ΣX + ½ l2 ‖X‖²``, ``X`` ``(k, p)``.

    ``cross`` ``(k, p)``, ``gram`` ``(k, k)``; ``a``, ``l1``, ``l2`` scalars (Python floats
    when a term is absent, so that XLA drops it); ``active`` ``(k,)``, False for padded
    components, which every block keeps at zero.
    """

    cross: jax.Array
    gram: jax.Array
    a: Any
    l1: Any
    l2: Any
    active: jax.Array

    def gradient(self, X):
        """``∇f(X) = a(gram X - cross) + l1 + l2 X``, ``(k, p)``."""
        return self.a * (self.gram @ X - self.cross) + self.l1 + self.l2 * X

    def objective(self, sq_norm, X):
        """``a·max(½‖D‖² - ⟨cross, X⟩ + ½⟨gram X, X⟩, 0) + l1 ΣX + ½ l2‖X‖²``: the
        sub-problem's objective with the data term's constant ``½‖D‖²`` (``sq_norm = ‖D‖²``)
        included, so that it is the full data term at ``X``. O(k²p)."""
        fit = 0.5 * sq_norm - jnp.vdot(self.cross, X) + 0.5 * jnp.vdot(self.gram @ X, X)
        weighted = lambda w, term: 0.0 if isinstance(w, float) and w == 0.0 else w * term()
        return (
            self.a * jnp.maximum(fit, 0)
            + weighted(self.l1, lambda: jnp.sum(X))
            + weighted(self.l2, lambda: 0.5 * jnp.vdot(X, X))
        )


class Imputation(NamedTuple):
    """The imputation majorizer's data (module docstring): ``V`` ``(m, n)`` is
    ``M̂ V + (1 - M̂) WH`` with the weights ``M̂ = M / scale`` in [0, 1], ``scale = max M``
    (the loss weight takes it)."""

    V: jax.Array
    scale: jax.Array


def impute(problem: Problem, WH) -> Imputation:
    """The :class:`Imputation` of dense ``problem.V`` (with a mask) at the product ``WH``."""
    M = problem.mask
    scale = jnp.max(M)
    M = M / jnp.where(scale > 0, scale, 1)
    return Imputation(M * problem.V + (1 - M) * WH, scale)


def _wh(V, W, H):
    """``W @ H`` ``(m, n)``, or its values at the stored entries of a sparse ``V``."""
    return sample(W, H, V.rows, V.cols) if isinstance(V, SparseMatrix) else W @ H


class Side(NamedTuple):
    """One factor's sub-problem: the :class:`~jaxnmf.solvers.Problem` at ``(W, H)`` with
    ``factor`` (``"W"`` or ``"H"``, static) the one to update. See the module docstring.

    ``WH`` is an optional product ``W @ H`` at the current factors (``(m, n)``, or at the
    stored entries for sparse V) that a schedule already holds: general-loss gradients reuse
    it instead of forming it again. ``filled`` is an optional :class:`Imputation` that the
    schedule formed once for both factors' statistics (``Alternating._imputes_once``).
    """

    problem: Problem
    W: jax.Array
    H: jax.Array
    factor: str
    WH: Any = None
    filled: Any = None

    # ---- orientation ----------------------------------------------------------------------

    @property
    def X(self):
        """The factor being updated, as rows: ``Wᵀ`` ``(k, m)`` or ``H`` ``(k, n)``."""
        return self.W.T if self.factor == "W" else self.H

    @property
    def other(self):
        """The fixed factor, as rows: ``H`` ``(k, n)`` or ``Wᵀ`` ``(k, m)``."""
        return self.H if self.factor == "W" else self.W.T

    @property
    def active(self):
        return self.problem.active

    @property
    def dims(self) -> tuple[int, int]:
        """``(p, q)``: the columns of the updated factor's rows and of the other's (static)."""
        m, n = self.problem.V.shape
        return (m, n) if self.factor == "W" else (n, m)

    def factors(self, X):
        """``(W, H)`` with the updated factor's rows ``X`` in place."""
        return (X.T, self.H) if self.factor == "W" else (self.W, X)

    def to_rows(self, G):
        """A ``(m, k)`` or ``(k, n)`` array of this factor, as rows."""
        return G.T if self.factor == "W" else G

    # ---- what Frobenius blocks ask for ----------------------------------------------------

    @property
    def quadratic(self) -> bool:
        """Whether the loss is Frobenius-family (l1/l2 penalties allowed); static."""
        return is_quadratic(self.problem.loss)

    @property
    def unmasked_quadratic(self) -> bool:
        """Whether the sub-problem is the statistics' quadratic exactly (no mask); static."""
        return self.problem.mask is None and self.quadratic

    def statistics(self) -> Statistics:
        """The sub-problem's :class:`Statistics` (Frobenius-family loss). With a mask, those
        of the imputation majorizer at the current factors (module docstring); sparse V
        with ``mask="stored"`` has no majorizer that keeps it sparse and is refused."""
        problem = self.problem
        a, pen = quadratic_coefficients(problem.loss)
        l1, l2 = pen["l1", self.factor], pen["l2", self.factor]
        Y = self.other
        D = problem.V
        if problem.mask is not None:
            if isinstance(D, SparseMatrix):
                raise ValueError(
                    "a Frobenius block's statistics with mask='stored' on sparse V would "
                    "densify V; this solver takes sparse V without a mask only"
                )
            filled = self.filled
            if filled is None:
                filled = impute(problem, self.W @ self.H if self.WH is None else self.WH)
            D, a = filled.V, a * filled.scale
        cross = Y @ D.T if self.factor == "W" else Y @ D
        return Statistics(cross, Y @ Y.T, a, l1, l2, self.active)

    # ---- what general-loss blocks ask for -------------------------------------------------

    def split_grad(self, X):
        """``(pos, neg)`` of the loss gradient in this factor at ``X``, as rows."""
        problem = self.problem
        W, H = self.factors(X)
        pos, neg = problem.loss.split_grad(problem.V, W, H, problem.mask, self.factor, WH=self.WH)
        return self.to_rows(pos), self.to_rows(neg)

    def grad(self, X):
        """``∇f`` in this factor at ``X``, as rows."""
        problem = self.problem
        W, H = self.factors(X)
        return self.to_rows(problem.loss.grad(problem.V, W, H, problem.mask, self.factor))

    def value(self, X):
        """The objective at this factor ``X`` (rows) and the other fixed."""
        problem = self.problem
        W, H = self.factors(X)
        return problem.loss.value(problem.V, W, H, problem.mask)

    def keep_active(self, X):
        """``X`` with the rows of inactive (padded) components set to zero."""
        return jnp.where(self.active[:, None], X, 0)


def initial_gradient_norm(problem: Problem, W, H):
    """``sqrt(‖∇_W f‖² + ‖∇_H f‖²)`` over active components at ``(W, H)``: the scale that
    Lin's (2007) and NeNMF's sub-problem tolerances start from."""
    V, mask, loss, active = problem.V, problem.mask, problem.loss, problem.active
    gW = jnp.where(active[None, :], loss.grad(V, W, H, mask, "W"), 0)
    gH = jnp.where(active[:, None], loss.grad(V, W, H, mask, "H"), 0)
    return jnp.sqrt(jnp.vdot(gW, gW) + jnp.vdot(gH, gH))


def prediction(problem: Problem, W, H):
    """``W @ H``, or its values at the stored entries of a sparse V."""
    return _wh(problem.V, W, H)
