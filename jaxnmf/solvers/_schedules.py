"""Schedules: how one-factor *blocks* make a solver.

A **block** updates one factor with the other fixed, in rows form (``X`` ``(k, p)``, see
:mod:`jaxnmf.solvers._operators`). It is a frozen dataclass with

* ``init(side, g0) -> state``: its state (a pytree, ``()`` when none); ``g0()`` returns the
  initial projected-gradient scale of the run (for tolerances that start from it);
* ``update(side, X, state) -> (X, state)``: one update on the :class:`Side`'s data operator;
* optionally ``update_from_statistics(X, stats, state, dims) -> (X, state)``: the same
  update from the :class:`Statistics` of a Frobenius-family sub-problem alone (``dims`` is
  ``(p, q)``). Schedules call it with statistics they form once and share — the alternating
  schedule for the objective, the one-side schedule across iterations, the batched sweep
  executor (:mod:`jaxnmf._fused`) for all members in one GEMM;
* optionally ``stalled(state) -> bool`` and a ``max_retries`` field: a block whose
  sub-problem was already solved on entry (Lin 2007's tolerance rule) asks to be run again
  at once, since the driver would read "nothing moved" as convergence;
* ``stateless`` (class attribute): ``init`` returns ``()`` whatever the data, so that the
  batched executor may start it without a data operator;
* ``takes_stored_mask``: whether it runs on sparse V with ``mask="stored"`` (blocks that
  work from statistics alone would have to densify it);
* ``exact_width`` (optional class attribute): the block takes discrete decisions on rounded
  values (a line search's accept/reject), so anything that changes the rounding of its
  products (vmapping members, which XLA batches into other GEMMs) can change its iterates;
  sweeps then run its members one at a time, unbatched, as a fit runs;
* ``imputes_mask`` (optional): with a mask, the block updates from the imputation
  majorizer's statistics (:meth:`Side.statistics`), so that the alternating schedule may
  impute once an iteration for both factors (:meth:`Alternating._imputes_once`);
* ``zero_padding_exact`` (optional class attribute): zero rows (or columns) of the data with
  zero rows of the factors stay zero and change nothing for the rest, and nothing in the
  block is sized by the shapes, so a minibatch may be zero-padded to a bucketed shape.

Schedules here: :class:`Alternating` (W then H: every built-in alternating solver is one,
with its block), :class:`Repeated` (Gillis & Glineur's "repeat the inner update while it
pays", a block made of a block) and :class:`OneSide` (one factor only, the other fixed: the
estimator's ``transform`` and refits with fixed components). Each is run by the one driver
(:mod:`jaxnmf._driver`), so stopping rule, statuses and diagnostics are shared.
"""
# ruff: noqa: N803, N806, N815

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._sparse import SparseMatrix
from ..losses import Loss
from ._base import (
    Problem,
    gram_objective,
    gram_objective_allowed,
    is_quadratic,
    quadratic_coefficients,
    require_quadratic,
)
from ._operators import Side, impute, initial_gradient_norm, prediction


def run_block(block, side: Side, state):
    """``(X, state, stats)``: one update of ``side``'s factor by ``block``; from the
    sub-problem's statistics when the loss is Frobenius-family without mask and the block
    has a statistics form (``stats`` then returned for reuse), else on the data operator
    (``stats`` None)."""
    if side.unmasked_quadratic and hasattr(block, "update_from_statistics"):
        stats = side.statistics()
        X, state = block.update_from_statistics(side.X, stats, state, side.dims)
        return X, state, stats
    X, state = block.update(side, side.X, state)
    return X, state, None


def _retrying(blocks, half_step, first, *, max_retries: int):
    """Repeat ``half_step`` while every block's sub-problem was solved on entry (at most
    ``max_retries`` times): their tolerances have shrunk, so each repeat does work.

    ``half_step(*out) -> out`` where ``out[-1]`` is the tuple of the blocks' states;
    ``first`` is its first output."""
    if max_retries == 0 or not all(hasattr(b, "stalled") for b in blocks):
        return first

    def stalled(c):
        *out, tries = c
        each = [b.stalled(s) for b, s in zip(blocks, out[-1], strict=True)]
        return jnp.all(jnp.stack(each)) & (tries < max_retries)

    def retry(c):
        *out, tries = c
        return (*half_step(*out), tries + 1)

    return tuple(jax.lax.while_loop(stalled, retry, (*first, jnp.zeros((), jnp.int32)))[:-1])


