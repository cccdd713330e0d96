"""Sparse input (scipy.sparse, BCOO/BCSR), never densified.

* Dense and sparse V give the same factors, for every (solver, loss) pair that sparse input
  takes and every input format (same init, fixed iteration count, tol = 0, float64).
* ``mask="stored"``: sparse V with its stored entries observed equals dense V with the 0/1
  mask of the stored pattern, whatever the dense V holds elsewhere (NaN included).
* A 2,000,000 × 50,000 matrix (400 GB dense in float32) with a few thousand stored entries
  fits in seconds: nothing of size m × n is ever formed.
* Bad sparse input raises before anything is compiled.

One data shape (12 × 9, one sparsity pattern) and one ``max_iter`` are shared by the tests,
so each (solver, loss, dense/sparse) pair compiles once for the whole file.
"""

import importlib
import sys

import numpy as np
import optax
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

import jaxnmf as jn
import jaxnmf.api
from jaxnmf import _run, _validate, api
from jaxnmf._sparse import SparseMatrix

M, N, K, ITERS = 12, 9, 3, 4
SWEEP_MODULE = importlib.import_module("jaxnmf.sweep")  # jaxnmf.sweep is the function
ADAM = jn.solvers.projected(optax.adam(1e-2))  # created once: optimizers compare by identity


def _dense(seed=0):
    """Non-negative 12 × 9 data, about half of it exact zeros, every row and column used."""
    rng = np.random.default_rng(seed)
    V = rng.random((M, N)) + 0.1
    zero = rng.random((M, N)) < 0.5
    zero[np.arange(M), np.arange(M) % N] = False  # at least one entry per row and column
    return np.where(zero, 0.0, V)


D = _dense()
PATTERN = (D > 0).astype(float)
FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "coo_matrix": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
    "coo_array": sp.coo_array,
    "lil_matrix": sp.lil_matrix,
    "bcoo": jsparse.BCOO.fromdense,
    "bcsr": jsparse.BCSR.fromdense,
}


def _same(a, b, rtol=1e-8):
    np.testing.assert_allclose(b.W, a.W, rtol=rtol, atol=rtol * np.abs(a.W).max())
    np.testing.assert_allclose(b.H, a.H, rtol=rtol, atol=rtol * np.abs(a.H).max())
    np.testing.assert_allclose(b.losses, a.losses, rtol=rtol)
    np.testing.assert_allclose(b.kkt_residual, a.kkt_residual, rtol=1e-6)


# --- dense == sparse ------------------------------------------------------------------------

FROBENIUS_SOLVERS = {
    "mu": "mu",
    "hals": "hals",
    "pg": "pg",
    "adam": ADAM,
    "accelerated_mu": "accelerated_mu",
    "accelerated_hals": "accelerated_hals",
    "nesterov": "nesterov",
    "anls": "anls",
    "greedy_cd": "greedy_cd",
}
UNMASKED_CASES = [("frobenius", s) for s in FROBENIUS_SOLVERS] + [
    ("kl", s) for s in ("mu", "pg", "adam")
]


@pytest.mark.parametrize(("loss", "solver"), UNMASKED_CASES)
def test_dense_and_sparse_give_the_same_factors(loss, solver):
    """Unstored entries are zeros: the sparse fit is the dense fit of the same matrix."""
    kw = dict(loss=loss, solver=FROBENIUS_SOLVERS[solver], max_iter=ITERS, tol=0.0, seed=3)
    _same(jn.fit(D, K, **kw), jn.fit(sp.csr_matrix(D), K, **kw))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_sparse_format_gives_the_dense_factors(fmt):
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0, seed=3)
    _same(jn.fit(D, K, **kw), jn.fit(FORMATS[fmt](D), K, **kw))


def test_duplicates_are_summed_and_bcoo_padding_is_ignored():
    rows, cols = np.nonzero(D)
    vals = D[rows, cols]
    # every entry stored as two halves, in shuffled order
    order = np.random.default_rng(1).permutation(2 * len(vals))
    r2, c2 = np.concatenate([rows, rows])[order], np.concatenate([cols, cols])[order]
    v2 = np.concatenate([vals / 2, vals / 2])[order]
    dup = sp.coo_matrix((v2, (r2, c2)), shape=(M, N))
    padded = jsparse.BCOO.fromdense(D, nse=len(vals) + 5)  # 5 padding entries
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0, seed=3)
    want = jn.fit(D, K, **kw)
    _same(want, jn.fit(dup, K, **kw))
    _same(want, jn.fit(padded, K, **kw))


