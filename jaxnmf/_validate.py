"""Host-side input checks, run before anything is compiled.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad
value) with a message that names the argument and the problem. Inside compiled code nothing
raises; run-time trouble becomes a status (see :mod:`jaxnmf._driver`).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import numbers
import warnings

import jax
import numpy as np

from . import init as _init
from .losses import BetaDivergence, Loss


def _is_sparse(x) -> bool:
    if type(x).__module__.startswith("scipy.sparse"):
        return True
    return type(x).__name__ in ("BCOO", "BCSR")


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
            warnings.warn(
                "V is float64 but JAX's 64-bit mode is off, so jaxnmf computes in float32. "
                "To compute in float64, run jax.config.update('jax_enable_x64', True) "
                "before using JAX (or set JAX_ENABLE_X64=1), or pass V.astype('float32') "
                "to silence this warning.",
                UserWarning,
                stacklevel=4,
            )
            return np.dtype(np.float32)
        return dtype
    if dtype == np.float32:
        return dtype
    if dtype.kind == "f":  # float16, bfloat16-like
        return np.dtype(np.float32)
    if dtype.kind in "iub":
        return np.dtype(np.float64 if x64 else np.float32)
    raise TypeError(f"V must hold real numbers, got dtype {dtype}")


def data_matrix(V, name: str = "V") -> np.ndarray:
    """``V`` as a 2-D NumPy array of a real dtype (not yet checked for values)."""
    if _is_sparse(V):
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported yet. Pass "
            f"{name}.toarray() if it fits in memory."
        )
    if isinstance(V, (str, bytes)) or V is None:
        raise TypeError(f"{name} must be a 2-D array of non-negative numbers, got {type(V)}")
    try:
        arr = np.asarray(V)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {e}") from None
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


def mask_matrix(mask, shape) -> np.ndarray | None:
    """The entry weights as an array of V's shape, or None. Raises on bad masks."""
    if mask is None:
        return None
    if _is_sparse(mask):
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


def positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def non_negative_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


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
        return "given", W0, H0
    raise TypeError(f"init must be a method name or a pair (W0, H0), got {type(init)}")


def seed_key(seed):
    """A ``jax.random`` key from an int seed (or a key passed through)."""
    if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer or a jax.random.key, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return jax.random.key(int(seed))
