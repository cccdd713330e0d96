"""The suite every solver passes (STYLE.md §3.9), plus each solver's own oracle."""

import warnings

import jax
import numpy as np
import optax
import pytest

import jaxnmf as jn
from jaxnmf import _run
from jaxnmf._testing import np_mu_step, planted, positive_data, random_factors

ADAM = jn.solvers.projected(optax.adam(1e-2))  # created once: optimizers compare by identity
SOLVERS = {
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

M_, N_, K_ = 20, 15, 3


@pytest.fixture(scope="module")
def data():
    return positive_data(M_, N_, seed=7)


# --- properties shared by every solver --------------------------------------------------------


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_jit_and_eager_agree(solver, data):
    kw = dict(solver=SOLVERS[solver], max_iter=2, tol=0.0, seed=1)  # eager is slow: 2 suffice
    jitted = jn.fit(data, K_, **kw)
    with jax.disable_jit():
        eager = jn.fit(data, K_, **kw)
    np.testing.assert_allclose(eager.W, jitted.W, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(eager.H, jitted.H, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(eager.losses, jitted.losses, rtol=1e-10)


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_result_is_non_negative_finite_and_consistent(solver, data):
    res = jn.fit(data, K_, solver=SOLVERS[solver], max_iter=60, tol=0.0, seed=2)
    assert res.W.shape == (M_, K_) and res.H.shape == (K_, N_)
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert res.status == jn.Status.MAX_ITER and res.n_iter == 60
    assert res.losses.shape == (60,)
    np.testing.assert_allclose(res.losses[-1], np.sum((data - res.W @ res.H) ** 2), rtol=1e-10)
    assert res.loss == res.losses[-1]
    assert res.losses[-1] < res.initial_loss
    # The KKT residual is recomputed here from the formula (Lin 2007, eq. 12).
    R = res.W @ res.H - data
    gW, gH = 2 * R @ res.H.T, 2 * res.W.T @ R
    pgW = np.where(res.W > 0, gW, np.minimum(gW, 0))
    pgH = np.where(res.H > 0, gH, np.minimum(gH, 0))
    np.testing.assert_allclose(
        res.kkt_residual, np.sqrt(np.sum(pgW**2) + np.sum(pgH**2)), rtol=1e-8
    )


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_float32_in_float32_out(solver, data):
    res = jn.fit(data.astype(np.float32), K_, solver=SOLVERS[solver], max_iter=5)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert res.losses.dtype == np.float32


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_same_seed_is_bit_identical_and_new_data_does_not_recompile(solver, data):
    kw = dict(solver=SOLVERS[solver], max_iter=10, seed=3)
    a = jn.fit(data, K_, **kw)
    size = _run.run_compiled._cache_size()
    b = jn.fit(data, K_, **kw)
    other = jn.fit(positive_data(M_, N_, seed=99), K_, **kw)  # new data, same shapes
    c = jn.fit(data, K_, **{**kw, "seed": 4})  # new seed
    assert _run.run_compiled._cache_size() == size
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)
    assert np.array_equal(a.losses, b.losses)
    assert not np.array_equal(a.W, c.W) and not np.array_equal(a.W, other.W)


@pytest.mark.parametrize(
    "solver", ["mu", "hals", "pg", "accelerated_mu", "accelerated_hals", "nesterov", "anls"]
)
def test_planted_low_rank_is_recovered(solver):
    V, _, _ = planted(24, 18, 3, seed=0)
    max_iter = {"mu": 20000, "accelerated_mu": 5000, "hals": 3000}.get(solver, 500)
    res = jn.fit(V, 3, solver=solver, max_iter=max_iter, tol=0.0, init="nndsvda", seed=0)
    rel = np.linalg.norm(V - res.W @ res.H) / np.linalg.norm(V)
    assert rel < 1e-6, (solver, rel, res.n_iter)


def test_nonfinite_run_reports_status_and_keeps_finite_factors(data):
    exploding = jn.solvers.projected(optax.sgd(1e150))
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        res = jn.fit(data, K_, solver=exploding, max_iter=50, tol=0.0)
    assert res.status == "nonfinite"
    assert res.n_iter < 50
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert not np.isfinite(res.losses[-1])
    with pytest.raises(FloatingPointError):
        jn.fit(data, K_, solver=exploding, max_iter=50, tol=0.0, on_failure="raise")


def test_tolerance_stops_every_solver_by_the_same_rule(data):
    for solver in SOLVERS.values():
        # max_iter as in test_result_is_non_negative_finite_and_consistent (tol and seed are
        # traced): the compiled programs are shared. Measured: 13-37 iterations, adam 111.
        max_iter = 200 if solver is ADAM else 60
        res = jn.fit(data, K_, solver=solver, max_iter=max_iter, tol=1e-3, seed=0)
        assert res.status == "converged"
        f = np.concatenate([[res.initial_loss], res.losses])
        # stopped at the first iteration whose relative change fell below tol, not before
        rel = np.abs(np.diff(f)) / np.abs(f[:-1])
        assert rel[-1] < 1e-3 and np.all(rel[:-1] >= 1e-3)


def test_pg_tol_stops_on_projected_gradient(data):
    res = jn.fit(data, K_, solver="hals", max_iter=2000, tol=0.0, pg_tol=1e-2)
    assert res.status == "converged"
    assert res.kkt_history is not None and res.kkt_history.shape == (res.n_iter,)
    assert res.kkt_residual <= 1e-2 * res.initial_kkt_residual
    assert res.kkt_history[-2] > 1e-2 * res.initial_kkt_residual


# --- multiplicative updates --------------------------------------------------------------------

MU_LOSSES = {
    "frobenius": (jn.losses.frobenius(), 2),
    "kl": (jn.losses.kl(), 1),
    "is": (jn.losses.itakura_saito(), 0),
    "beta0.5": (jn.losses.beta(0.5), 0.5),
    "beta1.5": (jn.losses.beta(1.5), 1.5),
    "beta3": (jn.losses.beta(3), 3),
}
PENALTIES = 0.3 * jn.losses.l1("W") + 0.2 * jn.losses.l1("H") + 0.5 * jn.losses.l2("W")


@pytest.mark.parametrize("with_mask", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("penalized", [False, True], ids=["plain", "penalized"])
@pytest.mark.parametrize("name", list(MU_LOSSES))
def test_mu_never_increases_the_objective(name, penalized, with_mask):
    V = positive_data(M_, N_, seed=11)
    mask = None
    if with_mask:
        mask = (np.random.default_rng(2).random(V.shape) > 0.25).astype(float)
    loss = MU_LOSSES[name][0] + (PENALTIES if penalized else 0)
    res = jn.fit(V, K_, loss=loss, solver="mu", max_iter=200, tol=0.0, mask=mask, seed=5)
    f = np.concatenate([[res.initial_loss], res.losses])
    assert np.all(np.diff(f) <= 1e-12 * f[0]), np.max(np.diff(f))
    assert f[-1] < 0.9 * f[0]


@pytest.mark.parametrize("name", list(MU_LOSSES))
def test_mu_step_matches_numpy_oracle(name):
    V = positive_data(M_, N_, seed=12)
    W0, H0 = random_factors(M_, N_, K_, seed=12)
    mask = (np.random.default_rng(3).random(V.shape) > 0.2).astype(float)
    loss, b = MU_LOSSES[name]
    loss = loss + 0.3 * jn.losses.l1("W") + 0.1 * jn.losses.l2("H")
    res = jn.fit(V, K_, loss=loss, solver="mu", init=(W0, H0), max_iter=1, tol=0.0, mask=mask)
    # frobenius() = 2·d_2: relative to d_2's oracle its penalties act at half strength.
    scale = 2.0 if name == "frobenius" else 1.0
    W1, H1 = np_mu_step(V, W0, H0, b, l1_W=0.3 / scale, l2_H=0.1 / scale, M=mask)
    np.testing.assert_allclose(res.W, W1, rtol=1e-10)
    np.testing.assert_allclose(res.H, H1, rtol=1e-10)


@pytest.mark.parametrize("beta", [0, 0.5, 1, 1.5, 2, 3])
@pytest.mark.parametrize("penalized", [False, True], ids=["plain", "penalized"])
def test_mu_matches_scikit_learn(beta, penalized):
    nmf = pytest.importorskip("sklearn.decomposition")
    sk_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    V = positive_data(M_, N_, seed=13)
    W0, H0 = random_factors(M_, N_, K_, seed=13)
    alpha_W, alpha_H, l1_ratio = (0.01, 0.02, 0.4) if penalized else (0.0, 0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs all iterations
        W, H, _ = nmf.non_negative_factorization(
            V,
            W0.copy(),
            H0.copy(),
            n_components=K_,
            init="custom",
            solver="mu",
            beta_loss=beta,
            max_iter=50,
            tol=0.0,
            alpha_W=alpha_W,
            alpha_H=alpha_H,
            l1_ratio=l1_ratio,
        )
    m, n = V.shape
    loss = (
        jn.losses.beta(beta)
        + (n * alpha_W * l1_ratio) * jn.losses.l1("W")
        + (m * alpha_H * l1_ratio) * jn.losses.l1("H")
        + (n * alpha_W * (1 - l1_ratio)) * jn.losses.l2("W")
        + (m * alpha_H * (1 - l1_ratio)) * jn.losses.l2("H")
    )
    res = jn.fit(V, K_, loss=loss, solver="mu", init=(W0, H0), max_iter=50, tol=0.0)
    ours = float(jn.metrics.beta_divergence(V, res.W, res.H, beta))
    np.testing.assert_allclose(ours, sk_nmf._beta_divergence(V, W, H, beta), rtol=1e-6)
    np.testing.assert_allclose(res.W, W, rtol=1e-6, atol=1e-12)


# --- HALS, PG, projected ----------------------------------------------------------------------


def _np_hals_step(V, W, H, a=2.0, M=None):
    """Column-wise exact minimization of a·½‖M∘(V - WH)‖², from the definition."""
    W, H = W.copy(), H.copy()
    M = np.ones_like(V) if M is None else M
    for j in range(W.shape[1]):
        R = V - W @ H + np.outer(W[:, j], H[j])
        W[:, j] = np.maximum((M * R) @ H[j] / (M @ H[j] ** 2), 0)
    for j in range(H.shape[0]):
        R = V - W @ H + np.outer(W[:, j], H[j])
        H[j] = np.maximum(W[:, j] @ (M * R) / (W[:, j] ** 2 @ M), 0)
    return W, H


def _np_hals_impute_step(V, W, H, M):
    """HALS on the imputation majorizer, the EM iteration for missing entries: the hidden
    entries filled once with the iteration's starting WH, then both factors' unmasked sweeps
    on that filled V."""
    filled = M * V + (1 - M) * (W @ H)
    W, _ = _np_hals_step(filled, W, H)
    for j in range(H.shape[0]):
        R = filled - W @ H + np.outer(W[:, j], H[j])
        H[j] = np.maximum(W[:, j] @ R / (W[:, j] ** 2).sum(), 0)
    return W, H


@pytest.mark.parametrize("mode", ["dense", "masked", "impute"])
def test_hals_step_matches_numpy_oracle(mode):
    V = positive_data(M_, N_, seed=14)
    W0, H0 = random_factors(M_, N_, K_, seed=14)
    mask = (np.random.default_rng(4).random(V.shape) > 0.3).astype(float)
    solver = jn.solvers.hals(masked="impute" if mode == "impute" else "exact")
    mask = None if mode == "dense" else mask
    # Two iterations: the second starts from the product WH that the first carried over.
    res = jn.fit(V, K_, solver=solver, init=(W0, H0), max_iter=2, tol=0.0, mask=mask)
    if mode == "impute":
        first = _np_hals_impute_step(V, W0, H0.copy(), mask)
        W_exact, _ = _np_hals_step(V, W0, H0, M=mask)
        assert np.abs(first[0] - W_exact).max() > 1e-3  # the masked modes are different steps
        W1, H1 = _np_hals_impute_step(V, *first, mask)
    else:
        W1, H1 = _np_hals_step(V, *_np_hals_step(V, W0, H0, M=mask), M=mask)
    np.testing.assert_allclose(res.W, W1, rtol=1e-10)
    np.testing.assert_allclose(res.H, H1, rtol=1e-10)


def test_hals_masked_mode_is_checked():
    with pytest.raises(ValueError, match=r"masked must be one of \('exact', 'impute'\)"):
        jn.solvers.hals(masked="em")
    with pytest.raises(ValueError, match="masked must be one of"):
        jn.solvers.hals_block(masked=None)


def test_hals_with_mask_ignores_masked_values():
    V = positive_data(M_, N_, seed=15)
    mask = (np.random.default_rng(6).random(V.shape) > 0.3).astype(float)
    V2 = np.where(mask > 0, V, np.nan)  # missing entries may even be NaN
    a = jn.fit(V, K_, solver="hals", mask=mask, max_iter=30, tol=0.0)
    b = jn.fit(V2, K_, solver="hals", mask=mask, max_iter=30, tol=0.0)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


def test_pg_solves_each_subproblem_to_its_tolerance():
    """After one outer step, the W sub-problem's projected gradient is below Lin's tolerance."""
    V = positive_data(M_, N_, seed=16)
    W0, H0 = random_factors(M_, N_, K_, seed=16)
    res = jn.fit(V, K_, solver="pg", init=(W0, H0), max_iter=1, tol=0.0)
    g0W, g0H = 2 * (W0 @ H0 - V) @ H0.T, 2 * W0.T @ (W0 @ H0 - V)
    tol = 1e-3 * np.sqrt(np.sum(g0W**2) + np.sum(g0H**2))
    gH = 2 * res.W.T @ (res.W @ res.H - V)  # H was solved last, with the final W
    pgH = np.where(res.H > 0, gH, np.minimum(gH, 0))
    assert np.linalg.norm(pgH) < tol
    assert res.loss < res.initial_loss


def test_pg_handles_any_loss_and_decreases_it():
    V = positive_data(M_, N_, seed=17)
    for loss in [jn.losses.kl(), jn.losses.beta(1.5) + 0.1 * jn.losses.l1("H")]:
        res = jn.fit(V, K_, loss=loss, solver="pg", max_iter=30, tol=0.0)
        f = np.concatenate([[res.initial_loss], res.losses])
        assert np.all(np.diff(f) <= 1e-12 * f[0])  # Armijo steps never increase f


def test_projected_sgd_step_matches_formula():
    V = positive_data(M_, N_, seed=18)
    W0, H0 = random_factors(M_, N_, K_, seed=18)
    lr = 1e-3
    res = jn.fit(
        V, K_, solver=jn.solvers.projected(optax.sgd(lr)), init=(W0, H0), max_iter=1, tol=0.0
    )
    R = W0 @ H0 - V
    # The step is taken on V / max V with factors / √max V (jaxnmf._scale): in V's units a
    # step of lr on ‖V - WH‖² (β = 2) is a step of lr / max V.
    step = lr / V.max()
    np.testing.assert_allclose(res.W, np.maximum(W0 - step * 2 * R @ H0.T, 0), rtol=1e-10)
    np.testing.assert_allclose(res.H, np.maximum(H0 - step * 2 * W0.T @ R, 0), rtol=1e-10)


# --- initialization ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "nndsvd", "nndsvda", "nndsvdar"])
def test_init_matches_scikit_learn_construction(method):
    sk_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    V = positive_data(M_, N_, seed=19)
    key = jax.random.key(0)
    W0, H0 = jn.init.initialize(V, key, K_, K_, method)
    W0, H0 = np.asarray(W0), np.asarray(H0)
    assert W0.shape == (M_, K_) and H0.shape == (K_, N_)
    assert np.all(W0 >= 0) and np.all(H0 >= 0)
    if method == "random":
        # |N(0,1)|·sqrt(mean/k): the mean of |N(0,1)| is sqrt(2/π)
        scale = np.sqrt(V.mean() / K_) * np.sqrt(2 / np.pi)
        assert abs(np.concatenate([W0.ravel(), H0.ravel()]).mean() / scale - 1) < 0.2
    elif method in ("nndsvd", "nndsvda"):
        Ws, Hs = sk_nmf._initialize_nmf(V, K_, init=method, random_state=0)
        np.testing.assert_allclose(W0, Ws, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(H0, Hs, rtol=1e-6, atol=1e-9)
    else:
        Ws, _ = sk_nmf._initialize_nmf(V, K_, init="nndsvd", random_state=0)
        np.testing.assert_allclose(W0[Ws > 0], Ws[Ws > 0], rtol=1e-6)
        assert np.all(W0[Ws == 0] <= V.mean())  # small fill


@pytest.mark.parametrize("method", ["nndsvd", "nndsvda"])
def test_nndsvd_of_wide_dense_v_takes_the_randomized_svd_and_matches_scikit_learn(
    monkeypatch, method
):
    # 120 columns >= 4 × (k + 10): the randomized SVD (scikit-learn takes one too); with a
    # spectral gap (planted rank 4 plus small noise) both recover the leading triplets.
    sk_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    calls = []
    real = jn.init._randomized_svd
    monkeypatch.setattr(jn.init, "_randomized_svd", lambda *a: calls.append(1) or real(*a))
    V, _, _ = planted(200, 120, 4, seed=5)
    V = V + 1e-3 * np.random.default_rng(6).random(V.shape)
    W0, H0 = jn.init.initialize(V, jax.random.key(0), 3, 3, method)
    assert calls
    Ws, Hs = sk_nmf._initialize_nmf(V, 3, init=method, random_state=0)
    np.testing.assert_allclose(np.asarray(W0), Ws, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(H0), Hs, rtol=1e-6, atol=1e-9)


def test_random_init_is_prefix_stable_across_widths():
    """Component j depends only on (key, j): a sweep padded to k_max reuses the same draws."""
    V = positive_data(M_, N_, seed=20)
    key = jax.random.key(3)
    W3, H3 = jn.init.random(V, key, 3, 3)
    W8, H8 = jn.init.random(V, key, 8, 3)
    np.testing.assert_array_equal(np.asarray(W8)[:, :3], np.asarray(W3))
    np.testing.assert_array_equal(np.asarray(H8)[:3], np.asarray(H3))
    assert np.all(np.asarray(W8)[:, 3:] == 0) and np.all(np.asarray(H8)[3:] == 0)


# --- a real data set ---------------------------------------------------------------------------


def test_hals_on_digits_is_within_one_percent_of_scikit_learn_cd():
    datasets = pytest.importorskip("sklearn.datasets")
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = datasets.load_digits().data.astype(np.float64)
    sk = decomposition.NMF(10, solver="cd", init="nndsvda", max_iter=2000, tol=1e-6).fit(X)
    sk_rel = sk.reconstruction_err_ / np.linalg.norm(X)
    res = jn.fit(X, 10, solver="hals", init="nndsvda", max_iter=2000, tol=1e-6)
    ours = float(jn.metrics.relative_error(X, res.W, res.H))
    assert ours <= 1.01 * sk_rel, (ours, sk_rel)


@pytest.mark.parametrize("solver", ["pg", "hals", "mu"])
def test_float32_follows_float64(solver):
    """Regression: the step search and the objective must not lose the decrease to float32
    cancellation (PG stalled; the Gram-form objective stopped runs early)."""
    V = positive_data(60, 40, seed=22) * 100
    W0, H0 = random_factors(60, 40, 6, seed=22)
    kw = dict(solver=solver, max_iter=40, tol=0.0)
    r64 = jn.fit(V, 6, init=(W0, H0), **kw)
    r32 = jn.fit(V.astype(np.float32), 6, init=(W0.astype(np.float32), H0.astype(np.float32)), **kw)
    np.testing.assert_allclose(r32.losses, r64.losses, rtol=2e-4)
    direct = np.sum((V - r32.W.astype(np.float64) @ r32.H.astype(np.float64)) ** 2)
    np.testing.assert_allclose(r32.loss, direct, rtol=1e-5)


GRAM_SOLVERS = ["accelerated_mu", "accelerated_hals", "nesterov", "anls", "greedy_cd"]


@pytest.mark.parametrize("solver", GRAM_SOLVERS)
def test_gram_solvers_reject_other_losses_and_stored_masks(solver, data):
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="Gram products"):
        jn.fit(data, K_, solver=solver, loss="kl")
    with pytest.raises(ValueError, match="mask='stored'"):
        jn.fit(sp.csr_matrix(data), K_, solver=solver, mask="stored")


def test_gram_solvers_take_masks_by_the_imputation_majorizer(data):
    """With a mask, blocks that work from statistics alone get those of the imputation
    majorizer (hidden entries filled with the current WH): each step is then a descent step
    of the *masked* objective, whose values the driver reports — checked against NumPy —
    and the hidden entries' values in V do not matter."""
    mask = np.random.default_rng(5).random(data.shape) > 0.3
    junk = np.where(mask, data, 1e3)
    for solver in ("accelerated_hals", "anls", "greedy_cd", jn.solvers.hals(masked="impute")):
        res = jn.fit(junk, K_, solver=solver, mask=mask, max_iter=30, tol=0.0, seed=2)
        f = np.concatenate([[res.initial_loss], res.losses])
        assert np.all(np.diff(f) <= 1e-12 * f[0]), solver
        masked = np.sum(mask * (data - res.W @ res.H) ** 2)  # frobenius() is Σ, not ½Σ
        np.testing.assert_allclose(res.loss, masked, rtol=1e-10)
        clean = jn.fit(data, K_, solver=solver, mask=mask, max_iter=30, tol=0.0, seed=2)
        np.testing.assert_allclose(res.W, clean.W, rtol=1e-10, atol=1e-12)


def test_accelerated_variants_never_increase_the_objective(data):
    loss = jn.losses.frobenius() + 0.1 * jn.losses.l1("H") + 0.2 * jn.losses.l2("W")
    for solver in ("accelerated_mu", "accelerated_hals", "anls"):
        res = jn.fit(data, K_, solver=solver, loss=loss, max_iter=50, tol=0.0)
        f = np.concatenate([[res.initial_loss], res.losses])
        assert np.all(np.diff(f) <= 1e-12 * f[0]), solver


def test_accelerated_hals_with_alpha_zero_is_hals(data):
    a = jn.fit(data, K_, solver=jn.solvers.accelerated_hals(alpha=0.0), max_iter=10, tol=0.0)
    b = jn.fit(data, K_, solver="hals", max_iter=10, tol=0.0)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-12)


def test_bpp_matches_scipy_nnls():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(8)
    B, C = rng.random((30, 6)), rng.random((30, 9)) - 0.3
    X, rounds = jn.solvers.nnls_bpp(B.T @ B, B.T @ C, np.ones(6, bool), 40)
    for j in range(C.shape[1]):
        np.testing.assert_allclose(X[:, j], optimize.nnls(B, C[:, j])[0], atol=1e-12)
    assert 0 < int(rounds) < 40


def test_anls_step_solves_each_factor_exactly():
    """After one ANLS step, H is the exact NNLS solution for the new W (KKT holds for H)."""
    V = positive_data(M_, N_, seed=23)
    W0, H0 = random_factors(M_, N_, K_, seed=23)
    res = jn.fit(V, K_, solver="anls", init=(W0, H0), max_iter=1, tol=0.0)
    gH = 2 * res.W.T @ (res.W @ res.H - V)
    pgH = np.where(res.H > 0, gH, np.minimum(gH, 0))
    assert np.linalg.norm(pgH) < 1e-9 * np.linalg.norm(gH)
