"""Online / minibatch NMF: ``jn.fit_minibatch`` over streamed sources and ``jn.MiniBatchNMF``.

* equality: one batch equal to the whole data, no forgetting: the first pass is one
  alternating iteration of the same blocks, and of NumPy's formulas (float64, 1e-10);
* two batches with forgetting against a NumPy oracle of the accumulated statistics
  (Mairal et al. 2010 for Frobenius/HALS; Lefèvre et al. 2011 for KL/MU);
* every source kind (memory map, HDF5, Zarr, AnnData backed, iterables of dense and sparse
  blocks, callables) gives the result of the in-memory array; reads stay within a block;
* bad blocks (width, dtype, negative, NaN, a vanished file): a StreamError naming the block,
  the factors so far kept with status "interrupted";
* the estimator: scikit-learn's checks wherever its own MiniBatchNMF passes them, and a lower
  error than scikit-learn's after the same number of passes on digits.

Data are small and shapes shared, so that the tests reuse a few compiled programs.
"""

import os
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf import _online
from jaxnmf._testing import np_mu_step, planted, positive_data

M, N, K, B = 48, 10, 3, 16  # 3 batches of 16 rows


@pytest.fixture(scope="module")
def data():
    X, _, _ = planted(M, N, K, seed=1)
    return X + 0.01 * positive_data(M, N, seed=2)


def _H0(seed=3):
    return np.random.default_rng(seed).random((K, N)) + 0.1


def _fresh_W(X):
    return np.full((X.shape[0], K), np.sqrt(X.mean() / K))


# --- NumPy oracles -------------------------------------------------------------------------


def np_hals_rows(X, cross, gram):
    """One HALS sweep over the rows of X (k, p) for min ½⟨gram X, X⟩ - ⟨cross, X⟩, X ≥ 0."""
    X = X.copy()
    for j in range(X.shape[0]):
        X[j] = np.maximum(X[j] - (gram[j] @ X - cross[j]) / gram[j, j], 0)
    return X


def np_online(batches, H, rho, beta):
    """The online schedule, one W iteration per batch from the fresh start, in NumPy:
    Frobenius (β = 2) with HALS on the accumulated statistics, else MU with accumulated
    numerator and denominator. Returns the final H."""
    A = B_ = 0.0
    for X in batches:
        W = _fresh_W(X)
        if beta == 2:
            W = np_hals_rows(W.T, H @ X.T, H @ H.T).T
            A, B_ = rho * A + W.T @ W, rho * B_ + W.T @ X
            H = np_hals_rows(H, B_, A)
        else:
            WH = W @ H
            W = W * ((X * WH ** (beta - 2)) @ H.T) / (WH ** (beta - 1) @ H.T)
            WH = W @ H
            A = rho * A + H * (W.T @ (X * WH ** (beta - 2)))
            B_ = rho * B_ + W.T @ WH ** (beta - 1)
            H = A / B_
    return H


# --- equality with one alternating iteration ------------------------------------------------


