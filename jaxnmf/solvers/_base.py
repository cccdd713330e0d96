"""What every solver shares: the :class:`Problem`, projections, and the Frobenius-family
("quadratic") helpers that let steps work from Gram products."""
# ruff: noqa: N803

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._sparse import SparseMatrix
from ..losses import BetaDivergence, Loss, Penalty


class Problem(NamedTuple):
    """What a solver step sees besides the factors. See the module docstring for shapes.

    ``V`` is an array or a :class:`~jaxnmf._sparse.SparseMatrix`; with sparse V, ``mask`` is
    None or a SparseMatrix of V's pattern holding the entry weights.
    """

    V: jax.Array | SparseMatrix
    mask: jax.Array | SparseMatrix | None
    loss: Loss
    active: jax.Array
    sq_norm: jax.Array | None = None  # Σ V² (stored values if sparse), for Gram objectives
    # Static: use Gram-form objectives below float64 too (see objective_from_grams_ok).
    objective_from_grams: bool = False


# Below float64, Gram-form objectives are good to about 1e-6 relative (measured ≤ 5e-6 on
# digits, LFW faces and a random 2000×1000 matrix in float32: the float32 products WᵀV carry
# that error). The relative-change stopping rule can trust them when tol is at least this:
# at tol = 1e-4, float32 HALS/MU runs stopped within a few percent of the iterations that a
# direct ‖V - WH‖² gives (float32 and float64 runs differ by more); at tol = 1e-5 they
# stopped up to 25 % early on faces.
GRAM_OBJECTIVE_MIN_TOL = 1e-4


def objective_from_grams_ok(tol: float, dtype=None) -> bool:
    """Whether a run with stopping tolerance ``tol`` (a host float) may take its objective
    from Gram products in float32: with ``tol == 0`` no decision depends on it.

    With ``dtype`` float64 always True: float64 takes the Gram-form objective whatever tol
    (:func:`gram_objective_allowed`), so the static flag is the same for every tol there and
    a new tol never compiles a new program."""
    if dtype is not None and np.dtype(dtype) == np.float64:
        return True
    return tol == 0 or tol >= GRAM_OBJECTIVE_MIN_TOL


def keep_active(W, H, active):
    return jnp.where(active[None, :], W, 0), jnp.where(active[:, None], H, 0)


def projected_gradient(X, G):
    """∇ᴾ: the gradient where X > 0, its negative part where X = 0 (KKT residual of X ≥ 0)."""
    return jnp.where(X > 0, G, jnp.minimum(G, 0))


def quadratic_coefficients(loss: Loss):
    """For a Frobenius-family loss, ``a`` and the penalty weights of

    ``a · ½‖V - WH‖² + l1_W Σ W + l1_H Σ H + ½ l2_W ‖W‖² + ½ l2_H ‖H‖²``.
    """
    a = 0.0
    pen = {("l1", "W"): 0.0, ("l1", "H"): 0.0, ("l2", "W"): 0.0, ("l2", "H"): 0.0}
    for t, w in zip(loss.terms, loss.weights, strict=True):
        if isinstance(t, BetaDivergence) and t.beta == 2.0:
            a = a + w
        elif isinstance(t, Penalty):
            pen[(t.kind, t.factor)] = pen[(t.kind, t.factor)] + w
    return a, pen


def is_quadratic(loss: Loss) -> bool:
    return all(
        (isinstance(t, BetaDivergence) and t.beta == 2.0) or isinstance(t, Penalty)
        for t in loss.terms
    ) and any(isinstance(t, BetaDivergence) for t in loss.terms)


def require_quadratic(name: str, loss: Loss) -> None:
    """Refuse a loss outside the Frobenius family (l1/l2 penalties allowed)."""
    if not is_quadratic(loss):
        raise ValueError(
            f"solver '{name}' works from Gram products: it needs the Frobenius loss (with "
            "l1/l2 penalties). Use 'mu' or 'pg' for other losses."
        )


def uses_gram_form(problem) -> bool:
    """True when the objective is a Frobenius-family quadratic of (W, H) without mask, so
    steps can work from Gram products (static: decided at trace time)."""
    return problem.mask is None and problem.sq_norm is not None and is_quadratic(problem.loss)


def gram_objective(problem, W, H, WtW, WtV):
    """The objective from Gram products (:func:`frobenius_gram_objective`) in float64, or in
    any precision when ``problem.objective_from_grams``; otherwise ``None``, and the driver
    evaluates ``‖V - WH‖²`` directly (in float32 the Gram form is only good to ~1e-6 of the
    objective: too coarse for a stopping rule with a small tolerance, see
    :data:`GRAM_OBJECTIVE_MIN_TOL`)."""
    if not gram_objective_allowed(problem, W.dtype):
        return None
    return _gram_objective_any_dtype(problem, W, H, WtW, WtV)


def gram_objective_allowed(problem, dtype) -> bool:
    """Whether a stopping rule may read the objective from Gram products: in float64, or in
    any precision when ``problem.objective_from_grams`` (see :data:`GRAM_OBJECTIVE_MIN_TOL`)."""
    return dtype == jnp.float64 or problem.objective_from_grams


def _gram_objective_any_dtype(problem, W, H, WtW, WtV):
    """:func:`frobenius_gram_objective` of a :class:`Problem`'s loss."""
    return frobenius_gram_objective(problem.loss, problem.sq_norm, W, H, WtW, WtV, H @ H.T)


def frobenius_gram_objective(loss: Loss, sq_norm, W, H, WtW, WtV, HHt):
    """The objective ``a·½‖V - WH‖² + penalties`` from ``WᵀW`` ``(k, k)``, ``WᵀV`` ``(k, n)``
    and ``HHᵀ`` ``(k, k)``: ``½‖V‖² - ⟨WᵀV, H⟩ + ½⟨WᵀW, HHᵀ⟩`` costs O(k²n) instead of O(mnk).

    ``W`` enters only through the penalties, so it may be given transposed. ``sq_norm`` is
    ``‖V‖²``.

    It subtracts nearly equal numbers, so its absolute error is about ``eps · ‖V‖²``: 1e-16
    relative to ‖V‖² in float64 (harmless), but about 1e-6 of the objective in float32 (the
    float32 products ``WᵀV`` carry that error already), which made the relative change of the
    objective read as 0 well before convergence (a float32 HALS fit of LFW faces stopped at
    iteration 589 instead of 1224). Hence float64 only where the stopping rule needs it.
    """
    a, pen = quadratic_coefficients(loss)
    fit = 0.5 * sq_norm - jnp.vdot(WtV, H) + 0.5 * jnp.vdot(WtW, HHt)
    # A penalty absent from the loss has the Python weight 0.0: skip its pass over W or H
    # (XLA keeps 0 · x, since x might be inf or NaN).
    weighted = lambda w, term: 0.0 if isinstance(w, float) and w == 0.0 else w * term()
    return (
        a * jnp.maximum(fit, 0)
        + weighted(pen["l1", "W"], lambda: jnp.sum(W))
        + weighted(pen["l1", "H"], lambda: jnp.sum(H))
        + weighted(pen["l2", "W"], lambda: 0.5 * jnp.vdot(W, W))
        + weighted(pen["l2", "H"], lambda: 0.5 * jnp.vdot(H, H))
    )
