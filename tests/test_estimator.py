"""The scikit-learn compatible estimator ``jaxnmf.NMF`` and the data loaders it is tested on.

* scikit-learn's own estimator checks;
* the objective and iterates of ``sklearn.decomposition.NMF(solver="mu")`` from the same
  initial factors, with and without penalties, Frobenius and Kullback–Leibler;
* ``fit_transform(X) ≈ fit(X).transform(X)`` on digits (scikit-learn issue 18663);
* a ``Pipeline`` of TF-IDF and NMF inside ``GridSearchCV`` on the SciPy docstrings corpus;
* the estimator without scikit-learn (a fresh interpreter that cannot import it).
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import warnings

import jax
import numpy as np
import optax
import pytest

import jaxnmf as jn
from jaxnmf import _run
from jaxnmf import estimator as est_mod
from jaxnmf._testing import positive_data

REPO = pathlib.Path(__file__).resolve().parents[1]
M_, N_, K_ = 24, 10, 3


def _quiet(fn, *args, **kwargs):
    """Run ``fn`` with ConvergenceWarnings silenced (tests that cap max_iter on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", est_mod.ConvergenceWarning)
        return fn(*args, **kwargs)


def _nndsvda(X, k):
    """NNDSVDA of X itself, as NMF takes it (jaxnmf.fit would take it of X / max X)."""
    W0, H0 = jn.api.initial_factors(X, None, jax.random.key(0), rank=k, method="nndsvda")
    return np.asarray(W0), np.asarray(H0)


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return jn.datasets.load_digits()[0]


# --- scikit-learn's defaults and estimator checks --------------------------------------------

# The arguments users pass most, each set run through scikit-learn's estimator checks on both
# estimators. sklearn.decomposition.NMF with the same arguments is the oracle: jn.NMF must pass
# every check that it passes. (Measured, scikit-learn 1.9: both pass every check, except that
# with the defaults both fail check_transformer_general and check_transformer_data_not_an_array,
# which compare fit_transform with fit().transform to 0.01 on 3-feature data where
# n_components="auto" means 3 components: the factorization is not unique there, and both
# fits end at the same error.) Each set costs 12-20 s here (2 loaded cores), nearly all of it
# compiling jn.NMF's fits and transforms for the checks' many data shapes (scikit-learn's own
# run takes under 1 s); sets 2 and 3 share their transforms.
CHECK_ARGS = [
    {},
    {"n_components": 2},
    {"n_components": 2, "init": "random"},
    {"n_components": 2, "solver": "mu", "beta_loss": "kullback-leibler", "max_iter": 500},
]


def _check_outcomes(estimator) -> dict:
    """``{(check name, occurrence): (status, exception)}`` of scikit-learn's checks (a check
    may run more than once, e.g. on read-only memory maps)."""
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, SkipTestWarning
        results = checks.check_estimator(estimator, on_fail=None, on_skip=None)
    outcomes, seen = {}, {}
    for r in results:
        i = seen[r["check_name"]] = seen.get(r["check_name"], -1) + 1
        outcomes[r["check_name"], i] = (r["status"], r["exception"])
    return outcomes


@pytest.mark.parametrize("kwargs", CHECK_ARGS, ids=lambda kw: ",".join(map(str, kw.values())))
def test_passes_every_estimator_check_that_scikit_learns_nmf_passes(kwargs):
    decomposition = pytest.importorskip("sklearn.decomposition")
    theirs = _check_outcomes(decomposition.NMF(**kwargs))
    ours = _check_outcomes(jn.NMF(**kwargs))
    passed = [c for c, (status, _) in theirs.items() if status == "passed"]
    assert len(passed) > 40  # the checks ran
    not_passed = {c: ours.get(c, ("not run", None)) for c in passed}
    failed = {c: outcome for c, outcome in not_passed.items() if outcome[0] != "passed"}
    assert not failed, failed


def test_defaults_are_scikit_learns(data):
    """The same parameter defaults, and with them the same initialization and coordinate
    descent iterates (only the stopping rule differs, so both run a fixed 40 iterations)."""
    decomposition = pytest.importorskip("sklearn.decomposition")
    theirs, ours = decomposition.NMF().get_params(), jn.NMF().get_params()
    shared = theirs.keys() & ours.keys()
    assert shared >= {"n_components", "init", "solver", "beta_loss", "tol", "max_iter"}
    assert shared >= {"random_state", "alpha_W", "alpha_H", "l1_ratio"}
    assert {p: ours[p] for p in shared} == {p: theirs[p] for p in shared}
    # n_components="auto" is n_features; init=None is "nndsvda" here (scikit-learn's
    # randomized SVD is exact on a 24 × 10 matrix: 3 + 10 oversamples span all columns)
    sk = decomposition.NMF(tol=0.0, max_iter=40, random_state=0)
    model = jn.NMF(tol=0.0, max_iter=40)
    np.testing.assert_allclose(model.fit_transform(data), sk.fit_transform(data), rtol=1e-6)
    np.testing.assert_allclose(model.components_, sk.components_, rtol=1e-6)
    assert model.n_components_ == sk.n_components_ == N_
    sk3, model3 = decomposition.NMF(3, tol=0.0, max_iter=40), jn.NMF(3, tol=0.0, max_iter=40)
    np.testing.assert_allclose(model3.fit_transform(data), sk3.fit_transform(data), rtol=1e-6)
    np.testing.assert_allclose(model3.reconstruction_err_, sk3.reconstruction_err_, rtol=1e-9)


def test_defaults_reach_scikit_learns_default_error_on_digits(digits):
    """k = 10 on digits with every other parameter at its default. scikit-learn's error
    depends on random_state through its randomized SVD (861-865 over random_state 0-7);
    jaxnmf's NNDSVD takes an exact SVD of a dense X and needs no random_state."""
    decomposition = pytest.importorskip("sklearn.decomposition")
    theirs = _quiet(decomposition.NMF(n_components=10, random_state=0).fit, digits)
    ours = _quiet(jn.NMF(n_components=10).fit, digits)
    assert ours.reconstruction_err_ <= 1.001 * theirs.reconstruction_err_, (
        ours.reconstruction_err_,
        theirs.reconstruction_err_,
    )


# --- the same objective and iterates as scikit-learn's NMF(solver="mu") --------------------


def _sklearn_objective(X, W, H, beta, alpha_W, alpha_H, l1_ratio):
    """scikit-learn's NMF objective, from its own ``_beta_divergence`` and the scaling of its
    ``_compute_regularization``."""
    sk_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    m, n = X.shape
    return (
        sk_nmf._beta_divergence(X, W, H, beta)
        + n * alpha_W * l1_ratio * W.sum()
        + m * alpha_H * l1_ratio * H.sum()
        + 0.5 * n * alpha_W * (1 - l1_ratio) * np.sum(W**2)
        + 0.5 * m * alpha_H * (1 - l1_ratio) * np.sum(H**2)
    )


def _np_transform_mu(X, H, beta, l1, l2, n_iter):
    """The W-only multiplicative update from scikit-learn's starting point, in NumPy."""
    k = H.shape[0]
    W = np.full((X.shape[0], k), np.sqrt(X.mean() / k))
    for _ in range(n_iter):
        WH = W @ H
        if beta == 2:
            num, den = X @ H.T, WH @ H.T
        else:  # KL
            ratio = X / np.maximum(WH, np.finfo(float).tiny)  # 0 where X = 0
            num, den = ratio @ H.T, np.broadcast_to(H.sum(axis=1), W.shape)
        W = W * num / (den + l1 + l2 * W)
    return W


@pytest.mark.parametrize("penalized", [False, True], ids=["plain", "penalized"])
@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
def test_same_objective_and_iterates_as_scikit_learn_mu(digits, beta_loss, penalized):
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = digits[:150]  # real data, with zeros (whole blank pixel columns)
    m, n = X.shape
    k = 6
    rng = np.random.default_rng(0)
    scale = np.sqrt(X.mean() / k)
    W0, H0 = scale * (rng.random((m, k)) + 0.5), scale * (rng.random((k, n)) + 0.5)
    pen = (0.005, 0.01, 0.3) if penalized else (0.0, 0.0, 0.0)
    kw = dict(
        n_components=k,
        init="custom",
        solver="mu",
        beta_loss=beta_loss,
        tol=0.0,
        max_iter=60,
        alpha_W=pen[0],
        alpha_H=pen[1],
        l1_ratio=pen[2],
    )
    sk = decomposition.NMF(**kw)
    W_sk = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    ours = jn.NMF(**kw)
    W = ours.fit_transform(X, W=W0, H=H0)

    beta = 2 if beta_loss == "frobenius" else 1
    f_sk = _sklearn_objective(X, W_sk, sk.components_, beta, *pen)
    f_ours = _sklearn_objective(X, W, ours.components_, beta, *pen)
    assert f_ours < _sklearn_objective(X, W0, H0, beta, *pen)
    np.testing.assert_allclose(f_ours, f_sk, rtol=1e-6)
    np.testing.assert_allclose(W, W_sk, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.reconstruction_err_, sk.reconstruction_err_, rtol=1e-6)
    assert ours.n_iter_ == sk.n_iter_ == 60

    # transform: scikit-learn's starting point and update. scikit-learn's own transform is
    # wrong for KL with an L1 penalty on W (its cached row sums of H absorb l1_reg_W at every
    # iteration: `denominator = H_sum[np.newaxis, :]; denominator += l1_reg_W` updates H_sum
    # in place), so that case is checked against the NumPy oracle instead.
    X_new = digits[150:190]
    T = ours.transform(X_new)
    if beta == 1 and penalized:
        l1, l2 = n * pen[0] * pen[2], n * pen[0] * (1 - pen[2])
        expected = _np_transform_mu(X_new, ours.components_, beta, l1, l2, 60)
    else:
        expected = sk.transform(X_new)
    np.testing.assert_allclose(T, expected, rtol=1e-6, atol=1e-10)


def test_penalty_scaling_none_uses_the_weights_as_given():
    V = positive_data(M_, N_, seed=1)
    aW, aH, r = 0.3, 0.2, 0.25
    model = jn.NMF(K_, init="nndsvda", alpha_W=aW, alpha_H=aH, l1_ratio=r, penalty_scaling="none")
    W = _quiet(model.fit_transform, V)
    loss = (
        jn.losses.beta(2)
        + aW * r * jn.losses.l1("W")
        + aH * r * jn.losses.l1("H")
        + aW * (1 - r) * jn.losses.l2("W")
        + aH * (1 - r) * jn.losses.l2("H")
    )
    res = jn.fit(V, K_, loss=loss, solver="hals", init=_nndsvda(V, K_), max_iter=200, tol=1e-4)
    np.testing.assert_array_equal(W, res.W)
    np.testing.assert_array_equal(model.components_, res.H)
    # "sklearn" scaling multiplies the W weights by n_features, the H weights by n_samples
    sk_scaled = jn.NMF(K_, alpha_W=aW, alpha_H=aH, l1_ratio=r)._objective(M_, N_)
    assert sk_scaled == (
        jn.losses.beta(2)
        + N_ * aW * r * jn.losses.l1("W")
        + M_ * aH * r * jn.losses.l1("H")
        + N_ * aW * (1 - r) * jn.losses.l2("W")
        + M_ * aH * (1 - r) * jn.losses.l2("H")
    )


# --- fit_transform ≈ fit().transform (scikit-learn issue 18663) ------------------------------


def test_fit_transform_matches_fit_then_transform_on_digits(digits):
    X = digits
    errors = {}
    for solver in ["cd", "pg", "mu"]:
        model = jn.NMF(10, solver=solver, random_state=0)
        W_fit = _quiet(model.fit_transform, X)
        W_tr = model.transform(X)
        assert W_tr.shape == W_fit.shape == (X.shape[0], 10)
        rel = np.linalg.norm(W_fit - W_tr) / np.linalg.norm(W_fit)
        errors[solver] = model.reconstruction_err_
        # transform solves the W-subproblem: never worse than the fitted W for it
        f_fit = np.sum((X - W_fit @ model.components_) ** 2)
        f_tr = np.sum((X - W_tr @ model.components_) ** 2)
        assert f_tr <= f_fit * (1 + 1e-3), (solver, f_tr, f_fit)
        if solver in ("cd", "pg"):
            assert rel < 1e-2, (solver, rel)
        else:
            # 200 multiplicative updates leave the fitted W ~4 % from the minimizer of the
            # W-subproblem, so no transform can be closer than that to it.
            assert rel < 0.08, (solver, rel)
        np.testing.assert_allclose(-model.score(X), model.reconstruction_err_, rtol=1e-2)
    # Lin's PG does not stall (it once stopped after 2 iterations at a 65 % larger error),
    # and all three solvers agree on the fit quality.
    assert max(errors.values()) < 1.03 * min(errors.values()), errors


# --- Pipeline + GridSearchCV on the SciPy docstrings corpus -----------------------------------


def test_grid_search_over_n_components_in_a_tfidf_pipeline():
    pytest.importorskip("scipy")
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.model_selection import GridSearchCV, ShuffleSplit
    from sklearn.pipeline import Pipeline

    texts, labels, _ = jn.datasets.load_scipy_docstrings(return_raw=True)
    # init="random": no SVD in each of the grid's fits (nndsvda's full LAPACK SVD of this
    # TF-IDF matrix took 4-8 s a fit on a loaded 2-core machine; NNDSVD of so wide a V is a
    # randomized SVD since 2026-12-03, but the test is about the pipeline, not the init).
    pipe = Pipeline(
        [
            ("tfidf", TfidfVectorizer(max_features=1000, min_df=3, stop_words="english")),
            ("nmf", jn.NMF(solver="cd", init="random", max_iter=50, random_state=0)),
        ]
    )
    # Splits of equal sizes: each rank compiles its fit and its scoring once, not per fold.
    cv = ShuffleSplit(n_splits=2, test_size=0.25, random_state=0)
    search = GridSearchCV(pipe, {"nmf__n_components": [5, 10]}, cv=cv)
    _quiet(search.fit, texts)  # scored by NMF.score: minus the reconstruction error
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)
    assert search.best_params_["nmf__n_components"] in (5, 10)
    assert search.best_score_ == scores.max()
    W = search.transform(texts)
    assert W.shape == (len(texts), search.best_params_["nmf__n_components"])
    assert np.all(W >= 0)
    # topics recover the subpackages in part (DATA.md: a plain NMF reaches NMI 0.5-0.6)
    nmi = normalized_mutual_info_score(labels, W.argmax(axis=1))
    assert nmi > 0.3, nmi
    names = search.best_estimator_.get_feature_names_out()
    assert list(names[:2]) == ["nmf0", "nmf1"]


