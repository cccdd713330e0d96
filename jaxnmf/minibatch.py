"""Minibatch and online NMF: :func:`fit_minibatch` over streamed row blocks, and
:class:`MiniBatchNMF`, a scikit-learn estimator.

Samples are the rows of ``X`` ``(n_samples, n_features)`` ≈ ``W H``: ``H`` ``(k, n_features)``
is the dictionary learned online, ``W`` ``(n_samples, k)`` the coefficients of each sample.
Each batch runs the online schedule of :mod:`jaxnmf._online` (one compiled program per batch
shape, reused across batches and epochs): the batch's W by the solver's own W block with H
fixed, the H sub-problem's statistics accumulated with a forgetting factor, and H updated from
them by the solver's H block (Frobenius family: Mairal et al. 2010) or by the β
multiplicative update (any β-divergence: Lefèvre, Bach & Févotte 2011).

:func:`fit_minibatch` reads X in row blocks (:mod:`jaxnmf._stream`: memory maps, HDF5, Zarr,
AnnData opened backed, scipy.sparse, iterables of blocks), the next block read by a
background thread while the device works on the current one, so memory is bounded by the
block size. A bad block (another width or dtype, negative or NaN entries) or a failed read
stops the fit with a :class:`~jaxnmf._stream.StreamError` naming the block; the factors so
far are kept in ``error.result`` (status ``"interrupted"``).

References:
    Mairal, J., Bach, F., Ponce, J. & Sapiro, G. (2010). Online learning for matrix
    factorization and sparse coding. JMLR 11, 19–60.
    Lefèvre, A., Bach, F. & Févotte, C. (2011). Online algorithms for nonnegative matrix
    factorization with the Itakura-Saito divergence. IEEE WASPAA.
"""
# ruff: noqa: N802, N803, N806

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from . import _online, _sharding, _stream, _validate
from . import api as _api
from . import losses as _losses
from ._stream import StreamError, StreamTypeError
from .solvers import as_solver
from .solvers._base import objective_from_grams_ok

__all__ = [
    "INTERRUPTED",
    "MiniBatchResult",
    "StreamError",
    "StreamTypeError",
    "fit_minibatch",
]

#: The status of a fit stopped by a bad block or a failed read (the other statuses are those
#: of :class:`jaxnmf.Status`).
INTERRUPTED = "interrupted"


@dataclasses.dataclass(frozen=True)
class MiniBatchResult:
    """The outcome of :func:`fit_minibatch`.

    Attributes:
      H: the dictionary (components), ``(rank, n_features)``.
      n_steps: batches processed.
      n_epochs: passes over the data started.
      status: a :class:`jaxnmf.Status` (``converged``: the stopping rule fired;
        ``max_iter``: ``max_iter`` passes; ``nonfinite``: a batch's objective was not finite,
        its step rejected) or ``"interrupted"`` (:data:`INTERRUPTED`: a bad block or failed
        read, see ``error``).
      loss: the last exponentially weighted average of the batch objective per sample.
      losses: the batch objective per sample after each step, ``(n_steps,)``.
      rows_seen: rows of X processed (over all passes).
      error: the message of the error that interrupted the fit, else None.
      error_block: the index of the block it names, else None.
      solver, loss_fn: what was run.
    """

    H: np.ndarray
    n_steps: int
    n_epochs: int
    status: str
    loss: float
    losses: np.ndarray
    rows_seen: int
    error: str | None
    error_block: int | None
    solver: object
    loss_fn: object

    def __repr__(self) -> str:
        return (
            f"MiniBatchResult(rank={self.H.shape[0]}, status={str(self.status)!r}, "
            f"n_steps={self.n_steps}, n_epochs={self.n_epochs}, loss={self.loss:.6g}, "
            f"H={self.H.shape} {self.H.dtype})"
        )


def _check_solver(solver, loss):
    solver = as_solver(solver)
    if not hasattr(solver, "block"):
        raise TypeError(f"online NMF needs a solver made of blocks, got {solver!r}")
    solver.check(loss, False)
    return solver


def _check_forget(forget_factor) -> float:
    f = _validate.non_negative_float(forget_factor, "forget_factor")
    if f > 1:
        raise ValueError(f"forget_factor must be in [0, 1], got {forget_factor}")
    return f


