"""The online schedule: one minibatch step of online NMF, jit-compiled per batch shape.

Samples are the rows of ``X`` (scikit-learn's layout, ``X (n_samples, n_features) ≈ W H``,
``H`` ``(k, n_features)`` the dictionary). For a batch ``X_b`` ``(b, n)``:

1. ``W_b`` ``(b, k)`` is solved with ``H`` fixed by the one-side schedule of the solver's W
   block (:class:`~jaxnmf.solvers.OneSide`, run by the one driver, :mod:`jaxnmf._driver`,
   for ``inner_max_iter`` iterations or until its own stopping rule);
2. the sufficient statistics of the H sub-problem are accumulated with forgetting factor ρ:

   * Frobenius family (Mairal, Bach, Ponce & Sapiro 2010): ``A ← ρA + a W_bᵀW_b`` ``(k, k)``,
     ``B ← ρB + a W_bᵀX_b`` ``(k, n)``, and the H penalties ``l1 ← ρ l1 + l1_b`` (likewise
     l2), then ``H`` is updated by the solver's H block from them alone
     (``update_from_statistics``): HALS on the statistics is Mairal's dictionary update;
   * any β-divergence (Lefèvre, Bach & Févotte 2011, as scikit-learn's ``MiniBatchNMF``): the
     multiplicative update's numerator ``A ← ρA + H^(1/γ)·neg`` and denominator
     ``B ← ρB + pos`` (``pos``, ``neg`` the split H-gradient of the batch, penalties
     included), then ``H = (A / B)^γ``;

3. the batch objective at ``(W_b, H)`` (before H moves, as scikit-learn's), divided by ``b``,
   feeds an exponentially weighted average (EWA), and the stopping rule — scikit-learn's —
   decides: ``‖H - H_prev‖ ≤ tol ‖H‖`` (``tol > 0``) is *converged*, and so is an EWA that has
   not improved for ``max_no_improvement`` steps; a non-finite batch objective rejects the
   step (the state is kept) and ends the run *nonfinite*. The status codes are the driver's.

The accumulators start at zero (Mairal et al.'s ``A₀ = 0, B₀ = 0``): with one batch equal to
the whole data the first step *is* one alternating iteration of the same blocks (tested in
``tests/test_minibatch.py`` to 1e-10). scikit-learn starts its β accumulators at ``(H₀, 1)``,
a prior on the initial H that forgetting then wears off.

References:
    Mairal, J., Bach, F., Ponce, J. & Sapiro, G. (2010). Online learning for matrix
    factorization and sparse coding. JMLR 11, 19–60 (Algorithms 1 and 2).
    Lefèvre, A., Bach, F. & Févotte, C. (2011). Online algorithms for nonnegative matrix
    factorization with the Itakura-Saito divergence. IEEE WASPAA.
"""
# ruff: noqa: N802, N803, N806

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _driver, _sparse
from .losses import mu_exponent, positive_power
from .solvers import OneSide, Problem, Side, Statistics
from .solvers._base import is_quadratic

Code = _driver.Code


class OnlineState(NamedTuple):
    """Everything the online schedule carries from one batch to the next.

    ``A``, ``B``: the accumulated statistics — ``(k, k)`` Gram and ``(k, n)`` cross product
    (Frobenius family), or the ``(k, n)`` MU numerator and denominator (β-divergences).
    """

    H: jax.Array  # (k, n) the dictionary
    A: jax.Array
    B: jax.Array
    l1: jax.Array  # accumulated L1 weight on H (Frobenius family), scalar
    l2: jax.Array  # accumulated L2 weight on H
    ewa: jax.Array  # EWA of the batch objective per sample (NaN before the second step)
    ewa_min: jax.Array  # its smallest value so far (+inf before)
    no_improvement: jax.Array  # int32, steps since ewa_min last improved
    step: jax.Array  # int32, steps done
    cost: jax.Array  # the last batch objective per sample
    status: jax.Array  # int32 driver Code (RUNNING while the stopping rule has not fired)


def uses_statistics(solver, loss) -> bool:
    """Static: whether H is updated from accumulated statistics (Frobenius family and an H
    block with a statistics form) rather than by the β multiplicative update."""
    return is_quadratic(loss) and hasattr(solver.block("H"), "update_from_statistics")


