"""NMF solvers: pure ``init`` / ``step`` pairs run by one driver (:mod:`jaxnmf._driver`),
built from one-factor *blocks* and *schedules*.

Every built-in method is written once, as a block that updates one factor with the other
fixed (:class:`MUBlock`, :class:`HALSBlock`, :class:`PGBlock`, :class:`ANLSBlock`,
:class:`NesterovBlock`, :class:`GreedyCDBlock`, :class:`OptaxBlock`), on a data operator
(:class:`Side`: dense, sparse, masked; the sufficient :class:`Statistics` for
Frobenius-family blocks). Schedules compose them: :class:`Alternating` (W then H; the
solvers below subclass it), :class:`Repeated` (A-MU, A-HALS) and :class:`OneSide` (one
factor only: ``transform``, refits with fixed components). A new solver is a block and an
``Alternating`` subclass that names it (see ``_greedy_cd.py``); see
:mod:`jaxnmf.solvers._schedules` for the block interface.

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

Sparse ``V`` (a :class:`jaxnmf._sparse.SparseMatrix`, built by :func:`jaxnmf.api.prepare` from
scipy.sparse or BCOO input) is never densified. It implements ``V @ X``, ``X @ V`` and
``V.T`` in O(nnz · k), so the Gram-form steps (``V Hᵀ``, ``Wᵀ V``) run unchanged, and the
losses evaluate β-divergences from the stored entries. Which solvers take it:

============================  =====================  ==================================
solver                        sparse V, no mask      sparse V, ``mask="stored"``
============================  =====================  ==================================
mu, pg, projected             Frobenius, KL          any β-divergence
hals                          Frobenius              Frobenius (residual at stored entries)
accelerated_mu/_hals,         Frobenius              no: they work from statistics alone,
nesterov, anls, greedy_cd                            whose masked form (the imputation
                                                     majorizer) would densify V
============================  =====================  ==================================

(l1/l2 penalties combine with all of them; custom terms need dense V.)
"""

from __future__ import annotations

import optax

from ._accelerated import AcceleratedHALS as AcceleratedHALS
from ._accelerated import AcceleratedMU as AcceleratedMU
from ._accelerated import Nesterov as Nesterov
from ._accelerated import NesterovBlock as NesterovBlock
from ._anls import ANLS as ANLS
from ._anls import ANLSBlock as ANLSBlock
from ._anls import nnls_bpp as nnls_bpp
from ._base import Problem as Problem
from ._base import gram_objective as gram_objective
from ._base import is_quadratic as is_quadratic
from ._base import keep_active as keep_active
from ._base import projected_gradient as projected_gradient
from ._base import quadratic_coefficients as quadratic_coefficients
from ._base import uses_gram_form as uses_gram_form
from ._greedy_cd import GreedyCD as GreedyCD
from ._greedy_cd import GreedyCDBlock as GreedyCDBlock
from ._hals import HALS as HALS
from ._hals import HALSBlock as HALSBlock
from ._hals import _hals_rows as _hals_rows
from ._hals import _hals_rows_masked as _hals_rows_masked
from ._mu import MU as MU
from ._mu import MUBlock as MUBlock
from ._operators import Side as Side
from ._operators import Statistics as Statistics
from ._pg import PG as PG
from ._pg import PGBlock as PGBlock
from ._pg import PGState as PGState
from ._projected import OptaxBlock as OptaxBlock
from ._projected import Projected as Projected
from ._schedules import Alternating as Alternating
from ._schedules import Blocks as Blocks
from ._schedules import OneSide as OneSide
from ._schedules import Repeated as Repeated

# Former private names, kept for modules that imported them.
_is_quadratic = is_quadratic
_quadratic_coefficients = quadratic_coefficients

__all__ = [
    "ANLS",
    "HALS",
    "MU",
    "PG",
    "ANLSBlock",
    "AcceleratedHALS",
    "AcceleratedMU",
    "Alternating",
    "Blocks",
    "GreedyCD",
    "GreedyCDBlock",
    "HALSBlock",
    "MUBlock",
    "Nesterov",
    "NesterovBlock",
    "OneSide",
    "OptaxBlock",
    "PGBlock",
    "Problem",
    "Projected",
    "Repeated",
    "Side",
    "Statistics",
    "accelerated_hals",
    "accelerated_mu",
    "alternating",
    "anls",
    "anls_block",
    "as_solver",
    "greedy_cd",
    "greedy_cd_block",
    "hals",
    "hals_block",
    "mu",
    "mu_block",
    "nesterov",
    "nesterov_block",
    "nnls_bpp",
    "one_side",
    "optax_block",
    "pg",
    "pg_block",
    "projected",
    "repeated",
]


def mu() -> MU:
    """Multiplicative updates (Lee & Seung 2001; Févotte & Idier 2011 for β). See :class:`MU`."""
    return MU()


def hals(masked: str = "exact") -> HALS:
    """Fast HALS coordinate descent (Cichocki & Phan 2009). ``masked``: how a mask is taken,
    ``"exact"`` (masked coordinate descent) or ``"impute"`` (the imputation majorizer,
    faster; same fixed points). See :class:`HALS`."""
    return HALS(masked=masked)


def pg(**options) -> PG:
    """Lin's (2007) alternating projected gradient. Options: see :class:`PG`."""
    return PG(**options)


