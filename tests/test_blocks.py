"""Blocks, schedules and data operators (jaxnmf.solvers._schedules): one update per factor,
written once, the same wherever it runs — fit, both sweep executors, transform.

Problems are tiny and iterations few: every case compiles a fit and one or two sweeps."""

import ast
import importlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.sparse as sp

import jaxnmf as jn
from jaxnmf import _fused
from jaxnmf._testing import positive_data, random_factors
from jaxnmf.solvers import Problem

V_ = positive_data(16, 12, seed=31)
MASK_ = (np.random.default_rng(31).random(V_.shape) > 0.25).astype(float)
SPARSE_ = sp.random(18, 14, density=0.4, random_state=3, format="csr")
PENALIZED = jn.losses.frobenius() + 0.1 * jn.losses.l1("H") + 0.2 * jn.losses.l2("W")
ADAM = jn.solvers.projected(optax.adam(1e-2))
BATCHABLE = ["mu", "hals", "accelerated_mu", "accelerated_hals", "anls", "greedy_cd"]

# (solver, loss, mask, sparse): every solver × a loss it takes × (mask, none) × (dense,
# sparse), where tests/test_sweep.py does not already compare them (mu, hals, pg with
# Frobenius and KL; the batched executor for mu and hals)
CASES = (
    # (A-MU is A-HALS's Repeated schedule over the MU block: both pieces are covered)
    [(s, PENALIZED, None, False) for s in BATCHABLE if s not in ("mu", "hals", "accelerated_mu")]
    + [(s, "frobenius", None, False) for s in ("nesterov", "adam")]
    + [(s, "frobenius", "mask", False) for s in ("hals", "accelerated_hals")]
    + [("adam", "kl", None, False), ("mu", 0.5, "mask", False)]
    + [("hals", "frobenius", "stored", True), ("mu", "kl", "stored", True)]
)


def _case_id(case):
    solver, loss, mask, sparse = case
    loss = loss if isinstance(loss, str | float) else "penalized"
    return f"{solver}-{loss}-{mask or 'nomask'}-{'sparse' if sparse else 'dense'}"


def _kwargs(case):
    solver, loss, mask, sparse = case
    return (
        SPARSE_ if sparse else V_,
        dict(
            solver=ADAM if solver == "adam" else solver,
            loss=loss,
            mask=MASK_ if mask == "mask" else mask,
            max_iter=8,
            tol=1e-6,  # > 0: stopping decisions are compared too
        ),
    )


def _assert_same(got, want, rtol=1e-10):
    np.testing.assert_allclose(got.W, want.W, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got.H, want.H, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got.losses, want.losses, rtol=rtol)
    assert (got.n_iter, got.status) == (want.n_iter, want.status)
    np.testing.assert_allclose(got.kkt_residual, want.kkt_residual, rtol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fit_equals_both_sweep_executors(case, monkeypatch):
    """fit == sweep's general (vmapped) executor == its batched executor (where it applies),
    float64, rtol 1e-10, for the unpadded member of rank 3. For the solvers with an inner
    cap, rank 2 is padded to width 3 in the general executor too: caps that followed the
    padded width (A-MU, A-HALS, ANLS, greedy CD) made a member depend on the other ranks of
    its sweep."""
    V, kw = _kwargs(case)
    batched = case[0] in BATCHABLE and case[2] is None and not case[3]
    padded = case[0] in ("accelerated_hals", "greedy_cd")
    want = jn.fit(V, 3, seed=1, **kw)
    if batched:
        _assert_same(jn.sweep(V, [2, 3], [1], **kw).result(rank=3, seed=1), want)
        monkeypatch.setattr(_fused, "eligible", lambda *a, **k: False)
    sweep = jn.sweep(V, [2, 3], [1], **kw)
    _assert_same(sweep.result(rank=3, seed=1), want)
    if padded:
        _assert_same(sweep.result(rank=2, seed=1), jn.fit(V, 2, seed=1, **kw))


# --- the one-side schedule (transform) runs the solver's own block --------------------------

ONE_SIDE_CASES = [
    ("mu", jn.losses.beta(0.5), None),
    ("mu", jn.losses.kl(), None),
    ("mu", PENALIZED, None),
    ("hals", PENALIZED, None),
    ("hals", jn.losses.frobenius(), "mask"),
    ("accelerated_mu", jn.losses.frobenius(), None),
    ("accelerated_hals", jn.losses.frobenius(), None),
    ("anls", PENALIZED, None),
    ("greedy_cd", PENALIZED, None),
    ("adam", jn.losses.kl(), None),
]


@pytest.mark.parametrize(
    "solver,loss,mask",
    ONE_SIDE_CASES,
    ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(ONE_SIDE_CASES)],
)
def test_one_side_w_update_is_the_solvers_w_update_bitwise(solver, loss, mask):
    """The W that ``OneSide`` (the estimator's transform) computes in one step equals, bit
    for bit, the W of the solver's own step (which updates W first, from the same H).
    (PG is left out: its one-side tolerance starts from the W gradient alone, by design.)"""
    solver = jn.solvers.as_solver(ADAM if solver == "adam" else solver)
    W, H = random_factors(*V_.shape, 4, seed=5)
    loss = loss.astype(np.float64)
    mask = None if mask is None else jnp.asarray(MASK_)
    problem = Problem(V_, mask, loss, jnp.ones(4, bool), jnp.sum(V_**2), False)
    one = jn.solvers.one_side(solver, "W")

    @jax.jit
    def both(W, H):
        full = solver.step(problem, W, H, solver.init(problem, W, H))[0]
        side = one.step(problem, W, H, one.init(problem, W, H))[0]
        return full, side

    full, side = both(W, H)
    np.testing.assert_array_equal(np.asarray(side), np.asarray(full))