def test_canonical_csr_is_taken_as_it_is_and_any_other_csr_canonicalized():
    """A CSR matrix in canonical format skips the int64 round trip (_sparse.canonical_csr):
    the same arrays as the general path; unsorted or duplicated CSR, and boolean values
    (summed as counts), take the general path."""
    from jaxnmf import _sparse

    def general(V):
        return _sparse.canonical(*_sparse.coo_arrays(V))

    V = sp.csr_matrix(D)
    assert V.has_canonical_format
    fast = _sparse.canonical_csr(V)
    for got, want in zip(fast[:3], general(V)[:3], strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert fast[3] == (M, N) and _validate.sparse_data(V)[3] == (M, N)
    # the same row stored twice, its indices reversed: not canonical
    indptr = np.array([0, 2] + [2] * (M - 1))
    odd = sp.csr_matrix((np.array([1.0, 2.0]), np.array([3, 3]), indptr), shape=(M, N))
    rev = sp.csr_matrix((np.array([1.0, 2.0]), np.array([4, 1]), indptr), shape=(M, N))
    flags = sp.csr_matrix(np.greater(D, np.median(D)))
    for W in (odd, rev, flags):
        assert _sparse.canonical_csr(W) is None
        for got, want in zip(_validate.sparse_data(W)[:3], general(W)[:3], strict=True):
            np.testing.assert_array_equal(got, want)
    assert _validate.sparse_data(odd)[2].tolist() == [3.0]  # duplicates summed


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("stored", [False, True], ids=["zeros", "stored"])
def test_nndsvd_of_sparse_v_matches_the_dense_svd(init, stored):
    """The randomized SVD of sparse V (with missing entries filled by the observed mean when
    mask="stored") gives the NNDSVD factors of the dense SVD."""
    key = _validate.seed_key(2)
    Vd, md, *_ = api.prepare(D, K, "frobenius", "mu", PATTERN if stored else None)
    Vs, ms, *_ = api.prepare(sp.csr_matrix(D), K, "frobenius", "mu", "stored" if stored else None)
    Wd, Hd = api.initial_factors(Vd, md, key, rank=K, method=init)
    Ws, Hs = api.initial_factors(Vs, ms, key, rank=K, method=init)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(Hs, Hd, rtol=1e-7, atol=1e-9)


def test_random_init_of_sparse_v_is_prefix_stable():
    """Component j of the random init depends on the key and j only, not on k_max."""
    key = _validate.seed_key(5)
    Vs, _, *_ = api.prepare(sp.csr_matrix(D), K, "kl", "mu", None)
    W3, H3 = jn.init.random(Vs, key, 3, 2)
    W5, H5 = jn.init.random(Vs, key, 5, 2)
    np.testing.assert_array_equal(W5[:, :3], W3)
    np.testing.assert_array_equal(H5[:3], H3)
    assert np.all(W5[:, 2:] == 0) and np.all(H5[2:] == 0)
    # the scale is that of the dense V: sqrt(mean(V) / rank)
    Wd, _ = jn.init.random(D, key, 3, 2)
    np.testing.assert_allclose(W3, Wd, rtol=1e-12)


def test_float32_in_float32_out_and_no_recompile_for_new_values():
    S = sp.csr_matrix(D.astype(np.float32))
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0)
    a = jn.fit(S, K, **kw)
    assert a.W.dtype == np.float32 and a.H.dtype == np.float32 and a.losses.dtype == np.float32
    size = _run.run_compiled._cache_size()
    other = S.copy()
    other.data = other.data * 2 + 1  # same shape and pattern, new values
    b = jn.fit(other, K, **kw)
    assert _run.run_compiled._cache_size() == size
    assert not np.array_equal(a.W, b.W)


# --- masks ------------------------------------------------------------------------------------

STORED_CASES = [
    ("frobenius", "mu"),
    ("frobenius", "hals"),
    ("frobenius", "pg"),
    ("frobenius", "adam"),
    ("kl", "mu"),
    ("kl", "pg"),
    ("kl", "adam"),
    (0.5, "mu"),
    ("is", "mu"),
    ("is", "adam"),
]


