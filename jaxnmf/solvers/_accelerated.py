"""Accelerated solvers for the Frobenius family: A-MU, A-HALS (Gillis & Glineur 2012) and
Nesterov-accelerated projected gradient (NeNMF, Guan et al. 2012).

All three exploit the same fact: for ``a·½‖V - WH‖² + l1/l2 penalties`` without mask, the
products ``VHᵀ`` and ``HHᵀ`` (resp. ``WᵀV``, ``WᵀW``) cost O(mnk), while one update of W
from them costs only O(mk²). So it pays to update the same factor several times before
moving to the other.

References:
    Gillis, N. & Glineur, F. (2012). Accelerated multiplicative updates and hierarchical ALS
    algorithms for nonnegative matrix factorization. Neural Computation 24(4), 1085–1105.
    Guan, N., Tao, D., Luo, Z. & Yuan, B. (2012). NeNMF: an optimal gradient method for
    nonnegative matrix factorization. IEEE Trans. Signal Processing 60(6), 2882–2898.
"""
# ruff: noqa: N803, N806, N815

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..losses import Loss
from ._base import gram_objective, is_quadratic, projected_gradient, quadratic_coefficients
from ._hals import _hals_rows


def _require_quadratic(name: str, loss: Loss, has_mask: bool) -> None:
    if has_mask or not is_quadratic(loss):
        raise ValueError(
            f"solver '{name}' works from Gram products: it needs the Frobenius loss (with "
            "l1/l2 penalties) and no mask. Use 'hals' or 'mu' for masks, 'mu' or 'pg' for other "
            "losses."
        )


def _inner_cap(alpha: float, m: int, n: int, k: int, rows_updated: int) -> int:
    """Gillis & Glineur's cap ``⌊1 + α ρ⌋`` on inner updates of one factor, with
    ``ρ = (mn + p k) / (q (k + 1))``: the cost of forming the products relative to one inner
    update (q = rows of the updated factor, p = of the other). Static: shapes only."""
    q = rows_updated
    p = m + n - q
    return max(1, int(1 + alpha * (m * n + p * k) / (q * (k + 1))))


def _repeat(update, X, cap: int, delta: float):
    """Apply ``update`` up to ``cap`` times while it still moves X: stop once
    ``‖X_{l+1} - X_l‖ ≤ δ ‖X_1 - X_0‖`` (Gillis & Glineur's inner stopping rule)."""
    X1 = update(X)
    first = jnp.linalg.norm(X1 - X)

    def cond(c):
        i, _, last = c
        return (i < cap) & (last > delta * first)

    def body(c):
        i, X, _ = c
        Xn = update(X)
        return i + 1, Xn, jnp.linalg.norm(Xn - X)

    _, X, _ = jax.lax.while_loop(cond, body, (jnp.asarray(1, jnp.int32), X1, first))
    return X


def _mu_rows(X, numer, gram, a, l1, l2, active):
    """MU for ``min_X a(½⟨gram X, X⟩ - ⟨numer, X⟩) + l1 Σ X + ½ l2 ‖X‖²`` with X ``(k, p)``."""
    pos = a * (gram @ X) + l1 + l2 * X
    neg = a * numer
    ratio = jnp.where(pos > 0, neg / jnp.where(pos > 0, pos, 1), 1)
    return jnp.where(active[:, None], X * ratio, 0)


@dataclasses.dataclass(frozen=True)
class _Accelerated:
    """Shared step of A-MU and A-HALS: repeated inner updates of Wᵀ, then of H."""

    alpha: float = 0.5
    delta: float = 0.1

    def _rows(self, X, numer, gram, a, l1, l2, active):  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, loss: Loss, has_mask: bool) -> None:
        _require_quadratic(self.name, loss, has_mask)

    def init(self, problem, W, H):
        return ()

    def step(self, problem, W, H, extra):
        V, _, loss, active = problem[:4]
        a, pen = quadratic_coefficients(loss)
        (m, k), n = W.shape, V.shape[1]
        HVt, HHt = H @ V.T, H @ H.T
        update_W = lambda Wt: self._rows(Wt, HVt, HHt, a, pen["l1", "W"], pen["l2", "W"], active)
        W = _repeat(update_W, W.T, _inner_cap(self.alpha, m, n, k, m), self.delta).T
        WtW, WtV = W.T @ W, W.T @ V
        update_H = lambda H: self._rows(H, WtV, WtW, a, pen["l1", "H"], pen["l2", "H"], active)
        H = _repeat(update_H, H, _inner_cap(self.alpha, m, n, k, n), self.delta)
        return W, H, extra, gram_objective(problem, W, H, WtW, WtV)


@dataclasses.dataclass(frozen=True)
class AcceleratedHALS(_Accelerated):
    """A-HALS: HALS sweeps over one factor repeated while they pay (Gillis & Glineur 2012).

    ``alpha`` scales the cap on inner sweeps, ``⌊1 + α ρ⌋``; ``delta`` stops them once a sweep
    moves the factor less than ``delta`` times the first one did. Defaults α = 0.5, δ = 0.1
    are those of Gillis's reference code. With α = 0 it is plain HALS.
    """

    name: str = "accelerated_hals"

    def _rows(self, X, numer, gram, a, l1, l2, active):
        return _hals_rows(X, numer, gram, a, l1, l2, active)


