"""Composable NMF objectives.

A *loss* is a weighted sum of *terms*. A term knows three things about itself:

* ``value(V, W, H, mask)``: a scalar;
* ``split_grad(V, W, H, mask, wrt)``: its gradient with respect to ``W`` or ``H``,
  split into two element-wise non-negative parts, ``grad = pos - neg``.

The split is what lets one definition serve every solver family: multiplicative updates
use ``X <- X * (neg / pos) ** gamma`` (Lee & Seung 2001; Févotte & Idier 2011), gradient
methods use ``pos - neg``. Terms are frozen dataclasses, so they are hashable and compare by
value; a :class:`Loss` is a JAX pytree whose *weights* are its leaves and whose terms are its
static structure. Changing a penalty weight therefore never recompiles; changing the terms
(or β) does.

Shapes: ``V`` is ``(m, n)``, ``W`` is ``(m, k)``, ``H`` is ``(k, n)``; ``mask`` is ``None`` or
``(m, n)`` with non-negative weights (0 = missing: the entry counts neither in the loss nor
in the updates).

Sparse ``V`` (a :class:`jaxnmf._sparse.SparseMatrix`) is never densified: β-divergences are
evaluated from the stored entries in O(nnz · k). Without a mask the unstored entries are zeros,
which Frobenius (β = 2) and KL (β = 1) handle through ``‖WH‖² = ⟨WᵀW, HHᵀ⟩`` and
``Σ WH = sum(W, 0) · sum(H, 1)``; other β would need WH at every entry and are rejected
before compilation (:func:`jaxnmf.api.prepare`). With ``mask`` a SparseMatrix of V's pattern
(``fit(..., mask="stored")``), the unstored entries are missing and every β works.

Examples:
    >>> import jaxnmf as jn
    >>> loss = jn.losses.kl() + 0.1 * jn.losses.l1("H")
    >>> loss
    Loss(1 * kl + 0.1 * l1(H))

References:
    Lee, D. D. & Seung, H. S. (2001). Algorithms for non-negative matrix factorization. NIPS.
    Févotte, C. & Idier, J. (2011). Algorithms for nonnegative matrix factorization with the
    β-divergence. Neural Computation 23(9).
"""
# ruff: noqa: N803, N806  (V, W, H are the names used throughout the NMF literature)

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _sparse
from ._sparse import SparseMatrix

__all__ = [
    "BetaDivergence",
    "Custom",
    "Loss",
    "Penalty",
    "Term",
    "as_loss",
    "beta",
    "custom",
    "frobenius",
    "itakura_saito",
    "kl",
    "l1",
    "l2",
    "mu_exponent",
]


def _wh_floor(dtype) -> float:
    """Smallest value of WH used inside β < 2 divergences.

    ``WH`` enters as ``WH ** (β - 2)``, so an exact zero would give ``inf``. The floor is
    ``tiny ** 0.25`` (≈ 3e-10 in float32, ≈ 1e-77 in float64): far below any data scale a user
    has, yet its negative powers up to the 4th stay finite. scikit-learn floors at float32 eps
    (1.2e-7), which distorts data measured in small units; we do not.
    """
    return float(np.finfo(dtype).tiny) ** 0.25


def positive_power(x, p: float):
    """``x ** p`` for ``x >= 0`` and a static real ``p``, as ``exp(p · log x)``.

    XLA:CPU's general ``pow`` costs about eight times ``exp`` and ``log`` together (5.4 ms
    against 0.7 ms for 2·10⁶ float32 entries, measured): it dominated the β-divergence MU
    iteration. ``log 0 = -inf`` gives ``0 ** p = 0`` (p > 0) and ``inf`` (p < 0) as ``pow``
    does; ``p`` = 0, 0.5, 1 and 2 take their exact forms.
    """
    if p == 0.0:
        return jnp.ones_like(x)
    if p == 1.0:
        return x
    if p == 2.0:
        return x * x
    if p == 0.5:
        return jnp.sqrt(x)
    return jnp.exp(p * jnp.log(x))


def _kl_stored_part(v, wh):
    """``v log(v / wh) - v`` entry by entry: the KL divergence less its ``wh`` term; ``wh > 0``.

    One division and one log per entry, and no select: where ``v = 0`` the log's argument is
    floored, so the product is 0 rather than NaN. ``xlogy(v, v) - xlogy(v, wh)`` (two logs and
    their selects) made the objective cost nearly as much as the rest of a KL MU iteration on
    XLA:CPU; summing ``v log v`` and ``v log wh`` apart would be cheaper still but cancels
    (a float32 error of 1e-3 of the objective near a good fit, measured).
    """
    return v * jnp.log(jnp.maximum(v, _wh_floor(wh.dtype)) / wh) - v