class _Online:
    """The host side of the online schedule: one :class:`~jaxnmf._online.OnlineState`, fed
    batch by batch (shared by :func:`fit_minibatch` and :class:`MiniBatchNMF`).

    ``loss_for(b)`` gives the objective of a batch of ``b`` rows (scikit-learn's penalties
    grow with the batch); its weights are traced, so batches of one size share a program.
    """

    def __init__(
        self,
        H0,
        loss_for,
        solver,
        *,
        tol,
        inner_tol,
        max_no_improvement,
        inner_max_iter,
        objective_from_grams,
        devices=None,
    ):
        self.dtype = np.dtype(H0.dtype)
        self.k = H0.shape[0]
        self.loss_for = loss_for
        self.solver = solver
        self.tol = np.asarray(tol, self.dtype)
        self.inner_tol = np.asarray(inner_tol, self.dtype)
        self.max_no_improvement = np.asarray(max_no_improvement or 0, np.int32)
        self.inner_max_iter = inner_max_iter
        self.objective_from_grams = objective_from_grams
        self.state = _online.initial_state(H0, loss_for(1), solver)
        self.costs: list = []
        # devices: each batch's rows split across them, the state (H and the statistics)
        # replicated; XLA's partitioner sums WᵀW, WᵀX and the objective across devices.
        self.mesh = None if devices is None else _sharding.mesh(devices, "rows")
        if self.mesh is not None:
            self.state = _sharding.replicate(self.state, self.mesh)

    def batch(self, X, W0, rho, alpha):
        """One step on the dense batch ``X`` ``(b, n)`` from ``W0`` (None: a fresh start);
        returns the batch's W (a device array)."""
        if W0 is None:
            W0 = _online.fresh_W(X, self.k, self.dtype)
        b = X.shape[0]
        W0, valid = np.asarray(W0, self.dtype), None
        if self.mesh is not None:
            X, W0, valid = self._split(X, W0)
        self.state, W = _online.step_compiled(
            self.state,
            X,
            W0,
            self.loss_for(b),
            np.asarray(rho, self.dtype),
            np.asarray(alpha, self.dtype),
            self.tol,
            self.inner_tol,
            self.max_no_improvement,
            solver=self.solver,
            inner_max_iter=self.inner_max_iter,
            objective_from_grams=self.objective_from_grams,
            valid=valid,
        )
        self.costs.append(self.state.cost)  # read on the host at the end: no sync here
        return W if valid is None else W[:b]

    def _split(self, X, W0):
        """The batch padded with zero rows to a multiple of the devices and split by rows;
        ``valid`` marks the data rows (None without padding): padded rows keep a zero W
        and, for β ≠ 2, a zero weight (:func:`jaxnmf._online.step`)."""
        n_dev = self.mesh.devices.size
        b = X.shape[0]
        valid = None
        if b % n_dev:
            valid = _sharding.split_leading(np.arange(b + -b % n_dev) < b, self.mesh)
        X = _sharding.split_rows(_sharding.pad_rows(np.asarray(X), n_dev), self.mesh)
        W0 = _sharding.split_rows(_sharding.pad_rows(W0, n_dev), self.mesh)
        return X, W0, valid

    @property
    def code(self) -> int:
        """The status code after the last step (reads it from the device)."""
        return int(self.state.status)

    def host_state(self):
        return jax.device_get(self.state)


def _batches(blocks, batch_size: int, dtype):
    """``(first_row, X_b)`` batches of exactly ``batch_size`` rows (the last of a pass may be
    shorter) from checked ``(index, row, block)`` blocks of any sizes: blocks are cut and
    joined so that one compiled step serves every full batch."""
    pending, n_pending, start = [], 0, 0
    for _, row, block in blocks:
        if not pending:
            start = row
        a = 0
        while a < block.shape[0]:
            take = min(batch_size - n_pending, block.shape[0] - a)
            pending.append(_stream.dense_rows(block, a, a + take, dtype))
            n_pending += take
            a += take
            if n_pending == batch_size:
                yield start, pending[0] if len(pending) == 1 else np.concatenate(pending)
                start += batch_size
                pending, n_pending = [], 0
    if pending:
        yield start, np.concatenate(pending)