def projected(opt) -> Projected:
    """Any ``optax.GradientTransformation`` + projection onto the non-negative orthant.

    Optimizers built by the same code with the same hyperparameters are one solver: a new
    ``optax.adam(1e-2)`` per call reuses the compiled fit of the last one, and the solver
    pickles (by reference to the optimizer's code, with its hyperparameters). See
    :class:`Projected`.

    Examples:
        >>> import pickle, optax, jaxnmf as jn
        >>> solver = jn.solvers.projected(optax.adam(1e-2))
        >>> solver == jn.solvers.projected(optax.adam(1e-2))
        True
        >>> pickle.loads(pickle.dumps(solver)) == solver
        True
    """
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(f"projected() needs an optax.GradientTransformation, got {opt!r}")
    return Projected(opt)


def accelerated_mu(alpha: float = 0.5, delta: float = 0.1) -> AcceleratedMU:
    """Accelerated MU (Gillis & Glineur 2012). See :class:`AcceleratedMU`."""
    return AcceleratedMU(alpha=alpha, delta=delta)


def accelerated_hals(alpha: float = 0.5, delta: float = 0.1) -> AcceleratedHALS:
    """Accelerated HALS (Gillis & Glineur 2012). See :class:`AcceleratedHALS`."""
    return AcceleratedHALS(alpha=alpha, delta=delta)


def nesterov(**options) -> Nesterov:
    """NeNMF, Nesterov's optimal gradient method per sub-problem (Guan et al. 2012)."""
    return Nesterov(**options)


def anls(max_pivots: int | None = None) -> ANLS:
    """Alternating NNLS by block principal pivoting (Kim & Park 2011). See :class:`ANLS`."""
    return ANLS(max_pivots=max_pivots)


def greedy_cd(tol: float = 1e-3, max_inner: int | None = None) -> GreedyCD:
    """Greedy coordinate descent (Hsieh & Dhillon 2011). See :class:`GreedyCD`."""
    return GreedyCD(tol=tol, max_inner=max_inner)


def one_side(solver, factor: str = "W") -> OneSide:
    """``solver``'s update of ``factor`` only, the other factor fixed (:class:`OneSide`):
    run it with fixed ``H`` to find ``W`` for new data (the estimator's ``transform``), or
    with fixed ``W`` to refit coefficients on fixed components.

    Examples:
        >>> import jaxnmf as jn
        >>> jn.solvers.one_side("hals", "W").name
        'hals[W only]'
    """
    if factor not in ("W", "H"):
        raise ValueError(f"factor must be 'W' or 'H', got {factor!r}")
    solver = as_solver(solver)
    if not hasattr(solver, "block"):
        raise TypeError(
            f"one_side() needs a solver made of blocks (with a block(factor) method), got "
            f"{solver!r}"
        )
    return OneSide(solver, factor)


# --- blocks: each method's one-factor update, to compose into solvers ----------------------


def mu_block() -> MUBlock:
    """The multiplicative update of one factor (any β-divergence, penalties, masks)."""
    return MUBlock()


def hals_block(masked: str = "exact") -> HALSBlock:
    """One HALS sweep over one factor's components (Frobenius + l1/l2, masks ``"exact"`` or
    ``"impute"``: see :class:`HALSBlock`)."""
    return HALSBlock(masked)


def pg_block(**options) -> PGBlock:
    """Lin's (2007) projected-gradient solve of one factor's sub-problem. Options: :class:`PG`."""
    return PGBlock(**options)


def anls_block(max_pivots: int | None = None) -> ANLSBlock:
    """One factor solved exactly by block principal pivoting (Kim & Park 2011)."""
    return ANLSBlock(max_pivots)


def nesterov_block(**options) -> NesterovBlock:
    """One factor's sub-problem by Nesterov's method (NeNMF). Options: :class:`Nesterov`."""
    return NesterovBlock(**options)


def greedy_cd_block(tol: float = 1e-3, max_inner: int | None = None) -> GreedyCDBlock:
    """Greedy coordinate descent on one factor (Hsieh & Dhillon 2011)."""
    return GreedyCDBlock(tol, max_inner)


def optax_block(opt) -> OptaxBlock:
    """One optax step on one factor, then projection onto the non-negative orthant."""
    return OptaxBlock(projected(opt))


def repeated(block, alpha: float = 0.5, delta: float = 0.1) -> Repeated:
    """``block`` repeated on the same statistics while it pays (Gillis & Glineur 2012)."""
    return Repeated(block, alpha, delta)


def alternating(block_W, block_H=None, name: str = "alternating") -> Blocks:  # noqa: N803
    """A solver from one-factor blocks: W by ``block_W``, then H by ``block_H`` (default: the
    same block). It runs wherever a built-in solver does — fit, both sweep executors (the
    batched one when both blocks work from statistics alone and keep no state), compare,
    the estimator, ``devices=``.

    Examples:
        >>> import jaxnmf as jn
        >>> solver = jn.solvers.alternating(jn.solvers.hals_block(), jn.solvers.mu_block())
        >>> solver.batchable
        True
    """
    block_H = block_W if block_H is None else block_H  # noqa: N806
    for block in (block_W, block_H):
        if not (hasattr(block, "init") and hasattr(block, "update")):
            raise TypeError(
                f"a block needs init(side, g0) and update(side, X, state); got {block!r}"
            )
    return Blocks(block_W, block_H, name)


_NAMED = {
    "mu": mu,
    "hals": hals,
    "pg": pg,
    "accelerated_mu": accelerated_mu,
    "amu": accelerated_mu,
    "accelerated_hals": accelerated_hals,
    "ahals": accelerated_hals,
    "nesterov": nesterov,
    "nenmf": nesterov,
    "anls": anls,
    "greedy_cd": greedy_cd,
    "gcd": greedy_cd,
}


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