@pytest.mark.parametrize(("loss", "solver"), STORED_CASES)
def test_stored_mask_equals_the_dense_fit_with_the_pattern_as_mask(loss, solver):
    """mask="stored": the unstored entries are missing. The dense V may hold anything there
    (here NaN); with the 0/1 mask of the stored pattern it gives the same factors.

    Not listed: pg with β ∉ {1, 2}. Its step search compares f(X_new) - f(X) with a sufficient
    decrease; for IS it shrinks the step until that difference is rounding noise, and a sum
    over the 12 × 9 entries and one over the stored ones round differently.
    """
    kw = dict(loss=loss, solver=FROBENIUS_SOLVERS[solver], max_iter=ITERS, tol=0.0, seed=4)
    dense = jn.fit(np.where(PATTERN > 0, D, np.nan), K, mask=PATTERN, **kw)
    _same(dense, jn.fit(sp.csr_matrix(D), K, mask="stored", **kw))


@pytest.mark.parametrize("solver", ["mu", "pg", "adam", "hals"])
@pytest.mark.parametrize("fill", [np.nan, 1e6, 0.0], ids=["nan", "huge", "zero"])
def test_dense_mask_ignores_the_values_it_hides(solver, fill):
    """Masked entries may hold anything: the factors do not change."""
    rng = np.random.default_rng(7)
    V = rng.random((M, N)) + 0.1
    mask = (rng.random((M, N)) > 0.3).astype(float)
    kw = dict(loss="frobenius", solver=FROBENIUS_SOLVERS[solver], max_iter=ITERS, tol=0.0)
    a = jn.fit(V, K, mask=mask, **kw)
    b = jn.fit(np.where(mask > 0, V, fill), K, mask=mask, **kw)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


def test_stored_mask_keeps_explicit_zeros_as_observed():
    """An explicitly stored zero is an observed zero (a rating of 0), not a missing entry."""
    S = _with_explicit_zero()
    i, j = np.argwhere(D == 0)[0]
    mask = PATTERN.copy()
    mask[i, j] = 1.0
    V = np.where(mask > 0, D, np.nan)
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0, seed=4)
    _same(jn.fit(V, K, mask=mask, **kw), jn.fit(S, K, mask="stored", **kw))


# --- sweep, compare, metrics, rank selection ------------------------------------------------


def test_sparse_sweep_members_equal_dense_fits():
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0)
    sw = jn.sweep(sp.csr_matrix(D), ranks=[2, 3], seeds=[0, 1], **kw)
    for r in (2, 3):
        for s in (0, 1):
            _same(jn.fit(D, r, seed=s, **kw), sw.result(rank=r, seed=s))


def test_sparse_sweep_heldout_hides_stored_entries():
    """heldout with mask="stored" hides a fraction of the stored entries; the reported RMSE
    is the one on those entries, recomputed here from the factors."""
    S = sp.csr_matrix(D)
    kw = dict(loss="frobenius", solver="hals", max_iter=ITERS, tol=0.0, mask="stored")
    sw = jn.sweep(S, ranks=[2, 3], seeds=[0, 1], heldout=0.3, **kw)
    assert np.all(np.isfinite(sw.heldout_rmse))
    for i, r in enumerate((2, 3)):
        for j, s in enumerate((0, 1)):
            fm = sw.fit_mask(s)
            assert isinstance(fm, SparseMatrix) and 0 < np.sum(fm.values == 0) < fm.nnz
            res = sw.result(rank=r, seed=s)
            pred = res.predict(fm.rows, fm.cols)
            hidden = fm.values == 0
            rmse = np.sqrt(np.mean((sw.V.values - pred)[hidden] ** 2))
            np.testing.assert_allclose(sw.heldout_rmse[i, j], rmse, rtol=1e-10)
            # the member is the dense fit with the stored-and-kept pattern as its mask
            dense_mask = np.zeros((M, N))
            dense_mask[fm.rows, fm.cols] = fm.values
            dense_kw = {**kw, "mask": dense_mask, "seed": s}
            _same(jn.fit(np.where(dense_mask > 0, D, np.nan), r, **dense_kw), res)
    table = jn.rank_selection(sw)
    assert table["rank"].tolist() == [2, 3]
    assert np.all(np.isfinite(table["rel_error_mean"]))


def test_rank_selection_of_a_sparse_sweep_equals_the_dense_one():
    kw = dict(loss="kl", solver="mu", max_iter=ITERS, tol=0.0)
    dense = jn.rank_selection(jn.sweep(D, [2, 3], [0, 1], **kw))
    sparse = jn.rank_selection(jn.sweep(sp.csr_matrix(D), [2, 3], [0, 1], **kw))
    for name in ("cophenetic", "dispersion", "rel_error_mean", "sparseness_H_mean"):
        np.testing.assert_allclose(sparse[name], dense[name], rtol=1e-8)


