"""``jaxnmf.sweep``: every (loss weights, rank, seed) member in one compiled call.

Members are padded with a component mask to the largest rank of their compiled program (one
program per bucket of neighbouring ranks where the executor splits them; the results come back
padded to the sweep's largest rank ``k_max``): components ``>= rank`` are exactly zero from the
initial factors on and stay zero (every solver re-applies the mask).
Initial factors are drawn per component from ``fold_in(key(seed), j)``, so the result for
(rank r, seed s) does not depend on which other ranks or seeds are in the sweep, and equals
``jaxnmf.fit(V, r, seed=s, ...)``. ``V`` is shared by all members (``vmap`` with
``in_axes=None``), never copied per member.

Large grids run in chunks of ``batch_size`` members; every chunk of a program reuses it (the
last chunk is padded by repeating a member), and ``progress`` is called between chunks.

A vmapped ``while_loop`` runs until its slowest member stops; members that have stopped are
frozen, so each keeps its own iteration count and status.

Two executors, both through the one compiled entry :func:`jaxnmf._run.run_compiled`: the
general one (:func:`_sweep_general`, any loss, mask, solver, sparse V, ``devices=``) and the
batched one (:func:`_sweep_fused`, Frobenius family on dense V without mask: one GEMM with
the shared V for all members of a rank bucket). Their pieces are put in grid order by one
function, and :meth:`SweepResult.result` builds a member's result as :func:`jaxnmf.fit` does.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile, _driver, _fused, _memory, _run, _sharding, _sparse, _validate
from ._driver import Code
from .api import (
    FitResult,
    Status,
    _name,
    _on_failure,
    _shape_dtype,
    check_loss_data,
    request,
    to_result,
)
from .losses import Loss, as_loss
from .solvers._base import is_quadratic
from .solvers._hals import HALSBlock
from .solvers._schedules import Alternating

__all__ = ["SweepResult", "heldout_mask", "sweep"]


def heldout_mask(seed, shape, fraction: float) -> np.ndarray:
    """The 0/1 fitting mask that a sweep with ``heldout=fraction`` uses for ``seed``.

    Entries drawn with probability ``fraction`` are hidden (0) during fitting and scored
    afterwards. Returns an array of ``shape`` with 1 for entries used in fitting. For sparse V
    with ``mask="stored"`` the draw is over the stored entries: ``shape`` is ``(nnz,)``, in
    the order of :meth:`SweepResult.fit_mask`'s ``rows`` and ``cols``.
    """
    key = _validate.seed_key(seed)
    return np.asarray(_run.heldout_keep(key, tuple(shape), fraction), dtype=np.float64)


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
      perturb: None, or how each seed's members perturbed V (``sweep(perturb=...)``): their
        results are fits of the perturbed data, not of ``V``.
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
    perturb: str | None = None

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


def _check_same_terms(losses: Sequence[Loss]) -> None:
    """A penalty grid is one loss with several weightings: the same terms in every point."""
    for loss in losses[1:]:
        if loss.terms != losses[0].terms:
            raise ValueError(
                "every loss of a sweep's grid must have the same terms (only weights may "
                f"differ); got {losses[0]!r} and {loss!r}: give a term that some points lack "
                "weight 0 there, e.g. frobenius() + 0 * l1('H')"
            )


def _stack_losses(losses: Sequence[Loss], dtype):
    """``(terms, weights (n_losses, n_terms))`` of a grid :func:`_check_same_terms` passed."""
    weights = np.array([[float(w) for w in loss.weights] for loss in losses], dtype)
    return losses[0].terms, weights


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
    vmap_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_failure: str = "ignore",
    devices=None,
    eval_every: int = 1,
    perturb: str | None = None,
) -> SweepResult:
    """Fit every (loss, rank, seed) member in one compiled program.

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
      vmap_size: members vmapped together inside a call on the general executor; groups
        run one after another. Default (None): on the CPU 1, members in sequence, each
        unbatched and in programs of neighbouring ranks (:func:`default_vmap_size` gives
        the measurements); on other backends 4 for Frobenius-family losses and 1 for other
        losses. Solvers whose iterates are sensitive to the rounding of batched products
        always run with 1 (see :func:`_sweep_general`).
      progress: called as ``progress(done, total)`` after each chunk.
      on_failure: ``"ignore"`` (default: one diverging member must not discard a sweep; its
        status says so), ``"warn"`` or ``"raise"``.
      devices: ``None`` (one device), an int or a list of devices: the members of each chunk
        are split across them, V is replicated (see :mod:`jaxnmf._sharding`).
      perturb: replicates by perturbed data, drawn inside the compiled call from each seed's
        key and shared by that seed's ranks: ``"poisson"`` (the members of seed s fit
        ``Poisson(V)``, counts resampled entry by entry; stored entries only for sparse V)
        or ``"bootstrap"`` (they fit V's rows drawn with replacement, dense V; their W
        rows follow the drawn rows). None (default): every member fits V. The members'
        objectives and held-out errors are those of their perturbed data.

    Returns:
      A :class:`SweepResult`; ``result(rank=r, seed=s)`` equals ``jaxnmf.fit(V, r, seed=s)``
      (with ``perturb``: the fit of seed s's perturbed data).

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
    if not isinstance(init, str):
        raise TypeError("sweep needs an init method name (a pair (W0, H0) has one rank)")
    req = request(
        V, None, loss=loss_list[0], solver=solver, mask=mask, init=init, max_iter=max_iter,
        tol=tol, pg_tol=pg_tol, eval_every=eval_every, on_failure=on_failure, check_rank=False,
    )  # fmt: skip
    _check_same_terms(loss_list)
    for other in loss_list[1:]:  # the same checks for every point of a penalty grid
        req.solver.check(other, req.mask is not None)
        check_loss_data(other, req.V_user, req.mask)
    m, n = req.V.shape
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
    heldout = _validate.non_negative_float(heldout, "heldout")
    if heldout >= 1:
        raise ValueError(f"heldout must be a fraction in [0, 1), got {heldout}")
    sparse = isinstance(req.V, _sparse.SparseMatrix)
    _check_perturb(perturb, req, sparse, loss_list)
    if heldout > 0 and sparse and req.mask is None:
        raise ValueError(
            "heldout with sparse V hides a fraction of the stored entries, which needs "
            "mask='stored' (unstored entries missing); without a mask every unstored zero "
            "is data, and hiding some of them would densify V"
        )
    # Members are fitted on V / max V, as fit does (see jaxnmf._scale); results are mapped back.
    fit_losses = [req.scaling.loss(x.astype(req.dtype)) for x in loss_list]
    terms, weights = _stack_losses(fit_losses, req.dtype)
    # (loss, rank, seed) of every member, in grid order
    grid = [(li, r, si) for li in range(len(loss_list)) for r in ranks for si in range(len(seeds))]
    devices = _sharding.resolve(devices)
    # The batched-GEMM path evaluates its (Gram-form, cheap) objective every iteration.
    fused = (
        eval_every == 1
        and perturb is None  # the batched executor shares one V between its members
        and _fused.eligible(req.V, req.mask, loss_list[0], req.solver, heldout, devices)
    )
    t0 = time.perf_counter()
    member_batch = _MemberBatch(terms, weights, keys, grid)
    if fused:
        pieces, compile_time = _sweep_fused(req, member_batch, batch_size, progress)
    else:
        pieces, compile_time = _sweep_general(
            req, member_batch, heldout, batch_size, vmap_size, progress, devices, perturb
        )
    shape = (len(loss_list), len(ranks), len(seeds))
    state, stats = _in_grid_order(pieces, max(ranks))
    state = req.scaling.run_state(state)
    wall = time.perf_counter() - t0

    def grid_shape(x):
        x = np.asarray(x).reshape(shape + np.shape(x)[1:])
        return x[0] if single_loss else x

    if heldout > 0:
        sq, count = stats
        rmse = np.sqrt(sq / np.maximum(count, 1))
    else:
        rmse = np.full(len(grid), np.nan)
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
        kkt_history=grid_shape(state.kkt_history) if req.track_kkt else None,
        heldout_rmse=grid_shape(req.scaling.rmse(rmse)),
        heldout=heldout,
        V=req.V_user,
        mask=req.mask,
        solver=req.solver,
        single_loss=single_loss,
        wall_time=wall,
        compile_time=compile_time,
        perturb=perturb,
    )
    _report_failures(result, req.options.on_failure, len(grid))
    return result


