"""Rank sweeps of Frobenius-family NMF with V's products batched into large GEMMs.

A sweep's members share V. For the Frobenius loss (with l1/l2 penalties), no mask and dense V,
each iteration of a member of rank r (MU, HALS, ...) needs ``VHᵀ`` and ``WᵀV`` (4mnr flops, most of
the work) and small Gram products (``HHᵀ``, ``WᵀW`` and their products with the factors,
4(m+n)r² flops). :func:`jaxnmf.sweep`'s general path vmaps one run per member, padded to the
largest rank, in small groups. This path instead

* groups members into at most three *buckets* of neighbouring ranks, each padded only to its
  own largest rank (:func:`plan_buckets` picks the split that wastes the least work);
* stores each bucket's W transposed, ``(S, r, m)`` for its S members, so that the big products
  are plain GEMMs of all S·r rows against V (``H @ Vᵀ``, ``Wᵀ @ V``) and the batched Gram
  products run along the long m axis;
* runs every bucket inside one ``while_loop``, each member frozen once it stops (in calls
  big enough to pack members, see :data:`COMPACT_FLOOR`, a bucket is also skipped once all
  its members have), with the stopping rule and status of
  :func:`jaxnmf._driver.accept` (the same code as ``fit``), the projected-gradient rule
  (``pg_tol``) included: the KKT residual comes from the products each iteration has
  anyway, V Hᵀ of the new H being computed at the end of an iteration instead of at the
  start of the next;
* materializes each new factor once, frozen for the members that have stopped, before its
  products (:func:`_settle`), and forms Gram products of long rows one member at a time
  (:func:`_gram`): XLA:CPU otherwise recomputed the update in every consumer, and its
  batched dot of long thin matrices is slow;
* never holds a member's ``WH`` (m × n) for all members at once: where it is needed (the
  initial and final objective, the final KKT residual, the objective when it is not taken
  from Gram products), members go through it a few at a time (:func:`_few_at_a_time`).

The updates are the solver's own blocks (their ``update_from_statistics``, vmapped over the
members), so every solver whose blocks work from statistics alone and keep no state (MU,
HALS, A-MU, A-HALS, ANLS, greedy CD, or a user's) runs here, and a member's result equals
``fit``'s up to the order of floating-point sums. Measured on a 2-core CPU (digits, ranks
2..20 × 10 seeds, 200 MU iterations, float32): see ``experiments/benchmarks/sweep_vs_sklearn.py``.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _driver, _sparse
from . import init as _init
from .losses import Loss
from .solvers import Problem, Statistics
from .solvers._base import (
    frobenius_gram_objective,
    is_quadratic,
    projected_gradient,
    quadratic_coefficients,
)

__all__ = [
    "compact",
    "compaction_floor",
    "eligible",
    "initial_factors",
    "plan_buckets",
    "sweep_buckets",
]


def eligible(V, mask, loss: Loss, solver, heldout: float, devices) -> bool:
    """Whether a sweep can take this path: dense V, no mask or held-out split, a
    Frobenius-family loss, a solver whose blocks work from statistics alone and keep no
    state (:attr:`~jaxnmf.solvers.Alternating.batchable`), one device."""
    return (
        not isinstance(V, _sparse.SparseMatrix)
        and mask is None
        and heldout == 0
        and is_quadratic(loss)
        and getattr(solver, "batchable", False)
        and devices is None
    )


def _coefficients(loss: Loss):
    """``a`` and the penalty weights, ``(S,)`` arrays from weights of shape ``(S,)`` (a
    Python 0.0 for an absent penalty stays one, so that blocks drop the term)."""
    a, pen = quadratic_coefficients(loss)
    dtype = loss.weights[0].dtype
    col = lambda w: w if isinstance(w, float) and w == 0.0 else jnp.asarray(w, dtype).reshape(-1)
    return col(a), {key: col(w) for key, w in pen.items()}


def _block_update(block, X, cross, gram, a, l1, l2, active, dims):
    """Every member's update of one factor by ``block`` from its statistics (vmapped over
    the leading member axis; absent penalties stay Python zeros, shared)."""
    scalar_axis = lambda w: None if isinstance(w, float) else 0

    def one(X, cross, gram, a, l1, l2, active):
        stats = Statistics(cross, gram, a, l1, l2, active)
        return block.update_from_statistics(X, stats, (), dims)[0]

    axes = (0, 0, 0, scalar_axis(a), scalar_axis(l1), scalar_axis(l2), 0)
    return jax.vmap(one, in_axes=axes)(X, cross, gram, a, l1, l2, active)


def _v_times_ht(V, H):
    """``(V Hᵀ)ᵀ`` ``(S, r, m)`` of every member's H ``(S, r, n)``: one GEMM for the bucket."""
    S, r, n = H.shape
    return (H.reshape(S * r, n) @ V.T).reshape(S, r, V.shape[0])


