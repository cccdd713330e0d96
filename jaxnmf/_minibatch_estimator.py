"""The scikit-learn estimator :class:`MiniBatchNMF` (imported on first use: it imports
scikit-learn). The schedule is :mod:`jaxnmf._online`, the host loop
:func:`jaxnmf.minibatch.run_online`."""
# ruff: noqa: N802, N803, N806

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from . import _memory, _online, _sparse, _stream, _validate
from . import api as _api
from .estimator import NMF as _NMF
from .estimator import ConvergenceWarning, _seed_from, check_is_fitted
from .minibatch import _check_forget, _Online, run_online
from .solvers import as_solver
from .solvers._base import objective_from_grams_ok

__all__ = ["MiniBatchNMF"]

# A sparse X up to this size is densified for the one-call fit (the dense batches of the
# host loop would densify it all anyway, one batch at a time, over every pass).
_RESIDENT_BYTES = 256 << 20


class MiniBatchNMF(_NMF):
    r"""Minibatch (online) NMF as a scikit-learn transformer: ``X ≈ W H``, ``H`` learned
    from batches of ``batch_size`` samples (rows), with ``partial_fit`` for data that
    arrives in chunks.

    Parameters are those of ``sklearn.decomposition.MiniBatchNMF``, with its defaults and
    meanings (the objective and the penalty scaling are those of :class:`jaxnmf.NMF`; the
    penalties of a batch of ``b`` rows are ``b · alpha_H`` on H and ``n_features · alpha_W``
    on W, as scikit-learn's), plus ``solver``. What differs is the schedule
    (:mod:`jaxnmf._online`): for the Frobenius loss the statistics ``WᵀW``, ``WᵀX`` are
    accumulated (Mairal et al. 2010) and H is updated from them by the solver's own H block —
    with the default ``solver="auto"``, one HALS sweep (exact block coordinate descent,
    Mairal et al.'s dictionary update) where scikit-learn takes one multiplicative step —
    and each batch's W by the same solver's W block; for other β, scikit-learn's algorithm
    (Lefèvre et al. 2011's accumulated multiplicative update), with accumulators started at
    zero instead of ``(H₀, 1)``. Stopping rule: scikit-learn's (``‖ΔH‖ ≤ tol ‖H‖``, or
    ``max_no_improvement`` steps without improvement of the averaged batch objective), with
    :attr:`status_` as every jaxnmf run.

    Batches are taken in order (no shuffling), the last of a pass shorter: one compiled
    step per batch shape (two per data size), reused across passes. A small X (up to 65536
    entries once padded) is zero-padded to power-of-two buckets of rows per batch and of
    features where that is exact (HALS or MU, Frobenius loss; see
    :func:`jaxnmf._online.padding_is_exact`): one compiled fit and transform then serve
    every data size of a bucket.

    Args:
      n_components: k; ``"auto"`` (default) or None: as :class:`jaxnmf.NMF`.
      init: ``None``, ``"random"``, ``"nndsvd"``, ``"nndsvda"``, ``"nndsvdar"`` or
        ``"custom"``, drawn on the whole X by ``fit`` (on the first batch by
        ``partial_fit``).
      batch_size: samples per batch.
      beta_loss: ``"frobenius"``, ``"kullback-leibler"``, ``"itakura-saito"`` or a real β.
      tol: stopping tolerance on ``‖ΔH‖ / ‖H‖`` (0 disables); also the W solves' tolerance.
      max_no_improvement: steps without improvement of the averaged objective that stop
        ``fit`` (None disables).
      max_iter: maximum number of passes over X.
      alpha_W, alpha_H, l1_ratio: penalties, as :class:`jaxnmf.NMF`.
      forget_factor: weight of past statistics, ``forget_factor^(batch_size / n_samples)``
        per batch.
      fresh_restarts: solve each batch's W from scratch (``fresh_restarts_max_iter``
        iterations) instead of one iteration from the sample's last W.
      fresh_restarts_max_iter: iterations of those fresh solves (and of ``partial_fit``'s).
      transform_max_iter: iterations of ``transform`` (None: ``max_iter``).
      random_state: as :class:`jaxnmf.NMF`.
      verbose: accepted for compatibility; nothing is printed.
      solver: ``"auto"`` (HALS for β = 2, ``"mu"`` otherwise), or any solver made of blocks
        (a name or an object of :mod:`jaxnmf.solvers`).

    Attributes:
      components_: H, ``(n_components, n_features)``.
      n_components_, n_features_in_, feature_names_in_: as :class:`jaxnmf.NMF`.
      reconstruction_err_: ``sqrt(2 d_β(X | W H))`` after ``fit``.
      n_iter_: passes started; n_steps_: batches processed.
      status_: ``"converged"``, ``"max_iter"`` or ``"nonfinite"``.

    References:
      Mairal, J., Bach, F., Ponce, J. & Sapiro, G. (2010). Online learning for matrix
      factorization and sparse coding. JMLR 11, 19–60.
      Lefèvre, A., Bach, F. & Févotte, C. (2011). Online algorithms for nonnegative matrix
      factorization with the Itakura-Saito divergence. IEEE WASPAA.

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> X = np.random.default_rng(0).random((60, 6)).astype(np.float32)
      >>> model = jn.MiniBatchNMF(3, batch_size=20, max_iter=20, tol=0.0, random_state=0)
      >>> W = model.fit_transform(X)
      >>> W.shape, model.components_.shape, W.dtype
      ((60, 3), (3, 6), dtype('float32'))
      >>> model.partial_fit(X[:20]).n_steps_ > 0
      True
    """

    # jaxnmf.NMF's helpers read these; MiniBatchNMF has scikit-learn's objective only.
    loss = None
    penalty_scaling = "sklearn"

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        batch_size=1024,
        beta_loss="frobenius",
        tol=1e-4,
        max_no_improvement=10,
        max_iter=200,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        forget_factor=0.7,
        fresh_restarts=False,
        fresh_restarts_max_iter=30,
        transform_max_iter=None,
        random_state=None,
        verbose=0,
        solver="auto",
    ):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.solver = solver

    # --- parameters ------------------------------------------------------------------------

    def _solver_object(self):
        s = self.solver
        if isinstance(s, str) and s.lower() == "auto":
            s = "hals" if self._beta() == 2.0 else "mu"
        elif isinstance(s, str) and s.lower() == "cd":
            s = "hals"
        solver = as_solver(s)
        if not hasattr(solver, "block"):
            raise TypeError(f"MiniBatchNMF needs a solver made of blocks, got {solver!r}")
        return solver

    def _check_X(self, X, *, reset: bool, masked: bool):
        """As :class:`jaxnmf.NMF`'s, a sparse X as CSR: batches are its row ranges."""
        X = super()._check_X(X, reset=reset, masked=masked)
        return X.tocsr() if _sparse.is_sparse_input(X) else X

    def _settings(self) -> dict:
        """Validated parameters (ValueError/TypeError before anything compiles)."""
        mni = self.max_no_improvement
        tmi = self.transform_max_iter
        return dict(
            batch_size=_validate.positive_int(self.batch_size, "batch_size"),
            tol=_validate.non_negative_float(self.tol, "tol"),
            max_iter=_validate.positive_int(self.max_iter, "max_iter"),
            max_no_improvement=None
            if mni is None
            else _validate.positive_int(mni, "max_no_improvement"),
            forget_factor=_check_forget(self.forget_factor),
            fresh_max_iter=_validate.positive_int(
                self.fresh_restarts_max_iter, "fresh_restarts_max_iter"
            ),
            transform_max_iter=_validate.positive_int(
                self.max_iter if tmi is None else tmi, "transform_max_iter"
            ),
        )

    def _losses_for(self, n_features: int, dtype):
        """``b -> Loss`` of a batch of b rows in ``dtype`` (cached: one Loss per size)."""
        cache = {}

        def loss_for(b):
            if b not in cache:
                cache[b] = self._objective(b, n_features).astype(dtype)
            return cache[b]

        return loss_for

    def _engine(self, H0, n_features, solver, cfg, *, inner_max_iter, state=None):
        engine = _Online(
            H0,
            self._losses_for(n_features, H0.dtype),
            solver,
            tol=cfg["tol"],
            inner_tol=cfg["tol"],
            max_no_improvement=cfg["max_no_improvement"],
            inner_max_iter=inner_max_iter,
            objective_from_grams=objective_from_grams_ok(cfg["tol"], H0.dtype),
        )
        if state is not None:
            engine.state = jax.tree.map(jnp.asarray, state)
        return engine

    def _prepared(self, X, k, solver):
        """X validated by the core (values, β support), and the compute dtype."""
        loss = self._objective(*X.shape)
        V, _, loss_c, _, dtype = _api.prepare(X, None, loss, solver, None)
        return V, loss_c, dtype

    def _initial(self, X, W, H, solver):
        m, n = X.shape
        k = self._resolve_n_components(n, H)
        init = self._resolve_init(k, m, n, W, H)
        V, _, dtype = self._prepared(X, k, solver)
        if isinstance(init, tuple):
            W0 = _validate.data_matrix(init[0], "W")
            H0 = _validate.data_matrix(init[1], "H")
            if W0.shape != (m, k) or H0.shape != (k, n):
                raise ValueError(
                    f"init='custom' needs W of shape {(m, k)} and H of shape {(k, n)}, got "
                    f"{W0.shape} and {H0.shape}"
                )
            for A, name in ((W0, "W"), (H0, "H")):
                _validate.check_values(A, None, name)
            return np.array(W0, dtype), np.array(H0, dtype), dtype
        draw = init in ("random", "nndsvdar")
        key = _validate.seed_key(_seed(self.random_state, draw))
        W0, H0 = _api.initial_factors(V, None, key, rank=k, method=init)
        return np.array(W0, dtype), np.array(H0, dtype), dtype

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X, y=None, W=None, H=None):
        """Learn the components from ``X`` ``(n_samples, n_features)`` (dense or sparse).

        Returns:
          self.
        """
        self.fit_transform(X, y, W=W, H=H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the components from ``X`` and return its ``W`` ``(n_samples, k)``.

        ``W``, ``H``: the initial factors when ``init="custom"``.
        """
        del y
        X = self._check_X(X, reset=True, masked=False)
        self._check_values(X, None)
        cfg = self._settings()
        solver = self._solver_object()
        W0, H0, dtype = self._initial(X, W, H, solver)
        m, n = X.shape
        inner = cfg["fresh_max_iter"] if self.fresh_restarts else 1
        engine = self._engine(H0, n, solver, cfg, inner_max_iter=inner)
        if _sparse.is_sparse_input(X) and m * n * np.dtype(dtype).itemsize > _RESIDENT_BYTES:
            # too large to densify: batch by batch from the host (densified one at a time)
            W_store = None if self.fresh_restarts else W0
            code, epochs, _ = run_online(
                engine,
                _stream.open_source(X),
                batch_size=cfg["batch_size"],
                block_rows=cfg["batch_size"],
                max_epochs=cfg["max_iter"],
                forget_factor=cfg["forget_factor"],
                n_cols=n,
                dtype=X.dtype,
                W_store=W_store,
                prefetch=False,
            )
            W_out, sq_error = W_store, None
        else:
            code, epochs, W_out, sq_error = self._fit_resident(engine, X, W0, cfg, dtype)
        state = engine.host_state()
        self._store(state, solver, cfg, m)
        if code == _online.Code.MAX_ITER and cfg["tol"] > 0:
            warnings.warn(
                f"Maximum number of iterations {cfg['max_iter']} reached. Increase it to "
                "improve convergence.",
                ConvergenceWarning,
                stacklevel=_validate.user_stacklevel(),
            )
        self.status_ = _api.Status.from_code(code)
        self.n_iter_ = int(epochs)
        self.n_steps_ = int(state.step)
        W_fit = self._solve(X, cfg) if self.fresh_restarts else np.asarray(W_out)
        if sq_error is not None:
            self.reconstruction_err_ = float(np.sqrt(max(sq_error, 0.0)))
        else:
            self.reconstruction_err_ = self._reconstruction_err(X, W_fit, self.components_, None)
        return W_fit

    def _fit_resident(self, engine: _Online, X, W0, cfg, dtype):
        """Every pass in one compiled loop (:func:`jaxnmf._online.fit_resident`): X cut
        into batches of ``min(batch_size, n_samples)`` rows, the last zero-padded. A small X
        is also zero-padded to buckets of rows per batch and of features where that is exact
        (:func:`jaxnmf._online.padded_shape`): one program then serves several data sizes.
        Returns ``(code, passes, W, ‖X - W H‖²)`` with the final H (the residual computed on
        the device, each row's sum in the compute dtype, their total in float64; None with
        fresh restarts, whose W is solved afresh, and for β ≠ 2)."""
        m, n = X.shape
        k = W0.shape[1]
        b = min(cfg["batch_size"], m)
        n_b = -(-m // b)
        pad = n_b * b - m
        last = m - (n_b - 1) * b
        bp, n_p = _online.padded_shape(b, n, engine.solver, engine.loss_for(b), n_b)
        # X is written once, into a buffer that the device takes without another copy
        Xp = _memory.aligned_zeros((n_b, bp, n_p), dtype)
        Wp = np.zeros((n_b, bp, k), dtype)
        if (bp, n_p) == (b, n):
            _stream.dense_into(Xp.reshape(n_b * b, n)[:m], X)
            Wp.reshape(n_b * b, k)[:m] = W0
        else:  # batch j's rows at Xp[j, :b, :n], zeros elsewhere (the last: its rows only)
            for j in range(n_b):
                rows = slice(j * b, min((j + 1) * b, m))
                r = rows.stop - rows.start
                _stream.dense_into(Xp[j, :r, :n], X[rows])
                Wp[j, :r] = W0[rows]
        Xp = jax.device_put(Xp)
        sizes = np.full((n_b,), b, np.int32)
        sizes[-1] = last
        both = jax.tree.map(
            lambda u, v: np.stack([u, v]), engine.loss_for(b), engine.loss_for(last)
        )
        state = engine.state
        if n_p != n:  # zero columns of H and of the cross statistics B (on the host)
            widen = lambda a: np.pad(np.asarray(a), ((0, 0), (0, n_p - n)))
            state = state._replace(H=widen(state.H), B=widen(state.B))
        out = _online.fit_resident(
            state,
            Xp,
            Wp,
            sizes,
            both,
            np.asarray(cfg["forget_factor"] ** (b / m), dtype),
            np.asarray(m, dtype),
            engine.tol,
            engine.inner_tol,
            engine.max_no_improvement,
            solver=engine.solver,
            inner_max_iter=engine.inner_max_iter,
            objective_from_grams=engine.objective_from_grams,
            max_steps=cfg["max_iter"] * n_b,
            fresh=bool(self.fresh_restarts),
            padded=pad > 0 or bp > b,
            # the error of fit_transform's W: this W unless fresh restarts solve it afresh
            row_errors=not self.fresh_restarts and self._beta() == 2.0,
            n_features=np.int32(n),
        )
        state = out.state
        if n_p != n:
            state = state._replace(H=np.asarray(state.H)[:, :n], B=np.asarray(state.B)[:, :n])
        engine.state = state
        n_steps = int(out.n_steps)
        code = int(out.state.status)
        if code == _online.Code.RUNNING:
            code = _online.Code.MAX_ITER
        W = np.asarray(out.W)[:, :b].reshape(n_b * b, k)[:m]
        sq_error = None
        if out.row_sq_error is not None:
            sq_error = float(np.sum(np.asarray(out.row_sq_error), dtype=np.float64))
        return code, -(-n_steps // n_b), W, sq_error

    def _reconstruction_err(self, X, W, H, mask) -> float:
        # ‖X - WH‖_F for β = 2 on the host, as scikit-learn computes it: one compiled
        # program less per data shape (scikit-learn's checks fit a dozen shapes), and no
        # device round trip (5 ms of a 20 ms fit of the TF-IDF matrix). A resident fit
        # without fresh restarts takes its error from the fit's own program instead
        # (ResidentOut.row_sq_error): 9.7-12.0 ms against 12.0-14.0 ms a 5-pass TF-IDF fit
        # (4 interleaved runs), 128 against 161 ms 2 passes over a dense 100,000 × 200 X
        # (2026-12-04).
        if mask is not None or self._beta() != 2.0:
            return super()._reconstruction_err(X, W, H, mask)
        H = np.asarray(H, np.float64)
        if _sparse.is_sparse_input(X):
            # ‖X‖² - 2 <X, WH> + <WᵀW, HHᵀ> from the stored entries, in O(nnz k), as
            # scikit-learn's _beta_divergence for sparse X
            W = np.asarray(W, np.float64)
            X = X.astype(np.float64)
            sq = X.power(2).sum() - 2 * np.vdot(W, X @ H.T) + np.vdot(W.T @ W, H @ H.T)
            return float(np.sqrt(max(sq, 0.0)))
        sq = 0.0
        for a in range(0, X.shape[0], 4096):  # in row chunks: no float64 copy of X
            R = np.asarray(X[a : a + 4096], np.float64) - np.asarray(W[a : a + 4096]) @ H
            sq += float(np.vdot(R, R))
        return float(np.sqrt(sq))

    def _store(self, state, solver, cfg, n_samples):
        self._online_state = state
        self._rho = cfg["forget_factor"] ** (min(cfg["batch_size"], n_samples) / n_samples)
        self.components_ = np.array(state.H)
        self.n_components_ = self.components_.shape[0]

    def partial_fit(self, X, y=None, W=None, H=None):
        """Update the components with one batch ``X`` ``(b, n_features)`` (as
        scikit-learn's: its W solved afresh with ``fresh_restarts_max_iter`` iterations,
        then the accumulated statistics and H updated once; no stopping rule).

        ``W``, ``H``: initial factors for ``init="custom"`` on the first call only.

        Returns:
          self.
        """
        del y
        fitted = hasattr(self, "components_")
        X = self._check_X(X, reset=not fitted, masked=False)
        self._check_values(X, None)
        cfg = self._settings()
        solver = self._solver_object()
        b, n = X.shape
        if not fitted:
            _, H0, dtype = self._initial(X, W, H, solver)
            state, self.n_steps_ = None, 0
            self._rho = cfg["forget_factor"] ** (min(cfg["batch_size"], b) / b)
        else:
            _, _, dtype = self._prepared(X, self.components_.shape[0], solver)
            H0 = np.asarray(self.components_, dtype)
            state = self._online_state
            if np.dtype(state.H.dtype) != dtype:  # a batch of another dtype: continue in it
                state = jax.tree.map(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a, state)
        engine = self._engine(H0, n, solver, cfg, inner_max_iter=cfg["fresh_max_iter"], state=state)
        engine.batch(_stream.dense_rows(X, 0, b, dtype), None, self._rho, 1.0)
        new = engine.host_state()
        if int(new.status) == _online.Code.NONFINITE:
            warnings.warn(
                "MiniBatchNMF.partial_fit: the batch's objective was not finite; "
                "the components were left unchanged",
                RuntimeWarning,
                stacklevel=_validate.user_stacklevel(),
            )
        self._online_state = new._replace(status=np.int32(_online.Code.RUNNING))
        self.components_ = np.array(new.H)
        self.n_components_ = self.components_.shape[0]
        self.n_steps_ += 1
        return self

    # --- using the fitted model ------------------------------------------------------------

    def _solve(self, X, cfg):
        """W of ``X`` with ``H = components_`` fixed: the solver's W block from
        scikit-learn's start ``sqrt(mean(X) / k)``, ``transform_max_iter`` iterations or the
        driver's rule at ``tol``, in batches of ``batch_size`` rows (memory bounded by a
        batch; the stopping rule is per batch)."""
        solver = self._solver_object()
        m, n = X.shape
        _, _, dtype = self._prepared(X, self.components_.shape[0], solver)
        H = np.asarray(self.components_, dtype)
        k = H.shape[0]
        mean = float(X.mean())
        loss_for = self._losses_for(n, dtype)
        out = np.empty((m, k), dtype)
        step = cfg["batch_size"]
        n_b = -(-m // step)
        # a small X zero-padded to buckets of rows and features where that is exact (zero
        # rows of W and columns of H; see jaxnmf._online.padding_is_exact): one program for
        # several data sizes
        rows_p, n_p = _online.padded_shape(min(step, m), n, solver, loss_for(1), n_b)
        H = jnp.asarray(np.pad(H, ((0, 0), (0, n_p - n))) if n_p != n else H)
        for a in range(0, m, step):
            Xb = _stream.dense_rows(X, a, a + step, dtype)
            r = Xb.shape[0]
            W0 = np.full((r, k), np.sqrt(max(mean, 0.0) / k), dtype)
            if (rows_p, n_p) != (min(step, m), n):
                Xb = np.pad(Xb, ((0, rows_p - r), (0, n_p - n)))
                W0 = np.pad(W0, ((0, rows_p - r), (0, 0)))
            W, _, _ = _online.transform_compiled(
                Xb,
                W0,
                H,
                loss_for(r),
                np.asarray(cfg["tol"], dtype),
                solver=solver,
                max_iter=cfg["transform_max_iter"],
                objective_from_grams=objective_from_grams_ok(cfg["tol"], dtype),
            )
            out[a : a + r] = np.asarray(W)[:r]
        return out

    def transform(self, X):
        """``W`` ``(n_samples, k)`` of ``X`` with the components fixed (see :meth:`_solve`)."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False, masked=False)
        self._check_values(X, None)
        return self._solve(X, self._settings())

    def score(self, X, y=None):
        """Minus the reconstruction error ``-sqrt(2 d_β(X | transform(X) H))``."""
        del y
        check_is_fitted(self)
        X = self._check_X(X, reset=False, masked=False)
        self._check_values(X, None)
        W = self._solve(X, self._settings())
        return -self._reconstruction_err(X, W, self.components_, None)


def _seed(random_state, draw: bool) -> int:
    return _seed_from(random_state, draw=draw)
