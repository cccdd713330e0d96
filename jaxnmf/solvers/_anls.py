"""ANLS: alternating *exact* non-negative least squares, by block principal pivoting
(Kim & Park 2011), with static shapes.

Each sub-problem ``min_{X ≥ 0} ½⟨G X, X⟩ - ⟨R, X⟩`` (G ``(k, k)``, X and R ``(k, p)``) splits
into p independent k-variable problems, one per column. Block principal pivoting keeps, per
column, a *passive set* F of free variables and solves the unconstrained system on F; it
exchanges the variables that violate the KKT conditions, all at once while the number of
violations decreases, and falls back to one at a time (Murty's rule) after three failures,
which guarantees termination.

Static shapes: the system on F is solved as the full k×k system ``Ĝ x = r̂`` with the rows and
columns outside F replaced by the identity (so x = 0 there); all p columns are solved together
by one batched ``jnp.linalg.solve``, and columns that have converged are frozen. The loop is a
``lax.while_loop`` bounded by ``max_pivots``.

References:
    Kim, J. & Park, H. (2011). Fast nonnegative matrix factorization: an active-set-like
    method and comparisons. SIAM J. Sci. Comput. 33(6), 3261–3281 (Algorithm 2).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..losses import Loss
from ._base import require_quadratic
from ._schedules import Alternating


def nnls_bpp(G, R, active, max_pivots: int):
    """Solve ``min_{x_j ≥ 0} ½ x_jᵀ G x_j - r_jᵀ x_j`` for every column j of R.

    Args:
      G: ``(k, k)`` symmetric positive semi-definite.
      R: ``(k, p)``.
      active: ``(k,)`` bool; inactive variables are fixed at 0.
      max_pivots: bound on pivoting rounds (an int or a traced scalar).

    Returns:
      ``(X, rounds)``: the solutions ``(k, p)`` and the number of rounds used.
    """
    k, p = R.shape
    dtype = R.dtype
    eye = jnp.eye(k, dtype=dtype)
    # A tiny ridge keeps systems on passive sets solvable when G is singular (e.g. a component
    # that is identically zero); it is far below the scale of G's diagonal.
    G = G + jnp.finfo(dtype).eps * jnp.max(jnp.abs(jnp.diag(G))) * eye
    scale = jnp.maximum(jnp.max(jnp.abs(R)), jnp.finfo(dtype).tiny)
    tol = 10 * k * jnp.finfo(dtype).eps * scale  # violations smaller than this are round-off
    act = active[:, None]

    def solve(F):
        mask = F.T[:, :, None] & F.T[:, None, :]  # (p, k, k)
        Ghat = jnp.where(mask, G[None], 0) + jnp.where(F.T[:, :, None], 0, eye[None])
        rhat = jnp.where(F, R, 0).T  # (p, k)
        x = jnp.linalg.solve(Ghat, rhat[..., None])[..., 0].T  # (k, p)
        x = jnp.where(F, x, 0)
        y = jnp.where(F, 0, G @ x - R)
        return x, y

    def violations(F, x, y):
        return act & ((F & (x < -tol)) | (~F & (y < -tol)))

    def cond(c):
        it, *_, done = c
        return (it < max_pivots) & ~jnp.all(done)

    def body(c):
        it, F, x, y, chances, best, done = c
        viol = violations(F, x, y)
        count = jnp.sum(viol, axis=0, dtype=jnp.int32)
        better = count < best
        use_all = better | (chances >= 1)
        # backup rule: exchange only the last violating index
        index = jnp.arange(k, dtype=jnp.int32)[:, None]
        last = jnp.max(jnp.where(viol, index, -1), axis=0)
        only_last = index == last[None, :]
        flip = jnp.where(use_all[None, :], viol, only_last & viol)
        chances = jnp.where(better, 3, jnp.where(chances >= 1, chances - 1, chances))
        best = jnp.where(better, count, best)
        F_new = F ^ flip
        x_new, y_new = solve(F_new)
        frozen = done[None, :]
        F = jnp.where(frozen, F, F_new)
        x = jnp.where(frozen, x, x_new)
        y = jnp.where(frozen, y, y_new)
        done = done | ~jnp.any(violations(F, x, y), axis=0)
        return it + 1, F, x, y, chances, best, done

    F0 = jnp.zeros((k, p), bool)
    x0 = jnp.zeros((k, p), dtype)
    y0 = jnp.where(act, -R, 0)
    done0 = ~jnp.any(violations(F0, x0, y0), axis=0)
    init = (
        jnp.zeros((), jnp.int32),
        F0,
        x0,
        y0,
        jnp.full((p,), 3, jnp.int32),
        jnp.full((p,), k + 1, jnp.int32),
        done0,
    )
    it, _, x, _, _, _, _ = jax.lax.while_loop(cond, body, init)
    return jnp.maximum(x, 0), it


@dataclasses.dataclass(frozen=True)
class ANLSBlock:
    """One factor solved exactly by block principal pivoting (:func:`nnls_bpp`), from its
    statistics, as ``a(½⟨G X, X⟩ - ⟨C, X⟩) + l1 ΣX + ½ l2‖X‖²``
    ``= ½⟨(aG + l2 I) X, X⟩ - ⟨aC - l1, X⟩``."""

    max_pivots: int | None = None

    stateless = True
    takes_stored_mask = False
    imputes_mask = True  # a mask reaches it through Side.statistics (Alternating._imputes_once)

    def check(self, loss, has_mask: bool) -> None:
        require_quadratic("anls_block", loss)

    def init(self, side, g0):
        return ()

    def update(self, side, X, state):
        return self.update_from_statistics(X, side.statistics(), state, side.dims)

    def update_from_statistics(self, X, stats, state, dims):
        k = X.shape[0]
        # 5r + 10 for the member's rank r, not its padded width k (see greedy CD)
        cap = self.max_pivots or 5 * jnp.sum(stats.active, dtype=jnp.int32) + 10
        eye = jnp.eye(k, dtype=X.dtype)
        gram = stats.a * stats.gram + stats.l2 * eye
        X, _ = nnls_bpp(gram, stats.a * stats.cross - stats.l1, stats.active, cap)
        return X, state


@dataclasses.dataclass(frozen=True)
class ANLS(Alternating):
    """Alternating non-negative least squares, each factor solved exactly by block principal
    pivoting (:class:`ANLSBlock`). Frobenius loss with l1/l2 penalties (a mask through the
    imputation majorizer).

    ``max_pivots`` (static) bounds the pivoting rounds per sub-problem; the default ``None``
    uses ``5 k + 10``, far above the handful that BPP typically needs.
    """

    name: str = "anls"
    max_pivots: int | None = None

    def check(self, loss: Loss, has_mask: bool) -> None:
        require_quadratic(self.name, loss)

    def block(self, factor: str) -> ANLSBlock:
        return ANLSBlock(self.max_pivots)