@dataclasses.dataclass(frozen=True)
class AcceleratedMU(_Accelerated):
    """A-MU: multiplicative updates of one factor repeated while they pay (Gillis & Glineur
    2012); each inner update is a Lee–Seung step of the same sub-problem, so the objective
    never increases. Same ``alpha``/``delta`` rule as :class:`AcceleratedHALS`."""

    name: str = "accelerated_mu"

    def _rows(self, X, numer, gram, a, l1, l2, active):
        return _mu_rows(X, numer, gram, a, l1, l2, active)


class NesterovState(NamedTuple):
    tol_W: jax.Array  # sub-problem tolerances on the projected-gradient norm
    tol_H: jax.Array
    inner_W: jax.Array  # iterations of the last sub-problems (diagnostic)
    inner_H: jax.Array


@dataclasses.dataclass(frozen=True)
class Nesterov:
    """NeNMF: each sub-problem solved by Nesterov's optimal gradient method (Guan et al. 2012).

    For the H sub-problem, ``L = a λ_max(WᵀW) + l2`` is its Lipschitz constant; from
    ``Y₀ = H``: ``H_{t+1} = max(Y_t - ∇f(Y_t)/L, 0)``, ``α_{t+1} = (1 + √(1 + 4α_t²))/2``,
    ``Y_{t+1} = H_{t+1} + (α_t - 1)/α_{t+1} (H_{t+1} - H_t)``; stop after at least
    ``min_inner`` iterations once ``‖∇ᴾf(Y)‖ ≤ tol`` (at most ``max_inner``). Tolerances start
    at ``initial_tol`` × the initial gradient norm and shrink tenfold when a sub-problem
    needs no more than ``min_inner`` iterations, as in NeNMF's code.
    """

    name: str = "nesterov"
    min_inner: int = 10
    max_inner: int = 1000
    initial_tol: float = 1e-3

    def check(self, loss: Loss, has_mask: bool) -> None:
        _require_quadratic(self.name, loss, has_mask)

    def init(self, problem, W, H):
        V, mask, loss, active = problem[:4]
        gW = jnp.where(active[None, :], loss.grad(V, W, H, mask, "W"), 0)
        gH = jnp.where(active[:, None], loss.grad(V, W, H, mask, "H"), 0)
        tol = self.initial_tol * jnp.sqrt(jnp.vdot(gW, gW) + jnp.vdot(gH, gH))
        zero = jnp.zeros((), jnp.int32)
        return NesterovState(tol, tol, zero, zero)

    def _solve(self, X, numer, gram, a, l1, l2, active, tol):
        """Rows-form sub-problem ``min_X a(½⟨gram X, X⟩ - ⟨numer, X⟩) + l1ΣX + ½l2‖X‖²``."""
        L = a * jnp.linalg.eigvalsh(gram)[-1] + l2
        L = jnp.maximum(L, jnp.finfo(X.dtype).tiny)
        grad = lambda Y: a * (gram @ Y - numer) + l1 + l2 * Y
        keep = active[:, None]

        def cond(c):
            it, _, Y, _, G = c
            pgn = jnp.linalg.norm(jnp.where(keep, projected_gradient(Y, G), 0))
            return (it < self.max_inner) & ((it < self.min_inner) | (pgn > tol))

        def body(c):
            it, X, Y, alpha, G = c
            Xn = jnp.where(keep, jnp.maximum(Y - G / L, 0), 0)
            alpha_next = 0.5 * (1 + jnp.sqrt(1 + 4 * alpha * alpha))
            Y = Xn + ((alpha - 1) / alpha_next) * (Xn - X)
            return it + 1, Xn, Y, alpha_next, grad(Y)

        one = jnp.ones((), X.dtype)
        it, X, _, _, _ = jax.lax.while_loop(
            cond, body, (jnp.zeros((), jnp.int32), X, X, one, grad(X))
        )
        return X, it

    def step(self, problem, W, H, extra):
        V, _, loss, active = problem[:4]
        a, pen = quadratic_coefficients(loss)
        Wt, inner_W = self._solve(
            W.T, H @ V.T, H @ H.T, a, pen["l1", "W"], pen["l2", "W"], active, extra.tol_W
        )
        W = Wt.T
        WtW, WtV = W.T @ W, W.T @ V
        H, inner_H = self._solve(
            H, WtV, WtW, a, pen["l1", "H"], pen["l2", "H"], active, extra.tol_H
        )
        shrink = lambda tol, it: jnp.where(it <= self.min_inner, 0.1 * tol, tol)
        state = NesterovState(
            shrink(extra.tol_W, inner_W), shrink(extra.tol_H, inner_H), inner_W, inner_H
        )
        return W, H, state, gram_objective(problem, W, H, WtW, WtV)