# --- the data loaders ------------------------------------------------------------------------


def test_scipy_docstrings_corpus():
    pytest.importorskip("scipy")
    texts, labels, label_names = jn.datasets.load_scipy_docstrings(return_raw=True)
    assert label_names == jn.datasets.SCIPY_SUBPACKAGES and len(label_names) == 10
    assert 900 < len(texts) < 1600 and labels.shape == (len(texts),)
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
    assert np.all(np.diff(labels) >= 0)  # ordered by subpackage
    assert all(isinstance(t, str) and t for t in texts)
    # Examples and References sections are gone (whitespace is collapsed in paragraphs);
    # other sections stay (code in a Notes section does too)
    joined = "\n".join(texts)
    assert re.search(r"(Examples|References) -{3,}", joined) is None
    assert re.search(r"Notes -{3,}", joined) is not None
    # no paragraph is shared by 3 or more documents
    counts = {}
    for t in texts:
        for p in set(t.split("\n\n")):
            counts[p] = counts.get(p, 0) + 1
    assert max(counts.values()) < 3
    again, labels2, _ = jn.datasets.load_scipy_docstrings(return_raw=True)
    assert again == texts and np.array_equal(labels, labels2)  # deterministic


def test_scipy_docstrings_count_matrix():
    pytest.importorskip("sklearn")
    X, labels, _, terms = jn.datasets.load_scipy_docstrings(min_df=3)
    assert X.shape == (labels.shape[0], terms.shape[0])
    assert 1500 < X.shape[1] < 6000  # ≈3000 (DATA.md)
    assert X.dtype == np.float64 and X.min() >= 0
    assert np.all(np.asarray((X > 0).sum(axis=0)).ravel() >= 3)


