"""Greedy coordinate descent (GCD; Hsieh & Dhillon 2011), written as one block.

This file is the whole solver: a block (:class:`GreedyCDBlock`) with a statistics form and no
state, and the alternating solver that uses it for both factors. Nothing else in the library
names it; the driver, both sweep executors, ``compare``, the estimator's ``transform`` and
``devices=`` reach it through the block interface (:mod:`jaxnmf.solvers._schedules`).

For the sub-problem ``min_{X ≥ 0} a(½⟨G X, X⟩ - ⟨C, X⟩) + l1 ΣX + ½ l2‖X‖²`` (rows form,
``X`` ``(k, p)``), the coordinates of different columns are independent. In each column the
step that minimizes the objective along coordinate i is ``s_i = max(x_i - g_i / h_i, 0) - x_i``
(``g = ∇f``, ``h_i = a G_ii + l2``) and it decreases the objective by
``D_i = -(g_i s_i + ½ h_i s_i²)``. GCD updates, in every column at once, the coordinate with
the largest ``D_i``, then the column's gradient (``g += s (a G[:, i] + l2 e_i)``, O(k)), and
stops a column once its best decrease falls below ``tol`` times its first one, or after
``max_inner`` updates. Coordinates that matter are updated often and the others rarely,
where HALS sweeps every coordinate once per iteration.

References:
    Hsieh, C.-J. & Dhillon, I. S. (2011). Fast coordinate descent methods with variable
    selection for non-negative matrix factorization. KDD '11, 1064–1072 (Algorithm 1,
    inner stopping rule ε = 0.001).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..losses import Loss
from ._base import require_quadratic
from ._schedules import Alternating


def greedy_cd_rows(X, stats, tol: float, max_inner):
    """Greedy coordinate descent on every column of ``X`` ``(k, p)`` for the sub-problem of
    ``stats`` (a :class:`~jaxnmf.solvers._operators.Statistics`); returns the new ``X``.
    ``max_inner`` (an int or a traced scalar) caps the updates per column."""
    k = X.shape[0]
    a, G, l2 = stats.a, stats.gram, stats.l2
    h = a * jnp.diagonal(G) + l2  # (k,) the coordinates' curvatures
    movable = ((h > 0) & stats.active)[:, None]  # h = 0: the other factor's row is zero
    h_safe = jnp.where(h > 0, h, 1)[:, None]
    rows = jnp.arange(k)[:, None]

    def proposal(X, grad):
        target = jnp.where(movable, jnp.maximum(X - grad / h_safe, 0), X)
        s = target - X
        return target, -(grad * s + 0.5 * h[:, None] * s * s)

    grad = stats.gradient(X)
    target, D = proposal(X, grad)
    first = jnp.max(D, axis=0)  # (p,) each column's first best decrease

    def improving(D):
        return jnp.max(D, axis=0) > tol * first

    def cond(c):
        it, _, _, _, D = c
        return (it < max_inner) & jnp.any(improving(D))

    def body(c):
        it, X, grad, target, D = c
        best = jnp.argmax(D, axis=0)  # (p,)
        pick = (rows == best[None, :]) & improving(D)[None, :]  # (k, p), one per column
        X_new = jnp.where(pick, target, X)
        step = jnp.sum(X_new - X, axis=0)  # (p,) the moved coordinate's change
        grad = grad + (a * G[:, best] + l2 * pick.astype(X.dtype)) * step[None, :]
        target, D = proposal(X_new, grad)
        return it + 1, X_new, grad, target, D

    init = (jnp.zeros((), jnp.int32), X, grad, target, D)
    _, X, _, _, _ = jax.lax.while_loop(cond, body, init)
    return jnp.where(stats.active[:, None], X, 0)


@dataclasses.dataclass(frozen=True)
class GreedyCDBlock:
    """One factor's greedy coordinate descent (:func:`greedy_cd_rows`), from statistics."""

    tol: float = 1e-3
    max_inner: int | None = None

    stateless = True
    takes_stored_mask = False
    imputes_mask = True  # a mask reaches it through Side.statistics (Alternating._imputes_once)

    def check(self, loss, has_mask: bool) -> None:
        require_quadratic("greedy_cd_block", loss)

    def init(self, side, g0):
        return ()

    def update(self, side, X, state):
        return self.update_from_statistics(X, side.statistics(), state, side.dims)

    def update_from_statistics(self, X, stats, state, dims):
        # 2k for the member's own rank k, not the padded width: a rank sweep pads members to
        # a common width, and the result of a member must not depend on the others.
        cap = self.max_inner or 2 * jnp.sum(stats.active, dtype=jnp.int32)
        return greedy_cd_rows(X, stats, self.tol, cap), state


@dataclasses.dataclass(frozen=True)
class GreedyCD(Alternating):
    """Greedy coordinate descent (Hsieh & Dhillon 2011): W, then H, each by
    :class:`GreedyCDBlock`. Frobenius loss with l1/l2 penalties (a mask through the
    imputation majorizer). ``tol`` is the inner stopping rule ε (a column stops once its
    best decrease is below ε times its first); ``max_inner`` caps coordinate updates per
    column and sub-problem (default ``2k``: about the work of one HALS sweep, twice)."""

    name: str = "greedy_cd"
    tol: float = 1e-3
    max_inner: int | None = None

    def check(self, loss: Loss, has_mask: bool) -> None:
        require_quadratic(self.name, loss)

    def block(self, factor: str) -> GreedyCDBlock:
        return GreedyCDBlock(self.tol, self.max_inner)
