"""Held-out members on the list of their hidden entries (jaxnmf._holes): the same iterates as
the dense 0/1 mask, the same split, and a detectable overflow."""

import sys

import jax
import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf import _compile, _holes, _run
from jaxnmf._testing import positive_data

V_ = positive_data(40, 30, seed=3)


def _sweep(monkeypatch, holes: bool, **kw):
    monkeypatch.setattr(_run, "HOLES", holes)
    jax.clear_caches()  # the switch is read at trace time
    _compile.clear()
    return jn.sweep(V_, **kw)


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_hidden_list_gives_the_dense_masks_iterates(monkeypatch, solver):
    kw = dict(ranks=[2, 4, 6], seeds=[0, 3], solver=solver, heldout=0.15, max_iter=300, tol=1e-4)
    fast = _sweep(monkeypatch, True, **kw)
    dense = _sweep(monkeypatch, False, **kw)
    assert V_.dtype == np.float64 and fast.W.dtype == np.float64
    np.testing.assert_array_equal(fast.n_iter, dense.n_iter)  # the same stopping decisions
    np.testing.assert_array_equal(fast.status_code, dense.status_code)
    assert np.any(fast.n_iter < 300)  # tol > 0 took part
    np.testing.assert_allclose(fast.W, dense.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.H, dense.H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.final_loss, dense.final_loss, rtol=1e-9)
    np.testing.assert_allclose(fast.heldout_rmse, dense.heldout_rmse, rtol=1e-9)


def test_hidden_list_member_equals_a_masked_fit(monkeypatch):
    sw = _sweep(monkeypatch, True, ranks=[3], seeds=[2], solver="hals", heldout=0.2, max_iter=40)
    mask = sys.modules["jaxnmf.sweep"].heldout_mask(2, V_.shape, 0.2)
    np.testing.assert_array_equal(sw.fit_mask(2), mask)
    want = jn.fit(V_, 3, seed=2, solver="hals", max_iter=40, mask=mask)
    got = sw.result(rank=3, seed=2)
    np.testing.assert_allclose(got.W, want.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.H, want.H, rtol=1e-9, atol=1e-12)
    hidden = mask == 0
    rmse = np.sqrt(np.mean((V_ - got.W @ got.H)[hidden] ** 2))
    np.testing.assert_allclose(sw.heldout_rmse[0, 0], rmse, rtol=1e-10)


def test_the_list_is_the_same_split():
    key = jax.random.key(7)
    keep = _run.heldout_keep(key, V_.shape, 0.1)
    cap = _holes.capacity(V_.shape, 0.1)
    holes = _holes.from_keep(keep, jax.numpy.asarray(V_), cap)
    np.testing.assert_array_equal(np.asarray(holes.dense()), np.asarray(keep, np.float64))
    assert int(holes.count) == int((~keep).sum()) and not bool(holes.overflow)


def test_overflow_is_reported_not_silent(monkeypatch):
    monkeypatch.setattr(_holes, "capacity", lambda shape, fraction: 5)
    sw = _sweep(monkeypatch, True, ranks=[2], seeds=[0], solver="hals", heldout=0.2, max_iter=5)
    assert sw.result(rank=2, seed=0).status.name.lower() == "nonfinite"
    assert np.isnan(sw.heldout_rmse[0, 0])