def initial_state(H0, loss, solver) -> OnlineState:
    """The state before the first batch: ``H0`` ``(k, n)``, zero accumulators. Host arrays:
    the first compiled step takes them as they are (a device array per leaf would cost a
    dispatch each, about 2 ms in all, which a small fit notices)."""
    H0 = np.asarray(H0)
    k, n = H0.shape
    dtype = H0.dtype
    zero = np.zeros((), dtype)
    A = np.zeros((k, k) if uses_statistics(solver, loss) else (k, n), dtype)
    return OnlineState(
        H=H0,
        A=A,
        B=np.zeros((k, n), dtype),
        l1=zero,
        l2=zero,
        ewa=np.asarray(np.nan, dtype),
        ewa_min=np.asarray(np.inf, dtype),
        no_improvement=np.zeros((), np.int32),
        step=np.zeros((), np.int32),
        cost=np.asarray(np.nan, dtype),
        status=np.asarray(Code.RUNNING, np.int32),
    )


def solve_W(problem: Problem, W0, H, solver, tol, *, max_iter: int):
    """``(W, f)``: ``W`` ``(b, k)`` for the batch of ``problem`` with ``H`` fixed — the
    one-side schedule of ``solver``'s W block from ``W0``, run by the driver (its stopping
    rule on ``tol``) — and the objective ``f`` at ``(W, H)``, penalties on both factors
    included. With ``max_iter == 1`` the schedule's single step is taken directly: the
    driver's loop and its objective at ``W0`` would be compiled and computed for nothing."""
    one = OneSide(solver, "W")
    if max_iter == 1:
        W, _, _, f = one.step(problem, W0, H, one.init(problem, W0, H))
        if f is None:
            f = problem.loss.value(problem.V, W, H, problem.mask)
        return W, f
    static = dict(max_iter=max_iter, track_kkt=False)
    state = _driver.start(problem, W0, H, one, **static)
    state = _driver.advance(problem, state, one, tol, 0.0, **static)
    return state.W, state.loss


def update_H(problem: Problem, W, s: OnlineState, rho, solver):
    """``(H, A, B, l1, l2)`` after accumulating the batch's statistics at ``W`` (see the
    module docstring); the rows of ``H`` are its components (rows form of the blocks)."""
    H = s.H
    side = Side(problem, W, H, "H")
    if uses_statistics(solver, problem.loss):
        st = side.statistics()
        A = rho * s.A + st.a * st.gram
        B = rho * s.B + st.a * st.cross
        l1 = rho * s.l1 + st.l1
        l2 = rho * s.l2 + st.l2
        acc = Statistics(B, A, jnp.ones((), H.dtype), l1, l2, problem.active)
        block = solver.block("H")
        # Stateful blocks (tolerances from the initial gradient) start afresh every batch.
        state = block.init(side, lambda: jnp.linalg.norm(acc.gradient(H)))
        Hn, _ = block.update_from_statistics(H, acc, state, side.dims)
        return Hn, A, B, l1, l2
    pos, neg = side.split_grad(H)
    gamma = mu_exponent(problem.loss)
    # H^(1/γ)·neg / pos, raised to γ, is one MU step: (A/B)^γ = H (neg/pos)^γ for one batch.
    Hg = H if gamma == 1.0 else positive_power(H, 1.0 / gamma)
    A = rho * s.A + Hg * neg
    B = rho * s.B + pos
    ratio = jnp.where(B > 0, A / jnp.where(B > 0, B, 1), Hg)  # B = 0: no information, keep H
    Hn = ratio if gamma == 1.0 else positive_power(ratio, gamma)
    return side.keep_active(Hn), A, B, s.l1, s.l2