def _step(V, Wt, H, HHt, VHt_t, active, running, loss: Loss, solver):
    """One iteration of all S members of a bucket, by the solver's own blocks.

    Shapes: V ``(m, n)``; Wt ``(S, r, m)`` (W transposed, the blocks' rows form); H
    ``(S, r, n)``; HHt ``(S, r, r)`` and VHt_t ``(S, r, m)``, the Gram matrix of the current
    H and ``(V Hᵀ)ᵀ``; active ``(S, r)``, False for a member's padded components; running
    ``(S,)``, False for a member that has stopped: its factors come back unchanged. The cross
    products of all members are one GEMM each (``H Vᵀ`` and ``Wᵀ V`` with the S·r rows
    stacked). ``V Hᵀ`` of the new H is computed here, at the end, for the next iteration:
    so the KKT residual at the new iterate needs no product more. Returns the new
    ``(Wt, H, HHt, VHt_t, WtW, WtV)``.

    Each new factor is frozen (stopped members keep theirs) as soon as it is computed and
    then materialized once (:func:`_settle`), before its products: otherwise XLA recomputed
    the update in every consumer's fusion (the GEMM, the batched Gram product, the loop
    state), four passes over W instead of one.
    """
    S, r, m = Wt.shape
    n = H.shape[2]
    a, pen = _coefficients(loss)
    new = _block_update(
        solver.block("W"), Wt, VHt_t, HHt, a, pen["l1", "W"], pen["l2", "W"], active, (m, n)
    )
    Wt = _settle(running, new, Wt)
    WtW = _gram(Wt)
    WtV = (Wt.reshape(S * r, m) @ V).reshape(S, r, n)
    new = _block_update(
        solver.block("H"), H, WtV, WtW, a, pen["l1", "H"], pen["l2", "H"], active, (n, m)
    )
    H = _settle(running, new, H)
    HHt = _gram(H)
    return Wt, H, HHt, _v_times_ht(V, H), WtW, WtV


def _kkt_from_statistics(loss: Loss, Wt, H, HHt, VHt_t, WtW, WtV, active):
    """Every member's KKT residual (:func:`jaxnmf._driver.kkt_residual`) at ``(W, H)`` from
    the products an iteration has anyway: ∇_W f = a (W HHᵀ - V Hᵀ) + l1_W + l2_W W and
    ∇_H f = a (WᵀW H - WᵀV) + l1_H + l2_H H, for the loss
    ``a · ½‖V - WH‖² + l1 Σ X + ½ l2 ‖X‖²`` (:func:`quadratic_coefficients`); shapes as
    :func:`_step`'s, ``(S,)`` out. O((m + n) r²) a member, against O(mnr) for the gradient
    from V."""
    a, pen = _coefficients(loss)
    scalar_axis = lambda w: None if isinstance(w, float) else 0

    def one(Wt, H, HHt, VHt_t, WtW, WtV, active, a, l1W, l2W, l1H, l2H):
        gWt = a * (HHt @ Wt - VHt_t) + l1W + l2W * Wt
        gH = a * (WtW @ H - WtV) + l1H + l2H * H
        gWt = jnp.where(active[:, None], projected_gradient(Wt, gWt), 0)
        gH = jnp.where(active[:, None], projected_gradient(H, gH), 0)
        return jnp.sqrt(jnp.vdot(gWt, gWt) + jnp.vdot(gH, gH))

    weights = (a, pen["l1", "W"], pen["l2", "W"], pen["l1", "H"], pen["l2", "H"])
    axes = (0,) * 7 + tuple(scalar_axis(w) for w in weights)
    return jax.vmap(one, in_axes=axes)(Wt, H, HHt, VHt_t, WtW, WtV, active, *weights)


