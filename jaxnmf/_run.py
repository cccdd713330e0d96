"""One static spec, one traced set of hyperparameters, one compiled entry for every run.

:func:`jaxnmf.fit`, both executors of :func:`jaxnmf.sweep`, :func:`jaxnmf.compare` and
:class:`jaxnmf.NMF`'s fit and transform describe what they run by

- a :class:`RunSpec`: everything static (the solver, the init method, the padded width, the
  iteration cap, tracking, objective form and cadence, the held-out fraction, how members
  are batched). Changing a field compiles a new program; it is hashable and compared by value,
  so equal specs share one;
- a :class:`Hyper`: the traced hyperparameters (tolerances). New values reuse the program,
  as do new data of the same shapes, new seeds and new loss weights (a
  :class:`~jaxnmf.losses.Loss` is a pytree of traced weights);
- a :class:`Member`: the per-member inputs (loss weights, key, rank, initial factors), with
  a leading member axis when the spec batches members;

and run it through :func:`run_compiled`, the one jitted entry. The final state of one member
becomes a :class:`~jaxnmf.FitResult` through :func:`jaxnmf.api.to_result` only.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _driver, _fused, _sparse
from . import init as _init
from .solvers import Problem

__all__ = ["Hyper", "Member", "RunSpec", "heldout_keep", "perturbed", "run_compiled"]

# fold_in tags of the held-out mask's key and of a replicate's perturbation key; component
# keys use tags 0..k_max-1 < 2**32 - 2, so the three draws are independent.
HELDOUT_TAG = 2**32 - 1
PERTURB_TAG = 2**32 - 2
PERTURBATIONS = ("poisson", "bootstrap")

# RunSpec.mode values
RUN, START, ADVANCE, BUCKETS = "run", "start", "advance", "buckets"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """The static part of a run. Every field is a compile-time constant.

    Attributes:
      solver: the solver object (hashable; equal options compare equal).
      max_iter: iteration cap and the length of the history buffers.
      k_max: the factors' width; members of smaller rank are padded to it (components
        ``>= rank`` stay exactly zero).
      method: init method name (``"random"``, ``"nndsvd"``, ...), or ``"given"`` when the
        member carries ``W0`` and ``H0``.
      track_kkt: compute and record the KKT residual at every iteration.
      objective_from_grams: a Frobenius-family objective may come from Gram products (see
        :func:`~jaxnmf.solvers._base.objective_from_grams_ok`).
      eval_every: objective cadence (see :func:`jaxnmf._driver.advance`).
      heldout: fraction of the observed entries each member hides from fitting and scores
        afterwards (0: none).
      perturb: None, or how each member perturbs V before it fits (:func:`perturbed`, from
        its key): ``"poisson"`` or ``"bootstrap"`` (replicates by perturbed data).
      vmap_size: 0 for one member; else the member axis is vmapped this many at a time and
        the groups run in sequence (``lax.map``).
      mode: ``"run"`` (start, iterate to the end, final verdict), ``"start"`` / ``"advance"``
        (the initial state, and iterating it to a traced ``stop_at``: :func:`jaxnmf.compare`
        reads the clock between calls), or ``"buckets"`` (the batched executor of
        :mod:`jaxnmf._fused`).
    """

    solver: Any
    max_iter: int
    k_max: int
    method: str = "given"
    track_kkt: bool = False
    objective_from_grams: bool = False
    eval_every: int = 1
    heldout: float = 0.0
    vmap_size: int = 0
    mode: str = RUN
    perturb: str | None = None

    def __post_init__(self):
        if self.mode not in (RUN, START, ADVANCE, BUCKETS):
            raise ValueError(f"RunSpec.mode must be one of run/start/advance/buckets: {self.mode}")
        if self.perturb is not None and self.perturb not in PERTURBATIONS:
            raise ValueError(f"RunSpec.perturb must be None or one of {PERTURBATIONS}")


class Hyper(NamedTuple):
    """The traced hyperparameters of the stopping rule (scalars of the compute dtype)."""

    tol: Any  # relative objective change (0 disables)
    pg_tol: Any  # projected-gradient norm relative to the initial one (used when tracked)
    # V's divisor (jaxnmf._scale: members fit V / M): Poisson replicates draw counts at M·V
    data_scale: Any = None


class Member(NamedTuple):
    """One member's inputs (a leading member axis on each when the spec batches members).

    ``loss``: the :class:`~jaxnmf.losses.Loss` (weights traced); ``key``: its
    ``jax.random`` key (None for given factors); ``rank``: int32 number of active
    components (``<= spec.k_max``); ``W0`` ``(m, k_max)``, ``H0`` ``(k_max, n)``: given
    initial factors, or None when ``spec.method`` draws them. For ``"buckets"``, ``W0``
    and ``H0`` are tuples of per-bucket stacks (see :func:`jaxnmf._fused.sweep_buckets`).
    """

    loss: Any
    key: Any = None
    rank: Any = None
    W0: Any = None
    H0: Any = None


def heldout_keep(key, shape, fraction):
    """The entries a member with ``key`` keeps for fitting (True) at held-out ``fraction``."""
    return ~jax.random.bernoulli(jax.random.fold_in(key, HELDOUT_TAG), fraction, shape)


def perturbed(V, key, kind: str, scale=None):
    """A replicate's data, drawn from ``fold_in(key, PERTURB_TAG)``:

    * ``"poisson"``: ``Poisson(scale · V) / scale`` entry by entry (stored entries only for a
      :class:`~jaxnmf._sparse.SparseMatrix`, so the pattern is kept), i.e. the counts
      resampled in the user's units when V is the fitted ``V_user / M`` and ``scale = M``;
    * ``"bootstrap"``: V's ``m`` rows (samples) drawn with replacement (dense V).

    Shapes and dtype are V's. NMFk (Alexandrov et al. 2013) and SigProfilerExtractor
    (Islam et al. 2022) fit such replicates; :func:`jaxnmf.consensus` clusters them."""
    key = jax.random.fold_in(key, PERTURB_TAG)
    if kind == "poisson":
        counts = lambda x: x if scale is None else x * scale
        back = lambda x: x if scale is None else x / scale
        if isinstance(V, _sparse.SparseMatrix):
            draw = jax.random.poisson(key, counts(V.values)).astype(V.dtype)
            return V.with_values(back(draw))
        return back(jax.random.poisson(key, counts(V)).astype(V.dtype))
    if isinstance(V, _sparse.SparseMatrix):
        raise ValueError("a bootstrap of sparse V's rows changes its number of stored entries")
    rows = jax.random.randint(key, (V.shape[0],), 0, V.shape[0])
    return V[rows]


def _problem(V, mask, member: Member, spec: RunSpec) -> Problem:
    active = _init.component_mask(spec.k_max, member.rank)
    return Problem(V, mask, member.loss, active, _sparse.sq_norm(V), spec.objective_from_grams)


def _initial(V, mask, member: Member, spec: RunSpec):
    if spec.method == "given":
        return member.W0, member.H0
    return _init.initialize(V, member.key, spec.k_max, member.rank, spec.method, mask)


def _split_heldout(V, mask, member: Member, spec: RunSpec):
    """``(fit mask, hidden weights)``: the member's fitting weights (the user's mask times its
    held-out split) and the weights of the entries it hides."""
    if isinstance(V, _sparse.SparseMatrix):  # mask="stored": hide a fraction of the stored
        keep = heldout_keep(member.key, (V.nnz,), spec.heldout).astype(V.dtype)
        return mask.with_values(mask.values * keep), mask.values * (1 - keep)
    keep = heldout_keep(member.key, V.shape, spec.heldout).astype(V.dtype)
    if mask is None:
        return keep, 1 - keep
    return mask * keep, mask * (1 - keep)


def _heldout_error(V, hidden, W, H):
    """``(Σ hidden · (V - WH)², Σ hidden)`` over the hidden entries."""
    if isinstance(V, _sparse.SparseMatrix):
        wh = _sparse.sample(W, H, V.rows, V.cols)
        return jnp.sum(hidden * jnp.square(V.values - wh)), jnp.sum(hidden)
    return jnp.sum(hidden * jnp.square(V - W @ H)), jnp.sum(hidden)


def _one_member(V, mask, member: Member, hyper: Hyper, state, stop_at, *, spec: RunSpec):
    """One member under ``spec.mode``; see :func:`run_compiled`."""
    static = dict(max_iter=spec.max_iter, track_kkt=spec.track_kkt)
    if spec.perturb is not None:  # this member's own copy of V (the mask is not resampled)
        V = perturbed(V, member.key, spec.perturb, hyper.data_scale)
    hidden = None
    if spec.heldout > 0:
        mask, hidden = _split_heldout(V, mask, member, spec)
    problem = _problem(V, mask, member, spec)
    if spec.mode == START:
        return _driver.start(problem, *_initial(V, mask, member, spec), spec.solver, **static)
    if spec.mode == ADVANCE:
        return _driver.advance(
            problem, state, spec.solver, hyper.tol, hyper.pg_tol, stop_at,
            eval_every=spec.eval_every, **static,
        )  # fmt: skip
    W0, H0 = _initial(V, mask, member, spec)
    state = _driver.run(
        problem, W0, H0, spec.solver, hyper.tol, hyper.pg_tol, eval_every=spec.eval_every, **static
    )
    stats = () if hidden is None else _heldout_error(V, hidden, state.W, state.H)
    return state, stats


@functools.partial(jax.jit, static_argnames="spec")
def run_compiled(V, mask, member: Member, hyper: Hyper, state=None, stop_at=None, *, spec):
    """The compiled entry of every run.

    Args:
      V: ``(m, n)`` data (dense, possibly row-sharded, or a
        :class:`~jaxnmf._sparse.SparseMatrix`), shared by all members, never copied per
        member (except each member's perturbed copy under ``spec.perturb``); mask: None or
        weights of V's shape (a SparseMatrix for ``mask="stored"``).
      member: a :class:`Member` (with a leading member axis when ``spec.vmap_size``).
      hyper: a :class:`Hyper`.
      state: for ``mode="advance"``, the :class:`~jaxnmf._driver.RunState` to continue;
        for ``"buckets"``, None or the per-bucket loop states to continue.
      stop_at: for ``mode="advance"``, the traced iteration to stop at; for ``"buckets"``,
        None or the work fraction below which the loop stops for compaction.
      spec: the :class:`RunSpec` (static).

    Returns:
      ``"run"``: ``(final RunState, held-out stats)``, the stats ``(Σ squared error,
      count)`` over the hidden entries when ``spec.heldout > 0``, else ``()``; batched over
      members when ``spec.vmap_size``. ``"start"`` / ``"advance"``: a RunState (no final
      verdict: the caller decides when the run has ended). ``"buckets"``: ``(loop states,
      results)``, per bucket (:func:`jaxnmf._fused.sweep_buckets`).
    """
    if spec.mode == BUCKETS:
        return _fused.sweep_buckets(V, member, hyper, state, stop_at, spec=spec)
    one = functools.partial(_one_member, spec=spec)
    if not spec.vmap_size:
        return one(V, mask, member, hyper, state, stop_at)
    if spec.mode != RUN:
        raise ValueError("members are batched in mode 'run' only")
    single = lambda m: one(V, mask, m, hyper, None, None)
    if spec.vmap_size == 1:
        # members in sequence, each traced as one unbatched member: the same operations as
        # fit's, so the same rounding (vmapped products round differently; see
        # jaxnmf.sweep's general executor for the solvers where that matters)
        return jax.lax.map(single, member)
    # V, mask and the hyperparameters are shared (in_axes=None), the member's inputs are not
    batched = jax.vmap(single)
    n_members = member.rank.shape[0]
    if spec.vmap_size >= n_members:
        return batched(member)
    # Groups of vmap_size run one after another. Measured on a 2-core CPU (digits, ranks
    # 2..20 × 4 seeds, 200 MU iterations, float32): 6.5–7.4 s with groups of 4 against
    # 16–18 s with all 76 members vmapped at once, as the batched small products (W (HHᵀ),
    # WᵀW) fall out of cache; and a vmapped while_loop runs until its slowest member stops,
    # so small groups also waste less on early-stopping members.
    groups = n_members // spec.vmap_size  # callers pad to a multiple of vmap_size
    split = lambda x: x.reshape((groups, spec.vmap_size, *x.shape[1:]))
    merge = lambda x: x.reshape((n_members, *x.shape[2:]))
    out = jax.lax.map(batched, jax.tree.map(split, member))
    return jax.tree.map(merge, out)