class AlternatingState(NamedTuple):
    W: Any  # the W block's state
    H: Any  # the H block's state
    WH: Any  # W @ H at the current factors when the blocks reuse it, else ()


@dataclasses.dataclass(frozen=True)
class Alternating:
    """W, then H, each by the solver's block (:meth:`block`). Solvers subclass it and say
    which block updates each factor; fields of the subclass are the solver's static options.

    The objective after an iteration comes from the H update's statistics where that is
    exact (:func:`~jaxnmf.solvers._base.gram_objective`); for blocks that reuse ``WH``
    (multiplicative updates on β-divergences), ``WH`` at the end of an iteration serves both
    its objective and the next W update.
    """

    def block(self, factor: str):  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask

    @property
    def takes_stored_mask(self) -> bool:
        return all(getattr(self.block(f), "takes_stored_mask", False) for f in "WH")

    @property
    def keeps_zeros(self) -> bool:
        """Whether a zero entry of a factor stays zero (multiplicative updates)."""
        return all(getattr(self.block(f), "keeps_zeros", False) for f in "WH")

    @property
    def zero_padding_exact(self) -> bool:
        """Whether zero rows or columns of the data with zero factor rows change nothing for
        the others (both blocks say ``zero_padding_exact``; see
        :func:`jaxnmf._online.padding_is_exact`)."""
        return all(getattr(self.block(f), "zero_padding_exact", False) for f in "WH")

    @property
    def exact_width(self) -> bool:
        """Whether a block's iterates are sensitive to the rounding of batched products (see
        the module docstring): :func:`jaxnmf.sweep` then runs its members unbatched."""
        return any(getattr(self.block(f), "exact_width", False) for f in "WH")

    @property
    def batchable(self) -> bool:
        """Whether :mod:`jaxnmf._fused` can run it: both blocks stateless and with a
        statistics form, no retries."""
        return all(
            hasattr(b, "update_from_statistics") and getattr(b, "stateless", False)
            for b in (self.block("W"), self.block("H"))
        )

    def _reuses_prediction(self, problem: Problem) -> bool:
        """Whether the W block takes the loss's gradient, or its imputed data, from ``W @ H``
        (β-divergence terms, not run from statistics), so that the iteration's last product
        can serve it."""
        from_statistics = problem.mask is None and is_quadratic(problem.loss)
        block = self.block("W")
        takes_product = getattr(block, "reuses_prediction", False) or getattr(
            block, "imputes_mask", False
        )
        return takes_product and not from_statistics and bool(problem.loss.beta_values)

    def _imputes_once(self, problem: Problem) -> bool:
        """Whether a masked iteration imputes the hidden entries once, at its start, for both
        updates: the EM iteration for missing entries (Zhang, Wang, Ravindran & Plemmons
        2006: fill them with the current ``WH``, then one NMF iteration on the filled data).

        Both blocks must update from the imputation majorizer's statistics
        (``imputes_mask``; :mod:`._operators`). The majorizer ``g(·|W₀, H₀)`` formed at the
        iteration's start lies above the masked objective ``f`` everywhere and touches it at
        ``(W₀, H₀)``; the W update decreases ``g``, then the H update decreases it again, so
        ``f(W₁, H₁) ≤ g(W₁, H₁) ≤ g(W₀, H₀) = f(W₀, H₀)``: the masked objective still never
        increases, the fixed points are the masked problem's, and an iteration forms one
        ``m × n × k`` product ``WH`` (which serves its objective and the next imputation)
        instead of two. Re-imputing between the two updates gained little per iteration:
        ``jn.rank_selection(digits, range(2, 21), range(10))`` (held-out HALS on the
        majorizer, ``tol=1e-4``) stopped its members after 115 iterations on average against
        118 with the re-imputation, with the same held-out picks; an iteration at 2000 × 1000,
        k = 20, 10 % hidden took 3.8 ms against 4.8 ms (medians of 6 interleaved processes;
        2-core AMD EPYC, float32, 2026-12-03)."""
        return problem.mask is not None and all(
            getattr(self.block(f), "imputes_mask", False) for f in "WH"
        )

    def init(self, problem, W, H):
        g0 = lambda: initial_gradient_norm(problem, W, H)
        sW = self.block("W").init(Side(problem, W, H, "W"), g0)
        sH = self.block("H").init(Side(problem, W, H, "H"), g0)
        WH = prediction(problem, W, H) if self._reuses_prediction(problem) else ()
        return AlternatingState(sW, sH, WH)

    def step(self, problem, W, H, extra):
        bW, bH = self.block("W"), self.block("H")
        reuse = self._reuses_prediction(problem)
        dense = not isinstance(problem.V, SparseMatrix)

        impute_once = reuse and dense and self._imputes_once(problem)
        filled = impute(problem, extra.WH) if impute_once else None

        def half_step(W, H, stats, states):
            del stats
            sW, sH = states
            WH = extra.WH if reuse else None
            Wt, sW, _ = run_block(bW, Side(problem, W, H, "W", WH, filled), sW)
            W = Wt.T
            # Dense V: the H update takes W @ H formed once; sparse V keeps it fused into
            # its pass over the stored entries. Blocks on the imputation majorizer keep the
            # iteration's first imputation instead (see _imputes_once).
            WH_mid = W @ H if reuse and dense and not impute_once else None
            H, sH, stats = run_block(bH, Side(problem, W, H, "H", WH_mid, filled), sH)
            return W, H, stats, (sW, sH)

        first = half_step(W, H, None, (extra.W, extra.H))
        retries = getattr(self, "max_retries", 0)
        W, H, stats, (sW, sH) = _retrying((bW, bH), half_step, first, max_retries=retries)
        if reuse:
            WH = prediction(problem, W, H)
            value = problem.loss.value(problem.V, W, H, problem.mask, WH=WH)
            return W, H, AlternatingState(sW, sH, WH), value
        value = None
        if stats is not None:
            value = gram_objective(problem, W, H, stats.gram, stats.cross)
        return W, H, AlternatingState(sW, sH, ()), value


