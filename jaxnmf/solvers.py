"""NMF solvers: pure ``init`` / ``step`` pairs run by one driver (:mod:`jaxnmf._driver`).

A solver is a frozen (hashable) dataclass: its fields are static options, so an equal solver
never recompiles. It has three methods:

* ``check(loss, has_mask)``: host-side, before compilation; raises ``ValueError`` for a loss
  it cannot minimize;
* ``init(problem, W, H) -> extra``: solver-private state (a pytree; ``()`` when none);
* ``step(problem, W, H, extra) -> (W, H, extra, value)``: one outer iteration. ``value`` is
  the objective at the new factors when the step can get it cheaply from products it has
  already formed (see :func:`gram_objective`), else ``None`` and the driver evaluates it.

``problem`` is a :class:`Problem`: the data ``V`` ``(m, n)``, the entry weights ``mask``
(``None`` or ``(m, n)``), the :class:`~jaxnmf.losses.Loss` and ``active``, a ``(k,)`` boolean
component mask. Every solver re-applies ``active`` after each update, so padded components of a
rank sweep stay exactly zero (momentum, floors and coordinate updates would otherwise revive
them).

The driver, not the solver, evaluates the objective, counts iterations, applies the stopping
rule and records the status, so every solver is compared under the same rule.
"""
# ruff: noqa: N803, N806, N815

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .losses import BetaDivergence, Loss, Penalty, mu_exponent

__all__ = ["HALS", "MU", "PG", "Problem", "Projected", "as_solver", "hals", "mu", "pg", "projected"]


class Problem(NamedTuple):
    """What a solver step sees besides the factors. See the module docstring for shapes."""

    V: jax.Array
    mask: jax.Array | None
    loss: Loss
    active: jax.Array
    sq_norm: jax.Array | None = None  # Σ V², for objectives evaluated from Gram matrices


def _keep_active(W, H, active):
    return jnp.where(active[None, :], W, 0), jnp.where(active[:, None], H, 0)


def projected_gradient(X, G):
    """∇ᴾ: the gradient where X > 0, its negative part where X = 0 (KKT residual of X ≥ 0)."""
    return jnp.where(X > 0, G, jnp.minimum(G, 0))


# --------------------------------------------------------------------------------------------
# Multiplicative updates
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MU:
    """Multiplicative updates: ``X <- X · (neg / pos) ** γ``, W then H.

    ``pos``, ``neg`` are the non-negative parts of the loss gradient (see
    :mod:`jaxnmf.losses`), and γ the exponent of Févotte & Idier (2011) for the β of the loss,
    which makes each step a majorization–minimization step: the objective never increases for
    any β-divergence with l1/l2 penalties and any mask. Zeros stay zero (initialize with
    ``"nndsvda"`` rather than ``"nndsvd"``).

    References:
        Lee & Seung (2001), Algorithms for non-negative matrix factorization, NIPS.
        Févotte & Idier (2011), Neural Computation 23(9), Table 2.
    """

    name: str = "mu"

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask  # any loss with a split gradient

    def init(self, problem, W, H):
        return ()

    def step(self, problem, W, H, extra):
        V, mask, loss, active, _ = problem
        gamma = mu_exponent(loss)

        def ratio(neg, pos):
            # pos == 0 only where the gradient carries no information (e.g. a zero row of H);
            # leave the entry unchanged there instead of dividing by zero.
            r = jnp.where(pos > 0, neg / jnp.where(pos > 0, pos, 1), 1)
            return r if gamma == 1.0 else r**gamma

        if uses_gram_form(problem):
            # Frobenius family without mask: the same update from Gram products, and the
            # objective from them too (no m×n temporaries at all).
            a, pen = _quadratic_coefficients(loss)
            HHt, VHt = H @ H.T, V @ H.T
            W = W * ratio(a * VHt, a * (W @ HHt) + pen["l1", "W"] + pen["l2", "W"] * W)
            W = jnp.where(active[None, :], W, 0)
            WtW, WtV = W.T @ W, W.T @ V
            H = H * ratio(a * WtV, a * (WtW @ H) + pen["l1", "H"] + pen["l2", "H"] * H)
            H = jnp.where(active[:, None], H, 0)
            return W, H, extra, gram_objective(problem, W, H, WtW, WtV)

        pos, neg = loss.split_grad(V, W, H, mask, "W")
        W = jnp.where(active[None, :], W * ratio(neg, pos), 0)
        pos, neg = loss.split_grad(V, W, H, mask, "H")
        H = jnp.where(active[:, None], H * ratio(neg, pos), 0)
        return W, H, extra, None


