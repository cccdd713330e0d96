"""Input validation of ``jaxnmf.fit`` (DESIGN.md, "Invariants every part keeps").

Every bad input must raise ``TypeError`` (wrong kind of thing) or ``ValueError`` (bad value)
with a message naming the problem, *before anything is compiled*. The rejection tests run
with ``jaxnmf._run.run_compiled`` replaced by a recorder that raises a sentinel: a bad input
that slipped through validation reaches the recorder, so ``pytest.raises`` sees the sentinel
instead of the expected error and the recorder shows the call. These tests compile nothing.

The acceptance tests (masked NaN/zeros, integer and float32 input) run real fits on one
small shape, compared with independent NumPy oracles from :mod:`jaxnmf._testing`.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optax
import pytest
import scipy.sparse

import jaxnmf as jn
import jaxnmf._run
from jaxnmf._testing import np_beta_divergence, positive_data

M, N, RANK, MAX_ITER = 8, 12, 3, 30  # one shape for every real fit in this file
REPO = Path(__file__).resolve().parents[1]


def _data(m=M, n=N, seed=0):
    return positive_data(m, n, seed=seed)


class _ReachedCompiledError(Exception):
    """Raised by the stand-in for the compiled fit: validation let the input through."""


@pytest.fixture
def compiled_calls(monkeypatch):
    """Replace the compiled body of ``fit`` by a recorder; returns the list of its calls."""
    calls = []

    def recorder(*args, **kwargs):
        calls.append((args, kwargs))
        raise _ReachedCompiledError

    monkeypatch.setattr(jaxnmf._run, "run_compiled", recorder)
    return calls


def _rejects(calls, exc, match, V, rank, **kwargs):
    with pytest.raises(exc, match=match):
        jn.fit(V, rank, **kwargs)
    assert calls == [], "the compiled fit was called for invalid input"


def test_recorder_sees_valid_input(compiled_calls):
    """Control: the recorder is really on the path of a valid call (else the rest is vacuous)."""
    with pytest.raises(_ReachedCompiledError):
        jn.fit(_data(), RANK, max_iter=MAX_ITER)
    assert len(compiled_calls) == 1


# --- V --------------------------------------------------------------------------------------


def _with(value, i=1, j=2):
    V = _data()
    V[i, j] = value
    return V


@pytest.mark.parametrize(
    ("V", "exc", "match"),
    [
        pytest.param(_with(-0.5), ValueError, r"V has negative entries \(min -0\.5\)", id="neg"),
        pytest.param(_with(np.nan), ValueError, r"V has 1 NaN or infinite entries", id="nan"),
        pytest.param(_with(np.inf), ValueError, r"V has 1 NaN or infinite entries", id="inf"),
        pytest.param(_with(-np.inf), ValueError, r"NaN or infinite", id="-inf"),
        pytest.param(np.ones(M), ValueError, r"V must be 2-D .*got 1-D", id="1d"),
        pytest.param(np.ones((2, M, N)), ValueError, r"V must be 2-D .*got 3-D", id="3d"),
        pytest.param(np.float64(1.0), ValueError, r"V must be 2-D .*got 0-D", id="0d"),
        pytest.param(np.ones((0, N)), ValueError, r"V is empty: shape \(0, 12\)", id="empty-m"),
        pytest.param(np.ones((M, 0)), ValueError, r"V is empty: shape \(8, 0\)", id="empty-n"),
        pytest.param(_data().astype(complex), TypeError, r"real numbers.*complex", id="complex"),
        pytest.param("abc", TypeError, r"V must be a 2-D array", id="str"),
        pytest.param(None, TypeError, r"V must be a 2-D array", id="none"),
        pytest.param(np.full((M, N), "1"), TypeError, r"V must hold real numbers", id="str-array"),
        pytest.param(
            _data().astype(object), TypeError, r"V must hold real numbers.*object", id="object"
        ),
        pytest.param([[1.0, 2.0], [3.0]], TypeError, r"V could not be converted", id="ragged"),
        # sparse V is accepted (tests/test_sparse.py); its values are checked where stored
        pytest.param(
            scipy.sparse.csr_matrix(_with(-0.5)), ValueError, r"negative entries", id="csr-neg"
        ),
        pytest.param(
            scipy.sparse.coo_array(_with(np.nan)), ValueError, r"1 NaN or infinite", id="coo-nan"
        ),
    ],
)
def test_bad_V(compiled_calls, V, exc, match):
    _rejects(compiled_calls, exc, match, V, 1)


def test_bad_V_negative_integer_counts(compiled_calls):
    V = np.arange(M * N).reshape(M, N)
    V[3, 4] = -2
    _rejects(compiled_calls, ValueError, r"negative entries \(min -2\)", V, RANK)


# --- rank -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "exc", "match"),
    [
        pytest.param(0, ValueError, r"rank must be between 1 and min\(m, n\) = 8, got 0", id="0"),
        pytest.param(-1, ValueError, r"rank must be between 1 and .* got -1", id="-1"),
        pytest.param(M + 1, ValueError, r"rank must be between 1 and .* = 8, got 9", id="min+1"),
        pytest.param(2.5, TypeError, r"rank must be an integer, got 2\.5", id="2.5"),
        pytest.param(2.0, TypeError, r"rank must be an integer", id="2.0"),
        pytest.param(True, TypeError, r"rank must be an integer, got True", id="True"),
        pytest.param("3", TypeError, r"rank must be an integer", id="str"),
        pytest.param(None, TypeError, r"rank must be an integer, got None", id="None"),
    ],
)
def test_bad_rank(compiled_calls, rank, exc, match):
    _rejects(compiled_calls, exc, match, _data(), rank)


def test_rank_bound_uses_the_smaller_dimension(compiled_calls):
    """The bound is min(m, n) for a tall matrix too (8 = n here, not m = 12)."""
    _rejects(compiled_calls, ValueError, r"min\(m, n\) = 8, got 9", _data(N, M), 9)
    with pytest.raises(_ReachedCompiledError):  # rank == min(m, n) is valid
        jn.fit(_data(N, M), M)


# --- loss -----------------------------------------------------------------------------------


def _with_zero():
    return _with(0.0, 2, 3)


@pytest.mark.parametrize(
    ("loss", "match"),
    [
        pytest.param("is", r"β = 0 is undefined where V = 0, and V has 1 zero", id="is"),
        pytest.param("itakura_saito", r"β = 0 is undefined where V = 0", id="itakura_saito"),
        pytest.param(0, r"β = 0 is undefined where V = 0", id="beta0"),
        pytest.param(-0.5, r"β = -0\.5 is undefined where V = 0", id="beta-0.5"),
        pytest.param(
            jn.losses.itakura_saito() + 0.1 * jn.losses.l1("H"),
            r"β = 0 is undefined where V = 0",
            id="is+l1",
        ),
    ],
)
def test_nonpositive_beta_with_zeros_in_V(compiled_calls, loss, match):
    _rejects(compiled_calls, ValueError, match, _with_zero(), RANK, loss=loss)


def test_nonpositive_beta_zeros_allowed_when_masked(compiled_calls):
    V = _with_zero()
    mask = (V > 0).astype(float)
    with pytest.raises(_ReachedCompiledError):
        jn.fit(V, RANK, loss="is", mask=mask)
    with pytest.raises(_ReachedCompiledError):  # a positive β is defined at V = 0: no mask needed
        jn.fit(V, RANK, loss=0.5)
    assert len(compiled_calls) == 2


def test_is_fit_with_masked_zeros_matches_oracle():
    """The masked IS fit runs, stays finite, and reports the masked IS divergence."""
    V = _with_zero()
    mask = (V > 0).astype(float)
    res = jn.fit(V, RANK, loss="is", mask=mask, max_iter=MAX_ITER)
    assert res.status != jn.Status.NONFINITE
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    obs = mask > 0  # Σ over observed entries of V/WH - log(V/WH) - 1
    ratio = V[obs] / (res.W @ res.H)[obs]
    expected = np.sum(ratio - np.log(ratio) - 1)
    np.testing.assert_allclose(res.loss, expected, rtol=1e-10)
    assert res.loss < res.initial_loss


@pytest.mark.parametrize(
    ("loss", "exc", "match"),
    [
        pytest.param("frobenious", ValueError, r"unknown loss 'frobenious'", id="typo"),
        pytest.param("", ValueError, r"unknown loss ''", id="empty"),
        pytest.param(None, TypeError, r"loss must be a name, a number", id="None"),
        pytest.param(True, TypeError, r"loss must be a name, a number", id="True"),
        pytest.param(float("nan"), TypeError, r"beta needs a finite real number", id="nan"),
    ],
)
def test_bad_loss(compiled_calls, loss, exc, match):
    _rejects(compiled_calls, exc, match, _data(), RANK, loss=loss)


# --- solver ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("solver", "exc", "match"),
    [
        pytest.param("adam", ValueError, r"unknown solver 'adam'", id="unknown"),
        pytest.param(None, TypeError, r"solver must be a name or a jaxnmf solver", id="None"),
        pytest.param(object(), TypeError, r"solver must be a name or a jaxnmf solver", id="obj"),
    ],
)
def test_bad_solver(compiled_calls, solver, exc, match):
    _rejects(compiled_calls, exc, match, _data(), RANK, solver=solver)


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param("kl", id="kl"),
        pytest.param(1.0, id="beta1"),
        pytest.param("is", id="is"),
        pytest.param(jn.losses.frobenius() + jn.losses.kl(), id="frobenius+kl"),
    ],
)
def test_hals_rejects_non_quadratic_loss(compiled_calls, loss):
    _rejects(
        compiled_calls,
        ValueError,
        r"solver 'hals' minimizes the Frobenius",
        _data(),
        2,
        solver="hals",
        loss=loss,
    )


def test_hals_accepts_frobenius_family(compiled_calls):
    for loss in ("frobenius", 2.0, jn.losses.frobenius() + 0.1 * jn.losses.l2("W")):
        with pytest.raises(_ReachedCompiledError):
            jn.fit(_data(), RANK, solver="hals", loss=loss)
    assert len(compiled_calls) == 3


@pytest.mark.parametrize("opt", [object(), "adam", optax.adam], ids=["object", "str", "factory"])
def test_projected_needs_an_optax_transformation(opt):
    with pytest.raises(TypeError, match=r"projected\(\) needs an optax.GradientTransformation"):
        jn.solvers.projected(opt)


def test_projected_object_with_bad_optimizer_rejected_by_fit(compiled_calls):
    """A Projected built directly (bypassing projected()) is still checked by fit."""
    solver = jn.solvers.Projected(object())
    _rejects(
        compiled_calls, TypeError, r"optax.GradientTransformation", _data(), RANK, solver=solver
    )


def test_projected_with_optax_is_accepted(compiled_calls):
    with pytest.raises(_ReachedCompiledError):
        jn.fit(_data(), RANK, solver=jn.solvers.projected(optax.sgd(1e-3)))


# --- init -----------------------------------------------------------------------------------


def _factors(m=M, n=N, k=RANK):
    return np.ones((m, k)), np.ones((k, n))


def _bad_init_cases():
    W0, H0 = _factors()
    neg_W0 = W0.copy()
    neg_W0[0, 0] = -1.0
    nan_H0 = H0.copy()
    nan_H0[1, 1] = np.nan
    shapes = r"init \(W0, H0\) must have shapes \(8, 3\) and \(3, 12\), got "
    return [
        pytest.param("svd", ValueError, r"unknown init 'svd'", id="unknown"),
        pytest.param(None, TypeError, r"init must be a method name or a pair", id="None"),
        pytest.param((W0, H0, H0), TypeError, r"init must be a method name or a pair", id="3"),
        pytest.param((W0.T, H0), ValueError, shapes + r"\(3, 8\) and \(3, 12\)", id="W0.T"),
        pytest.param((W0, H0.T), ValueError, shapes + r"\(8, 3\) and \(12, 3\)", id="H0.T"),
        pytest.param(_factors(k=RANK + 1), ValueError, shapes, id="wrong-rank"),
        pytest.param((neg_W0, H0), ValueError, r"W0 has negative entries", id="neg-W0"),
        pytest.param((W0, nan_H0), ValueError, r"H0 has 1 NaN or infinite", id="nan-H0"),
        pytest.param((W0[:, 0], H0), ValueError, r"W0 must be 2-D", id="1d-W0"),
        pytest.param((W0.astype(complex), H0), TypeError, r"W0 must hold real", id="cplx-W0"),
    ]


@pytest.mark.parametrize(("init", "exc", "match"), _bad_init_cases())
def test_bad_init(compiled_calls, init, exc, match):
    _rejects(compiled_calls, exc, match, _data(), RANK, init=init)


# --- mask -----------------------------------------------------------------------------------


def _mask_with(value):
    mask = np.ones((M, N))
    mask[4, 5] = value
    return mask


@pytest.mark.parametrize(
    ("mask", "exc", "match"),
    [
        pytest.param(
            np.ones((N, M)),
            ValueError,
            r"mask has shape \(12, 8\) but V has shape \(8, 12\)",
            id="transposed",
        ),
        pytest.param(np.ones(M * N), ValueError, r"mask has shape \(96,\)", id="flat"),
        pytest.param(np.ones((M, N, 1)), ValueError, r"mask has shape \(8, 12, 1\)", id="3d"),
        pytest.param(
            _mask_with(-1.0), ValueError, r"mask must hold finite, non-negative", id="negative"
        ),
        pytest.param(_mask_with(np.nan), ValueError, r"mask must hold finite", id="nan"),
        pytest.param(_mask_with(np.inf), ValueError, r"mask must hold finite", id="inf"),
        pytest.param(np.zeros((M, N)), ValueError, r"mask hides every entry", id="all-zero"),
        pytest.param(np.zeros((M, N), bool), ValueError, r"mask hides every entry", id="all-false"),
        pytest.param(np.full((M, N), "1"), TypeError, r"mask must hold numbers", id="str"),
        pytest.param(np.ones((M, N), complex), TypeError, r"mask must hold numbers", id="complex"),
    ],
)
def test_bad_mask(compiled_calls, mask, exc, match):
    _rejects(compiled_calls, exc, match, _data(), RANK, mask=mask)


def test_nan_in_V_at_an_observed_entry_is_rejected(compiled_calls):
    V = _with(np.nan, 1, 2)
    mask = np.ones((M, N))
    mask[5, 6] = 0  # hides another entry, not the NaN
    _rejects(
        compiled_calls, ValueError, r"V has 1 NaN or infinite observed entries", V, RANK, mask=mask
    )


# --- scalars --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param(
            {"max_iter": 0}, ValueError, r"max_iter must be an integer >= 1, got 0", id="max_iter=0"
        ),
        pytest.param(
            {"max_iter": -5}, ValueError, r"max_iter must be an integer >= 1", id="max_iter<0"
        ),
        pytest.param(
            {"max_iter": 10.0}, TypeError, r"max_iter must be an integer", id="max_iter=10.0"
        ),
        pytest.param(
            {"max_iter": True}, TypeError, r"max_iter must be an integer", id="max_iter=True"
        ),
        pytest.param(
            {"tol": -1e-4}, ValueError, r"tol must be finite and >= 0, got -0\.0001", id="tol<0"
        ),
        pytest.param({"tol": np.nan}, ValueError, r"tol must be finite", id="tol=nan"),
        pytest.param({"tol": np.inf}, ValueError, r"tol must be finite", id="tol=inf"),
        pytest.param({"tol": None}, TypeError, r"tol must be a real number", id="tol=None"),
        pytest.param(
            {"pg_tol": -1.0}, ValueError, r"pg_tol must be finite and >= 0", id="pg_tol<0"
        ),
        pytest.param(
            {"on_failure": "crash"},
            ValueError,
            r"on_failure must be 'warn', 'raise' or 'ignore', got 'crash'",
            id="on_failure",
        ),
        pytest.param({"on_failure": None}, ValueError, r"on_failure must be", id="on_failure=None"),
        pytest.param(
            {"seed": -1}, ValueError, r"seed must be an integer in \[0, 2\*\*64\)", id="seed<0"
        ),
        pytest.param({"seed": 1.5}, TypeError, r"seed must be an integer", id="seed=1.5"),
    ],
)
def test_bad_scalar_option(compiled_calls, kwargs, exc, match):
    _rejects(compiled_calls, exc, match, _data(), RANK, **kwargs)


def test_numpy_integers_accepted_for_integer_options(compiled_calls):
    with pytest.raises(_ReachedCompiledError):
        jn.fit(_data(), np.int64(RANK), max_iter=np.int32(MAX_ITER), seed=np.uint8(3))
    _, static = compiled_calls[0]
    spec = static["spec"]  # the RunSpec: its fields are compile-time constants
    assert spec.k_max == RANK and type(spec.k_max) is int
    assert spec.max_iter == MAX_ITER and type(spec.max_iter) is int


# --- accepted inputs: real fits against oracles ---------------------------------------------


def _checked_fit(V, **kwargs):
    res = jn.fit(V, RANK, max_iter=MAX_ITER, **kwargs)
    assert res.status != jn.Status.NONFINITE
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    return res


def test_nan_at_masked_entries_is_accepted_and_ignored():
    """NaN (or any value) where mask == 0 gives exactly the factors of V with 0 there."""
    V = _data(seed=3)
    mask = np.ones((M, N))
    hidden = [(0, 0), (2, 7), (5, 1), (7, 11)]
    for i, j in hidden:
        mask[i, j] = 0.0
    rows, cols = zip(*hidden, strict=True)
    V_zero, V_nan, V_big = V.copy(), V.copy(), V.copy()
    V_zero[rows, cols] = 0.0
    V_nan[rows, cols] = np.nan
    V_big[rows, cols] = 1e6

    ref = _checked_fit(V_zero, mask=mask)
    for V_other in (V_nan, V_big):
        res = _checked_fit(V_other, mask=mask)
        np.testing.assert_array_equal(res.W, ref.W)
        np.testing.assert_array_equal(res.H, ref.H)
        np.testing.assert_array_equal(res.losses, ref.losses)
    # The reported loss is the masked Frobenius loss Σ M (V - WH)², from the formula.
    WH = ref.W @ ref.H
    np.testing.assert_allclose(ref.loss, np.sum(mask * (V_zero - WH) ** 2), rtol=1e-10)
    # The mask is not ignored altogether: without it the fit differs.
    assert not np.array_equal(_checked_fit(V_zero).W, ref.W)


def test_integer_counts_computed_in_float64():
    counts = np.random.default_rng(1).poisson(3.0, size=(M, N)).astype(np.int32)
    assert (counts == 0).any()
    res = _checked_fit(counts, loss="kl")
    ref = _checked_fit(counts.astype(np.float64), loss="kl")
    assert res.W.dtype == res.H.dtype == res.losses.dtype == np.float64
    np.testing.assert_array_equal(res.W, ref.W)
    np.testing.assert_array_equal(res.H, ref.H)
    expected = np_beta_divergence(counts.astype(np.float64), res.W @ res.H, 1)
    np.testing.assert_allclose(res.loss, expected, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_in_is_dtype_out(dtype):
    V = _data(seed=5).astype(dtype)
    res = _checked_fit(V)
    assert res.W.dtype == res.H.dtype == res.losses.dtype == dtype
    V64, W64, H64 = (x.astype(np.float64) for x in (V, res.W, res.H))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(res.loss, np.sum((V64 - W64 @ H64) ** 2), rtol=rtol)


_X64_OFF_SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import jax
    import numpy as np
    import jaxnmf as jn

    V = np.random.default_rng(0).random((12, 8))  # float64
    V32 = V.astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = jn.fit(V, 2, max_iter=5)
    # every public entry point, however often it validates V inside: one warning per call
    calls = {
        "sweep": lambda: jn.sweep(V, [2], [0], max_iter=5),
        "rank_selection": lambda: jn.rank_selection(V, [2], [0, 1], max_iter=5),
        "compare": lambda: jn.compare(V, 2, solvers=["mu"], max_iter=5),
        "consensus": lambda: jn.consensus(V, [2], range(4), max_iter=5),
        "NMF.fit": lambda: jn.NMF(2, max_iter=5).fit(V),
        "NMF.transform": lambda: jn.NMF(2, max_iter=5).fit(V32).transform(V),
        "MiniBatchNMF.fit": lambda: jn.MiniBatchNMF(2, batch_size=4, max_iter=2).fit(V),
        "fit_minibatch": lambda: jn.fit_minibatch(V, 2, batch_size=4),
    }
    per_call = {}
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        per_call[name] = [
            w.filename for w in got if "jax_enable_x64" in str(w.message)
        ]
    print(json.dumps({
        "x64": bool(jax.config.jax_enable_x64),
        "warnings": [
            {"category": w.category.__name__, "message": str(w.message), "filename": w.filename}
            for w in caught
        ],
        "dtypes": [str(res.W.dtype), str(res.H.dtype), str(res.losses.dtype)],
        "finite": bool(np.isfinite(res.W).all() and np.isfinite(res.H).all()),
        "per_call": per_call,
    }))
    """
)