@functools.partial(jax.jit, static_argnames=("method", "buckets"))
def initial_factors(V, seed_keys, member_seed, ranks, *, method: str, buckets):
    """The initial factors of every member, per bucket: ``(W0s, H0s)``, tuples of
    ``(S, m, k)`` and ``(S, k, n)`` arrays for the ``(S, k)`` pairs in ``buckets`` (members in
    bucket order).

    ``seed_keys`` ``(n_seeds,)`` are the sweep's keys, ``member_seed`` ``(M,)`` the index of
    each member's key and ``ranks`` ``(M,)`` its rank. Component j is drawn from
    ``fold_in(key, j)`` and components ``>= rank`` are zero, so the first r columns of a
    member of rank r are exactly what ``fit(V, r)`` draws. The random numbers depend on the
    seed only, so they are drawn once per seed and shared by that seed's ranks.

    Compiled apart from the loop, with little optimization (:data:`jaxnmf._compile.QUICK`),
    with the same values. It also cuts the buckets apart: as eager slices, each shape cost a
    compilation of its own (0.4 s for the six of a digits sweep).
    """
    m, n = V.shape
    k_max = max(k for _, k in buckets)
    draws = None
    if method in ("random", "nndsvdar"):
        per_seed = jax.vmap(lambda key: _init.component_draws(key, m, n, k_max, V.dtype))
        draws = jax.tree.map(lambda d: d[member_seed], per_seed(seed_keys))
    member = lambda r, d: _init.initialize(V, None, k_max, r, method, draws=d)
    W0, H0 = jax.vmap(member)(ranks, draws)
    W0s, H0s, lo = [], [], 0
    for count, k in buckets:
        W0s.append(W0[lo : lo + count, :, :k])
        H0s.append(H0[lo : lo + count, :k])
        lo += count
    return tuple(W0s), tuple(H0s)


def plan_buckets(ranks, max_buckets: int = 3) -> list[list[int]]:
    """Split the distinct ``ranks`` into at most ``max_buckets`` runs of consecutive ranks,
    each padded to its largest, minimizing the padded work Σ_buckets count × width.

    Every bucket adds a copy of the loop body to the compiled program (about a second of
    XLA compile time each on a 2-core CPU), while padding wastes run time: with ranks 2..20,
    one bucket does 1.8× the work of no padding, three buckets 1.27×.
    """
    distinct = sorted(set(ranks))
    count = len(distinct)
    cost = lambda i, j: (j - i) * distinct[j - 1]  # bucket distinct[i:j], padded
    # best[b][j]: least padded work for distinct[:j] in b buckets
    inf = float("inf")
    best = [[inf] * (count + 1) for _ in range(max_buckets + 1)]
    cut = [[0] * (count + 1) for _ in range(max_buckets + 1)]
    best[0][0] = 0
    for b in range(1, max_buckets + 1):
        for j in range(1, count + 1):
            for i in range(j):
                c = best[b - 1][i] + cost(i, j)
                if c < best[b][j]:
                    best[b][j], cut[b][j] = c, i
    b = min(range(1, max_buckets + 1), key=lambda b: (best[b][count], b))
    buckets, j = [], count
    while j > 0:
        i = cut[b][j]
        buckets.append(distinct[i:j])
        j, b = i, b - 1
    return buckets[::-1]