# --------------------------------------------------------------------------------------------
# HALS
# --------------------------------------------------------------------------------------------


def _quadratic_coefficients(loss: Loss):
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


def _is_quadratic(loss: Loss) -> bool:
    return all(
        (isinstance(t, BetaDivergence) and t.beta == 2.0) or isinstance(t, Penalty)
        for t in loss.terms
    ) and any(isinstance(t, BetaDivergence) for t in loss.terms)


def uses_gram_form(problem) -> bool:
    """True when the objective is a Frobenius-family quadratic of (W, H) without mask, so
    steps can work from Gram products (static: decided at trace time)."""
    return problem.mask is None and problem.sq_norm is not None and _is_quadratic(problem.loss)


def gram_objective(problem, W, H, WtW, WtV):
    """The objective from Gram products in float64 (see :func:`_gram_objective`); ``None`` in
    lower precision, where the driver evaluates ``‖V - WH‖²`` directly instead."""
    if W.dtype != jnp.float64:
        return None
    return _gram_objective(problem, W, H, WtW, WtV)


def _gram_objective(problem, W, H, WtW, WtV):
    """The objective ``a·½‖V - WH‖² + penalties`` from ``WᵀW`` ``(k, k)`` and ``WᵀV``
    ``(k, n)``: ``½‖V‖² - ⟨WᵀV, H⟩ + ½⟨WᵀW, HHᵀ⟩`` costs O(k²n) instead of O(mnk).

    It subtracts nearly equal numbers, so its absolute error is about ``eps · ‖V‖²``: 1e-16
    relative to ‖V‖² in float64 (harmless), but 1e-7 in float32, which made the relative
    change of the objective read as exactly 0 well before convergence (a float32 HALS fit of
    LFW faces stopped at iteration 589 instead of 1224). Hence float64 only.
    """
    a, pen = _quadratic_coefficients(problem.loss)
    fit = 0.5 * problem.sq_norm - jnp.vdot(WtV, H) + 0.5 * jnp.vdot(WtW, H @ H.T)
    return (
        a * jnp.maximum(fit, 0)
        + pen["l1", "W"] * jnp.sum(W)
        + pen["l1", "H"] * jnp.sum(H)
        + 0.5 * pen["l2", "W"] * jnp.vdot(W, W)
        + 0.5 * pen["l2", "H"] * jnp.vdot(H, H)
    )


def _hals_rows(X, numer, gram, a, l1, l2, active):
    """One HALS sweep over the rows of ``X`` ``(k, p)`` for the problem

    ``min_X a(½⟨gram X, X⟩ - ⟨numer, X⟩) + l1 Σ X + ½ l2 ‖X‖²``, ``X ≥ 0``,

    with ``gram`` ``(k, k)`` and ``numer`` ``(k, p)``. Row j is minimized exactly with the
    others fixed (a closed form, then clipped at 0). Each step is a length-k·p vector operation.
    """
    k = X.shape[0]

    def body(j, X):
        g_row = jax.lax.dynamic_index_in_dim(gram, j, keepdims=False)  # (k,)
        x = jax.lax.dynamic_index_in_dim(X, j, keepdims=False)  # (p,)
        n_row = jax.lax.dynamic_index_in_dim(numer, j, keepdims=False)
        grad = a * (g_row @ X - n_row) + l1 + l2 * x
        hess = a * g_row[j] + l2
        # hess == 0 means the other factor's component is zero: nothing to fit, keep x.
        new = jnp.where(hess > 0, jnp.maximum(x - grad / jnp.where(hess > 0, hess, 1), 0), x)
        new = jnp.where(active[j], new, 0)
        return jax.lax.dynamic_update_index_in_dim(X, new, j, 0)

    return jax.lax.fori_loop(0, k, body, X)