class Term:
    """Protocol of a loss term. Subclasses are frozen dataclasses (hashable, static)."""

    name: str = "term"

    def value(self, V, W, H, mask):  # pragma: no cover - interface
        raise NotImplementedError

    def split_grad(self, V, W, H, mask, wrt):  # pragma: no cover - interface
        raise NotImplementedError

    #: True for terms that depend on ``V`` (data-fit terms), False for penalties.
    is_data_term = True


@dataclasses.dataclass(frozen=True)
class BetaDivergence(Term):
    r"""Element-wise β-divergence :math:`\sum_{ij} M_{ij}\, d_\beta(V_{ij} \mid (WH)_{ij})`.

    .. math::
        d_\beta(x|y) = \frac{x^\beta + (\beta - 1) y^\beta - \beta x y^{\beta-1}}{\beta(\beta-1)},

    with the limits ``β = 1`` (generalized Kullback–Leibler, ``x log(x/y) - x + y``) and
    ``β = 0`` (Itakura–Saito, ``x/y - log(x/y) - 1``); ``β = 2`` is half the squared Frobenius
    distance (as in scikit-learn's ``beta_loss``).

    Its gradient with respect to ``y = WH`` is ``y^(β-1) - x y^(β-2)``, which splits into
    ``pos = y^(β-1)`` and ``neg = x y^(β-2)``, both non-negative.
    """

    beta: float = 2.0

    @property
    def name(self) -> str:
        return {2.0: "half_frobenius", 1.0: "kl", 0.0: "itakura_saito"}.get(
            self.beta, f"beta({self.beta:g})"
        )

    def _observed(self, V, mask):
        # Masked entries of V were zeroed on the host; for β <= 0 a zero gives log(0), so the
        # divergence is evaluated at a harmless 1 there and then multiplied by a zero weight.
        if mask is None:
            return V
        return jnp.where(mask > 0, V, jnp.ones_like(V))

    def elementwise(self, V, WH):
        """d_β(V | WH) entry by entry (no mask). Shapes: both ``(m, n)``."""
        b = self.beta
        if b == 2.0:
            return 0.5 * jnp.square(V - WH)
        WH = jnp.maximum(WH, _wh_floor(WH.dtype))
        if b == 1.0:
            return _kl_stored_part(V, WH) + WH
        if b == 0.0:
            ratio = V / WH
            return ratio - jnp.log(ratio) - 1.0
        # One power of WH per entry: WH^β = WH^(β-1)·WH (V^β depends on V only: a solver's
        # loop computes it once).
        wh_b1 = positive_power(WH, b - 1.0)
        return (positive_power(V, b) + wh_b1 * ((b - 1.0) * WH - b * V)) / (b * (b - 1.0))

    def value(self, V, W, H, mask, WH=None):
        """``WH``: the product ``W @ H`` when the caller has formed it already (dense V), or
        its values at the stored entries ``(nnz,)`` (sparse V)."""
        if isinstance(V, SparseMatrix):  # WH: then the stored entries' values, (nnz,)
            return self._sparse_value(V, W, H, mask, WH)
        d = self.elementwise(self._observed(V, mask), W @ H if WH is None else WH)
        return jnp.sum(d) if mask is None else jnp.sum(mask * d)

    def _sparse_unmasked_beta(self):
        # A trace-time check; api.prepare rejects these inputs on the host with more context.
        if self.beta not in (1.0, 2.0):
            raise ValueError(
                f"the β-divergence with β = {self.beta:g} needs WH at every entry of a sparse V "
                "whose unstored entries are zeros; use β = 2 or β = 1, or mask='stored'"
            )

    def _sparse_value(self, V, W, H, mask, wh=None):
        """The divergence from the stored entries of sparse ``V``, O(nnz · k); ``wh``:
        ``WH`` at the stored entries ``(nnz,)`` if the caller has it."""
        if wh is None:
            wh = _sparse.sample(W, H, V.rows, V.cols)
        if mask is not None:  # unstored entries are missing: stored entries only
            w = mask.values
            return jnp.sum(w * self.elementwise(self._observed(V.values, w), wh))
        self._sparse_unmasked_beta()
        if self.beta == 2.0:
            return 0.5 * _sparse.frobenius_sq(V, W, H, wh)
        # KL: Σ_stored (v log(v/wh) - v) + Σ_all wh; zeros of V add just their wh.
        wh = jnp.maximum(wh, _wh_floor(wh.dtype))
        stored = jnp.sum(_kl_stored_part(V.values, wh))
        return stored + jnp.vdot(jnp.sum(W, axis=0), jnp.sum(H, axis=1))

    def _dwh_parts(self, V, WH, mask):
        """(pos, neg) of d(loss)/d(WH), element-wise, shape ``(m, n)``."""
        b = self.beta
        if b == 2.0:
            pos, neg = WH, V
        else:
            WH = jnp.maximum(WH, _wh_floor(WH.dtype))
            if b == 1.0:
                pos, neg = jnp.ones_like(WH), V / WH
            elif b == 0.0:
                inv = 1.0 / WH
                pos, neg = inv, V * inv * inv
            else:
                # one power per entry: WH^(β-1) = WH^(β-2)·WH
                wh_b2 = positive_power(WH, b - 2.0)
                pos, neg = wh_b2 * WH, V * wh_b2
        if mask is not None:
            pos, neg = mask * pos, mask * neg
        return pos, neg

    def _sparse_split_grad(self, V, W, H, mask, wrt, wh=None):
        """``split_grad`` for sparse ``V``: one fused pass over the stored entries (``wh``:
        ``WH`` at the stored entries, if the caller has it)."""
        floor = _wh_floor(W.dtype)
        if mask is None:
            self._sparse_unmasked_beta()
            if self.beta == 1.0:  # pos = 1 Hᵀ as for dense V; neg = (V / WH) Hᵀ at stored entries

                def ratio(v, wh):
                    return (v / jnp.maximum(wh, floor),)

                (neg,) = _sparse.sample_scatter(V, W, H, ratio, wrt, wh=wh)
                if wrt == "W":
                    return jnp.broadcast_to(jnp.sum(H, axis=1)[None, :], W.shape), neg
                return jnp.broadcast_to(jnp.sum(W, axis=0)[:, None], H.shape), neg
            # β = 2 without mask is handled by the Gram form (V @ Hᵀ is a sparse product)

        def parts(v, wh, w):  # the dense formulas, entry by entry
            return self._dwh_parts(self._observed(v, w), wh, w)

        return _sparse.sample_scatter(V, W, H, parts, wrt, (mask.values,), wh=wh)

    def split_grad(self, V, W, H, mask, wrt, WH=None):
        """``WH``: the product ``W @ H`` when the caller has formed it already (dense V), or
        its values at the stored entries ``(nnz,)`` (sparse V)."""
        if isinstance(V, SparseMatrix) and (mask is not None or self.beta != 2.0):
            return self._sparse_split_grad(V, W, H, mask, wrt, WH)
        if mask is None and self.beta == 2.0:
            # Gram form: W (H Hᵀ) and V Hᵀ cost O((m + n) k²) + one V-sized product,
            # instead of forming the m×n matrix WH (for sparse V, an O(nnz k) product).
            if wrt == "W":
                return W @ (H @ H.T), V @ H.T
            return (W.T @ W) @ H, W.T @ V
        if mask is None and self.beta == 1.0:
            # pos = 1 Hᵀ (row sums of H) needs no m×n matrix.
            WH = jnp.maximum(W @ H if WH is None else WH, _wh_floor(W.dtype))
            ratio = V / WH
            if wrt == "W":
                return jnp.broadcast_to(jnp.sum(H, axis=1)[None, :], W.shape), ratio @ H.T
            return jnp.broadcast_to(jnp.sum(W, axis=0)[:, None], H.shape), W.T @ ratio
        pos, neg = self._dwh_parts(self._observed(V, mask), W @ H if WH is None else WH, mask)
        if wrt == "W":
            return pos @ H.T, neg @ H.T
        return W.T @ pos, W.T @ neg