def run_online(
    engine: _Online,
    source: _stream.Source,
    *,
    batch_size: int,
    block_rows: int,
    max_epochs: int,
    forget_factor: float,
    n_cols: int,
    dtype,
    W_store=None,
    prefetch: bool = True,
    positive: bool = False,
):
    """Feed ``source`` to ``engine`` for up to ``max_epochs`` passes, until its stopping
    rule. ``n_cols``, ``dtype``: the width and dtype every block must have (the first
    block's; batches are cast to the engine's compute dtype). ``W_store``
    ``(n_samples, k)``: keep each sample's W between passes (warm starts, as
    scikit-learn's MiniBatchNMF without fresh restarts), else every batch starts fresh.

    Returns ``(code, n_epochs, rows_seen)``; a bad block raises :class:`StreamError`
    (its ``.rows_seen``/``.n_epochs`` attributes set)."""
    n = source.n_rows
    rows_seen, epochs, code = 0, 0, _online.Code.RUNNING
    # scikit-learn: ρ = forget_factor^(batch_size / n_samples); unknown n: one batch's share
    b_full = batch_size if n is None else min(batch_size, n)
    rho = forget_factor if n is None else forget_factor ** (b_full / n)
    try:
        while epochs < max_epochs and code == _online.Code.RUNNING:
            epochs += 1
            blocks = _stream.checked_blocks(source, block_rows, n_cols, dtype)
            if positive:
                blocks = _positive(blocks)
            if prefetch:
                blocks = _stream.prefetched(blocks)
            for row, X in _batches(blocks, b_full, engine.dtype):
                b = X.shape[0]
                alpha = min(b / ((n if n is not None else rows_seen + b) + 1), 1.0)
                W0 = None if W_store is None else W_store[row : row + b]
                W = engine.batch(X, W0, rho, alpha)
                if W_store is not None:
                    W_store[row : row + b] = np.asarray(W)
                rows_seen += b
                code = engine.code
                if code != _online.Code.RUNNING:
                    break
            if not source.rereadable:
                break
    except StreamError as e:
        e.rows_seen, e.n_epochs = rows_seen, epochs
        raise
    if code == _online.Code.RUNNING:
        code = _online.Code.MAX_ITER
    return code, epochs, rows_seen


def _positive(blocks):
    """β ≤ 0 divergences (Itakura–Saito) are undefined at zero entries."""
    for index, row, block in blocks:
        values = block.data if hasattr(block, "tocsr") else block
        if (hasattr(block, "tocsr") and block.nnz < block.shape[0] * block.shape[1]) or (
            values.size and values.min() <= 0
        ):
            raise StreamError(
                f"block {index} (rows {row}..) has zero entries, where a β-divergence with "
                "β <= 0 is undefined; X must be > 0",
                index,
                row,
            )
        yield index, row, block


def _status(code: int, error: str | None):
    return INTERRUPTED if error is not None else _api.Status.from_code(code)


def _result(engine: _Online, code, epochs, rows_seen, loss, error=None, error_block=None):
    s = engine.host_state()
    costs = np.asarray(jax.device_get(engine.costs), engine.dtype).reshape(-1)
    return MiniBatchResult(
        H=np.asarray(s.H),
        n_steps=int(s.step),
        n_epochs=int(epochs),
        status=_status(code, error),
        loss=float(s.ewa) if np.isfinite(s.ewa) else float(s.cost),
        losses=costs,
        rows_seen=int(rows_seen),
        error=error,
        error_block=error_block,
        solver=engine.solver,
        loss_fn=loss,
    )