def _hals_rows_masked(R, M, X, Y, a, l1, l2, active):
    """HALS sweep over rows x_j of ``X`` ``(k, q)`` for ``V ≈ Yᵀ X`` with entry weights.

    ``R`` ``(p, q)`` is the residual ``V - Yᵀ X`` (kept up to date and returned), ``M``
    ``(p, q)`` the weights, ``Y`` ``(k, p)`` the other factor. Row j:
    ``x_j = max(0, (a yⱼᵀ(M∘Rⱼ) - l1) / (a (yⱼ²)ᵀ M + l2))`` with ``Rⱼ = R + yⱼ xⱼᵀ``.
    """
    k = X.shape[0]

    def body(j, carry):
        R, X = carry
        x = jax.lax.dynamic_index_in_dim(X, j, keepdims=False)  # (q,)
        y = jax.lax.dynamic_index_in_dim(Y, j, keepdims=False)  # (p,)
        Rj = R + jnp.outer(y, x)
        numer = a * (y @ (M * Rj)) - l1
        denom = a * ((y * y) @ M) + l2
        new = jnp.where(denom > 0, jnp.maximum(numer / jnp.where(denom > 0, denom, 1), 0), x)
        new = jnp.where(active[j], new, 0)
        return Rj - jnp.outer(y, new), jax.lax.dynamic_update_index_in_dim(X, new, j, 0)

    return jax.lax.fori_loop(0, k, body, (R, X))


@dataclasses.dataclass(frozen=True)
class HALS:
    """(Fast) hierarchical alternating least squares: exact coordinate descent on columns.

    For the Frobenius loss with l1/l2 penalties and an optional mask. Without a mask, the
    products ``VHᵀ``, ``HHᵀ`` (resp. ``WᵀV``, ``WᵀW``) are formed once per factor update and
    each column update is one fused vector operation (the method behind scikit-learn's
    ``solver="cd"``). With a mask the residual is kept and updated column by column.

    References:
        Cichocki, A. & Phan, A.-H. (2009). Fast local algorithms for large scale nonnegative
        matrix and tensor factorizations. IEICE Trans. Fundamentals E92-A(3).
        Gillis, N. & Glineur, F. (2012). Accelerated multiplicative updates and hierarchical
        ALS algorithms for nonnegative matrix factorization. Neural Computation 24(4).
    """

    name: str = "hals"

    def check(self, loss: Loss, has_mask: bool) -> None:
        if not _is_quadratic(loss):
            names = ", ".join(t.name for t in loss.terms)
            raise ValueError(
                f"solver 'hals' minimizes the Frobenius loss with l1/l2 penalties only; got "
                f"terms [{names}]. Use solver='mu' or 'pg' for other losses."
            )

    def init(self, problem, W, H):
        return ()

    def step(self, problem, W, H, extra):
        V, mask, loss, active, _ = problem
        a, pen = _quadratic_coefficients(loss)
        if mask is None:
            Wt = _hals_rows(W.T, H @ V.T, H @ H.T, a, pen["l1", "W"], pen["l2", "W"], active)
            W = Wt.T
            WtW, WtV = W.T @ W, W.T @ V
            H = _hals_rows(H, WtV, WtW, a, pen["l1", "H"], pen["l2", "H"], active)
            value = gram_objective(problem, W, H, WtW, WtV) if uses_gram_form(problem) else None
            return W, H, extra, value
        else:
            R = V - W @ H
            Rt, Wt = _hals_rows_masked(
                R.T, mask.T, W.T, H, a, pen["l1", "W"], pen["l2", "W"], active
            )
            W = Wt.T
            _, H = _hals_rows_masked(Rt.T, mask, H, Wt, a, pen["l1", "H"], pen["l2", "H"], active)
        return W, H, extra, None


# --------------------------------------------------------------------------------------------
# Lin's alternating projected gradient
# --------------------------------------------------------------------------------------------


class PGState(NamedTuple):
    tol_W: jax.Array  # sub-problem tolerances (Lin 2007, §5), shrunk by 10 when met at once
    tol_H: jax.Array
    inner_W: jax.Array  # projected-gradient steps taken by the last sub-problems (diagnostic)
    inner_H: jax.Array


