"""No silent wrong result: any data scale fits like scale 1, "converged" is checked, weights and
other arguments are validated before anything compiles, and the memory guard.

Problems are small and share shapes, so that each (loss, solver) compiles once for the suite.
"""

import warnings

import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxnmf as jn
from jaxnmf import _memory, _run, compare
from jaxnmf._testing import positive_data

M_, N_, K_ = 14, 11, 3


def _rel_error(V, res) -> float:
    """‖V - WH‖ / ‖V‖ in float64, computed on V / max V (so that ‖V‖² cannot overflow)."""
    V = np.asarray(V, np.float64)
    c = V.max()
    R = V / c - (res.W.astype(np.float64) / np.sqrt(c)) @ (res.H.astype(np.float64) / np.sqrt(c))
    return float(np.linalg.norm(R) / np.linalg.norm(V / c))


# --- any representable scale fits like scale 1 ---------------------------------------------

# (loss, solver) pairs: every solver with each loss it takes.
SCALE_CASES = [
    ("frobenius", "mu"),
    ("frobenius", "hals"),
    ("frobenius", "pg"),
    ("kl", "mu"),
    ("kl", "pg"),
    ("is", "mu"),
    (1.5, "mu"),
]


@pytest.mark.parametrize(("loss", "solver"), SCALE_CASES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exponent=st.floats(-300, 300))
def test_scale_property_float64(loss, solver, exponent):
    """V·c for c in 1e-300..1e300 (float64): the same iterations, relative error and factors
    (up to √c each) as V."""
    V = positive_data(M_, N_, seed=3)
    c = 10.0**exponent
    kw = dict(loss=loss, solver=solver, max_iter=40, tol=1e-6, seed=1)
    base = _fit_cached(V, **kw)
    res = jn.fit(V * c, K_, **kw)
    assert res.status == base.status != "diverged"
    assert res.n_iter == base.n_iter
    np.testing.assert_allclose(_rel_error(V * c, res), _rel_error(V, base), rtol=1e-8)
    np.testing.assert_allclose(res.W / np.sqrt(c), base.W, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(res.H / np.sqrt(c), base.H, rtol=1e-7, atol=1e-12)


_BASE = {}


def _fit_cached(V, **kw):
    key = (V.dtype.str, tuple(sorted((k, str(v)) for k, v in kw.items())))
    if key not in _BASE:
        _BASE[key] = jn.fit(V, K_, **kw)
    return _BASE[key]


@pytest.mark.parametrize(
    ("loss", "solver"), [("frobenius", "mu"), ("frobenius", "hals"), ("kl", "mu"), ("is", "mu")]
)
@pytest.mark.parametrize("c", [1e-30, 1e-19, 1e-10, 1e20, 1e30])
def test_float32_extreme_scales_fit_like_scale_one(loss, solver, c):
    """The issue's reproducers: float32 KL at 1e-10 "converged" unfitted after one iteration,
    Frobenius at 1e-19 read an objective of 0, and at 1e20 was nonfinite at iteration 1."""
    V = positive_data(M_, N_, seed=4).astype(np.float32)
    kw = dict(loss=loss, solver=solver, max_iter=60, tol=1e-5, seed=2)
    base = _fit_cached(V, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        res = jn.fit(V * np.float32(c), K_, **kw)
    assert res.W.dtype == np.float32
    assert res.status == base.status and abs(res.n_iter - base.n_iter) <= 1
    assert res.n_iter > 1
    np.testing.assert_allclose(_rel_error(V * np.float32(c), res), _rel_error(V, base), rtol=1e-3)
    assert np.isfinite(res.loss) and res.loss > 0


def test_sweep_and_compare_at_extreme_scale_equal_fit():
    V = positive_data(M_, N_, seed=5) * 1e200
    sw = jn.sweep(V, [2, 3], [0, 1], loss="kl", max_iter=30, heldout=0.1)
    one = jn.fit(V, 3, loss="kl", max_iter=30, seed=1, mask=sw.fit_mask(1))
    res = sw.result(rank=3, seed=1)
    np.testing.assert_allclose(res.W, one.W, rtol=1e-10)
    np.testing.assert_allclose(res.losses, one.losses, rtol=1e-10)
    assert res.loss == pytest.approx(one.loss, rel=1e-12) and res.loss > 1e190
    # held-out RMSE in V's units: of the order of V's entries, not of V / max V
    assert 1e198 < np.nanmean(sw.heldout_rmse) < 1e201
    cmp = compare(V, 3, ["mu"], loss="kl", seeds=[1], max_iter=30, tol=1e-4)
    np.testing.assert_allclose(
        cmp["mu"].W[0], jn.fit(V, 3, loss="kl", max_iter=30, seed=1).W, rtol=1e-10
    )
    assert cmp["mu"].final_loss[0] > 1e190


def test_penalty_weights_keep_their_meaning_at_any_scale():
    """With penalties the internal problem is the user's problem: the objective reported equals
    the objective of the returned factors evaluated directly in V's units."""
    V = positive_data(M_, N_, seed=6) * 1e6
    loss = jn.losses.frobenius() + 1e3 * jn.losses.l1("H") + 10.0 * jn.losses.l2("W")
    res = jn.fit(V, K_, loss=loss, solver="mu", max_iter=50, tol=0.0)
    W, H = res.W, res.H
    direct = np.sum((V - W @ H) ** 2) + 1e3 * H.sum() + 10.0 * 0.5 * np.sum(W**2)
    assert res.loss == pytest.approx(direct, rel=1e-10)
    f = np.concatenate([[res.initial_loss], res.losses])
    assert np.all(np.diff(f) <= 1e-12 * f[0])  # MU still never increases it


# --- "converged" is a claim that is checked ------------------------------------------------


def test_a_blown_up_run_is_diverged_not_converged():
    V = positive_data(M_, N_, seed=7).astype(np.float32)
    solver = jn.solvers.projected(optax.adam(1e8))
    with pytest.warns(RuntimeWarning, match="diverged"):
        res = jn.fit(V, K_, solver=solver, max_iter=50)
    assert res.status == "diverged" and res.loss > res.initial_loss
    assert res.status.failed
    with pytest.raises(FloatingPointError, match="diverged"):
        jn.fit(V, K_, solver=solver, max_iter=50, on_failure="raise")
    sw = jn.sweep(V, [2, 3], [0], solver=solver, max_iter=50)
    assert list(sw.status().ravel()) == ["diverged", "diverged"]
    cmp = compare(V, K_, {"adam": solver}, seeds=[0], max_iter=50)
    assert cmp["adam"].status == ["diverged"]


def test_verdict_rules():
    """The three reasons for "diverged", and the rounding slack of an exact start."""
    from jaxnmf._driver import Code, verdict

    W, H = np.ones((3, 2)), np.ones((2, 4))
    conv = np.int32(Code.CONVERGED)
    assert verdict(conv, 2.0, 1.0, 0.1, W, H, 0.0) == Code.DIVERGED  # above its start
    assert verdict(conv, 1.0, 2.0, np.nan, W, H, 0.0) == Code.DIVERGED  # KKT not finite
    assert verdict(conv, 1.0, 2.0, 0.1, W * np.inf, H, 0.0) == Code.DIVERGED
    assert verdict(conv, 1.0, 2.0, 0.1, W, H, 0.0) == Code.CONVERGED
    # an exact start (f0 = 0) whose Gram-form objective rounds to 1e-9 of Σ V² stays converged
    assert verdict(conv, 1e-9, 0.0, 0.1, W, H, 1.0) == Code.CONVERGED
    assert verdict(np.int32(Code.NONFINITE), 2.0, 1.0, 0.1, W, H, 0.0) == Code.NONFINITE


def test_compare_reports_the_last_finite_loss_of_a_nonfinite_run():
    V = positive_data(M_, N_, seed=8).astype(np.float32)
    solver = jn.solvers.projected(optax.sgd(1e30))
    fitted = jn.fit(V, K_, solver=solver, max_iter=20, on_failure="ignore")
    cmp = compare(V, K_, {"sgd": solver}, seeds=[0], max_iter=20)
    assert fitted.status == cmp["sgd"].status[0] == "nonfinite"
    assert np.isfinite(cmp["sgd"].final_loss[0])
    assert cmp["sgd"].final_loss[0] == pytest.approx(fitted.loss, rel=1e-6)


# --- arguments checked on the host, before anything compiles -------------------------------


@pytest.fixture
def no_compile(monkeypatch):
    """Fails the test if fit reaches its compiled program."""

    def boom(*args, **kwargs):
        raise AssertionError("reached compilation")

    monkeypatch.setattr(_run, "run_compiled", boom)


@pytest.mark.parametrize(
    ("loss", "match"),
    [
        (jn.losses.frobenius() + (-1.0) * jn.losses.l1("H"), r"l1\(H\) must be finite and >= 0"),
        (jn.losses.frobenius() + float("nan") * jn.losses.l2("W"), r"l2\(W\) must be finite"),
        (jn.losses.kl() + float("inf") * jn.losses.l1("W"), r"l1\(W\) must be finite"),
        (-1.0 * jn.losses.kl(), r"kl must be finite and >= 0"),
    ],
)
def test_bad_penalty_weights_raise_before_compiling(no_compile, loss, match):
    with pytest.raises(ValueError, match=match):
        jn.fit(positive_data(M_, N_, seed=9), K_, loss=loss)


def test_bad_weights_in_a_sweep_grid_raise():
    grid = [jn.losses.frobenius() + a * jn.losses.l1("H") for a in (0.0, 0.1, -0.5)]
    with pytest.raises(ValueError, match=r"l1\(H\) must be finite and >= 0, got -0.5"):
        jn.sweep(positive_data(M_, N_, seed=9), [2], loss=grid)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"seed": 2**64}, ValueError, r"seed must be an integer in \[0, 2\*\*64\)"),
        ({"seed": -3}, ValueError, r"seed must be an integer in \[0, 2\*\*64\)"),
        ({"max_iter": 2.0}, TypeError, r"max_iter must be an integer"),
        ({"init": (np.zeros((M_, K_)), np.ones((K_, N_)))}, ValueError, r"W0 is all zeros"),
        ({"init": (np.ones((M_, K_)), np.zeros((K_, N_)))}, ValueError, r"H0 is all zeros"),
    ],
)
def test_bad_arguments_raise_before_compiling(no_compile, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        jn.fit(positive_data(M_, N_, seed=10), K_, **kwargs)


def test_large_seeds_are_distinct_keys():
    """Seeds ≥ 2**32 are accepted up to 2**64 - 1 and do not repeat smaller seeds (jax.random.key
    keeps only the low 32 bits without x64 and overflows at 2**63)."""
    V = positive_data(M_, N_, seed=11)
    w = {s: jn.fit(V, K_, seed=s, max_iter=1).W for s in (0, 2**32, 2**63, 2**64 - 1)}
    firsts = [tuple(np.round(x[0], 12)) for x in w.values()]
    assert len(set(firsts)) == 4


def test_bfloat16_is_computed_in_float32():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    V = positive_data(M_, N_, seed=12).astype(ml_dtypes.bfloat16)
    res = jn.fit(V, K_, max_iter=20)
    ref = jn.fit(np.asarray(V, np.float32), K_, max_iter=20)
    assert res.W.dtype == np.float32
    np.testing.assert_array_equal(res.W, ref.W)


def test_compare_refuses_repeated_seeds_and_solvers():
    V = positive_data(M_, N_, seed=13)
    with pytest.raises(ValueError, match=r"seeds must be distinct; repeated: \[1\]"):
        compare(V, K_, ["mu"], seeds=[0, 1, 1])
    with pytest.raises(ValueError, match="'mu' is given twice"):
        compare(V, K_, ["mu", "hals", "mu"], seeds=[0])


# --- sweep(...).result equals fit in every field -------------------------------------------


def test_sweep_result_reports_the_kkt_fields_fit_reports():
    V = positive_data(M_, N_, seed=14)
    kw = dict(solver="pg", max_iter=15, pg_tol=1e-3)
    one = jn.fit(V, 2, seed=1, **kw)
    res = jn.sweep(V, [2, 3], [0, 1], **kw).result(rank=2, seed=1)
    assert np.isfinite(one.initial_kkt_residual)
    assert res.initial_kkt_residual == pytest.approx(one.initial_kkt_residual, rel=1e-10)
    np.testing.assert_allclose(res.kkt_history, one.kkt_history, rtol=1e-10)


# --- RankTable is a read-only Mapping -------------------------------------------------------


def test_rank_table_is_a_read_only_mapping():
    table = jn.RankTable({"rank": [2, 3, 4], "cophenetic": [0.9, 1.0, 0.8]})
    assert dict(table).keys() == {"rank", "cophenetic"} and len(table) == 2
    assert "rank" in table and "x" not in table and table.n_rows == 3
    assert [k for k, _ in table.items()] == list(table.keys()) == ["rank", "cophenetic"]
    with pytest.raises(TypeError):
        table["rank"] = [1, 2, 3]
    with pytest.raises(ValueError, match="read-only"):
        table["rank"][0] = 7
    with pytest.raises(TypeError):
        table.columns["new"] = [1, 2, 3]
    pd = pytest.importorskip("pandas")
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame["cophenetic"]) == [0.9, 1.0, 0.8]
    assert table.suggest("cophenetic") == 3