def test_load_digits():
    pytest.importorskip("sklearn")
    X, y = jn.datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and X.min() >= 0
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    assert jn.datasets.load_digits(np.float32)[0].dtype == np.float32


# --- behaviour of the estimator --------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return positive_data(M_, N_, seed=3)


def test_fit_is_jaxnmf_fit_and_cd_is_hals(data):
    W = _quiet(jn.NMF(K_, solver="cd", random_state=0).fit_transform, data)
    init = _nndsvda(data, K_)
    res = jn.fit(data, K_, loss=jn.losses.beta(2), solver="hals", init=init, tol=1e-4)
    np.testing.assert_array_equal(W, res.W)
    model = _quiet(jn.NMF(K_, solver="hals", random_state=0).fit, data)
    np.testing.assert_array_equal(model.components_, res.H)
    assert model.n_iter_ == res.n_iter and model.status_ == res.status
    assert model.n_components_ == K_ and model.n_features_in_ == N_
    np.testing.assert_allclose(model.reconstruction_err_, np.linalg.norm(data - W @ res.H))
    # a loss object overrides beta_loss
    mu = dict(solver="mu", max_iter=20, random_state=0)
    kl = _quiet(jn.NMF(K_, loss=jn.losses.kl(), **mu).fit, data)
    kl2 = _quiet(jn.NMF(K_, beta_loss="kullback-leibler", **mu).fit, data)
    np.testing.assert_array_equal(kl.components_, kl2.components_)
    assert kl.reconstruction_err_ == kl2.reconstruction_err_