def _subproblem_oracle(problem, W, H, wrt):
    """``(change, grad)`` of the objective as a function of one factor, the other fixed.

    ``change(X, G, Xn)`` is ``f(Xn) - f(X)`` (``G = ∇f(X)``) and ``grad(X)`` is ``∇f(X)``,
    for ``X`` = ``W`` ``(m, k)`` or ``H`` ``(k, n)``. For a Frobenius-family loss without mask
    the sub-problem is a quadratic, and the change is computed in closed form from the Gram matrix,
    ``⟨∇f(X), d⟩ + ½ a⟨d, gram d⟩ + ½ l2‖d‖²`` with ``d = Xn - X``, as in Lin's code: O(k²p) per
    trial and no cancellation between two large objective values (which in float32 hid the
    decrease and stalled the step search). Any other loss evaluates the full objective twice.
    """
    V, mask, loss, _, _ = problem
    if mask is None and _is_quadratic(loss):
        a, pen = _quadratic_coefficients(loss)
        if wrt == "W":
            gram, cross = H @ H.T, V @ H.T  # f(W) = a(½⟨W gram, W⟩ - ⟨cross, W⟩) + ...
            apply = lambda X: X @ gram
        else:
            gram, cross = W.T @ W, W.T @ V
            apply = lambda X: gram @ X
        l1, l2 = pen["l1", wrt], pen["l2", wrt]

        def grad(X):
            return a * (apply(X) - cross) + l1 + l2 * X

        def change(X, G, Xn):  # G = grad(X), already at hand in the step search
            d = Xn - X
            return jnp.vdot(G, d) + 0.5 * (a * jnp.vdot(apply(d), d) + l2 * jnp.vdot(d, d))

        return change, grad

    if wrt == "W":
        value = lambda X: loss.value(V, X, H, mask)
        grad = lambda X: loss.grad(V, X, H, mask, "W")
    else:
        value = lambda X: loss.value(V, W, X, mask)
        grad = lambda X: loss.grad(V, W, X, mask, "H")
    return (lambda X, G, Xn: value(Xn) - value(X)), grad


@dataclasses.dataclass(frozen=True)
class PG:
    """Alternating projected gradient with Armijo step search (Lin 2007).

    Each outer iteration solves the sub-problem in W (H fixed), then in H, by projected
    gradient steps ``X <- max(X - α∇f, 0)`` until the projected-gradient norm falls below the
    sub-problem tolerance (at most ``max_inner`` steps). α is searched as in Lin's code: start
    from the last α; if the first trial satisfies the sufficient-decrease condition
    ``f(Xn) - f(X) ≤ σ⟨∇f, Xn - X⟩`` grow α by 1/``shrink`` while it holds, else shrink it by
    ``shrink`` until it holds; at most ``max_trials`` trials. Tolerances start at 0.001 × the
    initial gradient norm and shrink tenfold when a sub-problem is already solved on entry.
    Works with any differentiable loss and mask.

    References:
        Lin, C.-J. (2007). Projected gradient methods for nonnegative matrix factorization.
        Neural Computation 19(10). (Algorithm 4 and its MATLAB code ``nmf.m``.)
    """

    name: str = "pg"
    sigma: float = 0.01
    shrink: float = 0.1
    max_trials: int = 20
    max_inner: int = 1000
    initial_tol: float = 1e-3

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask

    def init(self, problem, W, H):
        V, mask, loss, active, _ = problem
        gW = loss.grad(V, W, H, mask, "W")
        gH = loss.grad(V, W, H, mask, "H")
        gW, gH = _keep_active(gW, gH, active)
        initgrad = jnp.sqrt(jnp.vdot(gW, gW) + jnp.vdot(gH, gH))
        tol = self.initial_tol * initgrad
        zero = jnp.zeros((), jnp.int32)
        return PGState(tol, tol, zero, zero)

    def _armijo(self, change, X, G, alpha, active_mask):
        """One projected step with Lin's α search. Returns ``(X_new, alpha)``."""
        dtype = X.dtype
        sigma = jnp.asarray(self.sigma, dtype)
        shrink = jnp.asarray(self.shrink, dtype)

        def trial(alpha):
            Xn = jnp.where(active_mask, jnp.maximum(X - alpha * G, 0), 0)
            return Xn, change(X, G, Xn) <= sigma * jnp.vdot(G, Xn - X)

        X1, ok1 = trial(alpha)
        decrease = ~ok1  # first trial failed: shrink α until it holds

        def cond(c):
            i, _, _, done = c
            return (i < self.max_trials) & ~done

        def body(c):
            i, alpha, X_acc, _ = c
            alpha = jnp.where(decrease, alpha * shrink, alpha / shrink)
            Xn, ok = trial(alpha)
            same = jnp.all(Xn == X_acc)
            accept = jnp.where(decrease, ok, ok & ~same)
            done = jnp.where(decrease, ok, ~ok | same)
            return i + 1, alpha, jnp.where(accept, Xn, X_acc), done

        init = (jnp.asarray(1, jnp.int32), alpha, jnp.where(decrease, X, X1), jnp.asarray(False))
        _, alpha, X_new, _ = jax.lax.while_loop(cond, body, init)
        return X_new, alpha

    def _solve(self, problem, W, H, wrt, tol):
        change, grad = _subproblem_oracle(problem, W, H, wrt)
        X = W if wrt == "W" else H
        active_mask = problem.active[None, :] if wrt == "W" else problem.active[:, None]
        dtype = X.dtype

        def pg_norm(X, G):
            return jnp.linalg.norm(jnp.where(active_mask, projected_gradient(X, G), 0))

        def cond(c):
            it, X, G, _alpha = c
            return (it < self.max_inner) & (pg_norm(X, G) >= tol)

        def body(c):
            it, X, G, alpha = c
            X, alpha = self._armijo(change, X, G, alpha, active_mask)
            return it + 1, X, grad(X), alpha

        it, X, _, _ = jax.lax.while_loop(
            cond, body, (jnp.zeros((), jnp.int32), X, grad(X), jnp.ones((), dtype))
        )
        return X, it

    def step(self, problem, W, H, extra):
        W, inner_W = self._solve(problem, W, H, "W", extra.tol_W)
        H, inner_H = self._solve(problem, W, H, "H", extra.tol_H)
        # Lin: a sub-problem solved on entry means its tolerance is too loose.
        tol_W = jnp.where(inner_W == 0, 0.1 * extra.tol_W, extra.tol_W)
        tol_H = jnp.where(inner_H == 0, 0.1 * extra.tol_H, extra.tol_H)
        return W, H, PGState(tol_W, tol_H, inner_W, inner_H), None