def step(
    s: OnlineState,
    X,
    W0,
    loss,
    rho,
    alpha,
    tol,
    inner_tol,
    max_no_improvement,
    valid=None,
    *,
    solver,
    inner_max_iter: int,
    objective_from_grams: bool,
):
    """One online step on batch ``X`` ``(b, n)`` from ``W0`` ``(b, k)``.

    Args:
      s: the :class:`OnlineState`.
      X: the batch, dense ``(b, n)``.
      W0: the batch's starting W.
      loss: the objective (:class:`~jaxnmf.losses.Loss`, weights traced).
      rho: forgetting factor of the accumulated statistics (traced).
      alpha: EWA weight of this batch's objective (traced; scikit-learn's
        ``min(b / (n_samples + 1), 1)``).
      tol: the stopping tolerance on ``‖ΔH‖ / ‖H‖`` (0 disables).
      inner_tol: the W solve's own tolerance (the driver's relative objective change).
      max_no_improvement: steps without EWA improvement that end the run (int32; 0 disables).
      valid: None (every row is data), or ``(b,)`` bool: rows that are data, the others zero
        padding (see :func:`padding_is_exact`): their W is held at zero, and for β ≠ 2 a
        row mask keeps them out of the objective and the split gradients.
      solver: a solver made of blocks (static).
      inner_max_iter: the W solve's iteration cap (static).
      objective_from_grams: static; see :data:`~jaxnmf.solvers._base.GRAM_OBJECTIVE_MIN_TOL`.

    Returns:
      ``(state, W)``: the new state (the old one, status ``NONFINITE``, if the batch's
      objective was not finite) and the batch's ``W`` ``(b, k)``.
    """
    dtype = s.H.dtype
    k = s.H.shape[0]
    b = X.shape[0]
    active = jnp.ones((k,), bool)
    mask = None
    if valid is not None:
        # A zero row of X with a zero row of W stays zero under every block (its gradient
        # is zero; multiplicative updates keep zeros) and adds nothing to WᵀW, WᵀX or the
        # Frobenius objective. β-divergences floor WH, so there a row mask is needed.
        W0 = jnp.where(valid[:, None], W0, 0)
        b = jnp.sum(valid).astype(dtype)
        if not is_quadratic(loss):
            mask = jnp.broadcast_to(valid[:, None], X.shape).astype(dtype)
    problem = Problem(X, mask, loss, active, _sparse.sq_norm(X), objective_from_grams)
    W, f = solve_W(problem, W0, s.H, solver, inner_tol, max_iter=inner_max_iter)
    cost = (f / b).astype(dtype)
    finite = jnp.isfinite(cost) & jnp.all(jnp.isfinite(W))
    H, A, B, l1, l2 = update_H(problem, W, s, rho, solver)
    finite = finite & jnp.all(jnp.isfinite(H))
    # scikit-learn's rule: the first step only sets H (nothing to compare yet); the EWA
    # starts at the second batch's objective.
    first = s.step == 0
    ewa = jnp.where(jnp.isnan(s.ewa), cost, s.ewa * (1 - alpha) + cost * alpha)
    ewa = jnp.where(first, s.ewa, ewa)
    h_norm = jnp.linalg.norm(H)
    h_diff = jnp.linalg.norm(H - s.H) / jnp.where(h_norm > 0, h_norm, 1)
    improved = ewa < s.ewa_min
    no_improvement = jnp.where(first, 0, jnp.where(improved, 0, s.no_improvement + 1))
    ewa_min = jnp.where(first | ~improved, s.ewa_min, ewa)
    converged = ~first & (
        ((tol > 0) & (h_diff <= tol))
        | ((max_no_improvement > 0) & (no_improvement >= max_no_improvement))
    )
    status = jnp.where(converged, Code.CONVERGED, Code.RUNNING).astype(jnp.int32)
    new = OnlineState(
        H, A, B, l1, l2, ewa, ewa_min, no_improvement.astype(jnp.int32), s.step + 1, cost, status
    )
    # A non-finite step is rejected: the state keeps the last finite dictionary.
    bad = s._replace(status=jnp.asarray(Code.NONFINITE, jnp.int32), cost=cost)
    out = jax.tree.map(lambda a, c: jnp.where(finite, a, c), new, bad)
    return out, jnp.where(finite, W, W0)


@functools.partial(
    jax.jit,
    static_argnames=("solver", "inner_max_iter", "objective_from_grams"),
)
def step_compiled(
    s,
    X,
    W0,
    loss,
    rho,
    alpha,
    tol,
    inner_tol,
    max_no_improvement,
    valid=None,
    *,
    solver,
    inner_max_iter,
    objective_from_grams=False,
):
    """:func:`step` compiled: one program per batch shape, dtype, sharding and static
    options."""
    return step(
        s,
        X,
        W0,
        loss,
        rho,
        alpha,
        tol,
        inner_tol,
        max_no_improvement,
        valid,
        solver=solver,
        inner_max_iter=inner_max_iter,
        objective_from_grams=objective_from_grams,
    )