def fit_minibatch(
    source,
    rank: int,
    *,
    loss="frobenius",
    solver="hals",
    init="nndsvda",
    batch_size: int = 1024,
    block_rows: int | None = None,
    max_iter: int = 200,
    tol: float = 1e-4,
    max_no_improvement: int | None = 10,
    forget_factor: float = 0.7,
    inner_max_iter: int = 30,
    seed=0,
    n_samples: int | None = None,
    prefetch: bool = True,
    on_error: str = "raise",
    devices=None,
) -> MiniBatchResult:
    """Online NMF of a streamed ``X`` ``(n_samples, n_features)`` ≈ ``W H``: learns ``H``.

    Each batch of ``batch_size`` rows: W by ``inner_max_iter`` iterations of the solver's W
    block from scikit-learn's fresh start (``sqrt(mean(X_b) / rank)``, stopped earlier by the
    driver's rule at ``tol``), the statistics accumulated with forgetting, H updated from them
    (:mod:`jaxnmf._online`). The stopping rule is scikit-learn's MiniBatchNMF's:
    ``‖ΔH‖ ≤ tol ‖H‖``, or no improvement of the exponentially averaged batch objective in
    ``max_no_improvement`` steps; ``max_iter`` caps the passes over the data.

    Args:
      source: X in row blocks: a NumPy array or ``np.memmap``, an h5py dataset, a Zarr
        array, an AnnData object (``anndata.read_h5ad(path, backed="r")``), a scipy.sparse
        matrix, a ``.npy``/``.h5ad`` path, an iterable of blocks (dense or scipy.sparse,
        ``(rows, n_features)`` each, any row counts) or a callable returning a fresh
        iterable (read once per pass; a plain iterator is read once). See
        :mod:`jaxnmf._stream`.
      rank: number of components k.
      loss: a :class:`~jaxnmf.losses.Loss`, name or β (penalty weights apply per batch).
      solver: a solver made of blocks (name or object), e.g. ``"hals"`` (Mairal et al.'s
        block coordinate descent on the statistics), ``"mu"``, ``"greedy_cd"``; for β ≠ 2
        the H update is the β multiplicative update whatever the solver.
      init: how H starts: an init name (drawn from the first block, on its rows) or an
        array ``(rank, n_features)``.
      batch_size: rows per batch (blocks are cut and joined into batches of this size).
      block_rows: rows per read of an array-like source (default: about 64 MiB of rows,
        a multiple of ``batch_size``); iterables give their own blocks.
      max_iter: maximum number of passes over the data.
      tol: stopping tolerance on ``‖ΔH‖ / ‖H‖`` (0 disables), and the W solve's tolerance.
      max_no_improvement: steps without improvement of the averaged objective that stop
        the fit (None disables).
      forget_factor: ρ in ``[0, 1]``: the weight of past statistics is
        ``forget_factor^(batch_size / n_samples)`` per batch (per batch for sources of
        unknown length), as scikit-learn's.
      inner_max_iter: cap on the W solve's iterations per batch.
      seed: seed of random initializations.
      n_samples: the number of rows of an iterable source, when known: it sets the
        forgetting per batch and the averaging weight as for an array of that length
        (array-like sources know theirs).
      prefetch: read the next block in a background thread while the device works.
      on_error: ``"raise"`` (default): a bad block raises :class:`StreamError` with the
        factors so far in ``error.result``; ``"return"``: return that result instead.
      devices: ``None`` (one device), an int or a list of devices (of this process or,
        after ``jax.distributed.initialize``, of several; every process then reads the
        same source): each batch's rows are split across them (padded with zero rows to a
        multiple), H and the statistics replicated; the result equals the one-device fit up
        to the order of floating-point sums (see :mod:`jaxnmf._sharding`).

    Returns:
      A :class:`MiniBatchResult`.

    Raises:
      TypeError, ValueError: bad arguments or a bad first block, before compilation.
      StreamError: a later bad block or failed read (``on_error="raise"``).

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> X = np.random.default_rng(0).random((200, 12)).astype(np.float32)
      >>> res = jn.fit_minibatch(X, 3, batch_size=50, max_iter=5)
      >>> res.H.shape, res.H.dtype, res.n_steps <= 20
      ((3, 12), dtype('float32'), True)
    """
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    max_iter = _validate.positive_int(max_iter, "max_iter")
    inner_max_iter = _validate.positive_int(inner_max_iter, "inner_max_iter")
    tol = _validate.non_negative_float(tol, "tol")
    if max_no_improvement is not None:
        max_no_improvement = _validate.positive_int(max_no_improvement, "max_no_improvement")
    forget_factor = _check_forget(forget_factor)
    loss_obj = _losses.as_loss(loss)
    _validate.loss_weights(loss_obj)
    _validate.loss_has_data_term(loss_obj)
    solver = _check_solver(solver, loss_obj)
    positive = any(b <= 0 for b in loss_obj.beta_values)
    devices = _sharding.resolve(devices)
    src = _stream.open_source(source)

    # The first block fixes width and dtype, and H0 comes from it: read it here, so that a
    # bad first block is a plain ValueError/TypeError before anything compiles.
    first_rows = block_rows or batch_size
    first_iter = _stream.checked_blocks(src, first_rows)
    try:
        _, _, first = next(first_iter)
    except StopIteration:
        raise ValueError("the source holds no rows") from None
    except StreamError as e:
        raise (TypeError if isinstance(e, TypeError) else ValueError)(str(e)) from e
    first_iter.close()
    n_cols, in_dtype = first.shape[1], first.dtype
    dtype = _validate.compute_dtype(in_dtype)
    rank = _validate.positive_int(rank, "rank")
    if rank > n_cols:
        raise ValueError(f"rank must be <= n_features = {n_cols}, got {rank}")
    H0 = _initial_H(init, first, rank, dtype, seed, loss_obj)
    if block_rows is None:
        per_row = n_cols * np.dtype(dtype).itemsize
        block_rows = batch_size * max(1, (64 << 20) // (per_row * batch_size))
    block_rows = _validate.positive_int(block_rows, "block_rows")
    if not src.rereadable:
        src = _restart(src, source, first, first_iter)
    if n_samples is not None:
        if src.n_rows is not None and n_samples != src.n_rows:
            raise ValueError(f"n_samples={n_samples}, but the source has {src.n_rows} rows")
        src.n_rows = _validate.positive_int(n_samples, "n_samples")
    loss_c = loss_obj.astype(dtype)
    engine = _Online(
        H0,
        lambda b: loss_c,
        solver,
        tol=tol,
        inner_tol=tol,
        max_no_improvement=max_no_improvement,
        inner_max_iter=inner_max_iter,
        objective_from_grams=objective_from_grams_ok(tol, dtype),
        devices=devices,
    )
    try:
        code, epochs, rows = run_online(
            engine,
            src,
            batch_size=batch_size,
            block_rows=block_rows,
            max_epochs=max_iter,
            forget_factor=forget_factor,
            n_cols=n_cols,
            dtype=in_dtype,
            prefetch=prefetch,
            positive=positive,
        )
    except StreamError as e:
        e.result = _result(
            engine, _online.Code.RUNNING, e.n_epochs, e.rows_seen, loss_obj, str(e), e.block
        )
        if on_error == "return":
            return e.result
        raise
    return _result(engine, code, epochs, rows, loss_obj)


def _restart(src: _stream.Source, source, first, first_iter) -> _stream.Source:
    """A plain iterator cannot be read again after its first block was taken for H0: put
    that block back in front of the rest (callables and re-iterables read afresh)."""
    if src.rereadable:
        return src
    rest = src._blocks  # the same underlying iterator, positioned after the first block
    del first_iter

    def blocks(block_rows):
        yield first
        yield from rest(block_rows)

    return _stream.Source(blocks, None, src.n_cols, False, src.name)


def _initial_H(init, first, rank, dtype, seed, loss):
    """H0 ``(rank, n)``: given, or an init method's H on the first block's rows."""
    n = first.shape[1]
    if not isinstance(init, str):
        H0 = _validate.data_matrix(init, "init (H0)")
        if H0.shape != (rank, n):
            raise ValueError(f"init H0 must have shape ({rank}, {n}), got {H0.shape}")
        _validate.check_values(H0, None, "init (H0)")
        return np.asarray(H0, dtype)
    X = _stream.dense_rows(first, 0, first.shape[0], dtype)
    method = init if rank <= min(X.shape) else "random"
    V, mask, *_ = _api.prepare(X, None, loss, "mu", None)
    _, H0 = _api.initial_factors(V, mask, _validate.seed_key(seed), rank=rank, method=method)
    return np.asarray(H0, dtype)


def __getattr__(name):
    # The estimator imports scikit-learn (slow); only on first use, as jaxnmf.NMF.
    if name == "MiniBatchNMF":
        from ._minibatch_estimator import MiniBatchNMF

        return MiniBatchNMF
    raise AttributeError(f"module 'jaxnmf.minibatch' has no attribute {name!r}")
