"""Lin's (2007) alternating projected gradient with Armijo step search."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._base import projected_gradient
from ._schedules import Alternating


class PGState(NamedTuple):
    tol: jax.Array  # the sub-problem tolerance (Lin 2007, §5), shrunk by 10 when met at once
    inner: jax.Array  # projected-gradient steps taken by the last sub-problem (diagnostic)


def _subproblem_oracle(side):
    """``(change, grad)`` of the objective as a function of ``side``'s factor (rows ``X``).

    ``change(X, G, Xn)`` is ``f(Xn) - f(X)`` (``G = ∇f(X)``) and ``grad(X)`` is ``∇f(X)``.
    For a Frobenius-family loss without mask the sub-problem is a quadratic, and the change
    is computed in closed form from its statistics, ``⟨∇f(X), d⟩ + ½ a⟨d, G d⟩ + ½ l2‖d‖²``
    with ``d = Xn - X``, as in Lin's code: O(k²p) per trial and no cancellation between two
    large objective values (which in float32 hid the decrease and stalled the step search).
    Any other loss evaluates the full objective twice.
    """
    if side.unmasked_quadratic:
        stats = side.statistics()

        def change(X, G, Xn):  # G = grad(X), already at hand in the step search
            d = Xn - X
            return jnp.vdot(G, d) + 0.5 * (
                stats.a * jnp.vdot(stats.gram @ d, d) + stats.l2 * jnp.vdot(d, d)
            )

        return change, stats.gradient
    return (lambda X, G, Xn: side.value(Xn) - side.value(X)), side.grad


@dataclasses.dataclass(frozen=True)
class PGOptions:
    """The options of Lin's method, shared by :class:`PGBlock` and :class:`PG` (see there)."""

    sigma: float = 0.01
    shrink: float = 0.1
    max_trials: int = 20
    max_inner: int = 1000
    initial_tol: float = 1e-3
    max_retries: int = 10


@dataclasses.dataclass(frozen=True)
class PGBlock(PGOptions):
    """Lin's (2007) projected-gradient solve of one factor's sub-problem to its tolerance;
    see :class:`PG` for the options."""

    stateless = False
    takes_stored_mask = True
    # Armijo's accept/reject compares rounded objective changes: in float32, padding to a
    # wider rank flipped a decision and moved a digits fit by 1e-2 (max |ΔW|)
    exact_width = True

    def init(self, side, g0):
        return PGState(self.initial_tol * g0(), jnp.zeros((), jnp.int32))

    def stalled(self, state):
        """Lin: a sub-problem solved on entry means its tolerance is too loose."""
        return state.inner == 0

    def _armijo(self, change, X, G, alpha, active_mask):
        """One projected step with Lin's α search. Returns ``(X_new, alpha)``."""
        dtype = X.dtype
        sigma = jnp.asarray(self.sigma, dtype)
        shrink = jnp.asarray(self.shrink, dtype)

        def trial(alpha):
            Xn = jnp.where(active_mask, jnp.maximum(X - alpha * G, 0), 0)
            return Xn, change(X, G, Xn) <= sigma * jnp.vdot(G, Xn - X)

        X1, ok1 = trial(alpha)
        decrease = ~ok1  # first trial failed: shrink α until it holds

        def cond(c):
            i, _, _, done = c
            return (i < self.max_trials) & ~done

        def body(c):
            i, alpha, X_acc, _ = c
            alpha = jnp.where(decrease, alpha * shrink, alpha / shrink)
            Xn, ok = trial(alpha)
            same = jnp.all(Xn == X_acc)
            accept = jnp.where(decrease, ok, ok & ~same)
            done = jnp.where(decrease, ok, ~ok | same)
            return i + 1, alpha, jnp.where(accept, Xn, X_acc), done

        init = (jnp.asarray(1, jnp.int32), alpha, jnp.where(decrease, X, X1), jnp.asarray(False))
        _, alpha, X_new, _ = jax.lax.while_loop(cond, body, init)
        return X_new, alpha

    def update(self, side, X, state):
        change, grad = _subproblem_oracle(side)
        active_mask = side.active[:, None]
        tol = state.tol

        def pg_norm(X, G):
            return jnp.linalg.norm(jnp.where(active_mask, projected_gradient(X, G), 0))

        def cond(c):
            it, X, G, _alpha = c
            return (it < self.max_inner) & (pg_norm(X, G) >= tol)

        def body(c):
            it, X, G, alpha = c
            X, alpha = self._armijo(change, X, G, alpha, active_mask)
            return it + 1, X, grad(X), alpha

        it, X, _, _ = jax.lax.while_loop(
            cond, body, (jnp.zeros((), jnp.int32), X, grad(X), jnp.ones((), X.dtype))
        )
        return X, PGState(jnp.where(it == 0, 0.1 * tol, tol), it)


@dataclasses.dataclass(frozen=True)
class PG(Alternating, PGOptions):
    """Alternating projected gradient with Armijo step search (Lin 2007).

    Each outer iteration solves the sub-problem in W (H fixed), then in H, by projected
    gradient steps ``X <- max(X - α∇f, 0)`` until the projected-gradient norm falls below the
    sub-problem tolerance (at most ``max_inner`` steps). α is searched as in Lin's code: start
    from the last α; if the first trial satisfies the sufficient-decrease condition
    ``f(Xn) - f(X) ≤ σ⟨∇f, Xn - X⟩`` grow α by 1/``shrink`` while it holds, else shrink it by
    ``shrink`` until it holds; at most ``max_trials`` trials. Tolerances start at 0.001 × the
    initial gradient norm and shrink tenfold when a sub-problem is already solved on entry;
    when both are, the iteration is repeated at once (up to ``max_retries`` times), since
    nothing moved and the shared stopping rule would read that as convergence, while Lin's
    outer loop goes on with the tightened tolerances. Works with any differentiable loss and
    mask.

    References:
        Lin, C.-J. (2007). Projected gradient methods for nonnegative matrix factorization.
        Neural Computation 19(10). (Algorithm 4 and its MATLAB code ``nmf.m``.)
    """

    name: str = "pg"

    def block(self, factor: str) -> PGBlock:
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(PGOptions)}
        return PGBlock(**options)
