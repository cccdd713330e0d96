"""Host-side input checks, run before anything is compiled.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad
value) with a message that names the argument and the problem. Inside compiled code nothing
raises; run-time trouble becomes a status (see :mod:`jaxnmf._driver`).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import contextvars
import functools
import numbers
import os
import sys
import warnings
from typing import NamedTuple

import jax
import numpy as np

from . import _sparse
from . import init as _init
from .losses import BetaDivergence, Custom, Loss


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by this module's caller point at the
    first frame outside jaxnmf and scikit-learn: the user's line, whichever entry point they
    called (scikit-learn's frames sit between the user and :class:`jaxnmf.NMF`'s methods:
    its ``set_output`` wrapper, a ``Pipeline``)."""
    package = os.path.dirname(os.path.abspath(__file__))

    def inside(frame) -> bool:
        module = frame.f_globals.get("__name__") or ""
        return (
            os.path.abspath(frame.f_code.co_filename).startswith(package)
            or module == "sklearn"
            or module.startswith("sklearn.")
        )

    frame, level = sys._getframe(1), 1
    while frame is not None and inside(frame):
        frame, level = frame.f_back, level + 1
    return level


# The float64-without-x64 warning is given once per public call, however many times that
# call's parts validate V (consensus: its sweep and its refit; NMF.fit: its NNDSVD start and
# its fit): False inside such a call until it has warned, then True; None outside one (every
# validation warns).
_DTYPE_WARNED: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "jaxnmf_dtype_warned", default=None
)


