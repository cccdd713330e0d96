"""``jaxnmf.fit``: validate on the host, run one jit-compiled driver, report a status."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import enum
import functools
import warnings

import jax
import numpy as np

from . import _memory, _run, _scale, _sharding, _sparse, _validate
from . import init as _init
from ._driver import Code
from ._sparse import SparseMatrix
from .losses import Loss, as_loss
from .solvers import as_solver
from .solvers._base import is_quadratic, objective_from_grams_ok

__all__ = ["FitResult", "Status", "fit"]


class Status(enum.StrEnum):
    """How a run ended. Compares equal to its string: ``res.status == "converged"``."""

    CONVERGED = "converged"  # the stopping rule was met
    MAX_ITER = "max_iter"  # max_iter iterations without meeting it
    NONFINITE = "nonfinite"  # the objective became NaN/inf; factors are the last finite ones
    # ended above its initial objective, or with a non-finite KKT residual or factors
    DIVERGED = "diverged"

    @classmethod
    def from_code(cls, code: int) -> Status:
        names = {
            Code.CONVERGED: cls.CONVERGED,
            Code.MAX_ITER: cls.MAX_ITER,
            Code.DIVERGED: cls.DIVERGED,
        }
        return names.get(int(code), cls.NONFINITE)

    @property
    def failed(self) -> bool:
        """True for the statuses whose factors are not a fit to trust."""
        return self in (Status.NONFINITE, Status.DIVERGED)


def _shape_dtype(x) -> str:
    """``"(m, k) float32"``: how result reprs show an array instead of printing it."""
    return f"{tuple(np.shape(x))} {getattr(x, 'dtype', type(x).__name__)}"


def _name(solver) -> str:
    return getattr(solver, "name", type(solver).__name__)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of one NMF run.

    Attributes:
      W: basis, ``(m, rank)``, NumPy array of the compute dtype.
      H: coefficients, ``(rank, n)``.
      losses: objective after each iteration, ``(n_iter,)``.
      n_iter: iterations done.
      status: :class:`Status`.
      loss: final objective (the last finite one).
      initial_loss: objective at the initial factors.
      kkt_residual: ‖∇ᴾ f‖ at the result (projected-gradient norm; 0 at a KKT point).
      initial_kkt_residual: the same at the initial factors (NaN unless tracked).
      kkt_history: KKT residual after each iteration when tracked, else ``None``.
      solver, loss_fn: what was run.
    """

    W: np.ndarray
    H: np.ndarray
    losses: np.ndarray
    n_iter: int
    status: Status
    loss: float
    initial_loss: float
    kkt_residual: float
    initial_kkt_residual: float
    kkt_history: np.ndarray | None
    solver: object
    loss_fn: Loss

    @property
    def rank(self) -> int:
        return self.W.shape[1]

    def __repr__(self) -> str:
        # A summary, not the arrays: results are printed in notebooks and logs.
        return (
            f"FitResult(rank={self.rank}, status={str(self.status)!r}, n_iter={self.n_iter}, "
            f"loss={self.loss:.6g}, initial_loss={self.initial_loss:.6g}, "
            f"kkt_residual={self.kkt_residual:.3g}, W={_shape_dtype(self.W)}, "
            f"H={_shape_dtype(self.H)}, solver={_name(self.solver)!r}, loss_fn={self.loss_fn!r})"
        )

    @property
    def converged(self) -> bool:
        return self.status == Status.CONVERGED

    def reconstruction(self) -> np.ndarray:
        """``W @ H``, ``(m, n)`` (dense: for large sparse V, predict chosen entries with
        :meth:`predict`)."""
        return self.W @ self.H

    def predict(self, rows, cols) -> np.ndarray:
        """``(WH)[rows[e], cols[e]]`` for each e, without forming ``WH``: O(len(rows) · k).

        See :func:`jaxnmf.metrics.reconstruct`.
        """
        from .metrics import reconstruct

        return np.asarray(reconstruct(self.W, self.H, rows, cols))