@dataclasses.dataclass(frozen=True)
class _MemberBatch:
    """The members of a sweep: loss terms, the ``(n_losses, n_terms)`` weight grid, one key
    per seed and the ``(loss index, rank, seed index)`` of every member in grid order."""

    terms: tuple
    weights: np.ndarray
    keys: list
    grid: list

    def member(self, indices, keys: bool = True) -> _run.Member:
        """The :class:`~jaxnmf._run.Member` inputs of ``grid[i]`` for i in ``indices``,
        stacked (the keys and given factors left None when ``keys`` is False)."""
        picked = [self.grid[i] for i in indices]
        w = self.weights[[c[0] for c in picked]]
        loss = Loss(self.terms, tuple(jnp.asarray(w[:, t]) for t in range(len(self.terms))))
        ranks = jnp.asarray([c[1] for c in picked], jnp.int32)
        if not keys:
            return _run.Member(loss, rank=ranks)
        key_data = jnp.stack([jax.random.key_data(self.keys[c[2]]) for c in picked])
        return _run.Member(loss, jax.random.wrap_key_data(key_data), ranks)


def _check_perturb(perturb, req, sparse: bool, losses) -> None:
    """Host-side checks of ``sweep(perturb=...)``, before anything compiles."""
    if perturb is None:
        return
    if perturb not in _run.PERTURBATIONS:
        raise ValueError(f"perturb must be None or one of {_run.PERTURBATIONS}, got {perturb!r}")
    if perturb == "bootstrap" and (sparse or req.mask is not None):
        raise ValueError(
            "perturb='bootstrap' needs dense V without a mask (a row bootstrap of sparse V "
            "changes its number of stored entries; a mask would have to be drawn with it)"
        )
    if perturb == "poisson" and any(b <= 0 for loss in losses for b in loss.beta_values):
        raise ValueError(
            "perturb='poisson' draws zeros, and a β-divergence with β <= 0 needs V > 0"
        )


