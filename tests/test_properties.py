"""Property-based tests of ``jaxnmf.fit`` (hypothesis) against NumPy oracles.

Data: non-negative ``m × n`` matrices with exact zeros and scales from 1e-3 to 1e3; shapes
and ranks drawn from a short list (``LAYOUTS``) so that jit compiles are shared between
examples and tests. Every test runs in float64 (x64 is on in ``conftest.py``).

Examples are derandomized (the same examples on every run, no example database), so the
file's run time is stable on a shared machine.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnmf as jn
from jaxnmf._testing import np_beta_divergence

# (m, n, rank) layouts: wide, tall and square; rank 1, an interior rank and rank = min(m, n)
# (both m = n = rank and rank = m < n). Drawn from a short list because each
# (m, n, rank, solver, loss) compiles once (1-3 s on this shared 2-core machine: 4 layouts x
# 4 solver/loss pairs = 16 compiles for the file); the data, its zeros and scale, the seed
# and tol vary freely at no compile cost.
LAYOUTS = ((5, 12, 5), (12, 5, 1), (8, 8, 8), (12, 8, 3))
MAX_ITER = 30  # static: one value for every fit, so compiles are shared
PROPERTY_SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None)

# (solver, loss) pairs; the loss name is also the oracle's key.
MU_LOSSES = (("mu", "frobenius"), ("mu", "kl"))
ALL_SOLVERS = (*MU_LOSSES, ("hals", "frobenius"), ("pg", "frobenius"))


def np_objective(loss, V, W, H):
    """The reported objective from its definition (DESIGN.md): Σ (V - WH)² or generalized KL."""
    WH = W @ H
    if loss == "frobenius":
        return float(np.sum((V - WH) ** 2))
    return np_beta_divergence(V, WH, 1)


def make_data(m, n, data_seed, zero_fraction, scale):
    """Non-negative ``(m, n)`` float64 data with exact zeros; never all zero."""
    rng = np.random.default_rng(data_seed)
    V = scale * rng.random((m, n))
    V[rng.random((m, n)) < zero_fraction] = 0.0
    if not V.any():
        V[rng.integers(m), rng.integers(n)] = scale
    return V


@st.composite
def problems(draw, combos=ALL_SOLVERS):
    """``(V, rank, solver, loss, seed, tol)`` with 1 <= rank <= min(m, n)."""
    m, n, rank = draw(st.sampled_from(LAYOUTS), label="m, n, rank")
    solver, loss = draw(st.sampled_from(combos), label="solver, loss")
    V = make_data(
        m,
        n,
        data_seed=draw(st.integers(0, 2**32 - 1), label="data_seed"),
        zero_fraction=draw(st.sampled_from((0.0, 0.3, 0.8)), label="zero_fraction"),
        scale=draw(st.sampled_from((1.0, 1e-3, 1e3)), label="scale"),
    )
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    tol = draw(st.sampled_from((1e-4, 0.0, 1e-8)), label="tol")
    return V, rank, solver, loss, seed, tol


def run(problem):
    V, rank, solver, loss, seed, tol = problem
    return jn.fit(V, rank, solver=solver, loss=loss, seed=seed, tol=tol, max_iter=MAX_ITER)


@PROPERTY_SETTINGS
@given(problems())
def test_factors_nonnegative_finite_and_status_valid(problem):
    V, rank = problem[:2]
    res = run(problem)
    m, n = V.shape
    assert res.W.shape == (m, rank) and res.H.shape == (rank, n)
    assert res.W.dtype == res.H.dtype == np.float64
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert isinstance(res.status, jn.Status)
    assert res.status in (jn.Status.CONVERGED, jn.Status.MAX_ITER, jn.Status.NONFINITE)
    assert np.isfinite(res.loss) and np.isfinite(res.initial_loss)


@PROPERTY_SETTINGS
@given(problems(combos=MU_LOSSES))
def test_mu_objective_never_increases(problem):
    """Multiplicative updates are majorization–minimization steps (Lee & Seung 2001)."""
    V, _, _, loss = problem[:4]
    res = run(problem)
    assert res.status != jn.Status.NONFINITE
    history = np.concatenate([[res.initial_loss], res.losses])
    assert np.all(np.isfinite(history))
    increases = np.diff(history)
    assert np.all(increases <= 1e-9 * res.initial_loss), (increases.max(), res.initial_loss)
    np.testing.assert_allclose(res.loss, np_objective(loss, V, res.W, res.H), rtol=1e-9)


@PROPERTY_SETTINGS
@given(problems())
def test_same_seed_is_bit_identical_and_seed_matters(problem):
    first, second = run(problem), run(problem)
    for name in ("W", "H", "losses"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    assert (first.n_iter, first.status, first.loss, first.initial_loss) == (
        second.n_iter,
        second.status,
        second.loss,
        second.initial_loss,
    )
    # Another seed gives another random initialization (so equality above is not vacuous).
    V, rank, solver, loss, seed, tol = problem
    other = run((V, rank, solver, loss, seed + 1, tol))
    assert other.initial_loss != first.initial_loss


@PROPERTY_SETTINGS
@given(problems())
def test_history_matches_n_iter_loss_and_stopping_rule(problem):
    V, _, _, loss, _, tol = problem
    res = run(problem)
    assert 1 <= res.n_iter <= MAX_ITER
    assert res.losses.shape == (res.n_iter,)
    if res.status == jn.Status.NONFINITE:
        assert not np.isfinite(res.losses[-1])
        return
    assert np.all(np.isfinite(res.losses))
    assert res.losses[-1] == res.loss
    # The reported objective is the objective of the returned factors (independent formula).
    np.testing.assert_allclose(res.loss, np_objective(loss, V, res.W, res.H), rtol=1e-9)
    # The shared stopping rule: stop at the first t with |f(t-1) - f(t)| < tol |f(t-1)|.
    previous = np.concatenate([[res.initial_loss], res.losses[:-1]])
    tiny = np.finfo(np.float64).tiny
    met = np.abs(previous - res.losses) < tol * np.maximum(np.abs(previous), tiny)
    assert not met[:-1].any(), "the run went on after the stopping rule was met"
    if res.status == jn.Status.CONVERGED:
        assert met[-1]
    else:
        assert res.status == jn.Status.MAX_ITER and res.n_iter == MAX_ITER and not met[-1]


@st.composite
def masks(draw, V):
    """None, or 0/1 or fractional weights shaped like V, positive on one non-zero of V."""
    kind = draw(st.sampled_from(("none", "binary", "weights")), label="mask kind")
    if kind == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="mask_seed"))
    mask = (rng.random(V.shape) < 0.7).astype(float)
    if kind == "weights":
        mask *= rng.random(V.shape) * 2.0
    mask.flat[rng.choice(np.flatnonzero(V))] = 1.0
    return mask


@PROPERTY_SETTINGS
@given(st.data())
def test_relative_error_matches_numpy(data):
    problem = data.draw(problems(combos=(("mu", "frobenius"),)), label="problem")
    V = problem[0]
    res = run(problem)
    mask = data.draw(masks(V))
    R = V - res.W @ res.H
    if mask is None:
        expected = np.linalg.norm(R) / np.linalg.norm(V)
    else:
        expected = np.sqrt(np.sum(mask * R**2) / np.sum(mask * V**2))
    got = float(jn.metrics.relative_error(V, res.W, res.H, mask))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