class ResidentOut(NamedTuple):
    state: OnlineState
    W: jax.Array  # (n_batches, b, k) every sample's last W (zero on padding rows)
    costs: jax.Array  # (max_steps,) batch objective per sample after each step, NaN after
    n_steps: jax.Array  # int32
    # (n_batches, b): Σ_j (X - W H)² of each row with W above and the final H (zero on
    # padding rows): the estimator's Frobenius error without another pass over X on the host;
    # None unless asked for (row_errors)
    row_sq_error: jax.Array | None


@functools.partial(
    jax.jit,
    static_argnames=(
        "solver",
        "inner_max_iter",
        "objective_from_grams",
        "max_steps",
        "fresh",
        "padded",
        "row_errors",
    ),
)
def fit_resident(
    s,
    Xp,
    Wp,
    sizes,
    losses,
    rho,
    n_samples,
    tol,
    inner_tol,
    max_no_improvement,
    *,
    solver,
    inner_max_iter,
    objective_from_grams,
    max_steps,
    fresh,
    padded,
    n_features=None,
    row_errors=False,
):
    """The online schedule over a device-resident X, every pass in one compiled loop.

    ``Xp`` ``(n_batches, b, n)``: X cut into batches, the last zero-padded; ``Wp``
    ``(n_batches, b, k)``: each sample's W (warm starts between passes unless ``fresh``);
    ``sizes`` ``(n_batches,)`` int32: the data rows of each batch; ``losses``: the objective
    of a full batch and of the last one (a :class:`~jaxnmf.losses.Loss` whose weight leaves
    have a leading axis of 2: scikit-learn's penalties grow with the batch). Batches are
    taken in order, ``max_steps`` at most (static), until the stopping rule fires: the
    iterates are those of the host loop batch by batch (:func:`step`), without a return to
    the host per batch. ``fresh`` (static): every batch's W starts at
    ``sqrt(mean(X_b) / k)``. ``padded`` (static): whether the last batch has padding rows
    (they are then held out exactly, see :func:`step`'s ``valid``). ``n_features``
    (traced; None: ``Xp.shape[2]``): the data columns, the others zero padding (see
    :func:`padding_is_exact`); only the fresh start's mean reads it. ``row_errors``
    (static): also return each row's squared residual (:func:`_row_sq_error`).
    """
    n_batches, b, _ = Xp.shape
    k = s.H.shape[0]
    dtype = s.H.dtype
    rows = jnp.arange(b, dtype=jnp.int32)
    n_cols = Xp.shape[2] if n_features is None else n_features

    def body(c):
        s, Wp, costs, i = c
        j = i % n_batches
        X = Xp[j]
        size = sizes[j]
        if fresh:
            mean = jnp.sum(X) / (size.astype(dtype) * jnp.asarray(n_cols, dtype))
            W0 = jnp.full((b, k), jnp.sqrt(jnp.maximum(mean, 0) / k), dtype)
        else:
            W0 = Wp[j]
        last = (j == n_batches - 1).astype(jnp.int32)
        loss = jax.tree.map(lambda w: w[last], losses)
        alpha = jnp.minimum(size.astype(dtype) / (n_samples + 1), 1).astype(dtype)
        valid = rows < size if padded else None
        s, W = step(
            s,
            X,
            W0,
            loss,
            rho,
            alpha,
            tol,
            inner_tol,
            max_no_improvement,
            valid,
            solver=solver,
            inner_max_iter=inner_max_iter,
            objective_from_grams=objective_from_grams,
        )
        return s, Wp.at[j].set(W), costs.at[i].set(s.cost), i + 1

    def cond(c):
        s, _, _, i = c
        return (i < max_steps) & (s.status == Code.RUNNING)

    costs = jnp.full((max_steps,), jnp.nan, dtype)
    init = (s, Wp, costs, jnp.zeros((), jnp.int32))
    s, Wp, costs, i = jax.lax.while_loop(cond, body, init)
    row_sq = _row_sq_error(Xp, Wp, s.H) if row_errors else None
    return ResidentOut(s, Wp, costs, i, row_sq)


