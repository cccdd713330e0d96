"""Any optax optimizer followed by projection onto the non-negative orthant.

An ``optax.GradientTransformation`` is a NamedTuple of closures: two ``optax.adam(1e-2)``
are different objects, equal only by identity, and closures do not pickle. A solver is a
static argument of the compiled fit, so identity equality recompiled the fit for every new
optimizer object (and grew JAX's cache without bound), and a fitted estimator holding one
could not be pickled. :class:`Projected` therefore describes its optimizer by *recipe*: each
local function (closure) as a reference to its code, found again from its module and
qualified name (``optax._src.combine`` / ``chain.<locals>.init_fn``), plus the values it
closes over (the hyperparameters, nested transformations and schedules). Two optimizers
with the same recipe compute the same thing, so they are one solver; the recipe is also
what a pickle stores.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import pickle
import sys
import types
from typing import Any

import jax
import optax

from ..losses import Loss
from ._base import keep_active

# --------------------------------------------------------------------------------------------
# Closures by reference to their code
# --------------------------------------------------------------------------------------------


class _EmptyCell:
    """Stands for a closure cell not yet assigned (a local function referring to a name
    defined after it)."""


def _nested_code(code: types.CodeType):
    """``code`` and every code object defined inside it, depth first, in a fixed order."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested_code(const)


def _candidates(module_name: str, qualname: str) -> list[types.CodeType]:
    """The code objects named ``qualname`` inside the enclosing top-level function of
    ``module_name`` (several when local lambdas share a name)."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    obj = module
    for part in qualname.split(".<locals>.")[0].split("."):
        obj = getattr(obj, part)
    # decorated factories keep the function that holds the code in __wrapped__; methods
    # reached from their class may be bound
    obj = inspect.unwrap(getattr(obj, "__func__", obj))
    return [c for c in _nested_code(obj.__code__) if c.co_qualname == qualname]


def _local_function(module_name, qualname, index, defaults, kwdefaults, cells, attrs):
    """Rebuilds a pickled local function from its code's location and its closure."""
    try:
        code = _candidates(module_name, qualname)[index]
    except (ImportError, AttributeError, TypeError, IndexError):
        # e.g. another version of optax, whose factories are laid out differently
        raise pickle.UnpicklingError(
            f"the local function {qualname!r} of module {module_name!r} is not found in the "
            "code installed here; load the pickle with the versions that wrote it"
        ) from None
    module = sys.modules[module_name]
    closure = tuple(
        types.CellType() if isinstance(v, _EmptyCell) else types.CellType(v) for v in cells
    )
    fn = types.FunctionType(code, module.__dict__, code.co_name, defaults, closure)
    fn.__kwdefaults__ = kwdefaults
    for name, value in attrs.items():
        setattr(fn, name, value)
    return fn


class _ClosurePickler(pickle.Pickler):
    """Pickles local functions by reference to their code (module, qualified name, index
    among same-named code objects) and by value of their closure cells; everything else as
    pickle does. Refuses a function whose code is not the one found under its name again
    (e.g. a factory redefined since, in a notebook): it could not be loaded faithfully."""

    def reducer_override(self, obj):
        if not isinstance(obj, types.FunctionType) or "<locals>" not in obj.__code__.co_qualname:
            return NotImplemented
        code = obj.__code__
        module_name = obj.__globals__.get("__name__")  # not __module__: functools.wraps sets it
        try:
            found = _candidates(module_name, code.co_qualname)
            index = next(i for i, c in enumerate(found) if c is code)
            if sys.modules[module_name].__dict__ is not obj.__globals__:
                raise LookupError("other globals")
        except (ImportError, AttributeError, TypeError, LookupError, StopIteration):
            raise pickle.PicklingError(
                f"the local function {code.co_qualname!r} of module {module_name!r} cannot be "
                "found again by its module and qualified name"
            ) from None
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # empty cell
                cells.append(_EmptyCell())
        # Only what differs from a function made from the code (functools.wraps changes
        # names; attributes like __wrapped__ live in __dict__): equal optimizers must give
        # equal bytes, and pickle writes a string shared with the code once, a copy twice.
        empty = tuple(types.CellType() for _ in code.co_freevars)
        plain = types.FunctionType(code, obj.__globals__, None, None, empty)
        attrs = {
            a: getattr(obj, a)
            for a in ("__name__", "__qualname__", "__module__", "__doc__")
            if getattr(obj, a) != getattr(plain, a)
        }
        attrs.update(obj.__dict__)
        args = (module_name, code.co_qualname, index, obj.__defaults__, obj.__kwdefaults__)
        return _local_function, (*args, tuple(cells), attrs)