def prepare(V, rank, loss, solver, mask):
    """Host-side validation shared by every entry point.

    Returns ``(V, mask, loss, solver, dtype)``: V as an array of the compute dtype with masked
    entries set to 0 (so NaN may mark missing values), the mask in the same dtype or None,
    the loss with weights of that dtype and the solver object.

    Sparse V (``scipy.sparse``, BCOO/BCSR) becomes a :class:`~jaxnmf._sparse.SparseMatrix`
    of the compute dtype, checked on its stored values only; ``mask`` is then None or
    ``"stored"``, returned as a SparseMatrix of V's pattern holding the weights (ones).
    """
    if _sparse.is_sparse_input(V):
        return _prepare_sparse(V, rank, loss, solver, mask)
    V = _validate.data_matrix(V)
    dtype = _validate.compute_dtype(V.dtype)
    m, n = V.shape
    if rank is not None:
        _validate.rank(rank, m, n)
    mask = _validate.mask_matrix(mask, V.shape)
    observed = None if mask is None else mask > 0
    _validate.check_values(V, observed)
    # Values are checked again in the compute dtype: 1e39 overflows float32 and 1e-50
    # underflows to 0 (which Itakura–Saito cannot take).
    V_cast = V.astype(dtype, copy=False)
    _validate.check_values(V_cast, observed, f"V (in {dtype.name})")
    loss = as_loss(loss)
    _validate.loss_weights(loss)
    _validate.loss_has_data_term(loss)
    _validate.beta_support(loss, V_cast, observed)
    solver = as_solver(solver)
    solver.check(loss, mask is not None)
    if mask is not None:
        V_cast = np.where(observed, V_cast, 0).astype(dtype, copy=False)
        mask = mask.astype(dtype)
    return V_cast, mask, loss.astype(dtype), solver, dtype


def _prepare_sparse(V, rank, loss, solver, mask):
    """:func:`prepare` for sparse V: nothing of size m × n is formed on the way."""
    rows, cols, values, shape = _validate.sparse_data(V)
    dtype = _validate.compute_dtype(values.dtype)
    m, n = shape
    if rank is not None:
        _validate.rank(rank, m, n)
    stored = _validate.sparse_mask(mask)
    if stored and values.size == 0:
        raise ValueError("mask='stored' but V stores no entry: nothing is left to fit")
    _validate.check_values(values, None, "V (stored entries)")
    values = values.astype(dtype, copy=False)
    _validate.check_values(values, None, f"V (stored entries, in {dtype.name})")
    loss = as_loss(loss)
    _validate.loss_weights(loss)
    _validate.loss_has_data_term(loss)
    _validate.sparse_loss_support(loss, values, stored)
    solver = as_solver(solver)
    solver.check(loss, stored)
    if stored and not getattr(solver, "takes_stored_mask", True):
        raise ValueError(
            f"solver {solver.name!r} works from Gram statistics alone; with mask='stored' they "
            "would need V densified. Use 'hals', 'mu' or 'pg' for sparse V with a mask."
        )
    V = SparseMatrix(rows, cols, values, shape)
    mask = V.with_values(np.ones_like(values)) if stored else None
    return V, mask, loss.astype(dtype), solver, dtype


def check_loss_data(loss, V, mask) -> None:
    """The data-dependent loss checks of :func:`prepare`, for one more loss on V and mask
    as ``prepare`` returned them (every point of a sweep's penalty grid)."""
    _validate.loss_weights(loss)
    if isinstance(V, SparseMatrix):
        _validate.sparse_loss_support(loss, V.values, mask is not None)
    else:
        _validate.beta_support(loss, V, None if mask is None else mask > 0)


