"""jn.consensus (cNMF) against independent oracles: the ``cnmf`` package's own consensus
steps on the same replicate components, scikit-learn's silhouette and k-means, and a planted
problem. One sweep (module fixture) serves every test; the others reuse its compiled
programs (same shapes and grid), so the file costs little more than that one consensus."""

import sys
import types

import numpy as np
import pytest

import jaxnmf as jn

consensus_module = sys.modules["jaxnmf.consensus"]  # jn.consensus is the function

RANKS, SEEDS, K = [2, 3], range(8), 3
KW = dict(max_iter=100)


def _planted(seed=0, m=40, n=30):
    """Samples × features with three programs on disjoint feature blocks, 10% noise."""
    rng = np.random.default_rng(seed)
    H = 0.05 * rng.random((K, n))
    for j in range(K):
        H[j, j * 10 : (j + 1) * 10] += 1 + rng.random(10)
    W = rng.random((m, K)) ** 2
    V = np.maximum(W @ H * (1 + 0.1 * rng.standard_normal((m, n))), 0)
    return V, H


@pytest.fixture(scope="module")
def planted():
    V, H = _planted()
    return V, H, jn.consensus(V, RANKS, SEEDS, **KW)


def _match(A, B):
    """Rows of B in the order that best matches the rows of A (Hungarian, squared error)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    return B[cols[np.argsort(rows)]]


def _cnmf_steps(spectra, r, n_rep, V, density_threshold=0.5, neighborhood=0.3):
    """cnmf 1.7.1's ``cNMF.consensus`` on ``spectra`` ``(n_rep · r, n)``: its own code, up to
    the usage refit (stopped there), with its k-means recorded. Returns the local densities,
    the fitted ``KMeans`` and the normalized median spectra ``(r, n)`` (cluster order)."""
    import tempfile

    cc = pytest.importorskip("cnmf.cnmf", reason="the cnmf package (pip install cnmf==1.7.1)")
    import pandas as pd  # cnmf's own dependency

    class StopAtRefitError(Exception):
        pass

    fitted = {}

    class RecordingKMeans(cc.KMeans):
        def fit(self, X, y=None, sample_weight=None):
            fitted["kmeans"] = self
            return super().fit(X, y, sample_weight)

    with tempfile.TemporaryDirectory() as d:
        obj = cc.cNMF(output_dir=d, name="t")
        index = [f"iter{s}_topic{t + 1}" for s in range(n_rep) for t in range(r)]
        frame = pd.DataFrame(spectra, index=index, columns=[f"g{j}" for j in range(V.shape[1])])
        cc.save_df_to_npz(frame, obj.paths["merged_spectra"] % r)

        def stop(X, median_spectra):
            raise StopAtRefitError(median_spectra)

        obj.refit_usage = stop
        kmeans, cc.KMeans = cc.KMeans, RecordingKMeans
        try:
            obj.consensus(
                r,
                density_threshold=density_threshold,
                local_neighborhood_size=neighborhood,
                show_clustering=False,
                build_ref=False,
                norm_counts=types.SimpleNamespace(X=V),
            )
        except StopAtRefitError as e:
            medians = e.args[0].values
        finally:
            cc.KMeans = kmeans
        density = cc.load_df_from_npz(obj.paths["local_density_cache"] % r).iloc[:, 0].values
    return density, fitted["kmeans"], medians


@pytest.mark.parametrize("r", RANKS)
def test_equals_the_cnmf_package_steps(planted, r):
    V, _, cons = planted
    i = RANKS.index(r)
    spectra = cons.sweep.H[i][:, :r, :].reshape(-1, V.shape[1])  # cNMF's merged spectra
    density, kmeans, medians = _cnmf_steps(spectra, r, len(SEEDS), V)
    c = cons.clustering(r)
    assert c.n_neighbors == int(0.3 * len(SEEDS))
    np.testing.assert_allclose(c.density, density, rtol=0, atol=1e-10)  # same neighbours
    np.testing.assert_array_equal(c.kept, density < 0.5)  # same kept set
    # the same k-means objective, hence the same partition up to label order
    assert c.inertia == pytest.approx(kmeans.inertia_, rel=1e-9)
    ours, theirs = c.labels[c.kept], kmeans.labels_
    pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
    assert len(pairs) == len(set(ours)) == len(set(theirs)) == r
    np.testing.assert_allclose(cons.components(r), _match(cons.components(r), medians), atol=1e-6)


def test_stability_and_inertia_against_scikit_learn(planted):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    _, _, cons = planted
    for r in RANKS:
        c = cons.clustering(r)
        X = c.components[c.kept]
        assert cons.table["stability"][RANKS.index(r)] == pytest.approx(
            silhouette_score(X, c.labels[c.kept], metric="euclidean"), abs=1e-10
        )
        best = KMeans(n_clusters=r, n_init=10, random_state=0).fit(X).inertia_
        assert c.inertia <= best * (1 + 1e-9)
        # the inertia reported is that of the labels reported
        centres = np.stack([X[c.labels[c.kept] == j].mean(0) for j in range(r)])
        assert c.inertia == pytest.approx(((X - centres[c.labels[c.kept]]) ** 2).sum(), rel=1e-9)


def test_recovers_the_planted_programs(planted):
    V, H, cons = planted
    truth = H / H.sum(axis=1, keepdims=True)
    found = cons.components(K)
    cos = (truth * _match(truth, found)).sum(1)
    cos /= np.linalg.norm(truth, axis=1) * np.linalg.norm(_match(truth, found), axis=1)
    assert np.all(cos > 0.99)
    table = cons.table
    assert list(table["rank"]) == RANKS and table.suggest() == K
    assert table["rel_error"][RANKS.index(K)] < 0.15 < table["rel_error"][0]
    np.testing.assert_allclose(found.sum(axis=1), 1)
    fit = cons.result(K)
    assert fit.W.shape == (V.shape[0], K) and fit.H.shape == (K, V.shape[1])
    assert table["error"][RANKS.index(K)] == pytest.approx(((V - fit.W @ fit.H) ** 2).sum())
    # cNMF's order: the components by total share of the normalized usages
    share = (fit.W / fit.W.sum(1, keepdims=True)).sum(0)
    assert np.all(np.diff(share) <= 0)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    fig = table.plot()  # cNMF's k-selection plot: stability and error against the rank
    stability, error = (ax.get_lines()[0] for ax in fig.axes)
    np.testing.assert_array_equal(stability.get_ydata(), table["stability"])
    np.testing.assert_array_equal(error.get_ydata(), table["error"])
    matplotlib.pyplot.close(fig)
    pytest.importorskip("pandas")  # an optional extra, not in the test extra
    df = table.to_pandas()
    assert list(df.columns[:3]) == ["rank", "stability", "error"]


def test_samples_as_columns_is_the_transpose(planted):
    V, _, cons = planted
    t = jn.consensus(V.T, RANKS, SEEDS, samples="columns", **KW)
    np.testing.assert_array_equal(t.components(K), cons.components(K))
    np.testing.assert_array_equal(t.result(K).W, cons.result(K).H.T)
    np.testing.assert_array_equal(t.table["stability"], cons.table["stability"])


def test_sparse_input_gives_the_dense_consensus(planted):
    """scipy.sparse V (never densified: its sweep and refit run on the stored entries) gives
    the consensus of the same data dense: components, usages and the k-selection table."""
    import scipy.sparse

    V, _, cons = planted
    sparse = jn.consensus(scipy.sparse.csr_matrix(V), RANKS, SEEDS, **KW)
    np.testing.assert_allclose(sparse.components(K), cons.components(K), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sparse.usages(K), cons.usages(K), rtol=1e-6, atol=1e-9)
    for column in ("stability", "error"):
        np.testing.assert_allclose(sparse.table[column], cons.table[column], rtol=1e-6)


def test_perturbed_replicates(planted):
    """Bootstrap replicates recover the programs; a Poisson replicate is a Poisson draw."""
    V, H, _ = planted
    counts = np.round(V * 20)
    truth = H / H.sum(axis=1, keepdims=True)
    cons = jn.consensus(counts, RANKS, SEEDS, replicates="bootstrap", **KW)
    assert cons.sweep.perturb == "bootstrap" and cons.replicates == "bootstrap"
    found = _match(truth, cons.components(K))
    cos = (truth * found).sum(1) / (np.linalg.norm(truth, axis=1) * np.linalg.norm(found, axis=1))
    assert np.all(cos > 0.98)
    rows = consensus_module._perturbed(counts, 0, "bootstrap")
    assert {tuple(r) for r in rows} <= {tuple(r) for r in counts}  # samples drawn whole
    draw = consensus_module._perturbed(np.full((200, 50), 4.0), 0, "poisson")
    assert np.all(draw == np.round(draw)) and abs(draw.mean() - 4) < 0.1
    assert abs(draw.var() - 4) < 0.3  # Poisson: variance = mean


@pytest.mark.parametrize("kind", ["bootstrap", "poisson"])
def test_replicates_drawn_in_the_sweep_equal_fits_of_the_drawn_data(kind):
    """sweep(perturb=...) draws each seed's replicate inside the one compiled call; a member
    equals the fit of that draw, which the host-side draw (consensus._perturbed) gives."""
    V, _ = _planted(seed=3, m=24, n=30)
    counts = np.round(V / V.max() * 32)  # max 32: V / M · M is exact, so the rates are equal
    kw = dict(max_iter=40, tol=0.0)
    sw = jn.sweep(counts, [2, 3], [0, 5], perturb=kind, **kw)
    assert sw.perturb == kind
    draws = [consensus_module._perturbed(counts, s, kind) for s in (0, 5)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], counts)
    for seed, draw in zip((0, 5), draws, strict=True):
        for rank in (2, 3):
            got, want = sw.result(rank=rank, seed=seed), jn.fit(draw, rank, seed=seed, **kw)
            np.testing.assert_allclose(got.W, want.W, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got.losses, want.losses, rtol=1e-9)


def test_poisson_replicates_of_sparse_counts_resample_the_stored_entries():
    """For sparse V, perturb='poisson' draws Poisson(v) for every stored v (pattern kept),
    in the user's count units: a member equals the fit of that draw, made here from the
    documented recipe (fold_in(seed's key, PERTURB_TAG), stored entries in (row, col) order)."""
    import jax
    import scipy.sparse

    from jaxnmf import _run, _validate

    V, _ = _planted(seed=3, m=24, n=30)
    dense = np.round(V / V.max() * 32) * (np.random.default_rng(0).random(V.shape) < 0.5)
    counts = scipy.sparse.csr_matrix(dense)  # sorted by (row, col); max 32 keeps V / M · M exact
    kw = dict(max_iter=30, tol=0.0)
    sw = jn.sweep(counts, [2, 3], [0, 5], perturb="poisson", **kw)
    for seed in (0, 5):
        key = jax.random.fold_in(_validate.seed_key(seed), _run.PERTURB_TAG)
        values = np.asarray(jax.random.poisson(key, counts.data)).astype(float)
        assert not np.array_equal(values, counts.data)
        draw = scipy.sparse.csr_matrix((values, counts.indices, counts.indptr), counts.shape)
        for rank in (2, 3):
            got, want = sw.result(rank=rank, seed=seed), jn.fit(draw, rank, seed=seed, **kw)
            np.testing.assert_allclose(got.W, want.W, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got.losses, want.losses, rtol=1e-9)


def test_perturbed_sweep_checks_its_input():
    V, _ = _planted(seed=3, m=24, n=30)
    with pytest.raises(ValueError, match="perturb must be None or one of"):
        jn.sweep(V, [2], perturb="jackknife")
    with pytest.raises(ValueError, match="needs dense V without a mask"):
        jn.sweep(V, [2], perturb="bootstrap", mask=np.ones_like(V))
    with pytest.raises(ValueError, match="β <= 0 needs V > 0"):
        jn.sweep(V + 1, [2], perturb="poisson", loss="itakura_saito")


def test_bad_input_fails_before_anything_compiles(planted, monkeypatch):
    V, _, _ = planted

    def no_fit(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(consensus_module, "sweep", no_fit)
    with pytest.raises(ValueError, match=r"between 1 and min\(m, n\) = 30"):
        jn.consensus(V, [2, 31], SEEDS)
    with pytest.raises(ValueError, match="L = 0"):
        jn.consensus(V, RANKS, range(3))  # int(0.3 · 3) = 0 neighbours
    with pytest.raises(ValueError, match="drops every component"):
        jn.consensus(V, RANKS, SEEDS, density_threshold=0.0)
    with pytest.raises(ValueError, match="samples"):
        jn.consensus(V, RANKS, SEEDS, samples="genes")
    monkeypatch.undo()
    # a threshold below every density: known only after the fits, raised before clustering
    monkeypatch.setattr(consensus_module, "_cluster_all", no_fit)
    with pytest.raises(ValueError, match="rank 2: density_threshold = 1e-12 keeps 0 of 16"):
        jn.consensus(V, RANKS, SEEDS, density_threshold=1e-12, **KW)