def test_params_round_trip_and_clone(data):
    model = jn.NMF(K_, solver="pg", alpha_W=0.1, loss=jn.losses.kl(), penalty_scaling="none")
    params = model.get_params()
    assert params["n_components"] == K_ and params["solver"] == "pg"
    assert params["loss"] == jn.losses.kl() and params["penalty_scaling"] == "none"
    assert model.set_params(n_components=2, tol=0.0) is model
    assert model.n_components == 2 and model.tol == 0.0
    with pytest.raises(ValueError):
        model.set_params(no_such_parameter=1)
    base = pytest.importorskip("sklearn.base")
    clone = base.clone(model)
    assert clone.get_params() == model.get_params() and clone is not model
    assert not hasattr(clone, "components_")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(solver="newton"), "unknown solver"),
        (dict(beta_loss="hellinger"), "unknown beta_loss"),
        (dict(init="svd"), "unknown init"),
        (dict(n_components=0), "n_components"),
        (dict(penalty_scaling="sample"), "penalty_scaling"),
        (dict(l1_ratio=1.5), "l1_ratio"),
        (dict(alpha_W=-1.0), "alpha_W"),
        (dict(max_iter=0), "max_iter"),
        (dict(solver="hals", beta_loss="kullback-leibler"), "hals"),
        (dict(beta_loss="kullback-leibler"), "hals"),  # the default "cd", as scikit-learn's
        (dict(n_components=30, init="nndsvda"), "n_components <= min"),
        (dict(init="custom"), "needs both W and H"),
        (dict(shuffle=True), "shuffle=True"),  # scikit-learn's cd option, not implemented
    ],
)
def test_invalid_parameters_raise_before_fitting(data, params, match):
    with pytest.raises(ValueError, match=match):
        jn.NMF(**{"n_components": K_, **params}).fit(data)