def _sweep_general(req, members, heldout, batch_size, vmap_size, progress, devices, perturb):
    """The general executor: every member is :func:`jaxnmf._run.run_compiled`'s ``"run"``
    mode, vmapped ``vmap_size`` at a time, ``batch_size`` members per call (the last call
    padded by repeating a member, so that one compiled program serves every call).

    Members run padded to the largest rank of their program: members in sequence (below)
    in up to :data:`SEQUENTIAL_MAX_BUCKETS` programs of neighbouring ranks, vmapped groups
    in one. Solvers whose iterates take discrete decisions on rounded values
    (``exact_width``: Lin's Armijo search) run one member at a time (``vmap_size=1``):
    XLA:CPU folds a vmapped product with the shared V into one GEMM whose rounding changed
    with the padded width (``V Hᵀ`` over 4 members, widths 7 and 12: 3.8e-6 apart in
    float32, where single products at both widths agreed bit for bit), and one flipped
    accept/reject moved a float32 PG member by 1e-2 from its :func:`jaxnmf.fit`.

    Returns ``(pieces, compile seconds)``; a piece is ``(member indices, batched final
    RunState, held-out stats)``.
    """
    grid = members.grid
    if vmap_size is None:
        dense_mask = (req.mask is not None or heldout > 0) and not isinstance(
            req.V, _sparse.SparseMatrix
        )
        vmap_size = default_vmap_size(req.loss, req.solver, dense_mask=dense_mask)
    # Members in sequence (below): padding is pure waste there, so they run in buckets of
    # neighbouring ranks, one program each; vmapped groups stay at the largest rank. Not
    # for exact_width solvers: a float32 PG member with a mask (the test of "drift 4"),
    # run in sequence with one other member at width 4, ended 3e-3 from its fit at XLA's
    # optimization level 0 (at width 7, or alone, it matched bit for bit).
    sequential = (
        devices is None and vmap_size == 1 and not getattr(req.solver, "exact_width", False)
    )
    ranks = [r for _, r, _ in grid]
    buckets = _fused.plan_buckets(ranks, SEQUENTIAL_MAX_BUCKETS) if sequential else [ranks]
    bucket_of = {r: b for b, bucket in enumerate(buckets) for r in bucket}
    plans = [
        _plan_general(
            req,
            members,
            [i for i, r in enumerate(ranks) if bucket_of[r] == b],
            heldout,
            batch_size,
            vmap_size,
            devices,
            perturb,
        )
        for b in range(len(buckets))
    ]
    executables, compile_time = [], 0.0
    for plan in plans:
        args = plan.call_args(plan.indices[: plan.batch_size])
        compiled, seconds = _compile.compiled(_run.run_compiled, args, dict(spec=plan.spec))
        executables.append(compiled)
        compile_time += seconds
    pieces, done = [], 0
    for plan, compiled in zip(plans, executables, strict=True):
        for lo in range(0, len(plan.indices), plan.batch_size):
            chunk = plan.indices[lo : lo + plan.batch_size]
            state, stats = compiled(*plan.call_args(chunk))
            state, stats = jax.device_get(_sharding.gather((state, stats)))
            n_real = len(chunk)  # drop the padding members
            keep = lambda x: x[:n_real]  # noqa: B023
            pieces.append((chunk, *jax.tree.map(keep, (state._replace(extra=()), stats))))
            done += n_real
            if progress is not None:
                progress(done, len(grid))
    return pieces, compile_time