def sweep_buckets(V, member, hyper, states=None, floor=None, *, spec):
    """Run every member from its initial factors (or from ``states``); members are ordered
    by bucket. The body of :func:`jaxnmf._run.run_compiled` in mode ``"buckets"``.

    Args:
      V: ``(m, n)`` dense data shared by all members.
      member: a :class:`~jaxnmf._run.Member` of all members in bucket order: ``loss`` a
        Frobenius-family :class:`~jaxnmf.losses.Loss` whose weights have shape ``(M,)``;
        ``W0``, ``H0`` per bucket the initial factors of its S members, ``(S, m, k)`` and
        ``(S, k, n)`` at the bucket's width k (components ``>= rank`` zero); ``rank``
        ``(M,)`` int rank of each member. ``W0``, ``H0`` are None when ``states`` is given.
      hyper: the :class:`~jaxnmf._run.Hyper`: ``tol`` (relative objective change) and
        ``pg_tol`` (projected-gradient norm relative to the initial one, when tracked).
      spec: the :class:`~jaxnmf._run.RunSpec`: its solver, ``max_iter``, ``track_kkt`` (the
        KKT residual at every iteration, from the iteration's own products:
        :func:`_kkt_from_statistics`) and ``objective_from_grams`` (evaluate each iterate's
        objective from the Gram products, O((m + n) r²), rather than as ``‖V - WH‖²``,
        O(mnr); see :func:`jaxnmf.solvers._base.frobenius_gram_objective` for its accuracy).
      states: None, or the loop states of an earlier call (its first output), one per
        bucket, to continue from (compacted by the caller: see :func:`compact`).
      floor: None, or the traced fraction below which the loop stops once the work of an
        iteration spent on running members, ``Σ_b k_b · running_b / Σ_b k_b · S_b`` over
        the buckets still running, falls, so that the caller can compact. With a floor, a
        bucket whose members have all stopped is also skipped (``lax.cond``). Without one
        (small calls) neither: on XLA:CPU the conditional costs a fixed amount per
        iteration and bucket; on a digits survey with nothing to skip (ranks 2..20 × 1
        seed, 50 iterations, tol 0) it made HALS 0.107 → 0.122 s and MU 0.080 → 0.103 s
        warm (medians of 7, a 2-core AMD EPYC, before :func:`_settle`).

    Returns:
      ``(states, results)``: the loop states (W transposed), and per bucket the
      :class:`~jaxnmf._driver.RunState` batched over its members with ``W`` ``(S, m, r)``,
      the final KKT residual in ``kkt`` and the final verdict in ``status`` (final for the
      members that have stopped; those still running are to be continued from ``states``).
    """
    loss, ranks = member.loss, member.rank
    solver, max_iter, track = spec.solver, spec.max_iter, spec.track_kkt
    dtype = V.dtype
    sq_norm = jnp.sum(jnp.square(V))
    value = _few_at_a_time(lambda W, H, loss: loss.value(V, W, H, None), V)
    # (members, width) of every bucket
    shapes = (
        [W0.shape[::2] for W0 in member.W0] if states is None else [s.W.shape[:2] for s in states]
    )
    bounds = [0]
    for S, _ in shapes:
        bounds.append(bounds[-1] + S)

    def bucket_loss(b):
        lo, hi = bounds[b], bounds[b + 1]
        return jax.tree.map(lambda w: w[lo:hi], loss)

    def bucket_active(b):
        k = shapes[b][1]
        return jax.vmap(lambda r: _init.component_mask(k, r))(ranks[bounds[b] : bounds[b + 1]])

    if states is None:
        states = _start(V, member.W0, member.H0, bucket_loss, bucket_active, value, spec)
    states = list(states)

    accept = jax.vmap(
        functools.partial(_driver.accept, max_iter=max_iter),
        in_axes=(0, 0, 0, 0, 0, None, None, 0 if track else None),
    )

    def advance_bucket(b, s):
        lb = bucket_loss(b)
        HHt, VHt_t = s.extra
        running = s.status == _driver.Code.RUNNING
        Wt, H, HHt, VHt_t, WtW, WtV = _step(
            V, s.W, s.H, HHt, VHt_t, bucket_active(b), running, lb, solver
        )
        if spec.objective_from_grams:
            f = jax.vmap(frobenius_gram_objective, in_axes=(0, None, 0, 0, 0, 0, 0))(
                lb, sq_norm, Wt, H, WtW, WtV, HHt
            )
        else:
            f = value(jnp.swapaxes(Wt, 1, 2), H, lb)
        kkt = None
        if track:
            kkt = _kkt_from_statistics(lb, Wt, H, HHt, VHt_t, WtW, WtV, bucket_active(b))
            kkt = kkt.astype(dtype)
        new = accept(s, Wt, H, (HHt, VHt_t), f, hyper.tol, hyper.pg_tol, kkt)
        # A member that has stopped keeps its state (as a vmapped while_loop would); its
        # factors, and the products of its H, are unchanged already (_step).
        factors = dict(W=new.W, H=new.H, extra=new.extra)
        return _freeze(running, new._replace(W=s.W, H=s.H, extra=s.extra), s)._replace(**factors)

    def body(states):
        if floor is None:
            return [advance_bucket(b, s) for b, s in enumerate(states)]
        # A bucket whose members have all stopped is skipped (its body is not run): buckets
        # of small ranks often stop long before those of large ranks.
        return [
            jax.lax.cond(
                jnp.any(s.status == _driver.Code.RUNNING),
                functools.partial(advance_bucket, b),
                lambda s: s,
                s,
            )
            for b, s in enumerate(states)
        ]

    def cond(states):
        if floor is None:
            return jnp.any(jnp.stack([jnp.any(s.status == _driver.Code.RUNNING) for s in states]))
        running = [jnp.sum(s.status == _driver.Code.RUNNING, dtype=dtype) for s in states]
        live = sum(k * r for (_, k), r in zip(shapes, running, strict=True))
        slots = sum(
            jnp.where(r > 0, float(S * k), 0.0) for (S, k), r in zip(shapes, running, strict=True)
        )
        return (live > 0) & (live >= floor * jnp.maximum(slots, 1.0))

    states = jax.lax.while_loop(cond, body, states)

    results = []
    for b, s in enumerate(states):
        lb = bucket_loss(b)
        W = jnp.swapaxes(s.W, 1, 2)
        kkt = s.kkt  # tracked: the residual at the final iterate already (as the driver's)
        if not track:
            kkt = _few_at_a_time(functools.partial(_kkt, V), V)(W, s.H, bucket_active(b), lb)
            kkt = kkt.astype(dtype)
        status = _driver.verdict(s.status, s.loss, s.loss0, kkt, W, s.H, sq_norm)
        results.append(s._replace(W=W, extra=(), kkt=kkt, status=status))
    return tuple(states), results