@dataclasses.dataclass(frozen=True)
class Request:
    """A fit, sweep or compare call after validation, before anything is compiled.

    Built once per call by :func:`request`, which runs every host-side check.

    Attributes:
      V_user: V as :func:`prepare` returns it (compute dtype, masked entries zeroed; or a
        SparseMatrix), in the user's units.
      V: what the members are fitted on: ``V_user / max V`` (see :mod:`jaxnmf._scale`).
      mask: the prepared mask (None, weights of V's dtype, or a SparseMatrix of weights).
      loss: the user's loss in the compute dtype; fit_loss: the same in the fitted units.
      solver: the solver object; dtype: the compute dtype; scaling: a
        :class:`jaxnmf._scale.Scaling`.
      method: init method name, or ``"given"``; W0, H0: given initial factors in the fitted
        units (None for a method).
      options: the validated :class:`jaxnmf._validate.RunOptions`.
    """

    V_user: object
    V: object
    mask: object
    loss: Loss
    fit_loss: Loss
    solver: object
    dtype: np.dtype
    scaling: _scale.Scaling
    method: str
    W0: object
    H0: object
    options: _validate.RunOptions

    @property
    def track_kkt(self) -> bool:
        return self.options.pg_tol > 0

    def hyper(self) -> _run.Hyper:
        """The traced tolerances and V's scale divisor, in the compute dtype."""
        dtype = self.dtype
        return _run.Hyper(
            np.asarray(self.options.tol, dtype),
            np.asarray(self.options.pg_tol, dtype),
            np.asarray(self.scaling.M, dtype),
        )

    def spec(self, k_max: int, **fields) -> _run.RunSpec:
        """The :class:`~jaxnmf._run.RunSpec` of this call at width ``k_max``; ``fields``
        override (``solver=``, ``vmap_size=``, ``heldout=``, ``mode=``, ...)."""
        opts = self.options
        base = dict(
            solver=self.solver,
            max_iter=opts.max_iter,
            k_max=k_max,
            method=self.method,
            track_kkt=self.track_kkt,
            objective_from_grams=objective_from_grams_ok(opts.tol, self.dtype),
            eval_every=opts.eval_every,
        )
        return _run.RunSpec(**{**base, **fields})


def request(
    V,
    rank,
    *,
    loss,
    solver,
    mask,
    init,
    max_iter,
    tol,
    pg_tol=0.0,
    eval_every=1,
    on_failure="warn",
    check_rank=True,
) -> Request:
    """Validate a call's arguments into a :class:`Request` (TypeError/ValueError naming the
    bad argument, before any compilation).

    ``rank``: the fit's rank, ``1 ≤ rank ≤ min(m, n)``; with ``check_rank=False`` it is not
    checked (the estimator's fits with more components than ``min(m, n)``), or None (a
    sweep, which checks its ranks itself; ``init`` must then be a method name).
    """
    V_user, mask, user_loss, solver, dtype = prepare(
        V, rank if check_rank else None, loss, solver, mask
    )
    m, n = V_user.shape
    if check_rank:
        rank = _validate.rank(rank, m, n)
    method, W0, H0 = _validate.init_spec(init, m, n, 1 if rank is None else rank, dtype)
    options = _validate.run_options(max_iter, tol, pg_tol, eval_every, on_failure)
    # Fitted on V / max V (any representable scale fits like scale 1; see jaxnmf._scale).
    scaling = _scale.data_scale(V_user, mask, user_loss)
    if method == "given":
        W0, H0 = scaling.factors_in(W0, H0)
    return Request(
        V_user=V_user,
        V=scaling.data(V_user),
        mask=mask,
        loss=user_loss,
        fit_loss=scaling.loss(user_loss),
        solver=solver,
        dtype=dtype,
        scaling=scaling,
        method=method,
        W0=W0,
        H0=H0,
        options=options,
    )


@functools.partial(jax.jit, static_argnames=("rank", "method"))
def initial_factors(V, mask, key, *, rank, method):
    """``(W0, H0)`` of an init method, exactly as :func:`fit` draws them."""
    return _init.initialize(V, key, rank, rank, method, mask)