# Up to this size of X the residual X - W H is formed at once (a temporary of X's size),
# above it batch by batch: on the TF-IDF matrix (1227 × 1000, 5 batches) the batch-by-batch
# loop (lax.map) made a 12-ms fit 4-6 ms slower.
RESIDUAL_AT_ONCE_BYTES = 64 << 20


def _row_sq_error(Xp, Wp, H):
    """``(n_batches, b)``: each row's ``Σ_j (X - W H)²``, the direct residual (no
    cancellation, as the Gram form has), summed over the features only: the caller sums the
    rows in float64."""
    if Xp.size * Xp.dtype.itemsize <= RESIDUAL_AT_ONCE_BYTES:
        return jnp.sum(jnp.square(Xp - jnp.einsum("jbk,kn->jbn", Wp, H)), axis=2)
    return jax.lax.map(lambda xw: jnp.sum(jnp.square(xw[0] - xw[1] @ H), axis=1), (Xp, Wp))


@functools.partial(jax.jit, static_argnames=("solver", "max_iter", "objective_from_grams"))
def transform_compiled(X, W0, H, loss, tol, *, solver, max_iter, objective_from_grams=False):
    """``(W, n_iter, status)`` of ``X`` ``(b, n)`` with ``H`` fixed, from ``W0``."""
    k = H.shape[0]
    problem = Problem(X, None, loss, jnp.ones((k,), bool), _sparse.sq_norm(X), objective_from_grams)
    one = OneSide(solver, "W")
    static = dict(max_iter=max_iter, track_kkt=False)
    s = _driver.advance(
        problem, _driver.start(problem, W0, H, one, **static), one, tol, 0.0, **static
    )
    return s.W, s.it, s.status


# Small problems are zero-padded to buckets of rows and features (see padded_shape) when
# that is exact: one compiled program then serves every data size in the bucket (the
# compiling, not the arithmetic, is the cost of a small fit). Up to this many padded
# entries in all.
BUCKET_MAX_ENTRIES = 1 << 16
_BUCKET_MIN = 16


def padding_is_exact(solver, loss) -> bool:
    """Static: whether zero rows of X with zero rows of W, and zero columns of X with zero
    columns of H, change nothing for the real rows and columns — W, H, the statistics, the
    objective and the stopping rules (exactly, up to the order of floating-point sums).

    True for solvers whose blocks say so (``zero_padding_exact``: the plain HALS and MU
    blocks, in :class:`~jaxnmf.solvers.HALS`, :class:`~jaxnmf.solvers.MU` or any
    ``alternating`` of them) on a Frobenius-family loss without a mask: a zero row of
    the updated factor whose data row is zero has a zero gradient and stays zero (HALS:
    ``max(0 - 0, 0)``; MU: ``pos = 0`` leaves the entry, and an l1 term sends it to 0), and
    zero rows or columns add nothing to ``WᵀW``, ``WᵀX``, ``HHᵀ``, ``XHᵀ`` or
    ``‖X - WH‖²``. Not for β ≠ 2 (the floor of WH makes a padded entry count) nor for
    blocks that read the shapes (A-HALS and A-MU size their inner loops by them)."""
    return bool(getattr(solver, "zero_padding_exact", False)) and is_quadratic(loss)


def bucket(size: int) -> int:
    """The padded size of a dimension: the next power of two, at least 16."""
    return max(_BUCKET_MIN, 1 << max(int(size) - 1, 0).bit_length())


def padded_shape(rows: int, cols: int, solver, loss, n_batches: int = 1) -> tuple[int, int]:
    """``(rows, cols)`` of each of ``n_batches`` batches after padding: their buckets where
    padding is exact and the padded batches have at most :data:`BUCKET_MAX_ENTRIES` entries
    in all (a small problem, where compiling is the cost), else unchanged."""
    if not padding_is_exact(solver, loss):
        return rows, cols
    r, c = bucket(rows), bucket(cols)
    return (r, c) if n_batches * r * c <= BUCKET_MAX_ENTRIES else (rows, cols)


def fresh_W(X: np.ndarray, k: int, dtype) -> np.ndarray:
    """scikit-learn's fresh start for a batch: every entry ``sqrt(mean(X_b) / k)``
    (positive, so that multiplicative updates can move it)."""
    mean = float(np.mean(X, dtype=np.float64)) if X.size else 0.0
    return np.full((X.shape[0], k), np.sqrt(max(mean, 0.0) / k), dtype)
