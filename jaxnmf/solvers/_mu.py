"""Multiplicative updates (Lee & Seung 2001; Févotte & Idier 2011)."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ..losses import mu_exponent, positive_power
from ._schedules import Alternating


def mu_ratio(neg, pos, gamma: float):
    """The multiplicative factor ``(neg / pos) ** gamma`` of an MU step (γ static).

    ``pos == 0`` only where the gradient carries no information (e.g. a zero row of H): the
    entry is left unchanged there instead of dividing by zero.
    """
    r = jnp.where(pos > 0, neg / jnp.where(pos > 0, pos, 1), 1)
    return positive_power(r, gamma)


@dataclasses.dataclass(frozen=True)
class MUBlock:
    """One multiplicative update of a factor (rows ``X`` ``(k, p)``), the other fixed:
    ``X <- X · (neg / pos) ** γ`` with ``pos``, ``neg`` the non-negative parts of the loss
    gradient and γ Févotte & Idier's exponent for the loss's β, a majorization–minimization
    step for any β-divergence with l1/l2 penalties and any mask. From statistics (Frobenius
    family): ``pos = a·G X + l1 + l2 X``, ``neg = a·C``. See :mod:`._schedules`."""

    stateless = True
    takes_stored_mask = True
    reuses_prediction = True  # general losses: the schedule's W @ H serves the gradient
    keeps_zeros = True  # a multiplicative update cannot move a zero entry
    zero_padding_exact = True  # zero rows stay zero (keeps_zeros), and add nothing to the Grams

    def init(self, side, g0):
        return ()

    def update(self, side, X, state):
        pos, neg = side.split_grad(X)
        return side.keep_active(X * mu_ratio(neg, pos, mu_exponent(side.problem.loss))), state

    def update_from_statistics(self, X, stats, state, dims):
        a = stats.a
        pos = a * (stats.gram @ X) + stats.l1 + stats.l2 * X
        X = X * mu_ratio(a * stats.cross, pos, 1.0)
        return jnp.where(stats.active[:, None], X, 0), state


@dataclasses.dataclass(frozen=True)
class MU(Alternating):
    """Multiplicative updates: ``X <- X · (neg / pos) ** γ``, W then H (:class:`MUBlock`).

    ``pos``, ``neg`` are the non-negative parts of the loss gradient (see
    :mod:`jaxnmf.losses`), and γ the exponent of Févotte & Idier (2011) for the β of the loss,
    which makes each step a majorization–minimization step: the objective never increases for
    any β-divergence with l1/l2 penalties and any mask. Zeros stay zero (initialize with
    ``"nndsvda"`` rather than ``"nndsvd"``).

    References:
        Lee & Seung (2001), Algorithms for non-negative matrix factorization, NIPS.
        Févotte & Idier (2011), Neural Computation 23(9), Table 2.
    """

    name: str = "mu"

    def block(self, factor: str) -> MUBlock:
        return MUBlock()