def _split_by_rows(V, mask, loss, key, W0, H0, method, rank, devices):
    """Initial factors drawn on the whole V, then V, mask and W split by rows (zero rows
    padded to a multiple of the device count), H replicated."""
    if method != "given":
        W0, H0 = jax.device_get(initial_factors(V, mask, key, rank=rank, method=method))
    m, d = V.shape[0], len(devices)
    if m % d and mask is None and any(b <= 0 for b in loss.beta_values):
        # zero rows are outside the domain of β ≤ 0 divergences: mask them out instead
        mask = np.ones_like(V)
    mesh = _sharding.mesh(devices, "rows")
    V = _sharding.split_rows(_sharding.pad_rows(V, d), mesh)
    if mask is not None:
        mask = _sharding.split_rows(_sharding.pad_rows(mask, d), mesh)
    W0 = _sharding.split_rows(_sharding.pad_rows(np.asarray(W0), d), mesh)
    H0 = _sharding.replicate(np.asarray(H0), mesh)
    return V, mask, W0, H0, "given"


_FAILURE_MESSAGES = {
    Status.NONFINITE: "the objective became NaN or infinite; the result holds the last finite "
    "factors (status 'nonfinite'). Try another solver or a smaller step.",
    Status.DIVERGED: "the run diverged: it ended above its initial objective, or with a "
    "non-finite KKT residual or factors (status 'diverged'). Try another solver or a "
    "smaller step.",
}


def failure_message(status: Status) -> str:
    """What a failed status means and what to try (``nonfinite``, ``diverged``)."""
    return _FAILURE_MESSAGES[status]


def _on_failure(status: Status, on_failure: str, what: str) -> None:
    if not status.failed or on_failure == "ignore":
        return
    msg = f"{what}: {failure_message(status)}"
    if on_failure == "raise":
        raise FloatingPointError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=_validate.user_stacklevel())


