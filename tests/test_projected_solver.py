"""``jn.solvers.projected(opt)``: value-equal optimizers share one compiled program, and a
Projected solver pickles (by reference to the optimizer's code, with its hyperparameters).

optax builds an optimizer as a NamedTuple of closures, so two ``optax.adam(1e-2)`` are
different objects; these tests count compilations of :func:`jaxnmf.fit`'s jitted body and
compare results bit for bit.
"""

import pickle
import sys

import jax
import numpy as np
import optax
import pytest

import jaxnmf as jn
from jaxnmf import _run
from jaxnmf._testing import positive_data

M_, N_, K_ = 12, 9, 3


@pytest.fixture(scope="module")
def data():
    return positive_data(M_, N_, seed=11)


def _fit(data, opt, **kw):
    return jn.fit(data, K_, solver=jn.solvers.projected(opt), max_iter=20, tol=0.0, **kw)


def test_a_fresh_equal_optimizer_does_not_recompile(data):
    first = _fit(data, optax.adam(1e-2))
    size = _run.run_compiled._cache_size()
    for _ in range(3):  # a new optax.adam(1e-2) per call, as in a loop over data sets
        again = _fit(data, optax.adam(1e-2))
        np.testing.assert_array_equal(again.W, first.W)
        np.testing.assert_array_equal(again.H, first.H)
    assert _run.run_compiled._cache_size() == size
    # other hyperparameters are another program (they are static): one compilation each
    other = _fit(data, optax.adam(2e-2))
    assert _run.run_compiled._cache_size() == size + 1
    assert not np.array_equal(other.W, first.W)
    _fit(data, optax.adam(2e-2))
    assert _run.run_compiled._cache_size() == size + 1


def test_equality_follows_the_optimizer_and_its_hyperparameters():
    p = jn.solvers.projected
    assert p(optax.adam(1e-2)) == p(optax.adam(1e-2))
    assert hash(p(optax.adam(1e-2))) == hash(p(optax.adam(1e-2)))
    assert p(optax.adam(1e-2)) != p(optax.adam(1e-3))
    assert p(optax.adam(1e-2)) != p(optax.adam(1e-2, b1=0.8))
    assert p(optax.adam(1e-2)) != p(optax.sgd(1e-2))
    assert p(optax.sgd(1e-2)) != p(optax.sgd(1e-2, momentum=0.9))
    # nested closures: schedules and chains compare by value too
    sched = lambda: optax.exponential_decay(1e-2, transition_steps=10, decay_rate=0.5)
    chained = lambda lr: optax.chain(optax.clip(1.0), optax.adam(lr))
    assert p(optax.adam(sched())) == p(optax.adam(sched()))
    assert p(chained(1e-2)) == p(chained(1e-2)) != p(chained(1e-3))
    same = optax.adam(1e-2)
    assert p(same) == p(same)


def _identity_optimizer(scale=1.0):
    """A user's own optimizer factory at module level: closures over ``scale``."""

    def init(params):
        return ()

    def update(updates, state, params=None):
        return jax.tree.map(lambda u: -scale * u, updates), state

    return optax.GradientTransformation(init, update)


def test_a_users_module_level_factory_compares_by_value_and_pickles():
    p = jn.solvers.projected
    assert p(_identity_optimizer(0.1)) == p(_identity_optimizer(0.1)) != p(_identity_optimizer())
    loaded = pickle.loads(pickle.dumps(p(_identity_optimizer(0.1))))
    assert loaded == p(_identity_optimizer(0.1))


def test_code_that_cannot_be_found_again_compares_by_identity(monkeypatch):
    """A factory redefined after building an optimizer (a notebook cell run again): the old
    closures' code is no longer under their name, so they are not confused with the new
    ones, and they cannot be pickled."""
    a, b = _identity_optimizer(), _identity_optimizer()
    redefined = lambda scale=1.0: _identity_optimizer(scale)
    monkeypatch.setattr(sys.modules[__name__], "_identity_optimizer", redefined)
    pa, pb = jn.solvers.projected(a), jn.solvers.projected(b)
    assert pa == jn.solvers.projected(a) and pa != pb
    with pytest.raises(pickle.PicklingError, match="cannot be pickled"):
        pickle.dumps(pa)
    # built by exec: no module to find the code in
    namespace = {"__name__": "not_a_module", "optax": optax}
    exec(
        "def make():\n"
        "    def init(p):\n        return ()\n"
        "    def update(u, s, p=None):\n        return u, s\n"
        "    return optax.GradientTransformation(init, update)\n",
        namespace,
    )
    opt = namespace["make"]()
    assert jn.solvers.projected(opt) != jn.solvers.projected(namespace["make"]())
    with pytest.raises(pickle.PicklingError, match="cannot be pickled"):
        pickle.dumps(jn.solvers.projected(opt))


def test_pickled_solver_fits_bit_for_bit(data):
    for opt in (optax.adam(1e-2), optax.chain(optax.clip(1.0), optax.sgd(1e-2, momentum=0.9))):
        solver = jn.solvers.projected(opt)
        loaded = pickle.loads(pickle.dumps(solver))
        assert loaded == solver and hash(loaded) == hash(solver)
        assert isinstance(loaded.optimizer, optax.GradientTransformation)
        a = jn.fit(data, K_, solver=solver, max_iter=15, tol=0.0)
        b = jn.fit(data, K_, solver=loaded, max_iter=15, tol=0.0)
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.losses, b.losses)


def test_loading_where_the_code_is_laid_out_otherwise_says_so(monkeypatch):
    """A pickle names each closure's code by module and qualified name: loading it where that
    code is missing (another optax version) is a clear UnpicklingError."""
    data = pickle.dumps(jn.solvers.projected(_identity_optimizer(0.1)))
    monkeypatch.setattr(sys.modules[__name__], "_identity_optimizer", lambda: None)
    with pytest.raises(pickle.UnpicklingError, match="not found in the code installed here"):
        pickle.loads(data)
