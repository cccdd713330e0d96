"""Every loss term: value against an independent NumPy formula, the split gradient against
``jax.grad`` of the value, and the split parts non-negative; with and without a mask."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf._testing import np_beta_divergence, positive_data, random_factors

M_, N_, K_ = 7, 6, 3


def _problem(with_mask):
    V = positive_data(M_, N_, seed=3)
    W, H = random_factors(M_, N_, K_, seed=3)
    mask = None
    if with_mask:
        mask = np.random.default_rng(5).random((M_, N_))
        mask[mask < 0.3] = 0.0  # some entries missing, the others weighted
    return V, W, H, mask


def _np_value(name, V, W, H, M):
    WH = W @ H
    oracles = {
        "frobenius": lambda: float(np.sum((np.ones_like(V) if M is None else M) * (V - WH) ** 2)),
        "kl": lambda: np_beta_divergence(V, WH, 1, M),
        "is": lambda: np_beta_divergence(V, WH, 0, M),
        "beta0.5": lambda: np_beta_divergence(V, WH, 0.5, M),
        "beta1.5": lambda: np_beta_divergence(V, WH, 1.5, M),
        "beta3": lambda: np_beta_divergence(V, WH, 3, M),
        "beta-0.5": lambda: np_beta_divergence(V, WH, -0.5, M),
        "l1W": lambda: float(np.sum(np.abs(W))),
        "l1H": lambda: float(np.sum(np.abs(H))),
        "l2W": lambda: 0.5 * float(np.sum(W**2)),
        "l2H": lambda: 0.5 * float(np.sum(H**2)),
    }
    return oracles[name]()


LOSSES = {
    "frobenius": jn.losses.frobenius(),
    "kl": jn.losses.kl(),
    "is": jn.losses.itakura_saito(),
    "beta0.5": jn.losses.beta(0.5),
    "beta1.5": jn.losses.beta(1.5),
    "beta3": jn.losses.beta(3),
    "beta-0.5": jn.losses.beta(-0.5),
    "l1W": jn.losses.l1("W"),
    "l1H": jn.losses.l1("H"),
    "l2W": jn.losses.l2("W"),
    "l2H": jn.losses.l2("H"),
}


@pytest.mark.parametrize("with_mask", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_term_value_matches_numpy(name, with_mask):
    V, W, H, mask = _problem(with_mask)
    got = float(LOSSES[name].value(V, W, H, mask))
    np.testing.assert_allclose(got, _np_value(name, V, W, H, mask), rtol=1e-10)


@pytest.mark.parametrize("with_mask", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("wrt", ["W", "H"])
def test_split_gradient_is_the_gradient_and_non_negative(name, with_mask, wrt):
    V, W, H, mask = _problem(with_mask)
    loss = LOSSES[name]
    pos, neg = loss.split_grad(V, W, H, mask, wrt)
    argnum = 1 if wrt == "W" else 2
    expected = jax.grad(lambda V, W, H: loss.value(V, W, H, mask), argnums=argnum)(V, W, H)
    np.testing.assert_allclose(pos - neg, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.asarray(pos) >= 0) and np.all(np.asarray(neg) >= 0)
    assert pos.shape == (W if wrt == "W" else H).shape


def test_named_losses_are_the_beta_family():
    V, W, H, _ = _problem(False)
    frob = float(jn.losses.frobenius().value(V, W, H))
    half = float(jn.losses.beta(2).value(V, W, H))
    np.testing.assert_allclose(frob, 2 * half, rtol=1e-12)
    for name, b in [("kl", 1.0), ("itakura_saito", 0.0), ("is", 0.0)]:
        np.testing.assert_allclose(
            float(jn.losses.as_loss(name).value(V, W, H)),
            float(jn.losses.beta(b).value(V, W, H)),
            rtol=1e-12,
        )
    assert jn.losses.as_loss(1.5).terms == jn.losses.beta(1.5).terms


def test_composition_adds_weighted_terms():
    V, W, H, mask = _problem(True)
    loss = jn.losses.kl() + 0.1 * jn.losses.l1("H") + jn.losses.l2("W") * 0.5
    expected = np_beta_divergence(V, W @ H, 1, mask) + 0.1 * np.sum(H) + 0.5 * 0.5 * np.sum(W**2)
    np.testing.assert_allclose(float(loss.value(V, W, H, mask)), expected, rtol=1e-10)
    assert repr(loss) == "Loss(1 * kl + 0.1 * l1(H) + 0.5 * l2(W))"
    with pytest.raises(TypeError):
        jn.losses.kl() * "2"


def test_weights_are_traced_not_static():
    """Changing a penalty weight must not recompile: weights are pytree leaves."""
    traces = []

    @jax.jit
    def value(loss, V, W, H):
        traces.append(1)
        return loss.value(V, W, H)

    V, W, H, _ = _problem(False)
    a = value(jn.losses.kl() + 0.1 * jn.losses.l1("H"), V, W, H)
    b = value(jn.losses.kl() + 0.7 * jn.losses.l1("H"), V, W, H)
    assert len(traces) == 1
    np.testing.assert_allclose(float(b) - float(a), 0.6 * np.sum(H), rtol=1e-10)


def test_masked_entries_do_not_count():
    V, W, H, mask = _problem(True)
    V2 = V.copy()
    V2[mask == 0] = 123.0
    for loss in LOSSES.values():
        np.testing.assert_allclose(
            float(loss.value(V, W, H, mask)), float(loss.value(V2, W, H, mask)), rtol=1e-12
        )
        # (the API zeroes masked entries; at the loss level they must not count either)


@pytest.mark.parametrize("beta", [0, 0.5, 1, 1.5, 2, 3])
def test_beta_divergence_matches_scikit_learn(beta):
    sk_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    V, W, H, _ = _problem(False)
    if beta >= 1:
        V = V.copy()
        V[0, :3] = 0.0  # zeros are allowed for β > 0
    ours = float(jn.metrics.beta_divergence(V, W, H, beta))
    np.testing.assert_allclose(ours, sk_nmf._beta_divergence(V, W, H, beta), rtol=1e-10)


def test_custom_term_uses_jax_grad():
    def smooth_h(V, W, H, mask):  # temporal smoothness of the activations
        return jnp.sum(jnp.square(H[:, 1:] - H[:, :-1]))

    loss = jn.losses.frobenius() + 0.3 * jn.losses.custom(smooth_h, "smooth")
    V, W, H, _ = _problem(False)
    expected = np.sum((V - W @ H) ** 2) + 0.3 * np.sum(np.diff(H, axis=1) ** 2)
    np.testing.assert_allclose(float(loss.value(V, W, H)), expected, rtol=1e-10)
    pos, neg = loss.split_grad(V, W, H, None, "H")
    g = jax.grad(lambda H: loss.value(V, W, H))(H)
    np.testing.assert_allclose(pos - neg, g, rtol=1e-10, atol=1e-12)


def test_mu_exponent_follows_fevotte_idier():
    assert jn.losses.mu_exponent(jn.losses.beta(0.5)) == pytest.approx(1 / 1.5)
    assert jn.losses.mu_exponent(jn.losses.itakura_saito()) == pytest.approx(0.5)
    assert jn.losses.mu_exponent(jn.losses.kl()) == 1.0
    assert jn.losses.mu_exponent(jn.losses.beta(1.5)) == 1.0
    assert jn.losses.mu_exponent(jn.losses.beta(3)) == pytest.approx(0.5)


def test_loss_constructor_errors():
    with pytest.raises(ValueError, match="unknown loss"):
        jn.losses.as_loss("euclid")
    with pytest.raises(ValueError, match='"W" or "H"'):
        jn.losses.l1("X")
    with pytest.raises(TypeError):
        jn.losses.beta(float("nan"))


def test_hoyer_sparseness_matches_its_formula_for_float_and_integer_input():
    # Hoyer (2004): (√d - ‖x‖₁/‖x‖₂) / (√d - 1) per column, zero columns left out of the mean
    X = np.array([[3, 0, 0, 1], [0, 0, 2, 1], [0, 0, 0, 1]])
    d = X.shape[0]
    cols = [x for x in X.T if np.any(x)]
    want = np.mean(
        [(np.sqrt(d) - np.abs(x).sum() / np.linalg.norm(x)) / (np.sqrt(d) - 1) for x in cols]
    )
    assert float(jn.metrics.hoyer_sparseness(X)) == pytest.approx(want, rel=1e-12)  # int, strict
    assert float(jn.metrics.hoyer_sparseness(X.astype(float))) == pytest.approx(want, rel=1e-12)
    assert float(jn.metrics.hoyer_sparseness(np.eye(3), axis=1)) == pytest.approx(1.0)