def test_scikit_learn_signature_and_verbose(data, capsys):
    """Every parameter of scikit-learn's NMF is accepted (so that replacing it changes
    nothing else); ``verbose`` prints one line at the end of fit, ``shuffle`` is ignored by
    the solvers other than cd, as scikit-learn's."""
    import inspect

    decomposition = pytest.importorskip("sklearn.decomposition")
    theirs = set(inspect.signature(decomposition.NMF).parameters)
    assert theirs <= set(inspect.signature(jn.NMF).parameters)
    quiet = _quiet(jn.NMF(K_, max_iter=20, random_state=0).fit, data)
    assert capsys.readouterr().out == ""
    loud = _quiet(jn.NMF(K_, max_iter=20, random_state=0, verbose=1).fit, data)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"NMF: {loud.n_iter_} iterations, {loud.status_}")
    np.testing.assert_array_equal(loud.components_, quiet.components_)
    mu = dict(solver="mu", max_iter=20, random_state=0)
    shuffled = _quiet(jn.NMF(K_, shuffle=True, **mu).fit, data)
    plain = _quiet(jn.NMF(K_, **mu).fit, data)
    np.testing.assert_array_equal(shuffled.components_, plain.components_)
    with pytest.raises(TypeError, match="shuffle"):
        jn.NMF(K_, shuffle="yes").fit(data)


def test_warnings_point_at_the_callers_line(data):
    """Through scikit-learn's set_output wrapper too: the user's line, not a library frame."""
    for fit in (
        lambda: jn.NMF(K_, max_iter=1).fit(data),
        lambda: jn.MiniBatchNMF(K_, batch_size=8, max_iter=1).fit(data),
        lambda: jn.NMF(K_, solver="mu", init="nndsvd", max_iter=1).fit(data),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit()
        assert caught and {w.filename for w in caught} == {__file__}, [
            (w.category.__name__, w.filename) for w in caught
        ]


def test_invalid_data_raises(data):
    with pytest.raises(ValueError, match="Negative values"):
        jn.NMF(K_).fit(data - 1)
    with pytest.raises(ValueError, match="β = 0 is undefined"):
        jn.NMF(K_, beta_loss="itakura-saito").fit(np.where(data > 0.5, data, 0))
    model = _quiet(jn.NMF(K_, max_iter=5).fit, data)
    with pytest.raises(ValueError, match="features"):
        model.transform(data[:, :-1])
    with pytest.raises(est_mod.NotFittedError):
        jn.NMF(K_).transform(data)


def test_mask_ignores_missing_entries(data):
    mask = (np.random.default_rng(4).random(data.shape) > 0.2).astype(float)
    with_nan = np.where(mask > 0, data, np.nan)
    model = jn.NMF(K_, solver="hals", max_iter=50, random_state=0)
    W1 = _quiet(model.fit_transform, data, mask=mask)
    H1 = model.components_
    W2 = _quiet(model.fit_transform, with_nan, mask=mask)
    np.testing.assert_array_equal(W1, W2)
    np.testing.assert_array_equal(H1, model.components_)
    R = np.where(mask > 0, data - W2 @ model.components_, 0)
    np.testing.assert_allclose(model.reconstruction_err_, np.linalg.norm(R), rtol=1e-10)
    np.testing.assert_array_equal(model.transform(data, mask=mask), model.transform(with_nan, mask))
    assert np.isfinite(model.score(with_nan, mask=mask))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(with_nan)


@pytest.mark.parametrize("solver", ["mu", "hals"])
def test_transform_gram_form_matches_masked_form(data, solver):
    """Without a mask, transform runs from V Hᵀ and H Hᵀ formed once; an all-ones mask takes
    the general path of the solver's update. Both must give the same W."""
    model = jn.NMF(K_, solver=solver, tol=0.0, max_iter=30, alpha_W=0.01, l1_ratio=0.5)
    model.fit(data)
    ones = np.ones_like(data)
    np.testing.assert_allclose(model.transform(data), model.transform(data, ones), rtol=1e-9)


# --- sparse X: the core's sparse kernels, never a dense (n_samples, n_features) array -------

SPARSE_CASES = [("frobenius", "mu"), ("frobenius", "hals"), ("kullback-leibler", "mu")]


def _sparse_model(beta_loss, solver):
    # init="random": the same initial factors for dense and sparse X (the NNDSVD inits take
    # a randomized SVD of a sparse X and an exact one of a dense X).
    return jn.NMF(
        K_, beta_loss=beta_loss, solver=solver, init="random", max_iter=40, tol=0.0, random_state=0
    )


@pytest.mark.parametrize("beta_loss, solver", SPARSE_CASES)
def test_sparse_X_gives_the_dense_result(data, beta_loss, solver):
    """fit_transform, transform, score and reconstruction_err_ of a sparse X equal those of
    the same X dense, to the order of floating-point sums (float64)."""
    sparse = pytest.importorskip("scipy.sparse")
    X = np.where(data > 0.4, data, 0)  # ~35 % zeros, unstored in the sparse copies
    dense, model = _sparse_model(beta_loss, solver), _sparse_model(beta_loss, solver)
    W_dense = dense.fit_transform(X)
    W_sparse = model.fit_transform(sparse.csr_matrix(X))
    assert isinstance(W_sparse, np.ndarray) and W_sparse.dtype == np.float64
    np.testing.assert_allclose(W_sparse, W_dense, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.components_, dense.components_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.reconstruction_err_, dense.reconstruction_err_, rtol=1e-8)
    assert model.n_iter_ == dense.n_iter_ == 40
    # transform with H fixed (the W-half of the solver's updates), from another sparse format
    T_dense = dense.transform(X)
    np.testing.assert_allclose(model.transform(sparse.csc_matrix(X)), T_dense, rtol=1e-8)
    np.testing.assert_allclose(model.score(sparse.coo_matrix(X)), dense.score(X), rtol=1e-8)


def test_sparse_X_with_mask_stored_equals_the_dense_mask(data):
    """mask="stored": the stored entries are the observed ones (ratings), as a 0/1 mask of
    the stored pattern does for the dense X."""
    sparse = pytest.importorskip("scipy.sparse")
    X = np.where(data > 0.4, data, 0)
    observed = (X > 0).astype(float)
    dense, model = _sparse_model("frobenius", "hals"), _sparse_model("frobenius", "hals")
    W_dense = dense.fit_transform(X, mask=observed)
    W_sparse = model.fit_transform(sparse.csr_matrix(X), mask="stored")
    np.testing.assert_allclose(W_sparse, W_dense, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.reconstruction_err_, dense.reconstruction_err_, rtol=1e-8)
    np.testing.assert_allclose(
        model.transform(sparse.csr_matrix(X), mask="stored"),
        dense.transform(X, mask=observed),
        rtol=1e-8,
    )
    with pytest.raises(ValueError, match="stored"):
        model.transform(sparse.csr_matrix(X), mask=observed)  # a dense mask would densify


def _forbid_densifying(monkeypatch):
    """Make every ``toarray``/``todense`` of scipy.sparse and BCOO/BCSR raise."""
    sparse = pytest.importorskip("scipy.sparse")
    from jax.experimental import sparse as jsparse

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"densified a {type(self).__name__}")

    kinds = [sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix, sparse.lil_matrix]
    kinds += [sparse.csr_array, sparse.csc_array, sparse.coo_array]
    for cls in {c for kind in kinds for c in kind.__mro__}:
        for name in ("toarray", "todense"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, refuse)
    for cls in (jsparse.BCOO, jsparse.BCSR):
        monkeypatch.setattr(cls, "todense", refuse)


