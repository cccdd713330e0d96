"""The one driver every solver runs under: a ``lax.while_loop`` with a fixed-size history.

The driver owns everything that must be the same for a fair comparison of solvers: the
iteration counter and cap, the objective evaluation, the stopping rule, the non-finite check
and the status. Solvers only provide ``init`` and ``step`` (see :mod:`jaxnmf.solvers`).

Stopping rule, identical for all solvers: after iteration ``t`` the run is *converged* when

    |f(t-1) - f(t)| ≤ tol · |f(t-1)|        (relative change of the objective; tol > 0), or
    ‖∇ᴾ f(t)‖ ≤ pg_tol · ‖∇ᴾ f(0)‖          (projected-gradient norm, if pg_tol > 0),

``max_iter`` when ``t == max_iter``, and ``nonfinite`` when f(t) is NaN or ±inf; the step that
produced a non-finite objective is rejected, so the returned factors are the last finite ones.

"Converged" is a claim that is checked when the run ends (:func:`verdict`): a run whose final
objective is above its initial one, or whose KKT residual or factors are not finite, ends
``diverged`` instead of ``converged`` or ``max_iter`` (a step size that blows the objective
up to 1e36 then stalls there has a small relative change, but it has not converged).

History buffers have length ``max_iter``; entry ``t`` is the objective after iteration
``t + 1``. Entries never reached stay NaN (the documented sentinel).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .solvers import Problem, projected_gradient


class Code:
    """int32 status codes carried inside the loop (names for humans: :class:`jaxnmf.Status`)."""

    RUNNING, CONVERGED, MAX_ITER, NONFINITE, DIVERGED = 0, 1, 2, 3, 4


class RunState(NamedTuple):
    W: jax.Array  # (m, k)
    H: jax.Array  # (k, n)
    extra: Any  # solver-private state
    it: jax.Array  # int32, iterations done
    loss: jax.Array  # objective at (W, H)
    loss0: jax.Array  # objective at the initial factors
    kkt: jax.Array  # projected-gradient norm at (W, H) (NaN when not tracked)
    kkt0: jax.Array  # ... at the initial factors
    history: jax.Array  # (max_iter,) objective after each iteration, NaN-padded
    kkt_history: jax.Array  # (max_iter,) if tracked, else (0,)
    status: jax.Array  # int32 Code


def kkt_residual(problem: Problem, W, H):
    """‖∇ᴾ_W f‖² + ‖∇ᴾ_H f‖², square-rooted: zero exactly at a KKT point of f on W, H ≥ 0.

    Only active components count (padded components are fixed at zero by construction).
    """
    V, mask, loss, active = problem.V, problem.mask, problem.loss, problem.active
    gW = jnp.where(active[None, :], projected_gradient(W, loss.grad(V, W, H, mask, "W")), 0)
    gH = jnp.where(active[:, None], projected_gradient(H, loss.grad(V, W, H, mask, "H")), 0)
    return jnp.sqrt(jnp.vdot(gW, gW) + jnp.vdot(gH, gH))


def start(problem: Problem, W0, H0, solver, *, max_iter: int, track_kkt: bool) -> RunState:
    """The state before the first iteration (objective, KKT residual, empty histories)."""
    V, loss = problem.V, problem.loss
    dtype = V.dtype
    loss0 = jnp.asarray(loss.value(V, W0, H0, problem.mask), dtype)
    nan = jnp.asarray(jnp.nan, dtype)
    kkt0 = kkt_residual(problem, W0, H0).astype(dtype) if track_kkt else nan
    return RunState(
        W=W0,
        H=H0,
        extra=solver.init(problem, W0, H0),
        it=jnp.zeros((), jnp.int32),
        loss=loss0,
        loss0=loss0,
        kkt=kkt0,
        kkt0=kkt0,
        history=jnp.full((max_iter,), jnp.nan, dtype),
        kkt_history=jnp.full((max_iter if track_kkt else 0,), jnp.nan, dtype),
        status=jnp.asarray(Code.RUNNING if max_iter > 0 else Code.MAX_ITER, jnp.int32),
    )


def accept(s: RunState, W, H, extra, f, tol, pg_tol, kkt=None, *, max_iter: int) -> RunState:
    """The state after one iteration that proposed ``(W, H, extra)`` with objective ``f``.

    The stopping rule and the status live here only, so that every loop (the driver's
    ``while_loop``, and the batched members of :mod:`jaxnmf._fused`) applies the same rule.
    ``kkt`` is the KKT residual at ``(W, H)`` when tracked, else ``None``.
    """
    dtype = s.loss.dtype
    tol = jnp.asarray(tol, dtype)
    pg_tol = jnp.asarray(pg_tol, dtype)
    tiny = jnp.finfo(dtype).tiny
    f = jnp.asarray(f, dtype)
    finite = jnp.isfinite(f)
    it = s.it + 1
    # "<=" so that an exact fit (f = 0, no change) counts as converged; tol = 0 disables.
    converged = (tol > 0) & (jnp.abs(s.loss - f) <= tol * jnp.maximum(jnp.abs(s.loss), tiny))
    history = s.history.at[s.it].set(f)
    kkt_now, kkt_history = s.kkt, s.kkt_history
    if kkt is not None:
        kkt_now = kkt
        kkt_history = kkt_history.at[s.it].set(kkt)
        converged = converged | (kkt <= pg_tol * s.kkt0)
    status = jnp.select(
        [~finite, converged, it >= max_iter],
        [Code.NONFINITE, Code.CONVERGED, Code.MAX_ITER],
        Code.RUNNING,
    ).astype(jnp.int32)
    # Reject a step whose objective is not finite: the result keeps the last finite
    # factors, and the status tells the user what happened.
    keep = lambda new, old: jnp.where(finite, new, old)
    return RunState(
        W=keep(W, s.W),
        H=keep(H, s.H),
        extra=extra,
        it=it,
        loss=keep(f, s.loss),
        loss0=s.loss0,
        kkt=keep(kkt_now, s.kkt) if kkt is not None else kkt_now,
        kkt0=s.kkt0,
        history=history,
        kkt_history=kkt_history,
        status=status,
    )


def advance(
    problem: Problem,
    state: RunState,
    solver,
    tol,
    pg_tol,
    stop_at=None,
    *,
    max_iter: int,
    track_kkt: bool,
    eval_every: int = 1,
) -> RunState:
    """Iterate from ``state`` until the stopping rule ends the run, or iteration ``stop_at``.

    ``stop_at`` (traced) lets a caller run the same compiled loop in chunks, e.g. to read the
    wall clock between them (:func:`jaxnmf.compare`); the iterates do not depend on where the
    chunks end. ``None`` runs to the end.

    ``eval_every`` (static): the objective (and the KKT residual, if tracked) is evaluated,
    recorded and tested by the stopping rule after iterations ``eval_every, 2·eval_every, ...``
    and ``max_iter`` only; the iterations between run the solver's step with its objective
    unused, which XLA removes. For KL/β multiplicative updates the objective costs about as
    much as the update itself (scikit-learn evaluates it every 10 iterations). The rule then
    compares objectives ``eval_every`` iterations apart; history entries in between stay NaN,
    and a non-finite objective rejects the whole block (the factors of the last evaluation are
    returned).
    """
    V, loss = problem.V, problem.loss
    dtype = V.dtype

    def free_steps(s: RunState):
        """The iterations of a block before its evaluated one: ``(s with W, H, extra, it
        advanced, the factors to fall back on)``."""
        n_free = jnp.minimum(eval_every, max_iter - s.it) - 1

        def one(_, c):
            W, H, extra, _f = solver.step(problem, *c)
            return W, H, extra

        W, H, extra = jax.lax.fori_loop(0, n_free, one, (s.W, s.H, s.extra))
        # W, H of the last evaluation stay in s: accept falls back on them if f is not finite
        return s._replace(it=s.it + n_free), (W, H, extra)

    def body(s: RunState) -> RunState:
        current = (s.W, s.H, s.extra)
        if eval_every > 1:
            s, current = free_steps(s)
        W, H, extra, f = solver.step(problem, *current)
        if f is None:  # the solver had no cheap way to the objective
            f = loss.value(V, W, H, problem.mask)
        kkt = kkt_residual(problem, W, H).astype(dtype) if track_kkt else None
        return accept(s, W, H, extra, f, tol, pg_tol, kkt, max_iter=max_iter)

    def cond(s: RunState):
        running = s.status == Code.RUNNING
        return running if stop_at is None else running & (s.it < stop_at)

    return jax.lax.while_loop(cond, body, state)


def verdict(status, loss, loss0, kkt, W, H, scale):
    """The final status code: ``CONVERGED``/``MAX_ITER`` become ``DIVERGED`` when the run ended
    above its initial objective or with a non-finite KKT residual or factors.

    "Above" allows for rounding: ``loss > loss0 + √eps · (|loss0| + scale)``, where ``scale``
    is ``Σ V²`` (the float32 Gram-form objective carries an absolute error of about
    ``eps · Σ V²``, so a run started at an exact fit must not read as diverged). Works on one
    member or, element-wise, on a batch (``W``, ``H`` with a leading member axis then).
    """
    loss, loss0 = jnp.asarray(loss), jnp.asarray(loss0)
    dtype = loss.dtype
    slack = jnp.sqrt(jnp.finfo(dtype).eps) * (jnp.abs(loss0) + jnp.asarray(scale, dtype))
    above = loss > loss0 + slack
    member_axes = lambda X: tuple(range(jnp.ndim(loss), X.ndim))
    finite = (
        jnp.isfinite(kkt)
        & jnp.all(jnp.isfinite(W), axis=member_axes(W))
        & jnp.all(jnp.isfinite(H), axis=member_axes(H))
    )
    ended = (status == Code.CONVERGED) | (status == Code.MAX_ITER)
    return jnp.where(ended & (above | ~finite), Code.DIVERGED, status).astype(jnp.int32)


def finish(problem: Problem, state: RunState, *, track_kkt: bool) -> RunState:
    """The final KKT residual is always reported (one gradient evaluation after the loop),
    and the status is checked by :func:`verdict`."""
    if not track_kkt:
        state = state._replace(kkt=kkt_residual(problem, state.W, state.H).astype(state.loss.dtype))
    scale = 0.0 if problem.sq_norm is None else problem.sq_norm
    status = verdict(state.status, state.loss, state.loss0, state.kkt, state.W, state.H, scale)
    return state._replace(status=status)


def run(
    problem: Problem,
    W0,
    H0,
    solver,
    tol,
    pg_tol,
    *,
    max_iter: int,
    track_kkt: bool,
    eval_every: int = 1,
):
    """Run ``solver`` from ``(W0, H0)`` until the shared stopping rule ends it.

    Args:
      problem: the :class:`~jaxnmf.solvers.Problem`.
      W0, H0: initial factors, ``(m, k)`` and ``(k, n)``.
      solver: a solver object (static).
      tol: relative objective-change tolerance (traced scalar; 0 disables).
      pg_tol: projected-gradient tolerance relative to the initial one (traced; used only
        when ``track_kkt``).
      max_iter: static cap, and the length of the history buffers.
      track_kkt: static; compute the KKT residual at every iteration (one more gradient
        evaluation per iteration) and record it.
      eval_every: static; evaluate the objective every ``eval_every`` iterations only (see
        :func:`advance`).

    Returns:
      The final :class:`RunState`.
    """
    static = dict(max_iter=max_iter, track_kkt=track_kkt)
    state = start(problem, W0, H0, solver, **static)
    state = advance(problem, state, solver, tol, pg_tol, eval_every=eval_every, **static)
    return finish(problem, state, track_kkt=track_kkt)
