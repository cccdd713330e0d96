"""Accelerated solvers for the Frobenius family: A-MU, A-HALS (Gillis & Glineur 2012) and
Nesterov-accelerated projected gradient (NeNMF, Guan et al. 2012).

All three exploit the same fact: for ``a·½‖V - WH‖² + l1/l2 penalties``, the statistics
``VHᵀ`` and ``HHᵀ`` (resp. ``WᵀV``, ``WᵀW``) cost O(mnk), while one update of W from them
costs only O(mk²). So it pays to update the same factor several times before moving to the
other. They work from the statistics alone; with a mask, from those of the imputation
majorizer (:mod:`jaxnmf.solvers._operators`), which keeps every step a descent step of the
masked objective.

References:
    Gillis, N. & Glineur, F. (2012). Accelerated multiplicative updates and hierarchical ALS
    algorithms for nonnegative matrix factorization. Neural Computation 24(4), 1085–1105.
    Guan, N., Tao, D., Luo, Z. & Yuan, B. (2012). NeNMF: an optimal gradient method for
    nonnegative matrix factorization. IEEE Trans. Signal Processing 60(6), 2882–2898.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..losses import Loss
from ._base import projected_gradient, require_quadratic
from ._hals import HALSBlock
from ._mu import MUBlock
from ._schedules import Alternating, Repeated


@dataclasses.dataclass(frozen=True)
class _Accelerated(Alternating):
    """A-MU and A-HALS: the plain block, :class:`~._schedules.Repeated` while it pays."""

    alpha: float = 0.5
    delta: float = 0.1

    def check(self, loss: Loss, has_mask: bool) -> None:
        require_quadratic(self.name, loss)

    def block(self, factor: str) -> Repeated:
        return Repeated(self._plain(), self.alpha, self.delta)


@dataclasses.dataclass(frozen=True)
class AcceleratedHALS(_Accelerated):
    """A-HALS: HALS sweeps over one factor repeated while they pay (Gillis & Glineur 2012).

    ``alpha`` scales the cap on inner sweeps, ``⌊1 + α ρ⌋``; ``delta`` stops them once a sweep
    moves the factor less than ``delta`` times the first one did. Defaults α = 0.5, δ = 0.1
    are those of Gillis's reference code. With α = 0 it is plain HALS.
    """

    name: str = "accelerated_hals"

    def _plain(self):
        return HALSBlock()


@dataclasses.dataclass(frozen=True)
class AcceleratedMU(_Accelerated):
    """A-MU: multiplicative updates of one factor repeated while they pay (Gillis & Glineur
    2012); each inner update is a Lee–Seung step of the same sub-problem, so the objective
    never increases. Same ``alpha``/``delta`` rule as :class:`AcceleratedHALS`."""

    name: str = "accelerated_mu"

    def _plain(self):
        return MUBlock()


class NesterovState(NamedTuple):
    tol: jax.Array  # the sub-problem tolerance on the projected-gradient norm
    inner: jax.Array  # iterations of the last sub-problem (diagnostic)


@dataclasses.dataclass(frozen=True)
class NesterovBlock:
    """One factor's sub-problem solved by Nesterov's optimal gradient method (Guan et al.
    2012), from its statistics; see :class:`Nesterov`."""

    min_inner: int = 10
    max_inner: int = 1000
    initial_tol: float = 1e-3

    stateless = False
    takes_stored_mask = False
    imputes_mask = True  # a mask reaches it through Side.statistics (Alternating._imputes_once)

    def check(self, loss, has_mask: bool) -> None:
        require_quadratic("nesterov_block", loss)

    def init(self, side, g0):
        return NesterovState(self.initial_tol * g0(), jnp.zeros((), jnp.int32))

    def update(self, side, X, state):
        return self.update_from_statistics(X, side.statistics(), state, side.dims)

    def update_from_statistics(self, X, stats, state, dims):
        L = stats.a * jnp.linalg.eigvalsh(stats.gram)[-1] + stats.l2
        L = jnp.maximum(L, jnp.finfo(X.dtype).tiny)
        keep = stats.active[:, None]
        tol = state.tol

        def cond(c):
            it, _, Y, _, G = c
            pgn = jnp.linalg.norm(jnp.where(keep, projected_gradient(Y, G), 0))
            return (it < self.max_inner) & ((it < self.min_inner) | (pgn > tol))

        def body(c):
            it, X, Y, alpha, G = c
            Xn = jnp.where(keep, jnp.maximum(Y - G / L, 0), 0)
            alpha_next = 0.5 * (1 + jnp.sqrt(1 + 4 * alpha * alpha))
            Y = Xn + ((alpha - 1) / alpha_next) * (Xn - X)
            return it + 1, Xn, Y, alpha_next, stats.gradient(Y)

        one = jnp.ones((), X.dtype)
        it, X, _, _, _ = jax.lax.while_loop(
            cond, body, (jnp.zeros((), jnp.int32), X, X, one, stats.gradient(X))
        )
        # NeNMF's rule: a sub-problem met within min_inner iterations had too loose a tolerance.
        return X, NesterovState(jnp.where(it <= self.min_inner, 0.1 * tol, tol), it)


@dataclasses.dataclass(frozen=True)
class Nesterov(Alternating):
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
        require_quadratic(self.name, loss)

    def block(self, factor: str) -> NesterovBlock:
        return NesterovBlock(self.min_inner, self.max_inner, self.initial_tol)
