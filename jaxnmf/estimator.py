"""A scikit-learn compatible NMF estimator: ``X (n_samples × n_features) ≈ W · H``.

:class:`NMF` wraps :func:`jaxnmf.fit` behind scikit-learn's estimator API (``fit``,
``transform``, ``fit_transform``, ``inverse_transform``, ``get_params``/``set_params``), so it
drops into a ``Pipeline`` or a ``GridSearchCV``. Parameters are named as in
``sklearn.decomposition.NMF`` wherever the meaning is the same, and their defaults are
scikit-learn's (``n_components="auto"``, ``init=None``, ``solver="cd"``, ``tol=1e-4``,
``max_iter=200``, no penalties): replacing scikit-learn's ``NMF`` by this one changes nothing
else. With ``solver="cd"`` or ``"mu"`` and the same initial factors it minimizes exactly the
same objective, iterate for iterate; only the stopping rule differs (see :class:`NMF`).

scikit-learn is optional: without it the module still imports and :class:`NMF` fits and
transforms, with minimal ``get_params``/``set_params``.

Shapes: ``X`` ``(n_samples, n_features)``, the transformed data ``W``
``(n_samples, n_components)``, ``components_`` (H) ``(n_components, n_features)``; a ``mask``
has ``X``'s shape.

References:
    Lee, D. D. & Seung, H. S. (2001). Algorithms for non-negative matrix factorization. NIPS.
    Févotte, C. & Idier, J. (2011). Algorithms for nonnegative matrix factorization with the
    β-divergence. Neural Computation 23(9).
    Cichocki, A. & Phan, A.-H. (2009). Fast local algorithms for large scale nonnegative
    matrix and tensor factorizations. IEICE Trans. Fundamentals E92-A(3).
"""
# ruff: noqa: N802, N803, N806

from __future__ import annotations

import functools
import inspect
import numbers
import time
import warnings

import jax
import numpy as np

from . import _run, _scale, _sparse, _validate
from . import api as _api
from . import losses as _losses
from . import metrics as _metrics
from . import solvers as _solvers
from .init import observed_mean as _observed_mean
from .solvers import as_solver
from .solvers._base import objective_from_grams_ok

__all__ = ["NMF"]

# --------------------------------------------------------------------------------------------
# scikit-learn, or minimal stand-ins when it is not installed
# --------------------------------------------------------------------------------------------

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    from sklearn.utils.validation import check_array, check_is_fitted

    try:  # scikit-learn >= 1.6
        from sklearn.utils.validation import validate_data as _sk_validate_data
    except ImportError:  # pragma: no cover - older scikit-learn

        def _sk_validate_data(estimator, X, **kwargs):
            return estimator._validate_data(X, **kwargs)

    # `force_all_finite` was renamed `ensure_all_finite` in scikit-learn 1.6.
    _FINITE_KW = (
        "ensure_all_finite"
        if "ensure_all_finite" in inspect.signature(check_array).parameters
        else "force_all_finite"
    )
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False

    class ConvergenceWarning(UserWarning):
        """The solver stopped at ``max_iter`` before meeting ``tol``."""

    class NotFittedError(ValueError, AttributeError):
        """The estimator was used before ``fit``."""

    def check_is_fitted(estimator):
        if not hasattr(estimator, "components_"):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' "
                "with appropriate arguments before using this estimator."
            )

    class BaseEstimator:
        """``get_params``/``set_params`` from the ``__init__`` signature (scikit-learn's rule:
        every ``__init__`` argument is stored unchanged under its own name)."""

        @classmethod
        def _get_param_names(cls):
            params = inspect.signature(cls.__init__).parameters.values()
            return sorted(p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep=True):
            del deep
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(
                        f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                        f"Valid parameters are: {valid}."
                    )
                setattr(self, name, value)
            return self

        def __repr__(self):
            defaults = {
                p.name: p.default
                for p in inspect.signature(type(self).__init__).parameters.values()
            }
            changed = [
                f"{k}={v!r}"
                for k, v in self.get_params().items()
                if not (defaults.get(k) is v or _same(defaults.get(k), v))
            ]
            return f"{type(self).__name__}({', '.join(changed)})"

    def _same(a, b):
        try:
            return bool(a == b) and type(a) is type(b)
        except Exception:
            return False

    class TransformerMixin:
        """Stand-in: :class:`NMF` defines ``fit_transform`` itself."""

    class ClassNamePrefixFeaturesOutMixin:
        def get_feature_names_out(self, input_features=None):
            """Output feature names ``nmf0, nmf1, ...``, ``(n_components,)`` object array."""
            del input_features
            check_is_fitted(self)
            prefix = type(self).__name__.lower()
            return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], object)