@dataclasses.dataclass(frozen=True)
class Blocks(Alternating):
    """A solver from two blocks: ``block_W`` updates W, then ``block_H`` updates H
    (:func:`jaxnmf.solvers.alternating`)."""

    block_W: Any
    block_H: Any
    name: str = "alternating"

    def block(self, factor: str):
        return self.block_W if factor == "W" else self.block_H

    def check(self, loss: Loss, has_mask: bool) -> None:
        for block in (self.block_W, self.block_H):
            check = getattr(block, "check", None)
            if check is not None:
                check(loss, has_mask)


def inner_cap(alpha: float, dims: tuple[int, int], k, dtype=jnp.float64):
    """Gillis & Glineur's cap ``⌊1 + α ρ⌋`` on inner updates of one factor, with
    ``ρ = (pq + qk) / (p (k + 1))``: the cost of forming the statistics relative to one
    inner update (p = columns of the updated factor's rows, q = of the other). ``k`` is the
    member's rank, traced (not its padded width, so that a member of a rank sweep runs as
    its own fit does)."""
    p, q = dims
    k = jnp.asarray(k).astype(dtype)
    rho = (p * q + q * k) / (p * (k + 1))
    return jnp.maximum(1, jnp.floor(1 + alpha * rho)).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Repeated:
    """A block repeated on the same statistics while it pays (Gillis & Glineur 2012): up
    to ``⌊1 + α ρ⌋`` times (:func:`inner_cap`), stopping once an update moves the factor
    less than ``delta`` times the first one did. ``inner`` must have a statistics form and
    no state. With α = 0 it is ``inner`` itself.

    References:
        Gillis, N. & Glineur, F. (2012). Accelerated multiplicative updates and hierarchical
        ALS algorithms for nonnegative matrix factorization. Neural Computation 24(4).
    """

    inner: Any
    alpha: float = 0.5
    delta: float = 0.1

    stateless = True
    takes_stored_mask = False
    imputes_mask = True  # a mask reaches it through Side.statistics (Alternating._imputes_once)

    @property
    def keeps_zeros(self) -> bool:
        return getattr(self.inner, "keeps_zeros", False)

    def check(self, loss: Loss, has_mask: bool) -> None:
        require_quadratic("repeated", loss)
        check = getattr(self.inner, "check", None)
        if check is not None:
            check(loss, has_mask)

    def init(self, side, g0):
        return ()

    def update(self, side, X, state):
        return self.update_from_statistics(X, side.statistics(), state, side.dims)

    def update_from_statistics(self, X, stats, state, dims):
        once = lambda X: self.inner.update_from_statistics(X, stats, (), dims)[0]
        cap = inner_cap(self.alpha, dims, jnp.sum(stats.active, dtype=jnp.int32), X.dtype)
        X1 = once(X)
        first = jnp.linalg.norm(X1 - X)

        def cond(c):
            i, _, last = c
            return (i < cap) & (last > self.delta * first)

        def body(c):
            i, X, _ = c
            Xn = once(X)
            return i + 1, Xn, jnp.linalg.norm(Xn - X)

        _, X, _ = jax.lax.while_loop(cond, body, (jnp.asarray(1, jnp.int32), X1, first))
        return X, state