@dataclasses.dataclass(frozen=True)
class Penalty(Term):
    """Penalty on one factor: ``l1`` is ``Σ X`` (X ≥ 0), ``l2`` is ``½ ‖X‖_F²``.

    The ½ makes the gradient of ``l2`` equal to ``X`` and matches scikit-learn's scaling
    (its objective adds ``½ · l2_reg · ‖W‖²``), so a weight means the same in both libraries.
    """

    kind: str = "l1"  # "l1" | "l2"
    factor: str = "H"  # "W" | "H"
    is_data_term = False

    @property
    def name(self) -> str:
        return f"{self.kind}({self.factor})"

    def value(self, V, W, H, mask):
        X = W if self.factor == "W" else H
        return jnp.sum(X) if self.kind == "l1" else 0.5 * jnp.sum(jnp.square(X))

    def split_grad(self, V, W, H, mask, wrt):
        X = W if wrt == "W" else H
        zero = jnp.zeros_like(X)
        if wrt != self.factor:
            return zero, zero
        return (jnp.ones_like(X) if self.kind == "l1" else X), zero


@dataclasses.dataclass(frozen=True)
class Custom(Term):
    """A user-written differentiable term ``fn(V, W, H, mask) -> scalar``.

    Its gradient comes from ``jax.grad`` and is split as ``pos = max(g, 0)``,
    ``neg = max(-g, 0)``. Gradient methods (pg, projected) use it exactly; multiplicative
    updates accept it but lose their monotonicity guarantee.
    """

    fn: Callable = dataclasses.field(default=None)
    label: str = "custom"
    is_data_term = True

    @property
    def name(self) -> str:
        return self.label

    def value(self, V, W, H, mask):
        return self.fn(V, W, H, mask)

    def split_grad(self, V, W, H, mask, wrt):
        argnum = 1 if wrt == "W" else 2
        g = jax.grad(self.fn, argnums=argnum)(V, W, H, mask)
        return jnp.maximum(g, 0), jnp.maximum(-g, 0)