def test_sparse_X_is_never_densified(data, monkeypatch):
    sparse = pytest.importorskip("scipy.sparse")
    from jax.experimental import sparse as jsparse

    X = np.where(data > 0.4, data, 0)
    csr = sparse.csr_matrix(X)
    _forbid_densifying(monkeypatch)
    with pytest.raises(AssertionError, match="densified"):
        csr.toarray()  # the patch is in place
    for beta_loss, solver in SPARSE_CASES:  # the shapes and settings compiled above
        model = _sparse_model(beta_loss, solver)
        model.fit_transform(csr)
        model.fit(sparse.coo_array(X))
        model.transform(sparse.lil_matrix(X))
        model.score(sparse.csc_array(X))
    model = _sparse_model("frobenius", "hals")
    model.fit(csr, mask="stored")
    model.transform(csr, mask="stored")
    W = _sparse_model("frobenius", "mu").fit_transform(jsparse.BCOO.fromdense(X))
    assert W.shape == (M_, K_)


def test_sparse_X_far_too_large_to_densify():
    """200,000 × 50,000 (80 GB dense in float64) with 2,000 stored entries: fit, transform
    and score in O(nnz · k) and O((n_samples + n_features) · k) memory."""
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    m, n, nnz = 200_000, 50_000, 2_000
    X = sparse.csr_matrix(
        (rng.random(nnz) + 0.5, (rng.integers(0, m, nnz), rng.integers(0, n, nnz))), shape=(m, n)
    )
    model = jn.NMF(2, init="random", max_iter=5, tol=0.0, random_state=0)
    W = model.fit_transform(X)
    assert W.shape == (m, 2) and model.components_.shape == (2, n)
    assert np.all(np.isfinite(W)) and 0 < model.reconstruction_err_ < sparse.linalg.norm(X)
    assert model.transform(X[:1000]).shape == (1000, 2)
    assert model.inverse_transform(W[:3]).shape == (3, n)


