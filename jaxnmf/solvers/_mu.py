"""Multiplicative updates (Lee & Seung 2001; Févotte & Idier 2011)."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from .._sparse import SparseMatrix, sample
from ..losses import Loss, mu_exponent, positive_power
from ._base import gram_objective, quadratic_coefficients, uses_gram_form


def _carries_wh(problem) -> bool:
    """Whether MU keeps ``WH`` from one iteration to the next: when the loss has β-divergence
    terms to reuse it and is not evaluated from Gram products. ``WH`` is ``(m, n)`` for
    dense V and its values at the stored entries ``(nnz,)`` for sparse V."""
    return not uses_gram_form(problem) and bool(problem.loss.beta_values)


def _wh(V, W, H):
    """``W @ H``, or its values at the stored entries of a sparse ``V``."""
    return sample(W, H, V.rows, V.cols) if isinstance(V, SparseMatrix) else W @ H


def mu_ratio(neg, pos, gamma: float):
    """The multiplicative factor ``(neg / pos) ** gamma`` of an MU step (γ static).

    ``pos == 0`` only where the gradient carries no information (e.g. a zero row of H): the
    entry is left unchanged there instead of dividing by zero.
    """
    r = jnp.where(pos > 0, neg / jnp.where(pos > 0, pos, 1), 1)
    return positive_power(r, gamma)


@dataclasses.dataclass(frozen=True)
class MU:
    """Multiplicative updates: ``X <- X · (neg / pos) ** γ``, W then H.

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

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask  # any loss with a split gradient

    def init(self, problem, W, H):
        return _wh(problem.V, W, H) if _carries_wh(problem) else ()

    def step(self, problem, W, H, extra):
        V, mask, loss, active = problem[:4]
        gamma = mu_exponent(loss)
        ratio = lambda neg, pos: mu_ratio(neg, pos, gamma)

        if uses_gram_form(problem):
            # Frobenius family without mask: the same update from Gram products, and the
            # objective from them too (no m×n temporaries at all).
            a, pen = quadratic_coefficients(loss)
            HHt, VHt = H @ H.T, V @ H.T
            W = W * ratio(a * VHt, a * (W @ HHt) + pen["l1", "W"] + pen["l2", "W"] * W)
            W = jnp.where(active[None, :], W, 0)
            WtW, WtV = W.T @ W, W.T @ V
            H = H * ratio(a * WtV, a * (WtW @ H) + pen["l1", "H"] + pen["l2", "H"] * H)
            H = jnp.where(active[:, None], H, 0)
            return W, H, extra, gram_objective(problem, W, H, WtW, WtV)

        if not _carries_wh(problem):
            pos, neg = loss.split_grad(V, W, H, mask, "W")
            W = jnp.where(active[None, :], W * ratio(neg, pos), 0)
            pos, neg = loss.split_grad(V, W, H, mask, "H")
            H = jnp.where(active[:, None], H * ratio(neg, pos), 0)
            return W, H, extra, None
        # β ≠ 2 (or masked): WH at the end of an iteration serves both its objective and the
        # next W update, so each iteration forms WH twice instead of three times (for sparse V,
        # the W update then gathers only H and takes no dot products at the stored entries).
        pos, neg = loss.split_grad(V, W, H, mask, "W", WH=extra)
        W = jnp.where(active[None, :], W * ratio(neg, pos), 0)
        # Sparse V: the H update's WH stays fused into its pass over the stored entries.
        WH_mid = None if isinstance(V, SparseMatrix) else W @ H
        pos, neg = loss.split_grad(V, W, H, mask, "H", WH=WH_mid)
        H = jnp.where(active[:, None], H * ratio(neg, pos), 0)
        WH = _wh(V, W, H)
        return W, H, WH, loss.value(V, W, H, mask, WH=WH)