@jax.tree_util.register_pytree_node_class
class Loss:
    """A weighted sum of terms: ``Σ_i weight_i · term_i``.

    Build it from the constructors of this module with ``+`` and scalar ``*``. The weights
    are the pytree leaves (traced under ``jit``: sweeping a penalty weight does not
    recompile); the terms are static structure.

    Methods take ``V`` ``(m, n)``, ``W`` ``(m, k)``, ``H`` ``(k, n)`` and an optional ``mask``
    ``(m, n)`` of non-negative weights.
    """

    def __init__(self, terms, weights):
        self.terms = tuple(terms)
        self.weights = tuple(weights)
        if len(self.terms) != len(self.weights):
            raise ValueError("a Loss needs one weight per term")

    # --- pytree protocol -------------------------------------------------------------
    def tree_flatten(self):
        return self.weights, self.terms

    @classmethod
    def tree_unflatten(cls, terms, weights):
        return cls(terms, weights)

    # --- composition -----------------------------------------------------------------
    def __add__(self, other):
        other = as_loss(other)
        return Loss(self.terms + other.terms, self.weights + other.weights)

    __radd__ = __add__

    def __mul__(self, scale):
        if not isinstance(scale, numbers.Real) or isinstance(scale, bool):
            raise TypeError(f"a loss can only be multiplied by a real number, got {scale!r}")
        return Loss(self.terms, tuple(scale * w for w in self.weights))

    __rmul__ = __mul__

    def __repr__(self):
        parts = []
        for t, w in zip(self.terms, self.weights, strict=True):
            try:
                parts.append(f"{float(w):g} * {t.name}")
            except TypeError:  # traced weight
                parts.append(f"w * {t.name}")
        return "Loss(" + " + ".join(parts) + ")"

    def __eq__(self, other):
        if not isinstance(other, Loss):
            return NotImplemented
        return self.terms == other.terms and all(
            float(a) == float(b) for a, b in zip(self.weights, other.weights, strict=True)
        )

    def __hash__(self):
        return hash((self.terms, tuple(float(w) for w in self.weights)))

    # --- evaluation --------------------------------------------------------------------
    @property
    def data_terms(self):
        """``(term, weight)`` pairs of the terms that depend on V."""
        return [(t, w) for t, w in zip(self.terms, self.weights, strict=True) if t.is_data_term]

    @property
    def penalties(self):
        """``(term, weight)`` pairs of the penalty terms."""
        pairs = zip(self.terms, self.weights, strict=True)
        return [(t, w) for t, w in pairs if not t.is_data_term]

    def value(self, V, W, H, mask=None, WH=None):
        """The objective, a scalar of ``V``'s dtype.

        ``WH``: ``W @ H`` ``(m, n)`` if the caller has it already (dense V), or its values at
        the stored entries ``(nnz,)`` (sparse V); β-divergence terms then use it instead of
        forming the product again.
        """
        total = 0.0
        for t, w in zip(self.terms, self.weights, strict=True):
            extra = {"WH": WH} if WH is not None and isinstance(t, BetaDivergence) else {}
            total = total + w * t.value(V, W, H, mask, **extra)
        return total

    def split_grad(self, V, W, H, mask=None, wrt="W", WH=None):
        """``(pos, neg)``, both ≥ 0 and shaped like the factor ``wrt``; gradient = pos - neg.

        ``WH`` as in :meth:`value`.
        """
        pos = neg = 0.0
        for t, w in zip(self.terms, self.weights, strict=True):
            extra = {"WH": WH} if WH is not None and isinstance(t, BetaDivergence) else {}
            p, q = t.split_grad(V, W, H, mask, wrt, **extra)
            pos, neg = pos + w * p, neg + w * q
        return pos, neg

    def grad(self, V, W, H, mask=None, wrt="W"):
        """Gradient of :meth:`value` with respect to ``wrt`` (``"W"`` or ``"H"``)."""
        pos, neg = self.split_grad(V, W, H, mask, wrt)
        return pos - neg

    def astype(self, dtype):
        """The same loss with its weights as NumPy scalars of ``dtype`` (keeps loop carries
        dtype-stable; NumPy, so that validation compiles nothing)."""
        return Loss(self.terms, tuple(np.asarray(w, dtype) for w in self.weights))

    @property
    def beta_values(self):
        """β of every β-divergence term."""
        return [t.beta for t in self.terms if isinstance(t, BetaDivergence)]