def fit(
    V,
    rank: int,
    *,
    loss="frobenius",
    solver="mu",
    init="random",
    max_iter: int = 200,
    tol: float = 1e-4,
    seed=0,
    mask=None,
    pg_tol: float = 0.0,
    track_kkt: bool = False,
    on_failure: str = "warn",
    devices=None,
    eval_every: int = 1,
) -> FitResult:
    """Fit ``V ≈ W H`` with ``W, H ≥ 0``.

    Args:
      V: data, ``(m, n)``, non-negative, finite on observed entries: a NumPy or JAX array,
        or sparse (``scipy.sparse`` matrix or array of any format, ``jax.experimental.sparse``
        BCOO/BCSR), which is never densified: its stored entries are checked and used, in
        O(nnz · k) per iteration. Sparse V without a mask (unstored entries are zeros) takes
        the Frobenius or KL loss and every solver that takes that loss; with
        ``mask="stored"`` any β-divergence, with mu, pg, projected and (Frobenius) hals.
      rank: number of components k, ``1 ≤ k ≤ min(m, n)``.
      loss: a :class:`~jaxnmf.losses.Loss`, a name (``"frobenius"``, ``"kl"``,
        ``"itakura_saito"``/``"is"``) or a number (the β of a β-divergence).
      solver: ``"mu"``, ``"pg"``, ``"hals"`` or a solver object from :mod:`jaxnmf.solvers`.
      init: ``"random"``, ``"nndsvd"``, ``"nndsvda"``, ``"nndsvdar"`` or a pair ``(W0, H0)``.
      max_iter: maximum number of outer iterations (static: changing it recompiles).
      tol: stop when the objective changes by less than ``tol`` relative to its previous value
        (0 disables). The objective of a Frobenius-family fit comes from Gram products
        (O((m + n) k²) instead of O(mnk) per iteration), in float32 only with ``tol=0`` or
        ``tol >= 1e-4``, as it is good to about 1e-6 relative there (smaller tolerances
        evaluate ``‖V - WH‖²`` directly).
      seed: integer seed (or a ``jax.random.key``) for random initializations.
      mask: optional ``(m, n)`` non-negative weights; 0 marks a missing entry, which then
        counts neither in the loss nor in the updates (its value in V may be anything,
        NaN included). For sparse V: ``None`` or ``"stored"`` (the stored entries are the
        observed ones and all others are missing, as for ratings).
      pg_tol: also stop when the projected-gradient norm falls below ``pg_tol`` times its
        initial value (enables ``track_kkt``).
      track_kkt: record the KKT residual at every iteration (one more gradient evaluation
        per iteration).
      on_failure: what to do when the run ends ``nonfinite`` or ``diverged``: ``"warn"``
        (default), ``"raise"`` (``FloatingPointError``) or ``"ignore"``.
      devices: ``None`` (one device), an int n (the first n of ``jax.devices()``) or a list
        of devices: V and W are then split by rows across them and H is replicated (see
        :mod:`jaxnmf._sharding`); the result equals the single-device one up to the order of
        floating-point reductions.
      eval_every: evaluate the objective (and apply the stopping rule, which then compares
        objectives ``eval_every`` iterations apart) only every ``eval_every`` iterations and
        at ``max_iter``; ``losses`` is NaN in between. Worth it where the objective costs as
        much as an update (KL/β multiplicative updates). Static: changing it recompiles.

    Returns:
      A :class:`FitResult`.

    Raises:
      TypeError, ValueError: for invalid input, before anything is compiled.

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> V = np.random.default_rng(0).random((30, 20)).astype(np.float32)
      >>> res = jn.fit(V, 4, solver="hals", max_iter=50)
      >>> res.W.shape, res.H.shape, res.W.dtype
      ((30, 4), (4, 20), dtype('float32'))
    """
    req = request(
        V, rank, loss=loss, solver=solver, mask=mask, init=init, max_iter=max_iter, tol=tol,
        pg_tol=pg_tol, eval_every=eval_every, on_failure=on_failure,
    )  # fmt: skip
    rank = int(rank)
    V, mask, dtype = req.V, req.mask, req.dtype
    m, n = V.shape
    key = _validate.seed_key(seed)
    spec = req.spec(rank, track_kkt=bool(track_kkt or req.track_kkt))
    devices = _sharding.resolve(devices)
    if devices is not None and isinstance(V, SparseMatrix):
        raise ValueError("devices= splits a dense V by rows; sparse V runs on one device")
    if not isinstance(V, SparseMatrix):
        estimate = _memory.dense_fit_bytes(
            m, n, rank, dtype, masked=mask is not None, beta_two=is_quadratic(req.loss)
        )
        n_dev = 1 if devices is None else len(devices)
        _memory.check(estimate // n_dev, f"fit of a {m} × {n} {dtype.name} V at rank {rank}")
    W0, H0 = req.W0, req.H0
    if devices is not None:
        V, mask, W0, H0, method = _split_by_rows(
            V, mask, req.fit_loss, key, W0, H0, req.method, rank, devices
        )
        spec = dataclasses.replace(spec, method=method)

    member = _run.Member(req.fit_loss, key, np.int32(rank), W0, H0)
    state, _ = _run.run_compiled(V, mask, member, req.hyper(), spec=spec)
    if devices is not None:
        # whole in this process (W's rows may live on other processes' devices), then
        # without the padding rows
        state = _sharding.gather(state)
        state = state._replace(W=state.W[:m])
    result = to_result(state, req.solver, req.loss, req.scaling)
    _on_failure(result.status, req.options.on_failure, f"fit(solver={req.solver.name!r})")
    return result


def to_result(state, solver, loss, scaling=None) -> FitResult:
    """A :class:`FitResult` from a final :class:`~jaxnmf._driver.RunState` of one run, in the
    user's units (``scaling``: how V was scaled for the fit; ``loss``: the user's loss)."""
    state = jax.device_get(state)
    if scaling is not None:
        state = scaling.run_state(state)
    n_iter = int(state.it)
    return FitResult(
        W=np.asarray(state.W),
        H=np.asarray(state.H),
        losses=np.asarray(state.history[:n_iter]),
        n_iter=n_iter,
        status=Status.from_code(state.status),
        loss=float(state.loss),
        initial_loss=float(state.loss0),
        kkt_residual=float(state.kkt),
        initial_kkt_residual=float(state.kkt0),
        kkt_history=np.asarray(state.kkt_history[:n_iter]) if state.kkt_history.size else None,
        solver=solver,
        loss_fn=loss,
    )