def test_one_side_h_refit_recovers_planted_coefficients():
    """Fixed components, H refitted (the consensus refit): exact data W·H₀ gives back H₀."""
    W0, H0 = random_factors(20, 15, 3, seed=8)
    V = W0 @ H0
    from jaxnmf import _driver

    problem = Problem(V, None, jn.losses.frobenius().astype(np.float64), jnp.ones(3, bool))
    run = jax.jit(_driver.run, static_argnames=("solver", "max_iter", "track_kkt"))
    for solver in ("hals", "anls"):
        one = jn.solvers.one_side(solver, "H")
        state = run(
            problem, W0, np.full_like(H0, 0.5), one, 0.0, 0.0, max_iter=300, track_kkt=False
        )
        np.testing.assert_allclose(state.H, H0, rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(state.W, W0)


def test_new_solver_greedy_cd_matches_hals_fixed_point_and_runs_everywhere():
    """Greedy CD (one file of blocks) fits exact planted data to round-off, and runs in the
    estimator's fit and transform (the sweep executors and devices= are tested above and in
    test_sharding)."""
    from jaxnmf._testing import planted

    V, _, _ = planted(30, 20, 3, seed=4)
    gcd = jn.fit(V, 3, solver="greedy_cd", max_iter=300, tol=0.0, seed=0)
    # (HALS, same start and budget: 4.0e-5; exact data, so 0 is the minimum)
    assert gcd.loss <= 1e-8 * np.sum(V**2), gcd.loss
    assert jn.solvers.as_solver("gcd").batchable
    model = jn.NMF(3, solver="greedy_cd", init="nndsvda", max_iter=300, tol=1e-9)
    W_fit = model.fit_transform(V)
    np.testing.assert_allclose(model.transform(V), W_fit, rtol=1e-3, atol=1e-4)


# --- no switch on solver classes outside jaxnmf/solvers -------------------------------------

SOLVER_CLASSES = {
    "MU", "HALS", "PG", "ANLS", "Nesterov", "AcceleratedMU", "AcceleratedHALS", "Projected",
    "GreedyCD", "FixedH",
}  # fmt: skip


def test_no_switch_on_solver_classes_outside_the_solvers_package():
    """``type(solver) ...`` or ``isinstance(x, MU)`` outside jaxnmf/solvers would make a new
    solver miss a code path (the batched sweep admitted only MU and HALS by type)."""
    root = pathlib.Path(importlib.import_module("jaxnmf").__file__).parent
    found = []

    def names_in(node):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
        }

    def is_type_call(node):
        return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "type"

    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            call = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"
            if call and names_in(node.args[1]) & SOLVER_CLASSES:
                found.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(is_type_call(o) for o in operands) and (
                    any(names_in(o) & SOLVER_CLASSES for o in operands)
                    or any("solver" in n.lower() for o in operands for n in names_in(o))
                ):
                    found.append(f"{path.name}:{node.lineno}")
    assert not found, found


def test_alternating_composes_blocks_and_checks_their_losses():
    """``alternating(block_W, block_H)`` (DESIGN.md's name) is a solver like the built-in
    ones: HALS on W and MU on H runs in the batched sweep executor and equals its fit; the
    same blocks as the built-in solver give that solver's iterates bit for bit; a block that
    cannot take the loss is refused before compiling."""
    mixed = jn.solvers.alternating(jn.solvers.hals_block(), jn.solvers.mu_block())
    assert mixed.batchable
    kw = dict(solver=mixed, max_iter=8, tol=1e-6)
    _assert_same(jn.sweep(V_, [2, 3], [0], **kw).result(rank=3, seed=0), jn.fit(V_, 3, **kw))
    same = jn.fit(V_, 3, solver=jn.solvers.alternating(jn.solvers.hals_block()), max_iter=8)
    builtin = jn.fit(V_, 3, solver="hals", max_iter=8)
    np.testing.assert_array_equal(same.W, builtin.W)
    with pytest.raises(ValueError, match="Frobenius"):
        jn.fit(V_, 3, loss="kl", solver=jn.solvers.alternating(jn.solvers.greedy_cd_block()))
    with pytest.raises(TypeError, match="block"):
        jn.solvers.alternating("hals")


def test_pg_sweep_member_does_not_depend_on_the_other_ranks():
    """Drift 4 of the blocks issue: a float32 PG member with a mask, vmapped and padded in
    the general sweep executor, ended 3.7e-3 (max |ΔW|) away from its fit, because batched
    products round differently and Lin's Armijo search flipped a decision on it. Members of
    ``exact_width`` solvers now run one at a time, unbatched, as fit runs them."""
    V = positive_data(40, 30, seed=3).astype(np.float32)
    M = (np.random.default_rng(1).random(V.shape) > 0.2).astype(np.float32)
    kw = dict(solver="pg", mask=M, max_iter=60)
    got = jn.sweep(V, [2, 4, 7], [1], **kw).result(rank=4, seed=1)
    want = jn.fit(V, 4, seed=1, **kw)
    assert got.n_iter == want.n_iter
    np.testing.assert_allclose(got.W, want.W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-6)