def test_float64_without_x64_warns_and_computes_in_float32():
    """x64 is on in this process, so the x64-off path runs in a fresh interpreter. Every
    public entry point warns once per call, at the caller's line."""
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _X64_OFF_SCRIPT],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["x64"] is False
    x64_warnings = [w for w in out["warnings"] if "jax_enable_x64" in w["message"]]
    assert len(x64_warnings) == 1, out["warnings"]
    (warning,) = x64_warnings
    assert warning["category"] == "UserWarning"
    assert "float32" in warning["message"]
    assert warning["filename"] == "<string>", "the warning should point at the caller's line"
    assert out["dtypes"] == ["float32"] * 3
    assert out["finite"]
    # once per call, at the caller's line (not at scikit-learn's set_output wrapper)
    assert out["per_call"] == {name: ["<string>"] for name in out["per_call"]}, out["per_call"]


def test_exact_fit_counts_as_converged():
    W, H = np.ones((5, 1)), np.ones((1, 8))
    res = jn.fit(W @ H, 1, init=(W, H), max_iter=50)
    assert res.status == "converged" and res.n_iter == 1
    res = jn.fit(W @ H, 1, init=(W, H), max_iter=5, tol=0.0)  # tol = 0 disables the rule
    assert res.status == "max_iter"


def test_penalty_only_loss_is_rejected(compiled_calls):
    _rejects(compiled_calls, ValueError, "no data term", _data(), 2, loss=jn.losses.l1("H"))


def test_init_names_are_case_insensitive():
    res = jn.fit(_data(), 2, init="NNDSVDa", max_iter=3)
    ref = jn.fit(_data(), 2, init="nndsvda", max_iter=3)
    other = jn.fit(_data(), 2, init="random", max_iter=3)
    np.testing.assert_array_equal(res.W, ref.W)
    assert not np.array_equal(res.W, other.W)  # the name chose the method