def _recipe(optimizer) -> tuple[bytes | None, str]:
    """``(pickled recipe, "")`` of an optimizer, or ``(None, why it has none)``."""
    buffer = io.BytesIO()
    try:
        # protocol fixed: the bytes are also the optimizer's identity within a process
        _ClosurePickler(buffer, protocol=4).dump(optimizer)
    except RecursionError:  # a local function that closes over itself
        return None, "it refers to itself through its closures"
    except Exception as e:  # anything pickle refuses: fall back to identity
        return None, str(e)
    return buffer.getvalue(), ""


def _unpickle(recipe: bytes, name: str) -> Projected:
    return Projected(pickle.loads(recipe), name)


# --------------------------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Projected:
    """Simultaneous update of (W, H) by any ``optax.GradientTransformation``, then
    projection onto ``W, H ≥ 0`` (``optax.projections.projection_non_negative``).

    The gradient is the loss's own (``pos - neg``; ``jax.grad`` for custom terms).

    Equality, hashing and pickling go by the optimizer's recipe (see the module docstring):
    a new ``optax.adam(1e-2)`` per call is equal to the last one and reuses its compiled
    fit; ``optax.adam(1e-3)`` is another solver (hyperparameters are static: each new value
    compiles once). The recipe is taken when the solver is made. An optimizer whose local
    functions cannot be found again by module and qualified name (code built by ``exec``, a
    factory redefined since, a closure referring to itself) compares by identity and cannot
    be pickled; build it once and reuse it.
    """

    optimizer: Any = None
    name: str = "projected"
    # the pickled recipe (None: compare by identity) and why there is none
    _recipe: bytes | None = dataclasses.field(init=False, repr=False)
    _no_recipe: str = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        recipe, why = _recipe(self.optimizer)
        object.__setattr__(self, "_recipe", recipe)
        object.__setattr__(self, "_no_recipe", why)

    def _key(self):
        return (self.name, self._recipe if self._recipe is not None else id(self.optimizer))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        if self._recipe is None or other._recipe is None:
            return self.name == other.name and self.optimizer is other.optimizer
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __reduce__(self):
        if self._recipe is None:
            raise pickle.PicklingError(
                f"projected(): this optimizer cannot be pickled: {self._no_recipe}. Build it "
                "from functions importable by name (optax's own, or a factory defined at "
                "module level)."
            )
        return _unpickle, (self._recipe, self.name)

    takes_stored_mask = True  # its gradients come from the loss, at the stored entries

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
        V, mask, loss, active = problem.V, problem.mask, problem.loss, problem.active
        grads = (loss.grad(V, W, H, mask, "W"), loss.grad(V, W, H, mask, "H"))
        with jax.numpy_dtype_promotion("standard"):
            updates, extra = self.optimizer.update(grads, extra, (W, H))
            W, H = optax.apply_updates((W, H), updates)
            W, H = optax.projections.projection_non_negative((W, H))
        W, H = keep_active(W, H, active)
        return W, H, extra, None

    def block(self, factor: str) -> OptaxBlock:
        """The optimizer on one factor alone (for one-side runs such as ``transform``): the
        same steps as this solver's for that factor when the optimizer treats its leaves
        independently (adam, sgd, rmsprop, ...; not global-norm clipping)."""
        return OptaxBlock(self)


@dataclasses.dataclass(frozen=True)
class OptaxBlock:
    """One optax step on one factor (rows ``X``), then projection onto ``X ≥ 0``.
    ``solver`` is the :class:`Projected` that holds the optimizer (compared by its recipe)."""

    solver: Projected

    stateless = False
    takes_stored_mask = True

    def init(self, side, g0):
        with jax.numpy_dtype_promotion("standard"):
            return self.solver.optimizer.init(side.X)

    def update(self, side, X, state):
        G = side.grad(X)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = self.solver.optimizer.update(G, state, X)
            X = optax.projections.projection_non_negative(optax.apply_updates(X, updates))
        return side.keep_active(X), state