def _start(V, W0s, H0s, bucket_loss, bucket_active, value, spec):
    """The loop states before the first iteration, one per bucket: W transposed, the
    objective (and, when tracked, the KKT residual) at the initial factors, and ``extra``
    the current H's Gram matrix and ``(V Hᵀ)ᵀ``."""
    max_iter, track, dtype = spec.max_iter, spec.track_kkt, V.dtype
    states = []
    for b, (W0, H0) in enumerate(zip(W0s, H0s, strict=True)):
        loss0 = value(W0, H0, bucket_loss(b)).astype(dtype)
        S = W0.shape[0]
        Wt0, HHt0 = jnp.swapaxes(W0, 1, 2), _gram(H0)
        VHt_t0 = _v_times_ht(V, H0)
        kkt0 = jnp.full((S,), jnp.nan, dtype)
        if track:
            WtW0 = _gram(Wt0)
            WtV0 = (Wt0.reshape(-1, V.shape[0]) @ V).reshape(H0.shape)
            kkt0 = _kkt_from_statistics(
                bucket_loss(b), Wt0, H0, HHt0, VHt_t0, WtW0, WtV0, bucket_active(b)
            ).astype(dtype)
        states.append(
            _driver.RunState(
                W=Wt0,  # transposed inside the loop
                H=H0,
                extra=(HHt0, VHt_t0),  # HHᵀ and (V Hᵀ)ᵀ of the current H
                it=jnp.zeros((S,), jnp.int32),
                loss=loss0,
                loss0=loss0,
                kkt=kkt0,
                kkt0=kkt0,
                history=jnp.full((S, max_iter), jnp.nan, dtype),
                kkt_history=jnp.full((S, max_iter if track else 0), jnp.nan, dtype),
                status=jnp.full((S,), _driver.Code.RUNNING, jnp.int32),
            )
        )
    return states


# Compaction. A while_loop over a bucket runs until its slowest member stops, and with a
# tolerance the members of a sweep stop at very different iterations (consensus NMF of the
# PBMC data, ranks 5..15 × 30 seeds, HALS with pg_tol=1e-4: a mean of 388 iterations and
# a maximum of 1000). A call therefore also stops once less than COMPACT_FLOOR of an
# iteration's work goes to running members; the caller packs the running ones into smaller
# buckets (:func:`compact`) and continues them in a new call. Each new shape costs a
# compilation, so only calls whose work can pay for a few compilations compact. Measured
# on that sweep (2-core Xeon, warm / cold; experiments/benchmarks/sweep_stopping.py): no
# packing and no bucket skipping 53.1 / 58.1 s, floor 1/2 37.2 / 48.7 s (11.0 s of
# compiling); floor 1/4 was about 59 s warm against 48 s for 1/2 in an earlier run on a
# slower machine.
COMPACT_FLOOR = 0.5
COMPACT_MIN_FLOPS = 2e12  # 7-20 s of GEMM on these 2-core CPUs (110-300 GFLOP/s)