def solve_w_with_h_fixed(V, mask, loss, solver, H, tol, max_iter, width=None):
    """``W`` for prepared data ``V`` (``(m, n)``, from :func:`jaxnmf.api.prepare`) with ``H``
    ``(k, n)`` fixed: ``solver``'s W block under the one-side schedule, from scikit-learn's
    start ``W = sqrt(mean(V) / k)`` (mean over observed entries; positive, so multiplicative
    updates can move it), solved on ``V / max V`` as :func:`jaxnmf.fit` does
    (:mod:`jaxnmf._scale`). Used by :meth:`NMF.transform` and the consensus refit.

    ``width`` (``>= k``): solve at this padded width, the components ``>= k`` inactive (zero),
    so that solves of several ranks share one compiled program (the consensus refit of every
    rank, bi-cross-validation); the state returned is cut back to k components.

    Returns ``(state, scaling)``: the final run state, in the scaled units, and the scaling
    (``scaling.factors_out`` / ``scaling.run_state`` map it back).
    """
    dtype = np.dtype(H.dtype)
    k = H.shape[0]
    width = k if width is None else int(width)
    W0 = np.full((V.shape[0], k), np.sqrt(float(_observed_mean(V, mask)) / k), dtype)
    scaling = _scale.data_scale(V, mask, loss)
    W0, H = scaling.factors_in(W0, H)
    W0 = np.pad(np.asarray(W0), [(0, 0), (0, width - k)])
    H = np.pad(np.asarray(H), [(0, width - k), (0, 0)])
    spec = _run.RunSpec(
        solver=_solvers.one_side(solver, "W"),
        max_iter=max_iter,
        k_max=width,
        objective_from_grams=objective_from_grams_ok(tol, dtype),
    )
    hyper = _run.Hyper(np.asarray(tol, dtype), np.asarray(0, dtype))
    member = _run.Member(scaling.loss(loss), rank=np.int32(k), W0=W0, H0=H)
    state, _ = _run.run_compiled(scaling.data(V), mask, member, hyper, spec=spec)
    return state._replace(W=state.W[:, :k], H=state.H[:k]), scaling


@functools.partial(jax.jit, static_argnames="beta")
def _dense_beta_divergence(V, W, H, mask, *, beta):
    """:func:`jaxnmf.metrics.beta_divergence` of dense ``V`` ``(m, n)`` (``W`` ``(m, k)``,
    ``H`` ``(k, n)``, ``mask`` None or ``(m, n)``) as one program. Run eagerly, each of its
    operations compiled on its own for every new shape: 2.5 s of compilation in one run of
    scikit-learn's estimator checks (about 90 small programs), 0.6 s as one."""
    return _metrics.beta_divergence(V, W, H, beta, mask)


# --------------------------------------------------------------------------------------------
# Parameter helpers
# --------------------------------------------------------------------------------------------

_BETA_NAMES = {
    "frobenius": 2.0,
    "kullback-leibler": 1.0,
    "kl": 1.0,
    "itakura-saito": 0.0,
    "itakura_saito": 0.0,
    "is": 0.0,
}
_INITS = ("random", "nndsvd", "nndsvda", "nndsvdar", "custom")


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


def _preserved_dtypes() -> list[str]:
    return ["float64", "float32"] if _x64() else ["float32"]


def _seed_from(random_state, *, draw: bool = True) -> int:
    """An integer jaxnmf seed from a scikit-learn ``random_state`` (validated either way).

    ``None`` draws from NumPy's global generator (a new seed per fit, as scikit-learn's
    ``None``); an int is used as the seed; a ``RandomState`` or ``Generator`` is drawn from.
    With ``draw=False`` (an initialization that needs no randomness) nothing is drawn, so
    the generator's state is left alone, and 0 is returned.
    """
    high = np.iinfo(np.int32).max
    if random_state is None:
        return int(np.random.randint(high)) if draw else 0
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(high)) if draw else 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(high)) if draw else 0
    raise ValueError(
        f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}"
    )


def _without_h_penalties(loss: _losses.Loss) -> _losses.Loss:
    """``loss`` less its penalties on H: constant in the W-subproblem of :meth:`NMF.transform`."""
    pairs = [
        (t, w)
        for t, w in zip(loss.terms, loss.weights, strict=True)
        if not (isinstance(t, _losses.Penalty) and t.factor == "H")
    ]
    return _losses.Loss([t for t, _ in pairs], [w for _, w in pairs])


def _as_scipy_coo(X):
    """A BCOO/BCSR (or :class:`~jaxnmf._sparse.SparseMatrix`) as a ``scipy.sparse`` COO
    matrix of its stored entries (host copies of the index and value arrays only)."""
    import scipy.sparse

    rows, cols, values, shape = _sparse.coo_arrays(X)
    return scipy.sparse.coo_matrix((values, (rows, cols)), shape=shape)


def _may_hold_nan(mask) -> bool:
    """True when ``mask`` is a weight array: X may then hold NaN at its masked entries
    (``"stored"`` marks the stored entries of a sparse X as observed: they must be finite)."""
    return mask is not None and not isinstance(mask, str)