def test_sparse_compare_equals_dense_compare():
    kw = dict(loss="frobenius", seeds=[0], max_iter=ITERS, tol=0.0, chunk=2)
    a = jn.compare(D, K, solvers=["mu", "hals"], **kw)
    b = jn.compare(sp.csc_matrix(D), K, solvers=["mu", "hals"], **kw)
    for name in ("mu", "hals"):
        np.testing.assert_allclose(b[name].losses, a[name].losses, rtol=1e-8)
        np.testing.assert_allclose(b[name].rel_error, a[name].rel_error, rtol=1e-8)


def test_metrics_of_sparse_v_equal_the_dense_ones():
    rng = np.random.default_rng(3)
    W, H = rng.random((M, K)), rng.random((K, N))
    S = sp.csr_matrix(D)
    m = jn.metrics
    np.testing.assert_allclose(m.relative_error(S, W, H), m.relative_error(D, W, H), rtol=1e-12)
    np.testing.assert_allclose(
        m.relative_error(S, W, H, "stored"), m.relative_error(D, W, H, PATTERN), rtol=1e-12
    )
    for beta in (2.0, 1.0):
        np.testing.assert_allclose(
            m.beta_divergence(S, W, H, beta), m.beta_divergence(D, W, H, beta), rtol=1e-12
        )
    np.testing.assert_allclose(
        m.beta_divergence(S, W, H, 0.0, mask="stored"),
        m.beta_divergence(D, W, H, 0.0, mask=PATTERN),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        m.kkt_residual(S, W, H, "kl"), m.kkt_residual(D, W, H, "kl"), rtol=1e-10
    )
    rows, cols = np.array([0, 5, 11, 3]), np.array([8, 0, 4, 4])
    np.testing.assert_allclose(m.reconstruct(W, H, rows, cols), (W @ H)[rows, cols], rtol=1e-14)
    # compiled once per shape (eagerly, the sparse scan compiled anew on every call)
    compiled = sys.modules["jaxnmf.metrics"]._beta_value
    size = compiled._cache_size()
    m.beta_divergence(S, 2 * W, H, 1.0)
    assert compiled._cache_size() == size


# --- never densified --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "solver", "mask"),
    [("kl", "mu", None), ("frobenius", "hals", None), ("frobenius", "hals", "stored")],
)
def test_a_matrix_too_large_to_densify_fits_in_seconds(loss, solver, mask):
    """2,000,000 × 50,000 with 4,000 stored entries: dense float32 would need 400 GB (this
    machine has far less), so any m × n array on the way would fail; the fit takes about a
    second (O((m + n) k + nnz k) per iteration)."""
    m, n, nnz = 2_000_000, 50_000, 4_000
    rng = np.random.default_rng(0)
    S = sp.coo_array(
        (
            rng.random(nnz).astype(np.float32) + 0.1,
            (rng.integers(0, m, nnz), rng.integers(0, n, nnz)),
        ),
        shape=(m, n),
    )
    res = jn.fit(S, 2, loss=loss, solver=solver, mask=mask, max_iter=3, tol=0.0)
    assert res.W.shape == (m, 2) and res.H.shape == (2, n) and res.W.dtype == np.float32
    assert np.all(np.isfinite(res.losses)) and res.losses[-1] < res.initial_loss
    rows, cols = S.row[:10], S.col[:10]
    assert np.all(np.isfinite(res.predict(rows, cols)))


# --- bad sparse input -------------------------------------------------------------------------


class _ReachedCompiledError(Exception):
    """Raised by the stand-in for the compiled fit: validation let the input through."""


@pytest.fixture
def compiled_calls(monkeypatch):
    """Replace the compiled bodies of fit and sweep by recorders (see test_validate.py)."""
    calls = []

    def recorder(*args, **kwargs):
        calls.append((args, kwargs))
        raise _ReachedCompiledError

    class Recorder:  # fit calls the entry, sweep lowers it ahead of time
        __call__ = lower = staticmethod(recorder)

    monkeypatch.setattr(_run, "run_compiled", Recorder())
    return calls


def _with(value, i=2, j=3):
    S = sp.lil_matrix(D)
    S[i, j] = value
    return S.tocsr()


def _with_explicit_zero():
    """D with one more stored entry: an explicit zero (an observed zero under "stored")."""
    i, j = np.argwhere(D == 0)[0]
    rows, cols = np.nonzero(D)
    vals, rows, cols = np.append(D[rows, cols], 0.0), np.append(rows, i), np.append(cols, j)
    return sp.coo_matrix((vals, (rows, cols)), shape=(M, N))