def compaction_floor(V_shape, shapes, max_iter: int) -> float | None:
    """``floor`` for :func:`sweep_buckets`: COMPACT_FLOOR when the call's products with V
    (4 m n Σ S k flops an iteration, for ``max_iter`` iterations) reach
    COMPACT_MIN_FLOPS, else None (never stop early, never skip a bucket)."""
    m, n = V_shape
    work = 4.0 * m * n * sum(S * k for S, k in shapes) * max_iter
    return COMPACT_FLOOR if work >= COMPACT_MIN_FLOPS else None


def compact(states, results, groups, weights, ranks):
    """Split a call's output (host NumPy trees) into finished members and running ones.

    Args:
      states, results: :func:`sweep_buckets`'s outputs, per bucket.
      groups: per bucket, the sweep member index of each slot (-1: a padding slot).
      weights: per bucket, the loss weights ``(S,)`` of each term; ranks: per bucket ``(S,)``.

    Returns:
      ``(finished, running)``: ``finished`` a list of ``(member indices, results)`` of the
      members that have stopped, ``running`` a list of ``(indices, state, weights, ranks)``
      per bucket with running members, packed into a power-of-two number of slots; the
      extra slots repeat a running member, frozen (status MAX_ITER) and indexed -1.
    """
    finished, running = [], []
    for state, result, idx, w, r in zip(states, results, groups, weights, ranks, strict=True):
        idx = np.asarray(idx)
        live = np.asarray(state.status) == _driver.Code.RUNNING
        done = ~live & (idx >= 0)
        if done.any():
            finished.append((idx[done], _rows(result, done)))
        if not live.any():
            continue
        keep = np.flatnonzero(live)
        slots = 1 << int(len(keep) - 1).bit_length()
        take = np.concatenate([keep, np.full(slots - len(keep), keep[0])])
        packed = _rows(state, take)
        status = np.asarray(packed.status).copy()
        status[len(keep) :] = _driver.Code.MAX_ITER  # padding: frozen, never reported
        packed = packed._replace(status=status)
        new_idx = np.concatenate([idx[keep], np.full(slots - len(keep), -1)])
        running.append((new_idx, packed, _rows(tuple(w), take), _rows(r, take)))
    return finished, running


def _rows(tree, index):
    """Every leaf of ``tree`` (NumPy) indexed along its leading (member) axis."""
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


# Bytes of m × n intermediates (a member's WH or V − WH) held at once by _few_at_a_time.
_DENSE_BUDGET = 2**28


def _few_at_a_time(fn, V):
    """``fn`` mapped over the leading axis of its arguments, as many members at once as keep
    their m × n intermediates within ``_DENSE_BUDGET`` bytes (a plain vmap would hold one per
    member: 580 members of a 5000 × 1000 survey would need 11.6 GB in float32)."""
    m, n = V.shape
    batch = max(1, _DENSE_BUDGET // (m * n * V.dtype.itemsize))
    return lambda *args: jax.lax.map(lambda a: fn(*a), args, batch_size=batch)


# Below this many columns a member's Gram product is cheaper vmapped (one batched dot);
# from it on, one member at a time (lax.map) is faster on XLA:CPU, whose batched dot of
# long thin matrices runs at a fraction of the GEMM rate. Measured (2-core Xeon, float32,
# (S, r, p) -> ms): (70, 20, 64) 0.11 batched / 0.16 in sequence; (100, 15, 765) 0.99 /
# 0.76; (70, 20, 1797) 2.20 / 1.55; (1000, 20, 1000) 46.8 / 15.5.
_GRAM_SEQUENTIAL_FROM = 256


def _gram(X):
    """Every member's Gram matrix ``X Xᵀ`` ``(S, r, r)`` of its rows ``X`` ``(S, r, p)``."""
    if X.shape[2] < _GRAM_SEQUENTIAL_FROM:
        return jnp.einsum("sjp,skp->sjk", X, X)
    return jax.lax.map(lambda x: x @ x.T, X)


def _settle(running, new, old):
    """``new`` for the running members, ``old`` for the others, computed once: the
    optimization barrier keeps XLA from fusing the update into each of its consumers."""
    return jax.lax.optimization_barrier(_freeze(running, new, old))


def _freeze(running, new, old):
    """``new`` for the members still running, ``old`` for the others (leading axis)."""
    pick = lambda x, y: jnp.where(running.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
    return jax.tree.map(pick, new, old)


def _kkt(V, W, H, active, loss):
    """The final KKT residual exactly as the driver reports it (one member)."""
    problem = Problem(V, None, loss, active)
    return _driver.kkt_residual(problem, W, H)