def dtype_warning_once(fn):
    """Decorator of a public entry point that validates V more than once: the dtype
    warning of :func:`compute_dtype` is given once per call (the outermost, when nested)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if _DTYPE_WARNED.get() is not None:
            return fn(*args, **kwargs)
        token = _DTYPE_WARNED.set(False)
        try:
            return fn(*args, **kwargs)
        finally:
            _DTYPE_WARNED.reset(token)

    return wrapped


def compute_dtype(dtype) -> np.dtype:
    """The floating dtype jaxnmf computes in for input of ``dtype``.

    float32 stays float32; float64 stays float64 when JAX's x64 mode is on, else it is computed
    in float32 with a warning that says how to keep float64. Integers and booleans (counts,
    0/1 data) are computed in the default float dtype; half precision in float32.
    """
    dtype = np.dtype(dtype)
    x64 = bool(jax.config.jax_enable_x64)
    if dtype == np.float64:
        if not x64:
            warned = _DTYPE_WARNED.get()
            if warned:  # this call has said it already
                return np.dtype(np.float32)
            if warned is not None:
                _DTYPE_WARNED.set(True)
            warnings.warn(
                "V is float64 but JAX's 64-bit mode is off, so jaxnmf computes in float32. "
                "To compute in float64, run jax.config.update('jax_enable_x64', True) "
                "before using JAX (or set JAX_ENABLE_X64=1), or pass V.astype('float32') "
                "to silence this warning.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return np.dtype(np.float32)
        return dtype
    if dtype == np.float32:
        return dtype
    if dtype.kind == "f" or _is_extended_float(dtype):  # float16, bfloat16, float8 ...
        return np.dtype(np.float32)
    if dtype.kind in "iub":
        return np.dtype(np.float64 if x64 else np.float32)
    raise TypeError(f"V must hold real numbers, got dtype {dtype}")


def _is_extended_float(dtype) -> bool:
    """bfloat16 and the other floats of ``ml_dtypes`` (NumPy files them under kind ``"V"``)."""
    return np.dtype(dtype).kind == "V" and jax.dtypes.issubdtype(dtype, np.floating)


def data_matrix(V, name: str = "V") -> np.ndarray:
    """``V`` as a 2-D NumPy array of a real dtype (not yet checked for values).

    Half-precision floats that NumPy does not know as floats (bfloat16 and the float8 types
    of ``ml_dtypes``) come back as float32, in which they are computed anyway.
    """
    if _sparse.is_sparse_input(V):
        raise TypeError(f"{name} is a sparse matrix; {name} must be a dense array here")
    if isinstance(V, (str, bytes)) or V is None:
        raise TypeError(f"{name} must be a 2-D array of non-negative numbers, got {type(V)}")
    try:
        arr = np.asarray(V)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {e}") from None
    if _is_extended_float(arr.dtype):
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m × n), got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    return arr


def check_values(V: np.ndarray, observed: np.ndarray | None, name: str = "V") -> None:
    """Finite and non-negative on the observed entries (all entries when no mask)."""
    vals = V if observed is None else V[observed]
    if not np.all(np.isfinite(vals)):
        bad = int(np.sum(~np.isfinite(vals)))
        where = "" if observed is None else " observed"
        raise ValueError(
            f"{name} has {bad} NaN or infinite{where} entries; NMF needs finite data "
            "(mark missing entries with mask=...)"
        )
    if vals.size and vals.min() < 0:
        raise ValueError(f"{name} has negative entries (min {vals.min():g}); NMF needs V >= 0")


def sparse_data(V, name: str = "V"):
    """``(rows, cols, values, shape)`` of a sparse ``V`` on the host: indices int32, sorted
    by (row, col), duplicates summed (:func:`jaxnmf._sparse.canonical`). Checks structure and
    dtype here; values are checked by :func:`check_values` on the stored entries only."""
    fast = _sparse.canonical_csr(V)
    rows, cols, values, shape = fast if fast is not None else _sparse.coo_arrays(V)
    if values.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {values.dtype}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {shape}")
    if max(shape) >= 2**31 or values.size >= 2**31:
        raise ValueError(
            f"{name} has shape {shape} and {values.size} stored entries; sparse input needs "
            "fewer than 2**31 rows, columns and stored entries (int32 indices)"
        )
    return fast if fast is not None else _sparse.canonical(rows, cols, values, shape)


def sparse_mask(mask) -> bool:
    """The ``mask`` of a sparse ``V``: ``None`` (unstored entries are zeros) or ``"stored"``
    (the stored entries are the observed ones, the others are missing). Returns True for
    ``"stored"``."""
    if mask is None:
        return False
    if isinstance(mask, str):
        if mask.lower() == "stored":
            return True
        raise ValueError(f"unknown mask {mask!r}; with sparse V, mask is None or 'stored'")
    raise ValueError(
        "with sparse V, mask must be None (unstored entries are zeros) or 'stored' (the "
        "stored entries are the observed ones, the others are missing); an (m, n) mask "
        "would densify V. Store exactly the observed entries (explicit zeros included) and "
        "pass mask='stored'."
    )


def sparse_loss_support(loss: Loss, values: np.ndarray, stored: bool) -> None:
    """What each loss needs of a sparse V (see :mod:`jaxnmf._sparse`)."""
    custom = [t.name for t in loss.terms if isinstance(t, Custom)]
    if custom:
        raise ValueError(
            f"custom loss terms ({', '.join(custom)}) take a dense V; sparse V supports the "
            "β-divergences (with penalties). Pass V.toarray() to use a custom term."
        )
    if stored:  # every β is evaluated at the stored entries; β <= 0 needs them non-zero
        beta_support(loss, values, None)
        return
    betas = [t.beta for t in loss.terms if isinstance(t, BetaDivergence)]
    bad = [b for b in betas if b not in (1.0, 2.0)]
    if bad:
        raise ValueError(
            f"the β-divergence with β = {bad[0]:g} needs WH at every entry of V, and the "
            "unstored entries of a sparse V are zeros that count: that would densify V. "
            "Sparse V without a mask supports β = 2 (Frobenius) and β = 1 (KL); pass "
            "mask='stored' if the unstored entries are missing, or V.toarray()."
        )


def mask_matrix(mask, shape) -> np.ndarray | None:
    """The entry weights as an array of V's shape, or None. Raises on bad masks."""
    if mask is None:
        return None
    if isinstance(mask, str):
        raise ValueError(
            f"mask={mask!r} is for sparse V (mask='stored': the stored entries are the "
            "observed ones); for dense V pass an (m, n) array of weights"
        )
    if _sparse.is_sparse_input(mask):
        mask = mask.toarray()
    arr = np.asarray(mask)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"mask must hold numbers or booleans, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"mask has shape {arr.shape} but V has shape {tuple(shape)}")
    if not np.all(np.isfinite(arr)) or (arr.size and arr.min() < 0):
        raise ValueError("mask must hold finite, non-negative weights (0 = missing)")
    if not np.any(arr > 0):
        raise ValueError("mask hides every entry of V: nothing is left to fit")
    return arr


def rank(value, m: int, n: int, name: str = "rank") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not 1 <= value <= min(m, n):
        raise ValueError(f"{name} must be between 1 and min(m, n) = {min(m, n)}, got {value}")
    return value


class RunOptions(NamedTuple):
    """The run options that fit, sweep and compare share, validated once."""

    max_iter: int
    tol: float
    pg_tol: float
    eval_every: int
    on_failure: str