def _warn_nonfinite(status, what: str) -> None:
    """Warn when a run ended ``nonfinite`` or ``diverged`` (as :func:`jaxnmf.fit` does)."""
    if status.failed:
        warnings.warn(
            f"NMF.{what}: {_api.failure_message(status)}",
            RuntimeWarning,
            stacklevel=_validate.user_stacklevel(),
        )


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------


class NMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Non-negative matrix factorization ``X ≈ W H`` as a scikit-learn transformer.

    Finds ``W ≥ 0`` ``(n_samples, n_components)`` (the transformed data) and ``H ≥ 0``
    ``(n_components, n_features)`` (:attr:`components_`) that minimize

    .. math::
        f(W, H) = d_\beta(X \mid WH) + a_W\, l_1 \|W\|_1 + \tfrac12 a_W (1 - l_1) \|W\|_F^2
                  + a_H\, l_1 \|H\|_1 + \tfrac12 a_H (1 - l_1) \|H\|_F^2,

    where :math:`d_\beta` is the β-divergence of ``beta_loss`` (β = 2 is
    ``½‖X - WH‖_F²``, β = 1 the generalized Kullback–Leibler divergence, β = 0
    Itakura–Saito; Févotte & Idier 2011), :math:`l_1` = ``l1_ratio`` and the penalty weights
    :math:`a_W, a_H` depend on ``penalty_scaling``:

    * ``"sklearn"`` (default): ``a_W = n_features · alpha_W`` and
      ``a_H = n_samples · alpha_H``, exactly scikit-learn's objective
      (``sklearn.decomposition._nmf._beta_divergence`` plus its ``_compute_regularization``).
      With the same initial factors, :class:`NMF` and ``sklearn.decomposition.NMF`` produce
      the same iterates with ``solver="cd"`` (the default of both) and with ``"mu"``.
    * ``"none"``: ``a_W = alpha_W`` and ``a_H = alpha_H``, the weights used as given (the
      scaling of :func:`jaxnmf.losses.l1` and :func:`jaxnmf.losses.l2`).

    Note that :func:`jaxnmf.losses.frobenius` is ``Σ(X - WH)² = 2 d_2``; ``beta_loss`` follows
    scikit-learn and uses ``d_2 = ½ Σ(X - WH)²``.

    Solvers: ``"cd"`` (the default, scikit-learn's name for fast HALS coordinate descent,
    β = 2 only; Cichocki & Phan 2009; also ``"hals"``), ``"mu"`` (multiplicative updates,
    any β; Lee & Seung 2001, Févotte & Idier 2011), ``"pg"`` (Lin's projected gradient, any
    loss), or any solver object of :mod:`jaxnmf.solvers`. As in scikit-learn, the default
    ``"cd"`` refuses a ``beta_loss`` other than Frobenius: pass ``solver="mu"`` for those.
    All solvers stop by the same rule: the relative change of the objective from one
    iteration to the next falls below ``tol``, or ``max_iter`` iterations (see
    :func:`jaxnmf.fit`). ``tol`` has scikit-learn's default and meaning (a relative
    tolerance; 0 runs ``max_iter`` iterations; ``ConvergenceWarning`` at ``max_iter`` when
    ``tol > 0``), but not its exact rule: scikit-learn's ``cd`` compares the sum of the
    absolute projected-gradient entries met in a sweep with that of the first sweep, and its ``mu``
    the decrease of the error over 10 iterations with the initial error. So equal ``tol``
    values do not stop at the same iteration: with the defaults on digits (k = 10),
    scikit-learn's ``cd`` runs its 200 iterations (error 864.6 with ``random_state=0``,
    861-865 over ``random_state`` 0-7: its NNDSVD takes a randomized SVD) and this one stops
    after 74 at 865.1 (an exact SVD; with ``tol=0``, 200 iterations reach 862.7 here and
    864.6 there, and 1000 iterations the same 857.6 in both).

    ``transform(X)`` keeps ``H = components_`` fixed and solves the W-subproblem with the same
    solver's own W update (its block, run by :class:`~jaxnmf.solvers.OneSide`), from scikit-learn's
    ``mu`` starting point ``W = sqrt(mean(X) / n_components)``, with the same ``tol`` and
    ``max_iter``. Penalties on ``W`` apply, those on ``H`` are constant there. On the training data
    it returns approximately the ``W`` of ``fit_transform`` (to the accuracy both reach;
    scikit-learn issue 18663): the objective is convex in ``W`` for β ≥ 1, so both approach the same
    minimizer. On digits (k = 10, default ``tol`` and ``max_iter``) they differ by 0.7 % (``hals``)
    and 0.2 % (``pg``), but by 5 % with ``mu``, whose fitted ``W`` is itself 4 % away from that
    minimizer after 200 iterations. The stopping rule is on the whole batch, so a batch's transform
    equals the row-by-row transform only up to that tolerance (exactly for ``mu`` and ``hals`` when
    ``tol=0``: their rows of ``W`` are updated independently).

    Sparse input (``scipy.sparse`` in any format, ``jax.experimental.sparse`` BCOO/BCSR) is
    **never densified**: ``fit``, ``fit_transform``, ``transform`` and ``score`` pass its
    stored entries to the sparse kernels of the core (:mod:`jaxnmf._sparse`), O(nnz · k) per
    iteration and no ``(n_samples, n_features)`` array anywhere (a 200,000 × 50,000 matrix
    with 2,000 stored entries, 80 GB dense, fits in seconds, most of them compiling).
    Unstored entries are zeros of X (Frobenius and KL only, as for :func:`jaxnmf.fit`), or
    missing with ``mask="stored"`` (ratings: any β). With the same initial factors the result
    equals that of the dense ``X`` up to the order of floating-point sums (``init="random"``
    or ``"custom"``; the NNDSVD initializations take a randomized SVD of a sparse X, as
    scikit-learn does for every input, and an exact one of a dense X). ``inverse_transform``
    returns the dense ``W H``, as scikit-learn's does.

    Missing values: pass ``mask`` (``(n_samples, n_features)`` non-negative weights, 0 =
    missing) to ``fit``, ``fit_transform``, ``transform`` or ``score``; masked entries count
    neither in the objective nor in the updates and may hold NaN. For a sparse ``X`` the
    mask is ``None`` or ``"stored"`` (the stored entries are the observed ones). scikit-learn
    has no equivalent.

    dtype: float32 input is computed and returned in float32; float64 in float64 when JAX's
    x64 mode is on (otherwise in float32, with a warning that says how to turn x64 on).

    scikit-learn's estimator checks: :class:`NMF` passes every check that
    ``sklearn.decomposition.NMF`` passes with the same arguments (``tests/test_estimator.py``
    runs both on the defaults, ``n_components=2``, ``n_components=2, init="random"`` and
    ``n_components=2, solver="mu", beta_loss="kullback-leibler", max_iter=500``; no
    exception). With the defaults both fail ``check_transformer_general`` and
    ``check_transformer_data_not_an_array``, alike: they compare ``fit_transform`` with
    ``fit().transform`` to 0.01 on 3-feature data, where ``n_components="auto"`` means 3
    components and the factorization is not unique (both fits end at the same error, 0.4749,
    and their transforms differ from them by 0.054 and 0.060). Both fail those two with
    ``n_components=2, solver="mu"`` (Frobenius loss, ``max_iter=200``) too: the
    multiplicative updates have not converged on that data. With ``max_iter=1000`` this one
    passes them, scikit-learn's still fails them.

    Args:
      n_components: number of components k. ``"auto"`` (the default, as scikit-learn's)
        uses ``H.shape[0]`` with ``init="custom"`` and ``n_features`` otherwise; ``None``
        uses ``n_features``. May exceed ``min(n_samples, n_features)`` (then only
        ``init="random"`` or ``"custom"``).
      init: ``None`` (``"nndsvda"`` if ``n_components <= min(n_samples, n_features)``, else
        ``"random"``, as scikit-learn), ``"random"``, ``"nndsvd"``, ``"nndsvda"``,
        ``"nndsvdar"``, or ``"custom"`` to start from the ``W`` ``(n_samples, n_components)``
        and ``H`` ``(n_components, n_features)`` passed to ``fit``/``fit_transform``.
      solver: ``"cd"`` (the default; fast HALS, alias ``"hals"``), ``"mu"``, ``"pg"``, another
        name that :func:`jaxnmf.solvers.as_solver` knows (e.g. ``"anls"``,
        ``"accelerated_hals"``) or a solver object.
      beta_loss: ``"frobenius"`` (β = 2), ``"kullback-leibler"`` (1), ``"itakura-saito"``
        (0) or any real β. Ignored when ``loss`` is given.
      tol: relative change of the objective below which the run stops (0: run
        ``max_iter``); see the stopping rule above.
      max_iter: maximum number of iterations of ``fit`` and of ``transform``.
      random_state: ``None``, an int, or a ``numpy.random.RandomState``/``Generator``; used
        by the random initializations.
      alpha_W: penalty weight on ``W`` (see the objective above).
      alpha_H: penalty weight on ``H``, or ``"same"`` for ``alpha_W``.
      l1_ratio: the L1 share of the penalties, in ``[0, 1]``.
      loss: a :class:`jaxnmf.losses.Loss` (or a name or number accepted by
        :func:`jaxnmf.losses.as_loss`) used instead of ``beta_loss``; the ``alpha`` penalties
        are added to it (with the weights above, whatever the scale of ``loss``).
      penalty_scaling: ``"sklearn"`` or ``"none"`` (see the objective above).
      verbose: when true, ``fit`` prints one line as it ends: iterations, status,
        reconstruction error and seconds (scikit-learn prints its progress per iteration).
      shuffle: scikit-learn's random order of the coordinates in its ``"cd"`` solver. Only
        ``False`` (the default) is implemented: the HALS components are updated in order,
        as in Cichocki & Phan (2009); ``True`` with ``solver="cd"`` raises ``ValueError``
        (the other solvers ignore it, as scikit-learn's do).

    Attributes:
      components_: H, ``(n_components, n_features)``.
      n_components_: number of components.
      reconstruction_err_: ``sqrt(2 · d_β(X | W H))`` at the end of ``fit`` (the Frobenius
        norm ``‖X - WH‖_F`` for β = 2), on the observed entries; as scikit-learn's. With a
        ``loss`` object, β is that of its single β-divergence term (2 if it has none or
        several).
      n_iter_: number of iterations ``fit`` ran.
      status_: how the fit ended: ``"converged"``, ``"max_iter"``, ``"nonfinite"`` or
        ``"diverged"`` (:class:`jaxnmf.Status`).
      n_features_in_: number of features seen by ``fit``.
      feature_names_in_: feature names of a DataFrame ``X`` with string column names
        (scikit-learn installed only), ``(n_features_in_,)``.

    References:
      Lee, D. D. & Seung, H. S. (2001). Algorithms for non-negative matrix factorization.
      NIPS 13.
      Févotte, C. & Idier, J. (2011). Algorithms for nonnegative matrix factorization with
      the β-divergence. Neural Computation 23(9).
      Cichocki, A. & Phan, A.-H. (2009). Fast local algorithms for large scale nonnegative
      matrix and tensor factorizations. IEICE Trans. Fundamentals E92-A(3).

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> X = np.random.default_rng(0).random((20, 6)).astype(np.float32)
      >>> model = jn.NMF(3, solver="hals", max_iter=100, random_state=0)
      >>> W = model.fit_transform(X)
      >>> W.shape, model.components_.shape, W.dtype
      ((20, 3), (3, 6), dtype('float32'))
      >>> model.transform(X[:2]).shape
      (2, 3)
    """

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        solver="cd",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        loss=None,
        penalty_scaling="sklearn",
        verbose=0,
        shuffle=False,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.loss = loss
        self.penalty_scaling = penalty_scaling
        self.verbose = verbose
        self.shuffle = shuffle

    # --- parameters -> jaxnmf objects ------------------------------------------------------

    def _beta(self) -> float:
        b = self.beta_loss
        if isinstance(b, str):
            try:
                return _BETA_NAMES[b.lower()]
            except KeyError:
                raise ValueError(
                    f"unknown beta_loss {b!r}; expected 'frobenius', 'kullback-leibler', "
                    "'itakura-saito' or a real number"
                ) from None
        if isinstance(b, numbers.Real) and not isinstance(b, bool) and np.isfinite(b):
            return float(b)
        raise ValueError(f"beta_loss must be a name or a finite real number, got {b!r}")

    def _error_beta(self) -> float:
        """β of :attr:`reconstruction_err_` and :meth:`score`."""
        if self.loss is None:
            return self._beta()
        betas = _losses.as_loss(self.loss).beta_values
        return betas[0] if len(betas) == 1 else 2.0

    def _solver_object(self):
        s = self.solver
        cd = isinstance(s, str) and s.lower() == "cd"
        if not isinstance(self.shuffle, bool | np.bool_):
            raise TypeError(f"shuffle must be True or False, got {self.shuffle!r}")
        if cd and self.shuffle:
            raise ValueError(
                "shuffle=True (a random coordinate order in scikit-learn's cd solver) is not "
                "implemented: jaxnmf's HALS updates the components in order; use shuffle=False"
            )
        return as_solver("hals" if cd else s)

    def _regularization(self, n_samples: int, n_features: int):
        """``(l1_W, l1_H, l2_W, l2_H)`` weights of ``Σ W``, ``Σ H``, ``½‖W‖²``, ``½‖H‖²``."""
        alpha_W = _validate.non_negative_float(self.alpha_W, "alpha_W")
        same = isinstance(self.alpha_H, str) and self.alpha_H == "same"
        alpha_H = alpha_W if same else _validate.non_negative_float(self.alpha_H, "alpha_H")
        l1_ratio = _validate.non_negative_float(self.l1_ratio, "l1_ratio")
        if l1_ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
        if self.penalty_scaling == "sklearn":
            scale_W, scale_H = n_features, n_samples
        elif self.penalty_scaling == "none":
            scale_W = scale_H = 1
        else:
            raise ValueError(
                f"penalty_scaling must be 'sklearn' or 'none', got {self.penalty_scaling!r}"
            )
        a_W, a_H = scale_W * alpha_W, scale_H * alpha_H
        return a_W * l1_ratio, a_H * l1_ratio, a_W * (1.0 - l1_ratio), a_H * (1.0 - l1_ratio)

    def _objective(self, n_samples: int, n_features: int) -> _losses.Loss:
        """The :class:`~jaxnmf.losses.Loss` minimized by ``fit`` (see the class docstring)."""
        loss = _losses.beta(self._beta()) if self.loss is None else _losses.as_loss(self.loss)
        l1_W, l1_H, l2_W, l2_H = self._regularization(n_samples, n_features)
        for weight, term in (
            (l1_W, _losses.l1("W")),
            (l1_H, _losses.l1("H")),
            (l2_W, _losses.l2("W")),
            (l2_H, _losses.l2("H")),
        ):
            if weight > 0:  # zero weights are left out: the plain loss is jaxnmf's own
                loss = loss + weight * term
        return loss

    def _resolve_n_components(self, n_features: int, H) -> int:
        k = self.n_components
        if k is None:
            return n_features
        if isinstance(k, str) and k == "auto":
            if self.init == "custom" and H is not None:
                return int(np.shape(H)[0])
            return n_features
        if isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1:
            return int(k)
        raise ValueError(f"n_components must be an integer >= 1, None or 'auto', got {k!r}")

    def _resolve_init(self, k: int, m: int, n: int, W, H):
        init = self.init
        if init is not None and (not isinstance(init, str) or init not in _INITS):
            raise ValueError(f"unknown init {init!r}; expected None or one of {_INITS}")
        if init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H passed to fit/fit_transform")
            return W, H
        if W is not None or H is not None:
            warnings.warn(
                "When init != 'custom', the W and H passed are ignored; set init='custom' to "
                "start from them.",
                RuntimeWarning,
                stacklevel=_validate.user_stacklevel(),
            )
        if init is None:
            return "nndsvda" if k <= min(m, n) else "random"
        if k > min(m, n) and init != "random":
            raise ValueError(
                f"init={init!r} can only be used when n_components <= min(n_samples, "
                f"n_features) = {min(m, n)}, got n_components={k}; use init='random'"
            )
        return init

    # --- data ------------------------------------------------------------------------------

    def _check_X(self, X, *, reset: bool, masked: bool):
        """``X`` as a dense 2-D float array, or a ``scipy.sparse`` matrix when it is sparse
        (never densified); sets or checks ``n_features_in_`` (and names)."""
        if _sparse.is_sparse_input(X) and not type(X).__module__.startswith("scipy.sparse"):
            X = _as_scipy_coo(X)  # BCOO, BCSR: their stored entries, on the host
        if HAVE_SKLEARN:
            dtypes = [np.float64, np.float32] if _x64() else [np.float32, np.float64]
            X = _sk_validate_data(
                self,
                X,
                reset=reset,
                accept_sparse=("csr", "csc", "coo"),
                dtype=dtypes,
                **{_FINITE_KW: not masked},
            )
        else:
            if _sparse.is_sparse_input(X):
                if X.ndim != 2:
                    raise ValueError(f"X must be 2-D, got a {X.ndim}-D sparse array")
                if X.dtype not in (np.float32, np.float64):
                    X = X.astype(np.float64 if _x64() else np.float32)
            else:
                X = _validate.data_matrix(X, "X")
                if X.dtype not in (np.float32, np.float64):
                    X = X.astype(np.float64 if _x64() and X.dtype.kind in "iub" else np.float32)
            if reset:
                self.n_features_in_ = X.shape[1]
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
        if _sparse.is_sparse_input(X):
            return X  # the core takes it as it is: O(nnz) on the host, O(nnz · k) per iteration
        # One memory layout: results do not depend on it, bit for bit (sums run in order).
        return np.ascontiguousarray(X)

    def _check_values(self, X, mask):
        """Validates ``mask`` (returned as an array, ``"stored"`` or None) and the observed
        entries of X (the stored ones of a sparse X)."""
        if _sparse.is_sparse_input(X):
            mask = "stored" if _validate.sparse_mask(mask) else None
            X, observed, name = np.asarray(X.data), None, "X (stored entries)"
        else:
            mask = _validate.mask_matrix(mask, X.shape)
            observed, name = (None if mask is None else mask > 0), "X"
        vals = X if observed is None else X[observed]
        if vals.size and np.nanmin(vals) < 0:  # scikit-learn's wording, which its checks expect
            raise ValueError(
                f"Negative values in data passed to {type(self).__name__} (X has entries down "
                f"to {np.nanmin(vals):g}); NMF needs X >= 0 on the observed entries"
            )
        _validate.check_values(X, observed, name)
        return mask

    def _reconstruction_err(self, X, W, H, mask) -> float:
        H, beta = H.astype(W.dtype), self._error_beta()
        if _sparse.is_sparse_input(X):  # the stored entries
            d = float(_metrics.beta_divergence(X, W, H, beta, mask))
        else:
            d = float(_dense_beta_divergence(np.asarray(X, W.dtype), W, H, mask, beta=beta))
        return float(np.sqrt(2.0 * max(d, 0.0)))

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X, y=None, W=None, H=None, mask=None):
        """Learn the components ``H`` from ``X``.

        Args:
          X: data, ``(n_samples, n_features)``, non-negative: dense, DataFrame, or sparse
            (``scipy.sparse``, BCOO/BCSR; never densified).
          y: ignored.
          W: initial ``W`` ``(n_samples, n_components)`` when ``init="custom"``.
          H: initial ``H`` ``(n_components, n_features)`` when ``init="custom"``.
          mask: optional entry weights, ``(n_samples, n_features)``, 0 = missing; for
            sparse ``X``, ``None`` or ``"stored"``.

        Returns:
          self.
        """
        self.fit_transform(X, y, W=W, H=H, mask=mask)
        return self

    @_validate.dtype_warning_once
    def fit_transform(self, X, y=None, W=None, H=None, mask=None):
        """Learn the components from ``X`` and return the fitted ``W``.

        Args: as :meth:`fit`.

        Returns:
          W, ``(n_samples, n_components)``, in the compute dtype.

        Raises:
          ValueError, TypeError: invalid parameters or data, before anything is compiled.
        """
        del y
        started = time.perf_counter()
        X = self._check_X(X, reset=True, masked=_may_hold_nan(mask))
        mask = self._check_values(X, mask)
        m, n = X.shape
        k = self._resolve_n_components(n, H)
        init = self._resolve_init(k, m, n, W, H)
        solver = self._solver_object()
        if getattr(solver, "keeps_zeros", False) and init == "nndsvd":
            warnings.warn(
                "multiplicative updates cannot move the zeros of an 'nndsvd' initialization; "
                "use init='nndsvda' or 'nndsvdar'",
                UserWarning,
                stacklevel=_validate.user_stacklevel(),
            )
        loss = self._objective(m, n)
        max_iter = _validate.positive_int(self.max_iter, "max_iter")
        tol = _validate.non_negative_float(self.tol, "tol")
        # Draw a seed only for initializations that use one, as scikit-learn does.
        draw = isinstance(init, str) and init in ("random", "nndsvdar")
        seed = _seed_from(self.random_state, draw=draw)

        if k <= min(m, n):
            if isinstance(init, str) and init.startswith("nndsvd"):
                init = self._nndsvd_of_X(X, k, loss, solver, mask, init, seed)
            res = _api.fit(
                X,
                k,
                loss=loss,
                solver=solver,
                init=init,
                max_iter=max_iter,
                tol=tol,
                seed=seed,
                mask=mask,
            )
        else:  # more components than min(m, n): jaxnmf.fit refuses, the driver does not
            req = _api.request(
                X, k, loss=loss, solver=solver, mask=mask, init=init, max_iter=max_iter,
                tol=tol, check_rank=False,
            )  # fmt: skip
            member = _run.Member(
                req.fit_loss, _validate.seed_key(seed), np.int32(k), req.W0, req.H0
            )
            state, _ = _run.run_compiled(req.V, req.mask, member, req.hyper(), spec=req.spec(k))
            solver_c, loss_c, scaling = req.solver, req.loss, req.scaling
            res = _api.to_result(state, solver_c, loss_c, scaling)
            _warn_nonfinite(res.status, "fit")

        if res.status == _api.Status.MAX_ITER and tol > 0:
            warnings.warn(
                f"Maximum number of iterations {max_iter} reached. Increase it to improve "
                "convergence.",
                ConvergenceWarning,
                stacklevel=_validate.user_stacklevel(),
            )
        W_fit, H_fit = np.array(res.W), np.array(res.H)
        self.components_ = H_fit
        self.n_components_ = k
        self.n_iter_ = res.n_iter
        self.status_ = res.status
        self.reconstruction_err_ = self._reconstruction_err(X, W_fit, H_fit, mask)
        if self.verbose:
            print(
                f"{type(self).__name__}: {res.n_iter} iterations, {res.status}, "
                f"reconstruction error {self.reconstruction_err_:.6g}, "
                f"{time.perf_counter() - started:.3f} s"
            )
        return W_fit

    @staticmethod
    def _nndsvd_of_X(X, k, loss, solver, mask, method, seed):
        """The NNDSVD initial factors ``(W0 (m, k), H0 (k, n))`` of ``X`` itself, as
        scikit-learn takes them.

        :func:`jaxnmf.fit` fits ``X / max X`` (:mod:`jaxnmf._scale`), and NNDSVD is not
        equivariant under that scaling: its fill value ``mean(X)`` has the units of X where
        the factors have those of ``√X``, and its zero threshold is absolute. Drawn inside
        the fit, ``"nndsvda"`` would start from another point than scikit-learn's whenever
        ``max X != 1`` (on digits, 868.4 instead of 865.1 after the default fit). Given
        factors are scaled exactly (``W0 / √M``), so the fit starts from these.
        """
        V, mask_c, *_ = _api.prepare(X, k, loss, solver, mask)
        key = _validate.seed_key(seed)  # the key jaxnmf.fit would use ("nndsvdar" draws)
        W0, H0 = _api.initial_factors(V, mask_c, key, rank=k, method=method)
        return np.asarray(W0), np.asarray(H0)

    # --- using the fitted model ------------------------------------------------------------

    def _solve_W(self, X, mask):
        """W-subproblem with ``H = components_`` fixed. Returns ``(W, n_iter, status)``."""
        mask = self._check_values(X, mask)
        m, n = X.shape
        loss = _without_h_penalties(self._objective(m, n))
        V, mask_c, loss_c, solver, dtype = _api.prepare(X, None, loss, self._solver_object(), mask)
        max_iter = _validate.positive_int(self.max_iter, "max_iter")
        tol = _validate.non_negative_float(self.tol, "tol")
        state, scaling = solve_w_with_h_fixed(
            V, mask_c, loss_c, solver, np.asarray(self.components_, dtype), tol, max_iter
        )
        W, it, code = jax.device_get((state.W, state.it, state.status))
        W = scaling.factors_out(W, state.H)[0]
        status = _api.Status.from_code(code)
        _warn_nonfinite(status, "transform")
        return np.array(W), int(it), status

    def transform(self, X, mask=None):
        """``W`` for new data with ``H = components_`` fixed (see the class docstring).

        Args:
          X: data, ``(n_samples, n_features)``, non-negative; any number of samples.
          mask: optional entry weights, ``(n_samples, n_features)``, 0 = missing; for
            sparse ``X``, ``None`` or ``"stored"``.

        Returns:
          W, ``(n_samples, n_components)``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False, masked=_may_hold_nan(mask))
        return self._solve_W(X, mask)[0]

    def inverse_transform(self, X):
        """Data from its transform: ``X @ components_``.

        Args:
          X: transformed data ``W``, ``(n_samples, n_components_)``, finite and
            non-negative, dense or sparse.

        Returns:
          ``(n_samples, n_features)``, dense by nature (as scikit-learn's); a sparse ``X`` is
          multiplied as it is.

        Raises:
          ValueError: ``X`` is not 2-D, has another number of columns than
            ``n_components_``, or holds NaN, infinite or negative entries (checked as
            :meth:`transform` checks its input: a W that no fit can produce).
        """
        check_is_fitted(self)
        X = self._check_W(X)
        return np.asarray(X @ self.components_)

    def _check_W(self, X):
        """``X`` (a transformed ``W``) as a 2-D array or ``scipy.sparse`` matrix with
        ``n_components_`` columns and finite, non-negative entries."""
        if _sparse.is_sparse_input(X) and not type(X).__module__.startswith("scipy.sparse"):
            X = _as_scipy_coo(X)  # BCOO, BCSR: their stored entries, on the host
        if _sparse.is_sparse_input(X):
            if X.ndim != 2:
                raise ValueError(f"W must be 2-D, got a {X.ndim}-D sparse array")
            values = np.asarray(X.data)
        else:
            X = values = _validate.data_matrix(X, "W")
        k = self.components_.shape[0]
        if X.shape[1] != k:
            raise ValueError(
                f"inverse_transform expects W of shape (n_samples, {k}) (n_components_ = "
                f"{k}), got shape {tuple(X.shape)}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"W has {int(np.sum(~np.isfinite(values)))} NaN or infinite entries; "
                "inverse_transform needs finite, non-negative W"
            )
        if values.size and values.min() < 0:
            raise ValueError(
                f"Negative values in W passed to {type(self).__name__}.inverse_transform "
                f"(down to {values.min():g}); W must be >= 0, as transform returns it"
            )
        return X

    def score(self, X, y=None, mask=None):
        """Minus the reconstruction error of ``X``: ``-sqrt(2 · d_β(X | transform(X) H))``.

        Higher is better, as scikit-learn's scorers expect (``GridSearchCV`` uses it when no
        ``scoring`` is given). For β = 2 it is ``-‖X - W H‖_F``, the measure of
        :attr:`reconstruction_err_`; it grows in magnitude with the number of samples, so
        compare it on data of the same size. Penalties are not included.

        Args:
          X: data, ``(n_samples, n_features)``.
          y: ignored.
          mask: optional entry weights; only observed entries count (sparse
            ``X``: ``None`` or ``"stored"``).

        Returns:
          A float.
        """
        del y
        check_is_fitted(self)
        X = self._check_X(X, reset=False, masked=_may_hold_nan(mask))
        W, _, _ = self._solve_W(X, mask)
        mask = self._check_values(X, mask)
        return -self._reconstruction_err(X, W, self.components_, mask)

    # --- scikit-learn plumbing -------------------------------------------------------------

    @property
    def _n_features_out(self):
        """Number of transformed output features (for ``get_feature_names_out``)."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = _preserved_dtypes()
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"requires_positive_X": True, "preserves_dtype": _preserved_dtypes()}