def _bcoo_3d():
    return jsparse.BCOO.fromdense(np.ones((2, 3, 4)))


def _bcoo_batched():
    return jsparse.BCOO.fromdense(np.ones((3, 4)), n_batch=1)


@pytest.mark.parametrize(
    ("V", "kwargs", "exc", "match"),
    [
        pytest.param(_with(-0.5), {}, ValueError, r"V \(stored entries\) has negative", id="neg"),
        pytest.param(_with(np.nan), {}, ValueError, r"1 NaN or infinite entries", id="nan"),
        pytest.param(_with(np.inf), {}, ValueError, r"NaN or infinite", id="inf"),
        pytest.param(
            jsparse.BCOO.fromdense(np.where(PATTERN > 0, -D, 0)),
            {},
            ValueError,
            r"negative",
            id="bcoo-neg",
        ),
        pytest.param(sp.coo_array(np.ones(N)), {}, ValueError, r"2-D", id="1d"),
        pytest.param(sp.csr_matrix((0, 5)), {}, ValueError, r"V is empty", id="empty"),
        pytest.param(_bcoo_3d(), {}, ValueError, r"2-D", id="bcoo-3d"),
        pytest.param(_bcoo_batched(), {}, ValueError, r"batch", id="bcoo-batched"),
        pytest.param(
            sp.csr_matrix(D.astype(complex)), {}, TypeError, r"real numbers", id="complex"
        ),
        pytest.param(sp.csr_matrix(D), {"rank": 10}, ValueError, r"min\(m, n\) = 9", id="rank"),
        pytest.param(
            sp.csr_matrix(D), {"mask": PATTERN}, ValueError, r"would densify V", id="dense-mask"
        ),
        pytest.param(
            sp.csr_matrix(D), {"mask": "observed"}, ValueError, r"unknown mask", id="mask-str"
        ),
        pytest.param(D, {"mask": "stored"}, ValueError, r"is for sparse V", id="stored-dense"),
        pytest.param(sp.csr_matrix(D), {"loss": 0.5}, ValueError, r"β = 0.5 needs WH", id="b.5"),
        pytest.param(sp.csr_matrix(D), {"loss": "is"}, ValueError, r"β = 0 needs WH", id="is"),
        pytest.param(
            _with_explicit_zero(),
            {"loss": "is", "mask": "stored"},
            ValueError,
            r"β = 0 is undefined where V = 0",
            id="is-stored-zero",
        ),
        pytest.param(
            sp.csr_matrix(D),
            {"loss": jn.losses.custom(lambda V, W, H, mask: 0.0)},
            ValueError,
            r"custom loss terms",
            id="custom",
        ),
        pytest.param(
            sp.csr_matrix(D),
            {"solver": "anls", "mask": "stored"},
            ValueError,
            r"mask='stored'",
            id="anls-stored",
        ),
        pytest.param(
            sp.csr_matrix(D), {"loss": "kl", "solver": "hals"}, ValueError, r"Frobenius", id="hals"
        ),
        pytest.param(sp.csr_matrix(D), {"devices": 2}, ValueError, r"devices", id="devices"),
        pytest.param(
            sp.csr_matrix((3, 4)), {"mask": "stored"}, ValueError, r"stores no entry", id="nnz0"
        ),
    ],
)
def test_bad_sparse_input_raises_before_compiling(compiled_calls, V, kwargs, exc, match):
    kwargs = dict(kwargs)
    rank = kwargs.pop("rank", 2)
    with pytest.raises(exc, match=match):
        jn.fit(V, rank, **kwargs)
    assert compiled_calls == []


def test_bad_sparse_sweep_raises_before_compiling(compiled_calls):
    with pytest.raises(ValueError, match=r"needs mask='stored'"):
        jn.sweep(sp.csr_matrix(D), [2], [0], heldout=0.2)
    with pytest.raises(ValueError, match=r"negative"):
        jn.sweep(_with(-1.0), [2], [0])
    with pytest.raises(ValueError, match=r"β = 0.5 needs WH"):
        jn.sweep(sp.csr_matrix(D), [2], [0], loss=[jn.losses.beta(0.5)])
    assert compiled_calls == []
    with pytest.raises(_ReachedCompiledError):  # control: valid input reaches the recorder
        jn.sweep(sp.csr_matrix(D), [2], [0], mask="stored", heldout=0.2)