def run_options(max_iter, tol, pg_tol=0.0, eval_every=1, on_failure="warn") -> RunOptions:
    """:class:`RunOptions` from a caller's arguments; TypeError/ValueError naming the bad one."""
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    return RunOptions(
        max_iter=positive_int(max_iter, "max_iter"),
        tol=non_negative_float(tol, "tol"),
        pg_tol=non_negative_float(pg_tol, "pg_tol"),
        eval_every=positive_int(eval_every, "eval_every"),
        on_failure=on_failure,
    )


def positive_int(value, name: str, minimum: int = 1) -> int:
    """An integer ``>= minimum``: TypeError for a non-integer (``2.0``, ``True``), as for the
    rank, ValueError for an integer out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def non_negative_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def loss_weights(loss: Loss) -> None:
    """Every weight of a loss finite and ``>= 0``: a negative penalty rewards large factors
    (the objective runs to -inf) and a NaN weight makes every objective NaN."""
    for term, w in zip(loss.terms, loss.weights, strict=True):
        values = np.asarray(w, np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(
                f"the weight of the loss term {term.name} must be finite and >= 0, got "
                f"{values if values.ndim else float(values)!r} (in {loss!r})"
            )


def loss_has_data_term(loss: Loss) -> None:
    """A loss made of penalties only would fit nothing of V (the factors shrink to zero)."""
    if not loss.data_terms:
        raise ValueError(
            f"the loss {loss!r} has no data term; add one, e.g. "
            "jn.losses.frobenius() + 0.1 * jn.losses.l1('H')"
        )


def beta_support(loss: Loss, V: np.ndarray, observed: np.ndarray | None) -> None:
    """β ≤ 0 divergences (Itakura–Saito and below) are undefined where V = 0."""
    betas = [t.beta for t in loss.terms if isinstance(t, BetaDivergence) and t.beta <= 0]
    if betas:
        vals = V if observed is None else V[observed]
        if np.any(vals == 0):
            raise ValueError(
                f"the β-divergence with β = {min(betas):g} is undefined where V = 0, and V has "
                f"{int(np.sum(vals == 0))} zero entries; use β > 0 (e.g. 'kl'), add a small "
                "offset to V, or mask the zeros"
            )


def init_spec(init, m: int, n: int, rank_: int, dtype):
    """``(method, W0, H0)``: a method name with ``None`` factors, or ``"given"`` with arrays."""
    if isinstance(init, str):
        init = init.lower()
        if init not in _init.METHODS:
            raise ValueError(
                f"unknown init {init!r}; expected one of {_init.METHODS} or a pair (W0, H0)"
            )
        return init, None, None
    if isinstance(init, (tuple, list)) and len(init) == 2:
        W0 = data_matrix(init[0], "W0").astype(dtype)
        H0 = data_matrix(init[1], "H0").astype(dtype)
        if W0.shape != (m, rank_) or H0.shape != (rank_, n):
            raise ValueError(
                f"init (W0, H0) must have shapes {(m, rank_)} and {(rank_, n)}, got "
                f"{W0.shape} and {H0.shape}"
            )
        check_values(W0, None, "W0")
        check_values(H0, None, "H0")
        for name, X in (("W0", W0), ("H0", H0)):
            if not np.any(X > 0):
                # WH = 0: multiplicative updates keep a zero factor zero, and HALS divides
                # by its zero Gram matrix; the run would "converge" at once on nothing.
                raise ValueError(f"init: {name} is all zeros; start from a non-zero {name}")
        return "given", W0, H0
    raise TypeError(f"init must be a method name or a pair (W0, H0), got {type(init)}")


def distinct(values, name: str) -> None:
    """Integer ranks or seeds given twice (keys passed as seeds are not compared): a member
    of a sweep or a run of compare is named by them, so a repeat would be ambiguous."""
    ints = [int(v) for v in values if isinstance(v, numbers.Integral)]
    repeated = sorted({v for v in ints if ints.count(v) > 1})
    if repeated:
        raise ValueError(f"{name} must be distinct; repeated: {repeated}")


def seed_key(seed):
    """A ``jax.random`` key from an int seed (or a key passed through)."""
    if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer or a jax.random.key, got {seed!r}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    seed = int(seed)
    if seed < 2**32:
        return jax.random.key(seed)
    # jax.random.key takes a C long: it overflows at 2**63, and without x64 it keeps only the
    # low 32 bits (2**32 would repeat seed 0). Threefry keys are the seed's two 32-bit words.
    if str(jax.config.jax_default_prng_impl) != "threefry2x32":
        raise ValueError(
            f"seed {seed} needs more than 32 bits; with the PRNG "
            f"{jax.config.jax_default_prng_impl!r} seeds must be < 2**32"
        )
    words = np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32)
    return jax.random.wrap_key_data(words)