def mu_exponent(loss: Loss) -> float:
    """Exponent γ(β) of the multiplicative update (Févotte & Idier 2011, Table 2).

    ``1/(2-β)`` for β < 1, ``1`` for 1 ≤ β ≤ 2, ``1/(β-1)`` for β > 2. With it the MU step
    is a majorization–minimization step, so the objective never increases. With several
    β-terms the smallest exponent is used (a more cautious step).
    """
    gammas = [1.0]
    for b in loss.beta_values:
        if b < 1.0:
            gammas.append(1.0 / (2.0 - b))
        elif b > 2.0:
            gammas.append(1.0 / (b - 1.0))
    return min(gammas)


# --- constructors (the public names of DESIGN.md) ----------------------------------------


def beta(b: float) -> Loss:
    """β-divergence ``Σ d_β(V | WH)`` for any real ``b`` (1: KL, 0: IS, 2: ½ Frobenius)."""
    if not isinstance(b, numbers.Real) or isinstance(b, bool) or not np.isfinite(b):
        raise TypeError(f"beta needs a finite real number, got {b!r}")
    return Loss((BetaDivergence(float(b)),), (1.0,))


def frobenius() -> Loss:
    """Squared Frobenius distance ``Σ (V - WH)²`` (= 2 · β-divergence with β = 2)."""
    return Loss((BetaDivergence(2.0),), (2.0,))


def kl() -> Loss:
    """Generalized Kullback–Leibler divergence ``Σ V log(V/WH) - V + WH``."""
    return beta(1.0)


def itakura_saito() -> Loss:
    """Itakura–Saito divergence ``Σ V/WH - log(V/WH) - 1`` (needs V > 0)."""
    return beta(0.0)


def _factor(factor: str) -> str:
    if factor not in ("W", "H"):
        raise ValueError(f'a penalty applies to "W" or "H", got {factor!r}')
    return factor


def l1(factor: str) -> Loss:
    """L1 penalty ``Σ X`` on factor ``"W"`` or ``"H"`` (X ≥ 0, so it is ‖X‖₁)."""
    return Loss((Penalty("l1", _factor(factor)),), (1.0,))


def l2(factor: str) -> Loss:
    """L2 penalty ``½ ‖X‖_F²`` on factor ``"W"`` or ``"H"``."""
    return Loss((Penalty("l2", _factor(factor)),), (1.0,))


def custom(fn: Callable, name: str = "custom") -> Loss:
    """A differentiable term written by the user: ``fn(V, W, H, mask) -> scalar``.

    ``fn`` must be a pure JAX function; ``mask`` is ``None`` or the ``(m, n)`` weights. Keep a
    reference to ``fn``: terms compare by the function's identity, so re-creating a lambda
    on every call recompiles.
    """
    if not callable(fn):
        raise TypeError(f"custom() needs a callable, got {fn!r}")
    return Loss((Custom(fn, name),), (1.0,))


_NAMED = {
    "frobenius": frobenius,
    "kl": kl,
    "kullback-leibler": kl,
    "itakura_saito": itakura_saito,
    "itakura-saito": itakura_saito,
    "is": itakura_saito,
}


def as_loss(loss) -> Loss:
    """A :class:`Loss` from a Loss, a name (``"frobenius"``, ``"kl"``, ``"itakura_saito"``,
    ``"is"``) or a number (the β of a β-divergence)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        try:
            return _NAMED[loss.lower()]()
        except KeyError:
            raise ValueError(
                f"unknown loss {loss!r}; expected one of {sorted(_NAMED)}, a number (β), "
                "or a jaxnmf.losses.Loss"
            ) from None
    if isinstance(loss, numbers.Real) and not isinstance(loss, bool):
        return beta(float(loss))
    raise TypeError(f"loss must be a name, a number (β) or a jaxnmf.losses.Loss, got {loss!r}")