def test_more_components_than_samples_and_features(data):
    small = data[:4, :5]
    model = jn.NMF(8, max_iter=50, random_state=0)  # init None -> random when k > min(m, n)
    W = _quiet(model.fit_transform, small)
    assert W.shape == (4, 8) and model.components_.shape == (8, 5)
    assert np.all(np.isfinite(W)) and model.reconstruction_err_ < np.linalg.norm(small)
    assert model.transform(small[:1]).shape == (1, 8)  # fewer samples than components
    W0, H0 = np.full((4, 8), 0.3), np.full((8, 5), 0.3)
    custom = jn.NMF("auto", init="custom", max_iter=5)
    assert _quiet(custom.fit_transform, small, W=W0, H=H0).shape == (4, 8)
    assert custom.n_components_ == 8


def test_dtypes_and_recompilation(data):
    X32 = data.astype(np.float32)
    model = _quiet(jn.NMF(K_, max_iter=20).fit, X32)
    assert model.components_.dtype == np.float32
    assert model.transform(X32).dtype == np.float32
    assert model.transform(data).dtype == np.float64  # computed in the dtype of X
    model.transform(data[:7])
    size = _run.run_compiled._cache_size()
    model.transform(positive_data(7, N_, seed=9))  # new data of the same shape
    assert _run.run_compiled._cache_size() == size


def test_inverse_transform_and_feature_names(data):
    model = _quiet(jn.NMF(K_, max_iter=50, random_state=0).fit, data)
    W = model.transform(data)
    np.testing.assert_allclose(model.inverse_transform(W), W @ model.components_)
    names = model.get_feature_names_out()
    assert list(names) == ["nmf0", "nmf1", "nmf2"]


def test_inverse_transform_rejects_a_W_no_transform_gives(data):
    sparse = pytest.importorskip("scipy.sparse")
    model = _quiet(jn.NMF(K_, max_iter=50, random_state=0).fit, data)
    W = model.transform(data)
    with pytest.raises(ValueError, match=rf"shape \(n_samples, {K_}\).*got shape \({M_}, 2\)"):
        model.inverse_transform(W[:, :2])
    with pytest.raises(ValueError, match=r"got shape \(2, 5\)"):
        model.inverse_transform(sparse.csr_matrix(np.ones((2, 5))))
    with pytest.raises(ValueError, match="2-D"):
        model.inverse_transform(W[0])
    for bad in (np.nan, np.inf):
        W_bad = W.copy()
        W_bad[3, 1] = bad
        with pytest.raises(ValueError, match="W has 1 NaN or infinite"):
            model.inverse_transform(W_bad)
        with pytest.raises(ValueError, match="W has 1 NaN or infinite"):
            model.inverse_transform(sparse.csr_matrix(W_bad))
    with pytest.raises(ValueError, match="Negative values in W"):
        model.inverse_transform(W - 1.0)
    # valid W, dense or sparse, as before
    np.testing.assert_allclose(
        model.inverse_transform(sparse.csr_matrix(W)), W @ model.components_, rtol=1e-12
    )


def test_feature_names_from_a_dataframe(data):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    frame = pd.DataFrame(data, columns=[f"f{i}" for i in range(N_)])
    model = _quiet(jn.NMF(K_, max_iter=20).fit, frame)
    assert list(model.feature_names_in_) == list(frame.columns)


# --- without scikit-learn ---------------------------------------------------------------------

_NO_SKLEARN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["sklearn"] = None  # `import sklearn` (and any submodule) now fails
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import jaxnmf as jn
    from jaxnmf import estimator

    X = np.random.default_rng(0).random((12, 5))
    model = jn.NMF(3, solver="hals", max_iter=50, random_state=0)
    try:
        model.transform(X)
        unfitted = "no error"
    except estimator.NotFittedError as e:
        unfitted = type(e).__name__
    W = model.fit_transform(X)
    T = model.transform(X[:4])
    model.set_params(n_components=2, alpha_W=0.1)
    print(json.dumps({
        "have_sklearn": estimator.HAVE_SKLEARN,
        "sklearn_loaded": any(
            k.startswith("sklearn") and v is not None for k, v in sys.modules.items()
        ),
        "W": list(W.shape), "T": list(T.shape), "dtype": str(W.dtype),
        "params": {k: v for k, v in model.get_params().items() if k in ("n_components", "alpha_W")},
        "repr": repr(model),
        "names": list(model.get_feature_names_out()),
        "unfitted": unfitted,
        "err": model.reconstruction_err_,
    }))
    """
)


def test_estimator_works_without_scikit_learn():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _NO_SKLEARN_SCRIPT],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["have_sklearn"] is False and out["sklearn_loaded"] is False
    assert out["W"] == [12, 3] and out["T"] == [4, 3] and out["dtype"] == "float64"
    assert out["params"] == {"n_components": 2, "alpha_W": 0.1}
    assert out["repr"] == "NMF(alpha_W=0.1, max_iter=50, n_components=2, random_state=0, " + (
        "solver='hals')"
    )
    assert out["names"] == ["nmf0", "nmf1", "nmf2"]
    assert out["unfitted"] == "NotFittedError"
    assert 0 < out["err"] < np.linalg.norm(np.random.default_rng(0).random((12, 5)))


ADAM = jn.solvers.projected(optax.adam(1e-2))


def test_any_solver_object_fits_and_transforms(data):
    model = _quiet(jn.NMF(K_, solver=ADAM, max_iter=100, random_state=0).fit, data)
    H = model.components_
    W = model.transform(data)
    W0 = np.full_like(W, np.sqrt(data.mean() / K_))  # transform's starting point
    assert np.all(W >= 0)
    f, f0 = np.sum((data - W @ H) ** 2), np.sum((data - W0 @ H) ** 2)
    assert f < 0.8 * f0, (f, f0)


def test_fitted_estimator_with_an_optax_solver_pickles(data):
    """A fitted NMF holding projected(optax.adam(1e-2)) pickles (the solver by reference to
    optax's code and its hyperparameters); the loaded estimator transforms as the original."""
    import pickle

    model = _quiet(
        jn.NMF(K_, solver=jn.solvers.projected(optax.adam(1e-2)), max_iter=50, random_state=0).fit,
        data,
    )
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded.transform(data), model.transform(data))
    assert loaded.get_params()["solver"] == model.solver