# Members vmapped together on the general executor, by default. On XLA:CPU members in
# sequence (each unbatched, as fit runs it, in up to SEQUENTIAL_MAX_BUCKETS programs of
# neighbouring ranks) beat vmapped groups of 4, or matched them, for every loss and data
# kind measured (digits, ranks 2..20 × 5 seeds, 200 iterations, tol 0, float32, warm,
# 2-core AMD EPYC, 2026-12-03): heldout=0.1 MU 7.7 s against 11.2 s with groups of 4,
# heldout=0.1 HALS (masked="impute") 6.7 against 15.0, a user mask with MU 7.9 against 9.4,
# Poisson replicates with HALS 6.9 against 8.4 (with MU 8.4 against 8.2), sparse V with MU
# 25.6 against 77.9, eval_every=5 MU 4.4 against 4.8; a KL survey (MU, eval_every=1) 11.0
# against 12.7 (2026-12-02). XLA:CPU runs vmapped small products (the factors' Gram
# products and their products with the factors) far below its single products' rate.
# On accelerators batching pays, so they keep groups of 4 for Frobenius-family losses
# (not re-measured there: no GPU was lent for this work); β ≠ 2 losses run in sequence
# there too (their m × n temporaries per member). The exception on the CPU: HALS's exact
# masked coordinate descent (k passes over the m × n residual and mask per factor update,
# element-wise work, not small products) ran faster vmapped: heldout=0.1 54 s with groups of
# 4 against 69 s one member at a time (same grid, 2026-12-03).
def default_vmap_size(loss, solver=None, *, dense_mask: bool = False) -> int:
    """The general executor's default ``vmap_size`` for ``loss`` and ``solver`` on the
    default backend; ``dense_mask``: dense V with a mask or a held-out split (see the
    measurements above)."""
    if jax.default_backend() == "cpu":
        return 4 if dense_mask and _runs_exact_masked_hals(solver) else 1
    return 4 if is_quadratic(loss) else 1


