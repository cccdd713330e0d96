"""The same-harness comparison: same starts, same rule, traces equal to single fits."""

import numpy as np
import optax
import pytest

import jaxnmf as jn
from jaxnmf._testing import positive_data

V_ = positive_data(30, 20, seed=31)
ADAM = jn.solvers.projected(optax.adam(1e-2))


def test_compare_traces_equal_single_fits():
    cmp = jn.compare(
        V_, 4, solvers=["mu", "hals", "pg", ADAM], seeds=[0, 3], max_iter=40, tol=1e-5, chunk=7
    )
    assert cmp.names == ["mu", "hals", "pg", "projected"]
    for name, solver in [("mu", "mu"), ("hals", "hals"), ("pg", "pg"), ("projected", ADAM)]:
        trace = cmp[name]
        for i, seed in enumerate([0, 3]):
            fit = jn.fit(V_, 4, solver=solver, seed=seed, max_iter=40, tol=1e-5)
            n = trace.n_iter[i]
            assert n == fit.n_iter and trace.status[i] == fit.status
            # Bit for bit under XLA:CPU's default emitters; the suite's quick-compile flags
            # (conftest.py) round the chunked programs' fusions apart from fit's one program.
            np.testing.assert_allclose(trace.losses[i, :n], fit.losses, rtol=1e-13, atol=0)
            assert np.all(np.isnan(trace.losses[i, n:]))
            np.testing.assert_allclose(
                trace.rel_error[i],
                np.linalg.norm(V_ - fit.W @ fit.H) / np.linalg.norm(V_),
                rtol=1e-10,
            )
    # every solver started from the same factors: same initial objective
    for i in range(2):
        f0 = np.sum((V_ - cmp.W0[i] @ cmp.H0[i]) ** 2)
        np.testing.assert_allclose(cmp.initial_loss[i], f0, rtol=1e-12)


def test_checkpoints_times_and_kkt():
    cmp = jn.compare(V_, 3, solvers=["hals"], seeds=[1], max_iter=25, tol=0.0, chunk=10)
    t = cmp["hals"]
    assert list(t.checkpoint_iter[0][:4]) == [0, 10, 20, 25]
    secs = t.checkpoint_seconds[0][:4]
    assert secs[0] == 0 and np.all(np.diff(secs) > 0)
    assert t.compile_seconds > 0
    per_it = t.seconds_per_iteration()[0]
    assert per_it.shape == (25,) and np.all(np.diff(per_it) >= 0)
    np.testing.assert_allclose(per_it[[9, 19, 24]], secs[1:4])
    # the KKT residual at the last checkpoint is the one jn.metrics computes
    np.testing.assert_allclose(
        t.checkpoint_kkt[0][3], float(jn.metrics.kkt_residual(V_, t.W[0], t.H[0])), rtol=1e-10
    )
    assert t.checkpoint_kkt[0][3] < t.checkpoint_kkt[0][0]


def test_compare_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    cmp = jn.compare(V_, 3, solvers=["mu", "hals"], seeds=[0, 1], max_iter=15, tol=0.0)
    fig = cmp.plot()
    assert len(fig.axes) == 2
    text = repr(cmp)  # a summary per solver, not the traces
    for name in ("mu", "hals"):
        n_iter = [int(n) for n in cmp[name].n_iter]
        assert f"SolverTrace(name='{name}', seeds=2, n_iter={n_iter}" in text
    assert "array(" not in text and len(text) < 800
    assert fig.axes[1].get_xlabel().startswith("run time")


def test_compare_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one solver"):
        jn.compare(V_, 3, solvers=[])
    with pytest.raises(ValueError, match="hals"):
        jn.compare(V_, 3, solvers=["hals"], loss="kl")
