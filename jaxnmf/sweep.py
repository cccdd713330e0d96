"""``jaxnmf.sweep``: every (loss weights, rank, seed) member in one compiled, vmapped call.

Members are padded to the largest rank ``k_max`` with a component mask: components ``>= rank``
are exactly zero from the initial factors on and stay zero (every solver re-applies the mask).
Initial factors are drawn per component from ``fold_in(key(seed), j)``, so the result for
(rank r, seed s) does not depend on which other ranks or seeds are in the sweep, and equals
``jaxnmf.fit(V, r, seed=s, ...)``. ``V`` is shared by all members (``vmap`` with
``in_axes=None``), never copied per member.

Large grids run in chunks of ``batch_size`` members; every chunk reuses one compiled program
(the last chunk is padded by repeating a member), and ``progress`` is called between chunks.

A vmapped ``while_loop`` runs until its slowest member stops; members that have stopped are
frozen, so each keeps its own iteration count and status.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile, _driver, _fused, _memory, _scale, _sharding, _sparse, _validate
from ._driver import Code
from .api import (
    FitResult,
    Status,
    _name,
    _on_failure,
    _shape_dtype,
    check_loss_data,
    fit_member,
    prepare,
    to_result,
)
from .losses import Loss, as_loss
from .solvers._base import objective_from_grams_ok

__all__ = ["SweepResult", "heldout_mask", "sweep"]

# fold_in tag of the held-out mask's key; component keys use tags 0..k_max-1 < 2**32 - 1.
_HELDOUT_TAG = 2**32 - 1


def heldout_mask(seed, shape, fraction: float) -> np.ndarray:
    """The 0/1 fitting mask that a sweep with ``heldout=fraction`` uses for ``seed``.

    Entries drawn with probability ``fraction`` are hidden (0) during fitting and scored
    afterwards. Returns an array of ``shape`` with 1 for entries used in fitting. For sparse V
    with ``mask="stored"`` the draw is over the stored entries: ``shape`` is ``(nnz,)``, in
    the order of :meth:`SweepResult.fit_mask`'s ``rows`` and ``cols``.
    """
    key = _validate.seed_key(seed)
    return np.asarray(_heldout_keep(key, tuple(shape), fraction), dtype=np.float64)


def _heldout_keep(key, shape, fraction):
    return ~jax.random.bernoulli(jax.random.fold_in(key, _HELDOUT_TAG), fraction, shape)


def _member(
    V,
    mask,
    loss,
    key,
    rank,
    tol,
    pg_tol,
    *,
    solver,
    method,
    k_max,
    max_iter,
    track_kkt,
    heldout,
    objective_from_grams,
    eval_every=1,
):
    """One member of the sweep: optional held-out split, then :func:`fit_member`.

    Returns the final run state and, with ``heldout > 0``, the squared error and the count of
    the hidden (and observed) entries.
    """
    fit_mask = mask
    stats = ()
    sparse = isinstance(V, _sparse.SparseMatrix)
    if heldout > 0 and sparse:  # mask="stored": hide a fraction of the stored entries
        keep = _heldout_keep(key, (V.nnz,), heldout).astype(V.dtype)
        fit_mask = mask.with_values(mask.values * keep)
    elif heldout > 0:
        keep = _heldout_keep(key, V.shape, heldout).astype(V.dtype)
        fit_mask = keep if mask is None else mask * keep
    state = fit_member(
        V,
        fit_mask,
        loss,
        key,
        rank,
        None,
        None,
        tol,
        pg_tol,
        solver=solver,
        method=method,
        k_max=k_max,
        max_iter=max_iter,
        track_kkt=track_kkt,
        objective_from_grams=objective_from_grams,
        eval_every=eval_every,
    )
    if heldout > 0 and sparse:
        hidden = mask.values * (1 - keep)
        wh = _sparse.sample(state.W, state.H, V.rows, V.cols)
        stats = (jnp.sum(hidden * jnp.square(V.values - wh)), jnp.sum(hidden))
    elif heldout > 0:
        hidden = 1 - keep if mask is None else mask * (1 - keep)
        sq = jnp.sum(hidden * jnp.square(V - state.W @ state.H))
        stats = (sq, jnp.sum(hidden))
    return state, stats


@functools.partial(
    jax.jit,
    static_argnames=(
        "solver",
        "method",
        "k_max",
        "max_iter",
        "track_kkt",
        "heldout",
        "vmap_size",
        "objective_from_grams",
        "eval_every",
    ),
)
def _sweep_compiled(
    V,
    mask,
    losses,
    keys,
    ranks,
    tol,
    pg_tol,
    *,
    solver,
    method,
    k_max,
    max_iter,
    track_kkt,
    heldout,
    vmap_size,
    objective_from_grams,
    eval_every=1,
):
    """:func:`_member` over (losses, keys, ranks); V and mask are shared.

    Members run ``vmap_size`` at a time (vmapped), and the groups one after the other
    (``lax.map``). Measured on a 2-core CPU (digits, ranks 2..20 × 4 seeds, 200 MU
    iterations, float32): 6.5–7.4 s run time with groups of 4 against 16–18 s with all 76
    members vmapped at once, as the batched small products (``W (HHᵀ)``, ``WᵀW``) fall out of
    cache; and a vmapped while_loop runs until its slowest member stops, so small groups also
    waste less on early-stopping members.
    """
    member = functools.partial(
        _member,
        solver=solver,
        method=method,
        k_max=k_max,
        max_iter=max_iter,
        track_kkt=track_kkt,
        heldout=heldout,
        objective_from_grams=objective_from_grams,
        eval_every=eval_every,
    )
    batched = jax.vmap(member, in_axes=(None, None, 0, 0, 0, None, None))
    n_members = ranks.shape[0]
    if vmap_size >= n_members:
        return batched(V, mask, losses, keys, ranks, tol, pg_tol)
    groups = n_members // vmap_size  # the caller pads chunks to a multiple of vmap_size
    split = lambda x: x.reshape((groups, vmap_size, *x.shape[1:]))
    merge = lambda x: x.reshape((n_members, *x.shape[2:]))
    out = jax.lax.map(
        lambda xs: batched(V, mask, *xs, tol, pg_tol),
        jax.tree.map(split, (losses, keys, ranks)),
    )
    return jax.tree.map(merge, out)


@dataclasses.dataclass
class SweepResult:
    """All members of a sweep, stacked on leading axes ``(n_losses?, n_ranks, n_seeds)``.

    The ``n_losses`` axis exists only when ``sweep`` was given a sequence of losses.

    Attributes:
      ranks, seeds: the grid, as given.
      losses_grid: the losses (one per leading index; ``[loss]`` for a single loss).
      W: ``(..., m, k_max)`` factors (components >= rank are zero); H: ``(..., k_max, n)``.
      history: ``(..., max_iter)`` objective per iteration, NaN after each member's n_iter.
      n_iter, status_code: ``(...)`` int arrays; :meth:`status` gives names.
      final_loss: ``(...)`` objective at the result (the last finite one).
      kkt_residual: ``(...)`` projected-gradient norm at the result.
      initial_kkt_residual: ``(...)`` the same at the initial factors (NaN unless tracked,
        i.e. ``pg_tol > 0``); kkt_history: ``(..., max_iter)`` when tracked, else None.
      heldout_rmse: ``(...)`` RMSE on the hidden entries (NaN when ``heldout == 0``).
      heldout: the hidden fraction; V, mask: the data the sweep saw (V with masked entries
        zeroed), kept for metrics and rank selection.
      Every array is in the user's units (the members were fitted on V / max V, see
      :mod:`jaxnmf._scale`); the per-member scalars are float64, the factors and histories
      keep the compute dtype.
      wall_time, compile_time: seconds (compile measured by ahead-of-time lowering; 0 when
        an earlier call with the same shapes compiled the program).
    """

    ranks: np.ndarray
    seeds: np.ndarray
    losses_grid: list
    W: np.ndarray
    H: np.ndarray
    history: np.ndarray
    n_iter: np.ndarray
    status_code: np.ndarray
    final_loss: np.ndarray
    initial_loss: np.ndarray
    kkt_residual: np.ndarray
    heldout_rmse: np.ndarray
    heldout: float
    V: np.ndarray
    mask: np.ndarray | None
    solver: object
    single_loss: bool
    wall_time: float = 0.0
    compile_time: float = 0.0
    initial_kkt_residual: np.ndarray | None = None
    kkt_history: np.ndarray | None = None

    def __repr__(self) -> str:
        codes, counts = np.unique(self.status_code, return_counts=True)
        status = {str(Status.from_code(c)): int(n) for c, n in zip(codes, counts, strict=True)}
        grid = self.losses_grid
        if len(grid) > 3:  # a long penalty grid: its ends and its length
            grid = f"[{grid[0]!r}, ..., {grid[-1]!r}] ({len(grid)} losses)"
        losses = f"loss={grid[0]!r}" if self.single_loss else f"losses_grid={grid}"
        return (
            f"SweepResult(ranks={list(map(int, self.ranks))}, seeds={list(map(int, self.seeds))}"
            f", {losses}, solver={_name(self.solver)!r}, "
            f"status={status}, W={_shape_dtype(self.W)}, H={_shape_dtype(self.H)}, "
            f"wall_time={self.wall_time:.3g} s, compile_time={self.compile_time:.3g} s)"
        )

    def _index(self, rank, seed, loss_index):
        ranks, seeds = list(self.ranks), list(self.seeds)
        if rank not in ranks:
            raise KeyError(f"rank {rank} is not in this sweep's ranks {ranks}")
        if seed not in seeds:
            raise KeyError(f"seed {seed} is not in this sweep's seeds {seeds}")
        idx = (ranks.index(rank), seeds.index(seed))
        return idx if self.single_loss else (loss_index, *idx)

    def status(self) -> np.ndarray:
        """Status names, same shape as ``final_loss``."""
        names = np.vectorize(lambda c: str(Status.from_code(c)))
        return names(self.status_code)

    def result(self, rank: int, seed: int, loss_index: int = 0) -> FitResult:
        """The :class:`FitResult` of one member, exactly as ``jaxnmf.fit`` reports it (built
        by the same :func:`jaxnmf.api.to_result` from the member's final state)."""
        i = self._index(rank, seed, loss_index)
        nan = np.full((), np.nan)
        member = _driver.RunState(
            W=self.W[i][:, :rank],
            H=self.H[i][:rank],
            extra=(),
            it=self.n_iter[i],
            loss=self.final_loss[i],
            loss0=self.initial_loss[i],
            kkt=self.kkt_residual[i],
            kkt0=nan if self.initial_kkt_residual is None else self.initial_kkt_residual[i],
            history=self.history[i],
            kkt_history=np.zeros(0) if self.kkt_history is None else self.kkt_history[i],
            status=self.status_code[i],
        )
        return to_result(member, self.solver, self.losses_grid[loss_index])

    def fit_mask(self, seed: int) -> np.ndarray | None:
        """The weights the members of ``seed`` were fitted with (user mask × held-out split)."""
        if self.heldout == 0:
            return self.mask
        if isinstance(self.V, _sparse.SparseMatrix):  # weights at the stored entries
            keep = heldout_mask(int(seed), (self.V.nnz,), self.heldout)
            return self.mask.with_values(self.mask.values * keep.astype(self.V.dtype))
        keep = heldout_mask(int(seed), self.V.shape, self.heldout)
        return keep if self.mask is None else self.mask * keep


def _stack_losses(losses: Sequence[Loss], dtype):
    terms = losses[0].terms
    for loss in losses[1:]:
        if loss.terms != terms:
            raise ValueError(
                "every loss of a sweep's grid must have the same terms (only weights may "
                f"differ); got {losses[0]!r} and {loss!r}"
            )
    weights = np.array([[float(w) for w in loss.weights] for loss in losses], dtype)
    return terms, weights


def sweep(
    V,
    ranks,
    seeds=range(1),
    *,
    loss="frobenius",
    solver="mu",
    init="random",
    max_iter: int = 200,
    tol: float = 1e-4,
    mask=None,
    pg_tol: float = 0.0,
    heldout: float = 0.0,
    batch_size: int | None = None,
    vmap_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
    on_failure: str = "ignore",
    devices=None,
    eval_every: int = 1,
) -> SweepResult:
    """Fit every (loss, rank, seed) member in one compiled, vmapped program.

    Args:
      V: data ``(m, n)``, dense or sparse (see :func:`jaxnmf.fit`).
      ranks: iterable of ranks, each in ``1..min(m, n)``.
      seeds: iterable of non-negative integer seeds.
      loss: one loss (name, β, or :class:`~jaxnmf.losses.Loss`), or a sequence of Loss
        objects with the same terms and different weights: a penalty grid, run in the same
        call (then results carry a leading ``n_losses`` axis).
      solver, init, max_iter, tol, mask, pg_tol, eval_every: as in :func:`jaxnmf.fit`
        (``init`` by name).
      heldout: fraction of the observed entries hidden from fitting (a different random split
        per seed) and scored afterwards: speckled cross-validation (0 disables). Sparse V
        needs ``mask="stored"`` for it: a fraction of the stored entries is hidden.
      batch_size: members per compiled call (default: all, or fewer to keep the per-call
        working set near 2 GiB).
      vmap_size: members vmapped together inside a call; groups run one after another
        (see :func:`_sweep_compiled` for why 4).
      progress: called as ``progress(done, total)`` after each chunk.
      on_failure: ``"ignore"`` (default: one diverging member must not discard a sweep; its
        status says so), ``"warn"`` or ``"raise"``.
      devices: ``None`` (one device), an int or a list of devices: the members of each chunk
        are split across them, V is replicated (see :mod:`jaxnmf._sharding`).

    Returns:
      A :class:`SweepResult`; ``result(rank=r, seed=s)`` equals ``jaxnmf.fit(V, r, seed=s)``.

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> V = np.random.default_rng(0).random((20, 12)).astype(np.float32)
      >>> sw = jn.sweep(V, ranks=[2, 3, 4], seeds=range(2), max_iter=20)
      >>> sw.final_loss.shape
      (3, 2)
    """
    single_loss = not isinstance(loss, (list, tuple))
    loss_list = [as_loss(loss)] if single_loss else [as_loss(x) for x in loss]
    if not loss_list:
        raise ValueError("loss: an empty list of losses")
    V, mask, _, solver, dtype = prepare(V, None, loss_list[0], solver, mask)
    for other in loss_list[1:]:  # the same checks for every point of a penalty grid
        solver.check(other, mask is not None)
        check_loss_data(other, V, mask)
    # Members are fitted on V / max V, as fit does (see jaxnmf._scale); results are mapped back.
    scaling = _scale.data_scale(V, mask, loss_list[0])
    V_user = V
    V = scaling.data(V)
    m, n = V.shape
    ranks = [_validate.rank(r, m, n, "ranks") for r in ranks]
    if not ranks:
        raise ValueError("ranks is empty")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    keys = [_validate.seed_key(s) for s in seeds]
    # A member is named by its (rank, seed): a repeated one would make result() ambiguous and
    # count twice in rank selection's consensus.
    _validate.distinct(ranks, "ranks")
    _validate.distinct(seeds, "seeds")
    if not isinstance(init, str):
        raise TypeError("sweep needs an init method name (a pair (W0, H0) has one rank)")
    method, _, _ = _validate.init_spec(init, m, n, 1, dtype)
    max_iter, tol, pg_tol, eval_every, on_failure = _validate.run_options(
        max_iter, tol, pg_tol, eval_every, on_failure
    )
    heldout = _validate.non_negative_float(heldout, "heldout")
    if heldout >= 1:
        raise ValueError(f"heldout must be a fraction in [0, 1), got {heldout}")
    sparse = isinstance(V, _sparse.SparseMatrix)
    if heldout > 0 and sparse and mask is None:
        raise ValueError(
            "heldout with sparse V hides a fraction of the stored entries, which needs "
            "mask='stored' (unstored entries missing); without a mask every unstored zero "
            "is data, and hiding some of them would densify V"
        )
    terms, weights = _stack_losses([scaling.loss(x.astype(dtype)) for x in loss_list], dtype)
    k_max = max(ranks)
    track_kkt = pg_tol > 0

    devices = _sharding.resolve(devices)
    # The batched-GEMM path evaluates its (Gram-form, cheap) objective every iteration.
    fused = eval_every == 1 and _fused.eligible(
        V, mask, loss_list[0], solver, heldout, track_kkt, devices
    )
    if fused:
        return _sweep_fused(
            V,
            ranks,
            seeds,
            keys,
            loss_list,
            terms,
            weights,
            solver,
            method,
            max_iter,
            tol,
            batch_size,
            progress,
            on_failure,
            single_loss,
            scaling,
            V_user,
        )

    # Flat member list in (loss, rank, seed) order.
    grid = [(li, r, si) for li in range(len(loss_list)) for r in ranks for si in range(len(seeds))]
    total = len(grid)
    masked, entries = mask is not None or heldout > 0, V.nnz if sparse else m * n
    per_member = _member_bytes(m, n, k_max, max_iter, dtype, masked, entries)
    if batch_size is None:
        batch_size = _auto_batch(per_member, total)
    batch_size = _validate.positive_int(batch_size, "batch_size")
    batch_size = min(batch_size, total)
    n_dev = 1 if devices is None else len(devices)
    _memory.check(
        per_member * batch_size // n_dev + 2 * entries * np.dtype(dtype).itemsize,
        f"a sweep call of {batch_size} members on a {m} × {n} {np.dtype(dtype).name} V",
    )
    vmap_size = min(_validate.positive_int(vmap_size, "vmap_size"), batch_size)
    batch_size = -(-batch_size // vmap_size) * vmap_size  # whole groups per call
    member_mesh = None
    mask_host = mask
    if devices is not None:
        member_mesh = _sharding.mesh(devices, "members")
        # one group per device and call: the member axis is split, not scanned
        batch_size = vmap_size = -(-batch_size // len(devices)) * len(devices)
        V = _sharding.replicate(V, member_mesh)
        if mask is not None:
            mask = _sharding.replicate(mask, member_mesh)

    static = dict(
        solver=solver,
        method=method,
        k_max=k_max,
        max_iter=max_iter,
        track_kkt=track_kkt,
        heldout=heldout,
        vmap_size=vmap_size,
        objective_from_grams=objective_from_grams_ok(tol),
        eval_every=eval_every,
    )
    tol_a, pg_tol_a = np.asarray(tol, dtype), np.asarray(pg_tol, dtype)
    key_data = jnp.stack([jax.random.key_data(k) for k in keys])

    def chunk_args(chunk):
        chunk = chunk + [chunk[-1]] * (batch_size - len(chunk))  # pad: one compiled shape
        losses = Loss(
            terms, tuple(jnp.asarray(weights[[c[0] for c in chunk], t]) for t in range(len(terms)))
        )
        member_keys = jax.random.wrap_key_data(key_data[np.array([c[2] for c in chunk])])
        member_ranks = jnp.asarray([c[1] for c in chunk], jnp.int32)
        if member_mesh is not None:
            losses, member_keys, member_ranks = _sharding.split_leading(
                (losses, member_keys, member_ranks), member_mesh
            )
        return V, mask, losses, member_keys, member_ranks, tol_a, pg_tol_a

    t0 = time.perf_counter()
    compiled, compile_time = _compile.compiled(
        _sweep_compiled, chunk_args(grid[:batch_size]), static
    )
    outputs = []
    for start in range(0, total, batch_size):
        chunk = grid[start : start + batch_size]
        state, stats = compiled(*chunk_args(chunk))
        state, stats = jax.device_get(_sharding.gather((state, stats)))
        n_real = len(chunk)  # drop the padding members
        outputs.append(jax.tree.map(lambda x: x[:n_real], (state, stats)))  # noqa: B023
        if progress is not None:
            progress(min(start + batch_size, total), total)
    state, stats = jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
    state = scaling.run_state(state)
    wall = time.perf_counter() - t0

    shape = (len(loss_list), len(ranks), len(seeds))

    def grid_shape(x):
        x = np.asarray(x).reshape(shape + np.shape(x)[1:])
        return x[0] if single_loss else x

    if heldout > 0:
        sq, count = stats
        rmse = np.sqrt(sq / np.maximum(count, 1))
    else:
        rmse = np.full(total, np.nan)
    result = SweepResult(
        ranks=np.asarray(ranks),
        seeds=np.asarray(seeds),
        losses_grid=loss_list,
        W=grid_shape(state.W),
        H=grid_shape(state.H),
        history=grid_shape(state.history),
        n_iter=grid_shape(state.it),
        status_code=grid_shape(state.status),
        final_loss=grid_shape(state.loss),
        initial_loss=grid_shape(state.loss0),
        kkt_residual=grid_shape(state.kkt),
        initial_kkt_residual=grid_shape(state.kkt0),
        kkt_history=grid_shape(state.kkt_history) if track_kkt else None,
        heldout_rmse=grid_shape(scaling.rmse(rmse)),
        heldout=heldout,
        V=V_user,
        mask=mask_host,
        solver=solver,
        single_loss=single_loss,
        wall_time=wall,
        compile_time=compile_time,
    )
    _report_failures(result, on_failure, total)
    return result


def _sweep_fused(
    V,
    ranks,
    seeds,
    keys,
    loss_list,
    terms,
    weights,
    solver,
    method,
    max_iter,
    tol,
    batch_size,
    progress,
    on_failure,
    single_loss,
    scaling,
    V_user,
):
    """:func:`sweep` on the batched-GEMM path of :mod:`jaxnmf._fused` (Frobenius family,
    dense V, no mask). Members are sorted by rank and run ``batch_size`` at a time (default:
    a working set near 2 GiB per call); within a call they are grouped into rank buckets."""
    m, n = V.shape
    dtype = V.dtype
    # (loss, rank, seed) of every member, in grid order; run in order of rank
    grid = [(li, r, si) for li in range(len(loss_list)) for r in ranks for si in range(len(seeds))]
    total = len(grid)
    by_rank_order = sorted(range(total), key=lambda i: (grid[i][1], i))
    item = np.dtype(dtype).itemsize
    if batch_size is None:
        # per member of rank r: factors, products and ratios (~8 (m + n) r) and the history
        budget, chunks, size = 2 * 2**30, [[]], 0
        for i in by_rank_order:
            cost = item * (8 * (m + n) * grid[i][1] + max_iter)
            if chunks[-1] and size + cost > budget:
                chunks.append([])
                size = 0
            chunks[-1].append(i)
            size += cost
    else:
        batch_size = _validate.positive_int(batch_size, "batch_size")
        chunks = [by_rank_order[i : i + batch_size] for i in range(0, total, batch_size)]
    tol_a = np.asarray(tol, dtype)
    seed_keys = jax.random.wrap_key_data(jnp.stack([jax.random.key_data(k) for k in keys]))
    # Objective from Gram products in float64, and in float32 where the stopping rule can
    # trust it (as in fit): the iterates are the same either way.
    from_grams = dtype == np.float64 or objective_from_grams_ok(tol)
    k_max = max(ranks)
    t0 = time.perf_counter()
    compile_time = 0.0
    results = [None] * total  # per member: its final RunState
    done = 0
    for chunk in chunks:
        buckets = _fused.plan_buckets([grid[i][1] for i in chunk])
        members = [[i for i in chunk if grid[i][1] in bucket] for bucket in buckets]
        order = [i for group in members for i in group]  # bucket order
        member_seed = jnp.asarray([grid[i][2] for i in order], jnp.int32)
        member_ranks = jnp.asarray([grid[i][1] for i in order], jnp.int32)
        w = weights[[grid[i][0] for i in order]]
        losses = Loss(terms, tuple(jnp.asarray(w[:, t]) for t in range(len(terms))))
        shapes = tuple((len(group), max(b)) for b, group in zip(buckets, members, strict=True))
        init_args = (V, seed_keys, member_seed, member_ranks)
        initial, seconds = _compile.compiled(
            _fused.initial_factors, init_args, dict(method=method, buckets=shapes), _compile.QUICK
        )
        compile_time += seconds
        W0s, H0s = initial(*init_args)
        args = (V, losses, W0s, H0s, member_ranks, tol_a)
        static = dict(solver=solver, max_iter=max_iter, objective_from_grams=bool(from_grams))
        compiled, seconds = _compile.compiled(_fused.sweep_buckets, args, static)
        compile_time += seconds
        states = jax.device_get(compiled(*args))
        for group, state in zip(members, states, strict=True):
            for j, i in enumerate(group):
                results[i] = scaling.run_state(jax.tree.map(lambda x: x[j], state))  # noqa: B023
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    wall = time.perf_counter() - t0

    shape = (len(loss_list), len(ranks), len(seeds))

    def stack(field, pad_axis=None):
        xs = [np.asarray(getattr(res, field)) for res in results]
        if pad_axis is not None:
            widths = [[(0, 0), (0, 0)] for _ in xs]
            for x, wd in zip(xs, widths, strict=True):
                wd[pad_axis] = (0, k_max - x.shape[pad_axis])
            xs = [np.pad(x, wd) for x, wd in zip(xs, widths, strict=True)]
        x = np.stack(xs).reshape(shape + xs[0].shape)
        return x[0] if single_loss else x

    result = SweepResult(
        ranks=np.asarray(ranks),
        seeds=np.asarray(seeds),
        losses_grid=loss_list,
        W=stack("W", 1),
        H=stack("H", 0),
        history=stack("history"),
        n_iter=stack("it"),
        status_code=stack("status"),
        final_loss=stack("loss"),
        initial_loss=stack("loss0"),
        kkt_residual=stack("kkt"),
        heldout_rmse=np.full(stack("loss").shape, np.nan),
        heldout=0.0,
        V=V_user,
        mask=None,
        solver=solver,
        single_loss=single_loss,
        wall_time=wall,
        compile_time=compile_time,
    )
    _report_failures(result, on_failure, total)
    return result


def _report_failures(result, on_failure, total):
    for code in (Code.NONFINITE, Code.DIVERGED):
        n_bad = int(np.sum(result.status_code == code))
        if n_bad:
            status = Status.from_code(code)
            _on_failure(status, on_failure, f"sweep: {n_bad} of {total} members")


def _member_bytes(m, n, k_max, max_iter, dtype, masked, entries) -> int:
    """Working set of one vmapped member: factors and their gradients (~6 (m + n) k_max), the
    history, and the m×n temporaries that β ≠ 2 losses, masks and HALS-with-mask form
    (~4 m n); for sparse V, ``entries`` (nnz) replaces m n."""
    item = np.dtype(dtype).itemsize
    return item * (6 * (m + n) * k_max + max_iter + (4 * entries if masked else 2 * entries))


def _auto_batch(per_member: int, total: int, budget: int = 2 * 2**30) -> int:
    """Members per call so that one call's working set stays near ``budget`` bytes (or half
    the free memory, when less is free)."""
    free = _memory.available_bytes()
    if free is not None:
        budget = min(budget, free // 2)
    return int(max(1, min(total, budget // max(per_member, 1))))