def _runs_exact_masked_hals(solver) -> bool:
    """Whether a block of ``solver`` takes a mask by HALS's exact masked coordinate descent."""
    if isinstance(solver, Alternating):
        blocks = [solver.block(f) for f in "WH"]
    else:
        blocks = [getattr(solver, "block", None)]  # a one-side schedule's block
    return any(isinstance(b, HALSBlock) and b.masked == "exact" for b in blocks)


# Buckets of neighbouring ranks for members that run in sequence (every loss on the CPU by
# default). Measured on the 2-core Xeon, digits KL survey (ranks 2..20 × 5 seeds, MU, 200 it.,
# eval_every=10), float32: one program at rank 20, 6.88 s warm / 8.16 s cold; two buckets
# 5.66 / 8.41; three 5.69 / 9.55 (each program compiles for about 1.3 s; compiling them in
# threads gained nothing, as XLA:CPU's compiler uses both cores already). Vmapped groups
# (accelerators' default for Frobenius-family losses) keep one program: three buckets of
# groups of 4 gained little on the CPU (held-out MU survey: 9.36 → 9.04 s warm) and
# compiled 2.0 → 5.8 s.
SEQUENTIAL_MAX_BUCKETS = 2


class _GeneralPlan(NamedTuple):
    """One compiled program of the general executor: its members (grid positions), the
    members per call, the :class:`~jaxnmf._run.RunSpec` and ``call_args(chunk)``."""

    indices: list
    batch_size: int
    spec: Any
    call_args: Any