# --------------------------------------------------------------------------------------------
# Any optax optimizer + projection
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Projected:
    """Simultaneous update of (W, H) by any ``optax.GradientTransformation``, then
    projection onto ``W, H ≥ 0`` (``optax.projections.projection_non_negative``).

    The gradient is the loss's own (``pos - neg``; ``jax.grad`` for custom terms). Create the
    optimizer once and reuse it: solvers are static, and optimizers compare by identity, so a
    new ``optax.adam(1e-2)`` per call recompiles.
    """

    optimizer: Any = None
    name: str = "projected"

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask
        if not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                f"projected() needs an optax.GradientTransformation, got {self.optimizer!r}"
            )

    def init(self, problem, W, H):
        # optax mixes Python floats and int32 internally; keep it working for users who run
        # JAX with strict dtype promotion.
        with jax.numpy_dtype_promotion("standard"):
            return self.optimizer.init((W, H))

    def step(self, problem, W, H, extra):
        V, mask, loss, active, _ = problem
        grads = (loss.grad(V, W, H, mask, "W"), loss.grad(V, W, H, mask, "H"))
        with jax.numpy_dtype_promotion("standard"):
            updates, extra = self.optimizer.update(grads, extra, (W, H))
            W, H = optax.apply_updates((W, H), updates)
            W, H = optax.projections.projection_non_negative((W, H))
        W, H = _keep_active(W, H, active)
        return W, H, extra, None


# --------------------------------------------------------------------------------------------
# Public constructors
# --------------------------------------------------------------------------------------------


def mu() -> MU:
    """Multiplicative updates (Lee & Seung 2001; Févotte & Idier 2011 for β). See :class:`MU`."""
    return MU()


def hals() -> HALS:
    """Fast HALS coordinate descent (Cichocki & Phan 2009). See :class:`HALS`."""
    return HALS()


def pg(**options) -> PG:
    """Lin's (2007) alternating projected gradient. Options: see :class:`PG`."""
    return PG(**options)


def projected(opt) -> Projected:
    """Any ``optax.GradientTransformation`` + projection onto the non-negative orthant.

    Examples:
        >>> import optax, jaxnmf as jn
        >>> solver = jn.solvers.projected(optax.adam(1e-2))
    """
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(f"projected() needs an optax.GradientTransformation, got {opt!r}")
    return Projected(opt)


_NAMED = {"mu": mu, "hals": hals, "pg": pg}


def as_solver(solver):
    """A solver object from a name (``"mu"``, ``"pg"``, ``"hals"``) or a solver object."""
    if isinstance(solver, str):
        try:
            return _NAMED[solver.lower()]()
        except KeyError:
            raise ValueError(
                f"unknown solver {solver!r}; expected one of {sorted(_NAMED)} or a solver "
                "object from jaxnmf.solvers"
            ) from None
    if all(hasattr(solver, a) for a in ("init", "step", "check")):
        return solver
    raise TypeError(f"solver must be a name or a jaxnmf solver object, got {solver!r}")