# --- memory guard ----------------------------------------------------------------------------


def test_memory_guard_raises_before_compiling(no_compile, monkeypatch):
    monkeypatch.setattr(_memory, "available_bytes", lambda device=None: 1_000)
    V = positive_data(M_, N_, seed=15)
    with pytest.raises(MemoryError, match=r"estimated .* GiB.*sparse.*devices="):
        jn.fit(V, K_)
    with pytest.raises(ValueError, match="batch_size"):  # also a ValueError
        jn.sweep(V, [2, 3], [0], loss="kl")


def test_memory_estimate_of_a_large_dense_fit():
    # 100000 × 20000 float32 KL: V on host and device plus four m × n temporaries
    est = _memory.dense_fit_bytes(100_000, 20_000, 10, np.float32, masked=False, beta_two=False)
    assert est == 4 * (6 * 100_000 * 20_000 + 8 * 120_000 * 10)
    with pytest.raises(_memory.MemoryEstimateError, match=r"needs an estimated 44\.7 GiB"):
        _memory.check(est, "this fit", available=24 * 2**30)


def test_estimator_transform_fits_any_scale_like_scale_one():
    """jn.NMF's transform (H fixed) and its fits with more components than min(m, n) solve on
    X / max X too: at 1e-200 they give the W of scale 1, times √c."""
    X = positive_data(M_, N_, seed=16)
    c = 1e-200
    kw = dict(solver="mu", beta_loss="kullback-leibler", init="random", random_state=0)
    base = jn.NMF(K_, max_iter=50, **kw).fit(X)
    tiny = jn.NMF(K_, max_iter=50, **kw).fit(X * c)
    np.testing.assert_allclose(tiny.components_ / np.sqrt(c), base.components_, rtol=1e-8)
    np.testing.assert_allclose(tiny.transform(X * c) / np.sqrt(c), base.transform(X), rtol=1e-8)
    wide = dict(kw, max_iter=20)
    big_k = jn.NMF(N_ + 2, **wide).fit(X * c)
    np.testing.assert_allclose(
        big_k.components_ / np.sqrt(c), jn.NMF(N_ + 2, **wide).fit(X).components_, rtol=1e-8
    )
