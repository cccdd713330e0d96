"""``eval_every``: the objective on a cadence, the same stopping rule at those iterations.

The iterates must not depend on the cadence (the steps between evaluations are the solver's
own), and the rule is the relative change between consecutive evaluations.
"""

import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf._testing import positive_data

V = positive_data(20, 15, seed=31)
K = 3
# One iteration cap (static) for the KL fits of the first two tests, so that they share two
# compiled programs (eval_every 5 and 1; the tolerance is traced); not a multiple of 5.
MAX_ITER = 502


def test_iterates_do_not_depend_on_the_cadence_and_history_is_nan_between():
    every = jn.fit(V, K, loss="kl", max_iter=MAX_ITER, tol=0.0, eval_every=5)
    each = jn.fit(V, K, loss="kl", max_iter=MAX_ITER, tol=0.0)
    np.testing.assert_array_equal(every.W, each.W)
    np.testing.assert_array_equal(every.H, each.H)
    evaluated = [*range(4, MAX_ITER, 5), MAX_ITER - 1]  # after 5, 10, ..., 500 and 502
    np.testing.assert_array_equal(every.losses[evaluated], each.losses[evaluated])
    assert np.all(np.isnan(np.delete(every.losses, evaluated)))
    assert every.n_iter == MAX_ITER and every.loss == each.loss


@pytest.mark.parametrize(("loss", "solver"), [("kl", "mu"), ("frobenius", "hals")])
def test_stopping_rule_compares_evaluations_eval_every_apart(loss, solver):
    tol, every = 1e-4, 5
    res = jn.fit(V, K, loss=loss, solver=solver, max_iter=MAX_ITER, tol=tol, eval_every=every)
    f = jn.fit(V, K, loss=loss, solver=solver, max_iter=MAX_ITER, tol=0.0).losses
    f = np.concatenate([[res.initial_loss], f])  # f[t]: objective after t iterations
    oracle = next(
        t
        for t in range(every, MAX_ITER + 1, every)
        if abs(f[t - every] - f[t]) <= tol * f[t - every]
    )
    assert res.status == "converged" and res.n_iter == oracle


def test_sweep_and_compare_with_a_cadence_equal_fit():
    kw = dict(loss="frobenius", solver="mu", max_iter=60, tol=1e-5, eval_every=4)
    sw = jn.sweep(V, [2, 3], [0, 1], **kw)
    one = jn.fit(V, 3, seed=1, **kw)
    res = sw.result(rank=3, seed=1)
    assert res.n_iter == one.n_iter
    np.testing.assert_allclose(res.W, one.W, rtol=1e-10)
    np.testing.assert_allclose(res.losses, one.losses, rtol=1e-10)  # NaN where one has NaN
    cmp = jn.compare(V, 3, ["mu"], seeds=[1], chunk=3, **{k: kw[k] for k in kw if k != "solver"})
    assert cmp["mu"].n_iter[0] == one.n_iter
    np.testing.assert_allclose(cmp["mu"].W[0], one.W, rtol=1e-10)


@pytest.mark.parametrize(("value", "exc"), [(0, ValueError), (2.0, TypeError)])
def test_bad_eval_every(value, exc):
    with pytest.raises(exc, match="eval_every must be an integer"):
        jn.fit(V, K, eval_every=value)
