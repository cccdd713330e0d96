"""Lin's (2007) alternating projected gradient with Armijo step search."""
# ruff: noqa: N803, N806, N815

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..losses import Loss
from ._base import is_quadratic, keep_active, projected_gradient, quadratic_coefficients


class PGState(NamedTuple):
    tol_W: jax.Array  # sub-problem tolerances (Lin 2007, §5), shrunk by 10 when met at once
    tol_H: jax.Array
    inner_W: jax.Array  # projected-gradient steps taken by the last sub-problems (diagnostic)
    inner_H: jax.Array


def _subproblem_oracle(problem, W, H, wrt):
    """``(change, grad)`` of the objective as a function of one factor, the other fixed.

    ``change(X, G, Xn)`` is ``f(Xn) - f(X)`` (``G = ∇f(X)``) and ``grad(X)`` is ``∇f(X)``,
    for ``X`` = ``W`` ``(m, k)`` or ``H`` ``(k, n)``. For a Frobenius-family loss without mask
    the sub-problem is a quadratic, and the change is computed in closed form from the Gram matrix,
    ``⟨∇f(X), d⟩ + ½ a⟨d, gram d⟩ + ½ l2‖d‖²`` with ``d = Xn - X``, as in Lin's code: O(k²p) per
    trial and no cancellation between two large objective values (which in float32 hid the
    decrease and stalled the step search). Any other loss evaluates the full objective twice.
    """
    V, mask, loss, _ = problem[:4]
    if mask is None and is_quadratic(loss):
        a, pen = quadratic_coefficients(loss)
        if wrt == "W":
            gram, cross = H @ H.T, V @ H.T  # f(W) = a(½⟨W gram, W⟩ - ⟨cross, W⟩) + ...
            apply = lambda X: X @ gram
        else:
            gram, cross = W.T @ W, W.T @ V
            apply = lambda X: gram @ X
        l1, l2 = pen["l1", wrt], pen["l2", wrt]

        def grad(X):
            return a * (apply(X) - cross) + l1 + l2 * X

        def change(X, G, Xn):  # G = grad(X), already at hand in the step search
            d = Xn - X
            return jnp.vdot(G, d) + 0.5 * (a * jnp.vdot(apply(d), d) + l2 * jnp.vdot(d, d))

        return change, grad

    if wrt == "W":
        value = lambda X: loss.value(V, X, H, mask)
        grad = lambda X: loss.grad(V, X, H, mask, "W")
    else:
        value = lambda X: loss.value(V, W, X, mask)
        grad = lambda X: loss.grad(V, W, X, mask, "H")
    return (lambda X, G, Xn: value(Xn) - value(X)), grad


@dataclasses.dataclass(frozen=True)
class PG:
    """Alternating projected gradient with Armijo step search (Lin 2007).

    Each outer iteration solves the sub-problem in W (H fixed), then in H, by projected
    gradient steps ``X <- max(X - α∇f, 0)`` until the projected-gradient norm falls below the
    sub-problem tolerance (at most ``max_inner`` steps). α is searched as in Lin's code: start
    from the last α; if the first trial satisfies the sufficient-decrease condition
    ``f(Xn) - f(X) ≤ σ⟨∇f, Xn - X⟩`` grow α by 1/``shrink`` while it holds, else shrink it by
    ``shrink`` until it holds; at most ``max_trials`` trials. Tolerances start at 0.001 × the
    initial gradient norm and shrink tenfold when a sub-problem is already solved on entry.
    Works with any differentiable loss and mask.

    References:
        Lin, C.-J. (2007). Projected gradient methods for nonnegative matrix factorization.
        Neural Computation 19(10). (Algorithm 4 and its MATLAB code ``nmf.m``.)
    """

    name: str = "pg"
    sigma: float = 0.01
    shrink: float = 0.1
    max_trials: int = 20
    max_inner: int = 1000
    initial_tol: float = 1e-3
    max_retries: int = 10

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask

    def init(self, problem, W, H):
        V, mask, loss, active = problem[:4]
        gW = loss.grad(V, W, H, mask, "W")
        gH = loss.grad(V, W, H, mask, "H")
        gW, gH = keep_active(gW, gH, active)
        initgrad = jnp.sqrt(jnp.vdot(gW, gW) + jnp.vdot(gH, gH))
        tol = self.initial_tol * initgrad
        zero = jnp.zeros((), jnp.int32)
        return PGState(tol, tol, zero, zero)

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

    def _solve(self, problem, W, H, wrt, tol):
        change, grad = _subproblem_oracle(problem, W, H, wrt)
        X = W if wrt == "W" else H
        active_mask = problem.active[None, :] if wrt == "W" else problem.active[:, None]
        dtype = X.dtype

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
            cond, body, (jnp.zeros((), jnp.int32), X, grad(X), jnp.ones((), dtype))
        )
        return X, it

    def _alternate(self, problem, W, H, extra):
        W_new, inner_W = self._solve(problem, W, H, "W", extra.tol_W)
        H_new, inner_H = self._solve(problem, W_new, H, "H", extra.tol_H)
        # Lin: a sub-problem solved on entry means its tolerance is too loose.
        tol_W = jnp.where(inner_W == 0, 0.1 * extra.tol_W, extra.tol_W)
        tol_H = jnp.where(inner_H == 0, 0.1 * extra.tol_H, extra.tol_H)
        return W_new, H_new, PGState(tol_W, tol_H, inner_W, inner_H)

    def step(self, problem, W, H, extra):
        # When both sub-problems are solved on entry nothing moves, and the shared stopping
        # rule would read the zero change as convergence. Lin's outer loop instead goes on
        # with the tightened tolerances: so do we, at once, up to `max_retries` times.
        def stalled(c):
            _, _, e, tries = c
            return (e.inner_W == 0) & (e.inner_H == 0) & (tries < self.max_retries)

        def retry(c):
            W_new, H_new, e, tries = c
            return (*self._alternate(problem, W_new, H_new, e), tries + 1)

        first = self._alternate(problem, W, H, extra)
        W, H, extra, _ = jax.lax.while_loop(stalled, retry, (*first, jnp.zeros((), jnp.int32)))
        return W, H, extra, None
