"""(Fast) HALS: exact coordinate descent on the columns of W and the rows of H."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .._sparse import SparseMatrix, sample
from ..losses import Loss
from ._base import is_quadratic, quadratic_coefficients, require_quadratic
from ._schedules import Alternating


def _hals_rows(X, numer, gram, a, l1, l2, active):
    """One HALS sweep over the rows of ``X`` ``(k, p)`` for the problem

    ``min_X a(½⟨gram X, X⟩ - ⟨numer, X⟩) + l1 Σ X + ½ l2 ‖X‖²``, ``X ≥ 0``,

    with ``gram`` ``(k, k)`` and ``numer`` ``(k, p)``. Row j is minimized exactly with the
    others fixed (a closed form, then clipped at 0). Each step is a length-k·p vector operation.
    """
    k = X.shape[0]

    def body(j, X):
        g_row = jax.lax.dynamic_index_in_dim(gram, j, keepdims=False)  # (k,)
        x = jax.lax.dynamic_index_in_dim(X, j, keepdims=False)  # (p,)
        n_row = jax.lax.dynamic_index_in_dim(numer, j, keepdims=False)
        grad = a * (g_row @ X - n_row) + l1 + l2 * x
        hess = a * g_row[j] + l2
        # hess == 0 means the other factor's component is zero: nothing to fit, keep x.
        new = jnp.where(hess > 0, jnp.maximum(x - grad / jnp.where(hess > 0, hess, 1), 0), x)
        new = jnp.where(active[j], new, 0)
        return jax.lax.dynamic_update_index_in_dim(X, new, j, 0)

    return jax.lax.fori_loop(0, k, body, X)


def _hals_rows_masked(R, M, X, Y, a, l1, l2, active):
    """HALS sweep over rows x_j of ``X`` ``(k, q)`` for ``V ≈ Yᵀ X`` with entry weights.

    ``R`` ``(p, q)`` is the residual ``V - Yᵀ X`` (kept up to date and returned), ``M``
    ``(p, q)`` the weights, ``Y`` ``(k, p)`` the other factor. Row j:
    ``x_j = max(0, (a yⱼᵀ(M∘Rⱼ) - l1) / (a (yⱼ²)ᵀ M + l2))`` with ``Rⱼ = R + yⱼ xⱼᵀ``.
    """
    k = X.shape[0]

    def body(j, carry):
        R, X = carry
        x = jax.lax.dynamic_index_in_dim(X, j, keepdims=False)  # (q,)
        y = jax.lax.dynamic_index_in_dim(Y, j, keepdims=False)  # (p,)
        Rj = R + jnp.outer(y, x)
        numer = a * (y @ (M * Rj)) - l1
        denom = a * ((y * y) @ M) + l2
        new = jnp.where(denom > 0, jnp.maximum(numer / jnp.where(denom > 0, denom, 1), 0), x)
        new = jnp.where(active[j], new, 0)
        return Rj - jnp.outer(y, new), jax.lax.dynamic_update_index_in_dim(X, new, j, 0)

    return jax.lax.fori_loop(0, k, body, (R, X))


def _hals_rows_sparse(r, w, X, Y, ix, iy, a, l1, l2, active):
    """:func:`_hals_rows_masked` with the residual kept at the stored entries only.

    ``r`` ``(nnz,)`` is the residual ``v - (WH)`` at the stored entries ``e`` and ``w`` their
    weights; ``X`` ``(k, q)`` is updated, ``Y`` ``(k, p)`` is the other factor; entry ``e``
    sits at column ``ix[e]`` of X and ``iy[e]`` of Y. Row j's numerator and denominator are
    segment sums over the entries of each column of X: O(nnz) per component, no ``(p, q)``
    array. Unstored entries are missing (``mask="stored"``) and count nowhere.
    """
    k, q = X.shape

    def body(j, carry):
        r, X = carry
        x = jax.lax.dynamic_index_in_dim(X, j, keepdims=False)  # (q,)
        y = jax.lax.dynamic_index_in_dim(Y, j, keepdims=False)[iy]  # (nnz,)
        rj = r + y * x[ix]
        wy = w * y
        numer = a * jax.ops.segment_sum(wy * rj, ix, q) - l1
        denom = a * jax.ops.segment_sum(wy * y, ix, q) + l2
        new = jnp.where(denom > 0, jnp.maximum(numer / jnp.where(denom > 0, denom, 1), 0), x)
        new = jnp.where(active[j], new, 0)
        return rj - y * new[ix], jax.lax.dynamic_update_index_in_dim(X, new, j, 0)

    return jax.lax.fori_loop(0, k, body, (r, X))


MASKED_MODES = ("exact", "impute")


def _check_masked(masked) -> str:
    if masked not in MASKED_MODES:
        raise ValueError(f"masked must be one of {MASKED_MODES}, got {masked!r}")
    return masked


@dataclasses.dataclass(frozen=True)
class HALSBlock:
    """One HALS sweep over the rows of a factor (its components), the other fixed: each row
    minimized exactly with the others fixed (Cichocki & Phan 2009). From statistics without
    a mask (:func:`_hals_rows`). With a mask, by ``masked``:

    * ``"exact"``: exact masked coordinate descent on the residual
      (:func:`_hals_rows_masked`), kept at the stored entries only for sparse V with
      ``mask="stored"`` (:func:`_hals_rows_sparse`). Each of the k row updates is a pass over
      the ``m × n`` residual and mask.
    * ``"impute"``: one unmasked sweep on the statistics of the imputation majorizer
      (hidden entries filled with ``WH``; :mod:`._operators`). In the alternating schedule
      both factors' sweeps take the iteration's first imputation (the EM iteration; see
      ``Alternating._imputes_once``): one ``m × n × k`` product ``WH`` an iteration (it
      serves the objective too) and one pass over the data per factor more than without a
      mask. Each sweep decreases the majorizer, which touches the masked objective at the
      iteration's start, so the masked objective never increases and the fixed points are
      those of the masked problem; the iterates differ from ``"exact"``'s. Dense V only:
      sparse V with ``mask="stored"`` runs ``"exact"``, which is O(nnz · k) there.
    """

    masked: str = "exact"

    stateless = True
    takes_stored_mask = True
    zero_padding_exact = True  # a zero row with zero data: max(0 - 0, 0) = 0
    # With a mask, the schedule's W @ H (formed once per half-iteration, shared with the
    # objective) serves the residual ("exact") or the imputed data ("impute").
    reuses_prediction = True

    def __post_init__(self):
        _check_masked(self.masked)

    @property
    def imputes_mask(self) -> bool:
        """Whether, with a mask, it updates from the imputation majorizer's statistics (see
        :meth:`jaxnmf.solvers._schedules.Alternating._imputes_once`)."""
        return self.masked == "impute"

    def check(self, loss, has_mask: bool) -> None:
        require_quadratic("hals_block", loss)

    def init(self, side, g0):
        return ()

    def update_from_statistics(self, X, stats, state, dims):
        a, l1, l2 = stats.a, stats.l1, stats.l2
        return _hals_rows(X, stats.cross, stats.gram, a, l1, l2, stats.active), state

    def update(self, side, X, state):
        problem = side.problem
        V, mask = problem.V, problem.mask
        sparse = isinstance(V, SparseMatrix)
        if mask is None or (self.masked == "impute" and not sparse):
            return self.update_from_statistics(X, side.statistics(), state, side.dims)
        a, pen = quadratic_coefficients(problem.loss)
        l1, l2 = pen["l1", side.factor], pen["l2", side.factor]
        W, H = side.factors(X)
        Y, active = side.other, side.active
        WH = side.WH
        if sparse:  # mask="stored": the residual at stored entries only
            r = V.values - (sample(W, H, V.rows, V.cols) if WH is None else WH)
            ix, iy = (V.rows, V.cols) if side.factor == "W" else (V.cols, V.rows)
            _, X = _hals_rows_sparse(r, mask.values, X, Y, ix, iy, a, l1, l2, active)
            return X, state
        R, M = V - (W @ H if WH is None else WH), mask
        if side.factor == "W":  # rows of X index columns of the (transposed) data
            R, M = R.T, M.T
        _, X = _hals_rows_masked(R, M, X, Y, a, l1, l2, active)
        return X, state


@dataclasses.dataclass(frozen=True)
class HALS(Alternating):
    """(Fast) hierarchical alternating least squares: exact coordinate descent on columns.

    For the Frobenius loss with l1/l2 penalties and an optional mask. Without a mask, the
    products ``VHᵀ``, ``HHᵀ`` (resp. ``WᵀV``, ``WᵀW``) are formed once per factor update and
    each column update is one fused vector operation (the method behind scikit-learn's
    ``solver="cd"``). With a mask, ``masked="exact"`` (the default) keeps the residual and
    updates it column by column, k passes over ``m × n`` per factor; ``masked="impute"`` runs
    the unmasked sweeps on the imputation majorizer's statistics, imputed once an iteration
    (:class:`HALSBlock`): one ``m × n × k`` product an iteration and one pass per factor more
    than without a mask, with the same fixed points and a non-increasing masked objective.
    Sparse ``V``: without a mask ``VHᵀ`` and ``WᵀV`` are sparse products; with
    ``mask="stored"`` the residual lives at the stored entries only
    (:func:`_hals_rows_sparse`), O(nnz · k).

    References:
        Cichocki, A. & Phan, A.-H. (2009). Fast local algorithms for large scale nonnegative
        matrix and tensor factorizations. IEICE Trans. Fundamentals E92-A(3).
        Gillis, N. & Glineur, F. (2012). Accelerated multiplicative updates and hierarchical
        ALS algorithms for nonnegative matrix factorization. Neural Computation 24(4).
    """

    name: str = "hals"
    masked: str = "exact"

    def __post_init__(self):
        _check_masked(self.masked)

    def check(self, loss: Loss, has_mask: bool) -> None:
        if not is_quadratic(loss):
            names = ", ".join(t.name for t in loss.terms)
            raise ValueError(
                f"solver 'hals' minimizes the Frobenius loss with l1/l2 penalties only; got "
                f"terms [{names}]. Use solver='mu' or 'pg' for other losses."
            )

    def block(self, factor: str) -> HALSBlock:
        return HALSBlock(self.masked)