class OneSideState(NamedTuple):
    block: Any  # the block's state
    stats: Any  # the sub-problem's statistics, formed once (the other factor is fixed), or ()


@dataclasses.dataclass(frozen=True)
class OneSide:
    """Update only ``factor`` (``"W"`` or ``"H"``), the other fixed, by ``solver``'s block
    for it: the estimator's ``transform`` and refits with fixed components.

    For a Frobenius-family loss without mask the statistics (``V Hᵀ``, ``H Hᵀ`` for W) are
    formed once, so an iteration of a statistics block costs O(p k²), objective included,
    instead of O(m n k). Run by the same driver as every fit.
    """

    solver: Any
    factor: str = "W"

    @property
    def name(self) -> str:
        return f"{self.solver.name}[{self.factor} only]"

    def check(self, loss: Loss, has_mask: bool) -> None:
        self.solver.check(loss, has_mask)

    @property
    def takes_stored_mask(self) -> bool:
        return getattr(self.block, "takes_stored_mask", False)

    @property
    def block(self):
        return self.solver.block(self.factor)

    def _cached(self, side: Side) -> bool:
        return side.unmasked_quadratic and hasattr(self.block, "update_from_statistics")

    def init(self, problem, W, H):
        side = Side(problem, W, H, self.factor)

        def g0():
            G = jnp.where(problem.active[:, None], side.grad(side.X), 0)
            return jnp.linalg.norm(G)

        stats = side.statistics() if self._cached(side) else ()
        return OneSideState(self.block.init(side, g0), stats)

    def step(self, problem, W, H, extra):
        block, side = self.block, Side(problem, W, H, self.factor)
        cached = self._cached(side)

        def half_step(X, states):
            if cached:
                X, state = block.update_from_statistics(X, extra.stats, states[0], side.dims)
            else:
                X, state = block.update(side, X, states[0])
            return X, (state,)

        retries = getattr(self.solver, "max_retries", 0)
        first = half_step(side.X, (extra.block,))
        X, (state,) = _retrying((block,), half_step, first, max_retries=retries)
        W, H = side.factors(X)
        value = None
        if cached and problem.sq_norm is not None and gram_objective_allowed(problem, X.dtype):
            value = extra.stats.objective(problem.sq_norm, X) + _penalties_of_other(side)
        return W, H, OneSideState(state, extra.stats), value


def _penalties_of_other(side: Side):
    """The penalties on the fixed factor: constant in a one-side run, part of its objective."""
    _, pen = quadratic_coefficients(side.problem.loss)
    other = "H" if side.factor == "W" else "W"
    Y = side.other
    l1, l2 = pen["l1", other], pen["l2", other]
    value = 0.0
    if not (isinstance(l1, float) and l1 == 0.0):
        value = value + l1 * jnp.sum(Y)
    if not (isinstance(l2, float) and l2 == 0.0):
        value = value + 0.5 * l2 * jnp.vdot(Y, Y)
    return value