@pytest.mark.parametrize(
    "solver, beta",
    [("hals", 2.0), ("mu", 1.0), ("greedy_cd", 2.0)],
)
def test_one_batch_first_pass_is_one_alternating_iteration(data, solver, beta):
    W0 = np.random.default_rng(4).random((M, K)) + 0.1
    H0 = _H0()
    est = jn.MiniBatchNMF(
        K,
        init="custom",
        batch_size=M,
        max_iter=1,
        tol=0.0,
        forget_factor=1.0,
        solver=solver,
        beta_loss=beta,
        max_no_improvement=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = est.fit_transform(data, W=W0, H=H0)
    # the same blocks, alternating (W then H) from the same factors
    loss = jn.losses.beta(beta).astype(np.float64)
    s = jn.solvers.as_solver(solver)

    @jax.jit
    def alternating(V, W, H):
        problem = jn.solvers.Problem(V, None, loss, jnp.ones(K, bool), jnp.sum(V * V))
        return s.step(problem, W, H, s.init(problem, W, H))[:2]

    Wa, Ha = alternating(data, W0, H0)
    np.testing.assert_allclose(W, Wa, rtol=1e-10)
    np.testing.assert_allclose(est.components_, Ha, rtol=1e-10)
    # and NumPy's formulas
    if solver == "mu":
        Wn, Hn = np_mu_step(data, W0, H0, beta)
    elif solver == "hals":
        Wn = np_hals_rows(W0.T, H0 @ data.T, H0 @ H0.T).T
        Hn = np_hals_rows(H0, Wn.T @ data, Wn.T @ Wn)
    else:
        return
    np.testing.assert_allclose(W, Wn, rtol=1e-10)
    np.testing.assert_allclose(est.components_, Hn, rtol=1e-10)
    assert est.n_steps_ == 1 and est.n_iter_ == 1


@pytest.mark.parametrize("solver, beta", [("hals", 2.0), ("mu", 1.0)])
def test_forgetting_accumulates_the_statistics(data, solver, beta):
    rho = 0.5
    res = jn.fit_minibatch(
        data,
        K,
        loss=beta,
        solver=solver,
        init=_H0(),
        batch_size=B,
        max_iter=1,
        tol=0.0,
        max_no_improvement=None,
        forget_factor=rho,
        inner_max_iter=1,
    )
    batches = [data[a : a + B] for a in range(0, M, B)]
    # scikit-learn's forgetting: ρ^(batch_size / n_samples) per batch
    expected = np_online(batches, _H0(), rho ** (B / M), beta)
    np.testing.assert_allclose(res.H, expected, rtol=1e-10)
    assert res.n_steps == 3 and res.status == "max_iter" and res.rows_seen == M
    assert res.losses.shape == (3,) and np.all(np.isfinite(res.losses))


# --- sources ----------------------------------------------------------------------------------

KW = dict(rank=K, batch_size=B, max_iter=2, tol=0.0, max_no_improvement=None, init=_H0())


@pytest.fixture(scope="module")
def reference(data):
    return jn.fit_minibatch(data, **KW)


def _same(res, reference):
    np.testing.assert_allclose(res.H, reference.H, rtol=1e-12)
    assert res.n_steps == reference.n_steps


class _Recording:
    """An array-like source that records the rows of every read."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.reads = X, X.shape, X.dtype, []

    def __getitem__(self, key):
        self.reads.append(len(range(*key.indices(self.shape[0]))))
        return self.X[key]


def test_array_like_sources_read_block_by_block(data, reference, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, data)
    _same(jn.fit_minibatch(str(path), **KW), reference)  # memory-mapped
    _same(jn.fit_minibatch(np.load(path, mmap_mode="r"), **KW), reference)
    rec = _Recording(data)
    _same(jn.fit_minibatch(rec, block_rows=20, prefetch=False, **KW), reference)
    assert max(rec.reads) <= 20  # memory bounded by the block, not by X
    # blocks (20 rows) are cut and joined into batches of 16: the same iterates
    _same(jn.fit_minibatch(data, block_rows=20, **KW), reference)
    # counts are computed in the float dtype (the same compiled step)
    counts = jn.fit_minibatch(np.rint(10 * data).astype(np.int32), **KW)
    assert counts.H.dtype == np.float64 and np.all(np.isfinite(counts.H))


def test_iterables_of_dense_and_sparse_blocks(data, reference):
    sp = pytest.importorskip("scipy.sparse")
    blocks = [data[:7], data[7:30], data[30:]]  # any row counts
    # n_samples: the forgetting per batch of an array of that length
    _same(jn.fit_minibatch(blocks, n_samples=M, **KW), reference)  # a list: once per pass
    _same(jn.fit_minibatch(lambda: iter(blocks), n_samples=M, **KW), reference)
    sparse = [sp.csr_matrix(b) for b in blocks]
    _same(jn.fit_minibatch(lambda: iter(sparse), n_samples=M, **KW), reference)
    _same(jn.fit_minibatch(sp.csr_matrix(data), **KW), reference)
    one = jn.fit_minibatch(iter(blocks), **KW)  # a plain iterator: one pass only
    assert one.n_epochs == 1 and one.n_steps == 3
    # unknown length: forget_factor per batch, so another H
    assert not np.allclose(one.H, jn.fit_minibatch(data, **{**KW, "max_iter": 1}).H)


def test_hdf5_zarr_and_backed_anndata(data, reference, tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f["X"] = data
    with h5py.File(tmp_path / "X.h5", "r") as f:
        _same(jn.fit_minibatch(f["X"], **KW), reference)
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=data.shape, dtype="f8")
    z[:] = data
    _same(jn.fit_minibatch(z, **KW), reference)
    anndata = pytest.importorskip("anndata")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own deprecation notices
        anndata.AnnData(data).write_h5ad(tmp_path / "X.h5ad")
        _same(jn.fit_minibatch(str(tmp_path / "X.h5ad"), **KW), reference)
        backed = anndata.read_h5ad(tmp_path / "X.h5ad", backed="r")
        _same(jn.fit_minibatch(backed, **KW), reference)
        backed.file.close()


def test_prefetch_changes_nothing_and_its_thread_ends(data, reference):
    _same(jn.fit_minibatch(data, block_rows=B, prefetch=False, **KW), reference)
    _same(jn.fit_minibatch(data, block_rows=B, prefetch=True, **KW), reference)
    alive = [t for t in threading.enumerate() if t.name == "jaxnmf-prefetch"]
    assert not alive


# --- bad input ------------------------------------------------------------------------------


def _blocks_with(data, bad, at=2):
    blocks = [data[a : a + 8] for a in range(0, M, 8)]
    blocks[at] = bad(blocks[at])
    return blocks


@pytest.mark.parametrize(
    "bad, match, kind",
    [
        (lambda b: b[:, :-1], "has 9 columns, the blocks before it 10", ValueError),
        (lambda b: b.astype(np.float32), "dtype float32, the blocks before it float64", TypeError),
        (lambda b: b - 1.0, "negative entries", ValueError),
        (lambda b: np.where(b > b.mean(), np.nan, b), "NaN or infinite", ValueError),
    ],
    ids=["width", "dtype", "negative", "nan"],
)
def test_a_bad_block_is_named_and_the_fit_so_far_kept(data, bad, match, kind):
    blocks = _blocks_with(data, bad)
    with pytest.raises(jn.StreamError, match=f"block 2 \\(rows 16..\\).*{match}") as info:
        jn.fit_minibatch(blocks, **KW)
    assert isinstance(info.value, kind) and info.value.block == 2 and info.value.row == 16
    res = info.value.result
    assert res.status == "interrupted" and res.error_block == 2
    assert res.n_steps == 1 and res.rows_seen == 16  # the batch of blocks 0-1 was fitted
    assert np.all(np.isfinite(res.H)) and res.H.shape == (K, N)
    assert not np.allclose(res.H, KW["init"])
    again = jn.fit_minibatch(blocks, on_error="return", **KW)
    np.testing.assert_array_equal(again.H, res.H)


def test_a_file_that_disappears_mid_stream(data, tmp_path):
    paths = []
    for i, a in enumerate(range(0, M, 8)):
        paths.append(tmp_path / f"part{i}.npy")
        np.save(paths[-1], data[a : a + 8])

    def blocks():
        for i, p in enumerate(paths):
            if i == 3:
                os.remove(paths[4])  # deleted while the stream is read
            yield np.load(p)

    res = jn.fit_minibatch(blocks, on_error="return", **KW)
    assert res.status == "interrupted" and res.error_block == 4
    assert "block 4 (rows 32..)" in res.error and "FileNotFoundError" in res.error
    assert res.n_steps == 2 and np.all(np.isfinite(res.H))


def test_bad_arguments_and_first_blocks_raise_before_compiling(data):
    with pytest.raises(ValueError, match="negative"):
        jn.fit_minibatch(data - 1.0, K)
    with pytest.raises(TypeError, match="source must be"):
        jn.fit_minibatch(42, K)
    with pytest.raises(ValueError, match="rank must be <= n_features"):
        jn.fit_minibatch(data, N + 1)
    with pytest.raises(ValueError, match="forget_factor"):
        jn.fit_minibatch(data, K, forget_factor=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        jn.fit_minibatch(data, K, batch_size=0)
    with pytest.raises(ValueError, match="hals"):
        jn.fit_minibatch(data, K, loss="kl", solver="hals")
    with pytest.raises(ValueError, match="zero entries"):
        jn.fit_minibatch(np.vstack([data, np.zeros((1, N))]), K, loss="is", solver="mu")


def test_one_compiled_step_serves_every_full_batch(data, reference):
    # the reference (2 passes over 3 full batches) compiled its step: 3 passes over other
    # data of the same shape compile nothing
    before = _online.step_compiled._cache_size()
    res = jn.fit_minibatch(data[::-1].copy(), **{**KW, "max_iter": 3})
    assert res.n_steps == 9 and _online.step_compiled._cache_size() == before


# --- the estimator ---------------------------------------------------------------------------


def test_fewer_passes_to_a_lower_error_than_scikit_learn_on_digits():
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = jn.datasets.load_digits()[0]
    kw = dict(batch_size=256, max_iter=5, tol=0.0, max_no_improvement=None, random_state=0)
    ours = jn.MiniBatchNMF(10, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = decomposition.MiniBatchNMF(10, **kw).fit(X)
    assert ours.n_steps_ == theirs.n_steps_ == 5 * 8
    assert ours.reconstruction_err_ < 0.95 * theirs.reconstruction_err_


def test_partial_fit_continues_fit_and_transform_is_nonnegative(data):
    est = jn.MiniBatchNMF(K, batch_size=B, max_iter=2, tol=0.0, random_state=0)
    est.fit(data)
    H = est.components_.copy()
    est.partial_fit(data[:B])
    assert est.n_steps_ == 7 and not np.allclose(est.components_, H)
    W = est.transform(data)
    assert W.shape == (M, K) and np.all(W >= 0)
    np.testing.assert_allclose(est.inverse_transform(W), W @ est.components_)
    fresh = jn.MiniBatchNMF(K, batch_size=B, random_state=0).partial_fit(data[:B])
    assert fresh.components_.shape == (K, N) and fresh.n_steps_ == 1


def test_sparse_X_fits_as_its_dense_copy_with_the_same_error(data):
    # a sparse X is densified into the resident batches and its error computed from the
    # stored entries (‖X‖² - 2<X, WH> + <WᵀW, HHᵀ>): both equal the dense path's, up to the
    # order of sums (a random init: NNDSVD takes another SVD routine for sparse X)
    sp = pytest.importorskip("scipy.sparse")
    X = np.where(data > np.median(data), data, 0.0)
    kw = dict(batch_size=B, max_iter=2, tol=0.0, max_no_improvement=None, random_state=0)
    kw.update(init="random")
    dense = jn.MiniBatchNMF(K, **kw)
    W_dense = dense.fit_transform(X)
    for fmt in ("csr", "csc"):
        est = jn.MiniBatchNMF(K, **kw)
        W = est.fit_transform(sp.csr_matrix(X).asformat(fmt))
        np.testing.assert_allclose(W, W_dense, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(est.components_, dense.components_, rtol=1e-12, atol=1e-14)
        oracle = np.linalg.norm(X - W @ est.components_)
        assert est.reconstruction_err_ == pytest.approx(oracle, rel=1e-10)
        assert dense.reconstruction_err_ == pytest.approx(oracle, rel=1e-12)


@pytest.mark.parametrize("at_once", [True, False])
def test_resident_row_errors_equal_the_numpy_residual(at_once, monkeypatch):
    # the resident loop's error (MiniBatchNMF.reconstruction_err_ at β = 2): each row's
    # Σ (X - W H)², the whole residual at once or batch by batch above RESIDUAL_AT_ONCE_BYTES
    rng = np.random.default_rng(4)
    Xp, Wp, H = rng.random((3, 5, 7)), rng.random((3, 5, 2)), rng.random((2, 7))
    monkeypatch.setattr(_online, "RESIDUAL_AT_ONCE_BYTES", Xp.nbytes if at_once else 0)
    oracle = np.sum((Xp - Wp @ H) ** 2, axis=2)
    np.testing.assert_allclose(_online._row_sq_error(Xp, Wp, H), oracle, rtol=1e-12)


@pytest.mark.parametrize("solver, fresh", [("hals", False), ("mu", True)])
def test_zero_padding_to_buckets_changes_nothing(data, solver, fresh, monkeypatch):
    # a small X is padded to buckets of rows per batch and of features (one compiled
    # program for several data sizes): the padded fit equals the unpadded one. Three batches
    # of 20 rows (the last of 8), 10 features: 32 x 16 each; penalties on both factors.
    kw = dict(batch_size=20, max_iter=3, tol=0.0, max_no_improvement=None, random_state=0)
    kw.update(alpha_W=0.01, alpha_H=0.02, l1_ratio=0.5, solver=solver, fresh_restarts=fresh)
    loss = jn.MiniBatchNMF(K)._objective(20, N).astype(np.float64)
    assert _online.padded_shape(20, N, jn.solvers.as_solver(solver), loss, 3) == (32, 16)
    kl = jn.losses.beta(1.0).astype(np.float64)
    assert _online.padded_shape(20, N, jn.solvers.mu(), kl, 3) == (20, N)  # not for beta != 2
    fits = []
    for bucket_max in (_online.BUCKET_MAX_ENTRIES, 0):  # padded, then not
        monkeypatch.setattr(_online, "BUCKET_MAX_ENTRIES", bucket_max)
        est = jn.MiniBatchNMF(K, **kw)
        fits.append((est.fit_transform(data), est, est.transform(data[:30])))
    (W, est, T), (W0, est0, T0) = fits
    np.testing.assert_allclose(W, W0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(est.components_, est0.components_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(T, T0, rtol=1e-12, atol=1e-15)
    assert est.reconstruction_err_ == pytest.approx(est0.reconstruction_err_, rel=1e-12)
    assert (est.n_steps_, est.n_iter_) == (est0.n_steps_, est0.n_iter_) == (9, 3)
    assert est.components_.shape == (K, N) and est._online_state.B.shape == (K, N)


def _check_outcomes(estimator) -> dict:
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = checks.check_estimator(estimator, on_fail=None, on_skip=None)
    outcomes, seen = {}, {}
    for r in results:
        i = seen[r["check_name"]] = seen.get(r["check_name"], -1) + 1
        outcomes[r["check_name"], i] = (r["status"], r["exception"])
    return outcomes


def test_passes_every_estimator_check_that_scikit_learns_minibatchnmf_passes():
    decomposition = pytest.importorskip("sklearn.decomposition")
    kwargs = {"n_components": 2}
    theirs = _check_outcomes(decomposition.MiniBatchNMF(**kwargs))
    ours = _check_outcomes(jn.MiniBatchNMF(**kwargs))
    passed = [c for c, (status, _) in theirs.items() if status == "passed"]
    assert len(passed) > 40
    failed = {c: ours.get(c, ("not run", None)) for c in passed}
    failed = {c: o for c, o in failed.items() if o[0] != "passed"}
    assert not failed, failed