def _plan_general(req, members, indices, heldout, batch_size, vmap_size, devices, perturb):
    """The :class:`_GeneralPlan` of the members ``indices``, padded to their largest rank."""
    V, mask, dtype = req.V, req.mask, req.dtype
    m, n = V.shape
    grid = members.grid
    k_max = max(grid[i][1] for i in indices)
    sparse = isinstance(V, _sparse.SparseMatrix)
    masked, entries = mask is not None or heldout > 0, V.nnz if sparse else m * n
    total = len(indices)
    per_member = _member_bytes(m, n, k_max, req.options.max_iter, dtype, masked, entries)
    if perturb is not None:  # each member's perturbed copy of V
        per_member += entries * np.dtype(dtype).itemsize
    if batch_size is None:
        batch_size = _auto_batch(per_member, total)
    batch_size = min(_validate.positive_int(batch_size, "batch_size"), total)
    n_dev = 1 if devices is None else len(devices)
    _memory.check(
        per_member * batch_size // n_dev + 2 * entries * np.dtype(dtype).itemsize,
        f"a sweep call of {batch_size} members on a {m} × {n} {np.dtype(dtype).name} V",
    )
    vmap_size = min(_validate.positive_int(vmap_size, "vmap_size"), batch_size)
    batch_size = -(-batch_size // vmap_size) * vmap_size  # whole groups per call
    member_mesh = None
    if devices is not None:
        member_mesh = _sharding.mesh(devices, "members")
        # one group per device and call: the member axis is split, not scanned
        batch_size = vmap_size = -(-batch_size // n_dev) * n_dev
        V = _sharding.replicate(V, member_mesh)
        if mask is not None:
            mask = _sharding.replicate(mask, member_mesh)
    if getattr(req.solver, "exact_width", False) and member_mesh is None:
        vmap_size = 1
    hyper = req.hyper()
    spec = req.spec(k_max, heldout=heldout, vmap_size=vmap_size, perturb=perturb)

    def call_args(chunk):
        chunk = chunk + [chunk[-1]] * (batch_size - len(chunk))  # pad: one compiled shape
        member = members.member(chunk)
        if member_mesh is not None:
            member = _sharding.split_leading(member, member_mesh)
        return V, mask, member, hyper

    return _GeneralPlan(indices, batch_size, spec, call_args)


def _sweep_fused(req, members, batch_size, progress):
    """The batched executor (:mod:`jaxnmf._fused`; Frobenius family, dense V, no mask, a
    ``batchable`` solver): :func:`jaxnmf._run.run_compiled`'s ``"buckets"`` mode. Members are
    sorted by rank and run ``batch_size`` at a time (default: a working set near 2 GiB per
    call); within a call they are grouped into rank buckets, each padded to its largest rank.

    Returns ``(pieces, compile seconds)`` as :func:`_sweep_general`.
    """
    V, dtype, grid = req.V, req.dtype, members.grid
    m, n = V.shape
    total = len(grid)
    max_iter = req.options.max_iter
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
    seed_keys = jax.random.wrap_key_data(jnp.stack([jax.random.key_data(k) for k in members.keys]))
    # Objective from Gram products in float64, and in float32 where the stopping rule can
    # trust it (as in fit): the iterates are the same either way.
    spec = req.spec(max(r for _, r, _ in grid), mode=_run.BUCKETS)
    hyper = req.hyper()
    pieces, compile_time, done = [], 0.0, 0
    for chunk in chunks:
        buckets = _fused.plan_buckets([grid[i][1] for i in chunk])
        groups = [[i for i in chunk if grid[i][1] in bucket] for bucket in buckets]
        order = [i for group in groups for i in group]  # bucket order
        member = members.member(order, keys=False)
        member_seed = jnp.asarray([grid[i][2] for i in order], jnp.int32)
        shapes = tuple((len(group), max(b)) for b, group in zip(buckets, groups, strict=True))
        init_args = (V, seed_keys, member_seed, member.rank)
        initial, seconds = _compile.compiled(
            _fused.initial_factors,
            init_args,
            dict(method=req.method, buckets=shapes),
            _compile.QUICK,
        )
        compile_time += seconds
        W0s, H0s = initial(*init_args)
        floor = _fused.compaction_floor(V.shape, shapes, max_iter)
        floor = None if floor is None else np.asarray(floor, dtype)
        args = (V, None, member._replace(W0=W0s, H0=H0s), hyper, None, floor)
        # per bucket: its members' loss weights and ranks (to pack with their states)
        spans = list(itertools.pairwise(np.cumsum([0] + [len(group) for group in groups])))
        weights = [tuple(np.asarray(w)[lo:hi] for w in member.loss.weights) for lo, hi in spans]
        ranks = [np.asarray(member.rank)[lo:hi] for lo, hi in spans]
        slots = [np.asarray(group) for group in groups]
        while True:  # one call, then one per compaction of the members still running
            compiled, seconds = _compile.compiled(_run.run_compiled, args, dict(spec=spec))
            compile_time += seconds
            states, results = compiled(*args)
            results = jax.device_get(results)
            if floor is None:  # no compaction: every member ran to its stop in this call
                pieces.extend((g, result, ()) for g, result in zip(groups, results, strict=True))
                break
            states = jax.device_get(states)
            finished, running = _fused.compact(states, results, slots, weights, ranks)
            pieces.extend((idx, result, ()) for idx, result in finished)
            if not running:
                break
            slots, states, weights, ranks = (list(x) for x in zip(*running, strict=True))
            terms = member.loss.terms
            loss = Loss(
                terms, tuple(np.concatenate([w[t] for w in weights]) for t in range(len(terms)))
            )
            rest = _run.Member(loss, rank=np.concatenate(ranks))
            args = (V, None, rest, hyper, tuple(states), floor)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return pieces, compile_time


def _in_grid_order(pieces, k_max):
    """One batched state (and held-out stats) over all members in grid order, from pieces
    ``(member indices, state, stats)`` whose factors are padded to ``k_max`` here."""

    def padded(state):
        pad = k_max - state.W.shape[-1]
        W = np.pad(state.W, [(0, 0), (0, 0), (0, pad)])
        H = np.pad(state.H, [(0, 0), (0, pad), (0, 0)])
        return state._replace(W=W, H=H)

    order = np.concatenate([np.asarray(idx) for idx, _, _ in pieces])
    inverse = np.argsort(order)
    join = lambda *xs: np.concatenate([np.asarray(x) for x in xs])[inverse]
    state = jax.tree.map(join, *[padded(s) for _, s, _ in pieces])
    stats = jax.tree.map(join, *[st for _, _, st in pieces])
    return state, stats


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