@pytest.mark.parametrize("solver", ["accelerated_hals", "anls"])
def test_other_named_solvers_fit_and_transform(data, solver):
    """Solvers without a W-only update of their own run their full step in transform, with
    the new H discarded: still a W-subproblem solver, as good as the fitted W."""
    model = jn.NMF(K_, solver=solver, max_iter=300, tol=1e-6, random_state=0)
    W_fit = _quiet(model.fit_transform, data)
    H = model.components_
    W = model.transform(data)
    assert W.shape == (M_, K_) and np.all(W >= 0)
    f_fit, f = np.sum((data - W_fit @ H) ** 2), np.sum((data - W @ H) ** 2)
    assert f <= 1.01 * f_fit, (f, f_fit)
    assert np.linalg.norm(W - W_fit) / np.linalg.norm(W_fit) < 0.05


def test_random_state_is_drawn_only_when_used(data):
    rng = np.random.RandomState(0)
    _quiet(jn.NMF(K_, init="nndsvda", max_iter=5, random_state=rng).fit, data)
    assert rng.randint(100) == np.random.RandomState(0).randint(100)  # untouched
    a = _quiet(
        jn.NMF(K_, init="random", max_iter=5, random_state=np.random.RandomState(1)).fit, data
    )
    b = _quiet(
        jn.NMF(K_, init="random", max_iter=5, random_state=np.random.RandomState(1)).fit, data
    )
    np.testing.assert_array_equal(a.components_, b.components_)
    with pytest.raises(ValueError, match="random_state"):
        jn.NMF(K_, random_state="seed").fit(data)


# --- transform's W update is the solver's own (no drifted copy) ----------------------------


def test_transform_w_update_equals_mu_w_update_bitwise():
    """At β = 0.5 the transform's W update used ``r ** γ`` where MU uses ``positive_power``:
    77 of 300 entries differed. Now both are ``solvers._mu.mu_ratio``."""
    import jax.numpy as jnp

    from jaxnmf._testing import random_factors
    from jaxnmf.solvers import MU, Problem

    V = positive_data(30, 20, seed=21)
    W, H = random_factors(30, 20, 10, seed=21)
    problem = Problem(V, None, jn.losses.beta(0.5).astype(np.float64), jnp.ones(10, bool))
    mu, fixed = MU(), jn.solvers.one_side(MU(), "W")
    W_mu = jax.jit(lambda W, H: mu.step(problem, W, H, mu.init(problem, W, H))[0])(W, H)
    W_fx = jax.jit(lambda W, H: fixed.step(problem, W, H, fixed.init(problem, W, H))[0])(W, H)
    np.testing.assert_array_equal(np.asarray(W_fx), np.asarray(W_mu))


def test_float32_transform_stops_where_the_direct_objective_stops():
    """float32 MU transform at tol = 1e-6 took its objective from Gram products without fit's
    float32 guard and stopped at 118 iterations on digits where ‖X - WH‖² evaluated directly
    stops at 152. Oracle: the same W-updates and stopping rule in NumPy float32."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    model = _quiet(jn.NMF(10, solver="mu", init="random", random_state=0, max_iter=50).fit, X)
    model.set_params(tol=1e-6, max_iter=400)
    _, n_iter, _ = model._solve_W(X, None)
    H = model.components_
    W = np.full((X.shape[0], 10), np.sqrt(X.mean() / 10), np.float32)
    HHt, XHt = H @ H.T, X @ H.T
    f_prev, n_numpy = np.float32(np.sum((X - W @ H) ** 2)), 400
    for it in range(1, 401):
        W = W * (XHt / (W @ HHt))
        f = np.float32(np.sum((X - W @ H) ** 2))
        if abs(f_prev - f) <= 1e-6 * abs(f_prev):
            n_numpy = it
            break
        f_prev = f
    assert abs(n_iter - n_numpy) <= 3, (n_iter, n_numpy)
