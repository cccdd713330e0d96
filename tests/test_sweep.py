"""Sweeps: one compiled call over (loss, rank, seed), equal to single fits; rank selection."""

import re

import jax
import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf._testing import positive_data

V_ = positive_data(26, 18, seed=21)
SWEEP_CASES = [("mu", "kl"), ("hals", "frobenius"), ("pg", "frobenius")]


@pytest.mark.parametrize("solver,loss", SWEEP_CASES)
def test_member_equals_single_fit_whatever_the_other_members(solver, loss):
    kw = dict(solver=solver, loss=loss, max_iter=40, tol=1e-5)
    a = jn.sweep(V_, ranks=[2, 3], seeds=[0, 5], **kw)
    b = jn.sweep(V_, ranks=[3, 5], seeds=[7, 5, 1], **kw)  # other ranks, other seeds
    for sw in (a, b):
        for r in sw.ranks[sw.ranks < 5]:  # (rank 5 only pads b: spare its compile)
            for s in sw.seeds:
                got = sw.result(rank=int(r), seed=int(s))
                want = jn.fit(V_, int(r), seed=int(s), **kw)
                np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
                np.testing.assert_allclose(got.H, want.H, rtol=1e-10, atol=1e-13)
                np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)
                assert got.n_iter == want.n_iter and got.status == want.status
    np.testing.assert_allclose(
        a.result(rank=3, seed=5).W, b.result(rank=3, seed=5).W, rtol=1e-10, atol=1e-13
    )
    assert a.final_loss.shape == (2, 2) and b.final_loss.shape == (2, 3)
    # b pads its rank-3 members to width 5: the padding stays exactly zero
    assert np.all(b.W[0][:, :, 3:] == 0) and np.all(b.H[0][:, 3:, :] == 0)


def test_penalty_grid_runs_in_the_same_call_and_matches_fits():
    grid = [jn.losses.kl() + w * jn.losses.l1("H") for w in (0.0, 0.5, 2.0)]
    sw = jn.sweep(V_, ranks=[3], seeds=[0, 1], loss=grid, max_iter=30)
    assert sw.final_loss.shape == (3, 1, 2)
    for li, loss in enumerate(grid):
        got = sw.result(rank=3, seed=1, loss_index=li)
        want = jn.fit(V_, 3, seed=1, loss=loss, max_iter=30)
        np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
    # more l1 on H: sparser H
    density = [np.mean(sw.H[li, 0, 1] > 1e-3) for li in range(3)]
    assert density[2] < density[0]
    # printed as a summary of the grid, not as its arrays
    text = repr(sw)
    assert text.startswith("SweepResult(ranks=[3], seeds=[0, 1], losses_grid=[Loss(")
    n_status = sum(int(n) for n in re.findall(r"'\w+': (\d+)", text))
    assert n_status == 6 and "array(" not in text and len(text) < 600
    fit_text = repr(want)
    assert fit_text.startswith(f"FitResult(rank=3, status='{want.status}', n_iter={want.n_iter}")
    assert "(26, 3) float" in fit_text and "array(" not in fit_text


def test_a_diverging_member_does_not_spoil_the_others():
    import optax

    # Huge learning rate diverges; rank 1 with this tiny init stays finite longer but both
    # members are independent: compare each with its own single fit.
    solver = jn.solvers.projected(optax.sgd(1e150))
    sw = jn.sweep(V_, ranks=[1, 3], seeds=[0], solver=solver, max_iter=20, tol=0.0)
    status = sw.status()
    assert "nonfinite" in status
    assert np.all(np.isfinite(sw.W)) and np.all(np.isfinite(sw.H))
    ok = jn.sweep(V_, ranks=[1, 3], seeds=[0], solver="mu", max_iter=20, tol=0.0)
    assert set(ok.status().ravel()) == {"max_iter"}


def test_chunked_sweep_equals_one_call_and_reports_progress():
    calls = []
    full = jn.sweep(V_, ranks=[2, 3], seeds=range(3), max_iter=20)
    chunked = jn.sweep(
        V_,
        ranks=[2, 3],
        seeds=range(3),
        max_iter=20,
        batch_size=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(4, 6), (6, 6)]
    np.testing.assert_allclose(chunked.W, full.W, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(chunked.n_iter, full.n_iter)


def test_heldout_mask_is_what_the_member_was_fitted_with():
    sw = jn.sweep(V_, ranks=[3], seeds=[2], max_iter=25, heldout=0.2)
    mask = sw.fit_mask(2)
    assert 0.7 < mask.mean() < 0.9
    want = jn.fit(V_, 3, seed=2, max_iter=25, mask=mask)
    got = sw.result(rank=3, seed=2)
    np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
    hidden = mask == 0
    rmse = np.sqrt(np.mean((V_ - got.W @ got.H)[hidden] ** 2))
    np.testing.assert_allclose(sw.heldout_rmse[0, 0], rmse, rtol=1e-10)


def _planted_rank5(noise=0.2, seed=0):
    """Five clusters of samples (columns), each dominated by one metagene, plus noise."""
    rng = np.random.default_rng(seed)
    m, n, k = 60, 50, 5
    W = rng.random((m, k)) ** 4 + 0.01
    labels = rng.integers(0, k, n)
    H = 0.1 * rng.random((k, n))
    H[labels, np.arange(n)] += 1.0
    V = W @ H
    return np.maximum(V * (1 + noise * rng.standard_normal(V.shape)), 0)


def test_rank_selection_picks_the_planted_rank(tmp_path, monkeypatch):
    V = _planted_rank5()
    # HALS on the imputation majorizer (rank_selection's default): 5.5 s here against 20 s
    # for exact masked HALS, which picks the same ranks
    solver = jn.solvers.hals(masked="impute")
    sw = jn.sweep(V, range(2, 9), range(8), solver=solver, max_iter=300, tol=1e-6, heldout=0.1)
    table = jn.rank_selection(sw)
    assert list(table["rank"]) == list(range(2, 9))
    assert table.suggest("heldout_rmse") == 5
    assert table.suggest("cophenetic") == 5
    assert np.all((table["dispersion"] >= 0) & (table["dispersion"] <= 1))
    assert np.all(np.diff(table["rel_error_mean"]) < 0)  # more components fit better
    path = tmp_path / "ranks.csv"
    table.to_csv(path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["rank", "cophenetic", "dispersion"]
    _check_rank_selection_plot(table)
    # bicv=: the per-fold errors (given here, not computed) give the bcv columns, the
    # paired standard errors and the one-standard-error pick
    import importlib

    module = importlib.import_module("jaxnmf.rank_selection")
    folds = np.array([0.9, 0.6, 0.5, 0.42, 0.40, 0.41, 0.43])[:, None] + np.array(
        [[0.0, 0.04, -0.02, 0.01]]
    )
    folds[3] += [0.06, -0.06, 0.06, -0.06]  # rank 5: within one paired SE of rank 6
    monkeypatch.setattr(module, "bicross_validation", lambda *a, **k: folds)
    bcv = jn.rank_selection(sw, bicv=2)
    np.testing.assert_allclose(bcv["bcv_mse_mean"], folds.mean(1))
    d = folds - folds[4]
    np.testing.assert_allclose(bcv["bcv_mse_se"], d.std(1, ddof=1) / 2)
    assert bcv.suggest("bcv") == 6 and bcv.suggest("bcv_1se") == 5
    assert bcv.suggest().criterion == "heldout_rmse_1se" and bcv.picks()["bcv_1se"] == 5


def _check_rank_selection_plot(table):
    """table.plot() draws the table's own numbers, and marks the suggested ranks."""
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = table.plot()
    stability, heldout, error = fig.axes
    ranks = list(table["rank"])
    lines = {ln.get_label(): ln for ln in stability.get_lines()}
    np.testing.assert_array_equal(lines["cophenetic"].get_ydata(), table["cophenetic"])
    np.testing.assert_array_equal(lines["dispersion"].get_ydata(), table["dispersion"])
    np.testing.assert_array_equal(heldout.get_lines()[0].get_ydata(), table["heldout_rmse_mean"])
    np.testing.assert_array_equal(error.get_lines()[0].get_ydata(), table["rel_error_mean"])
    marks = [ln.get_xdata()[0] for ln in stability.get_lines() if ln.get_linestyle() == ":"]
    assert marks == [table.suggest("cophenetic"), table.suggest("dispersion")]
    assert all(list(ax.get_xticks()) == ranks and ax.get_xlabel() == "rank k" for ax in fig.axes)
    plt.close(fig)


def test_consensus_and_dispersion_closed_forms():
    from jaxnmf.rank_selection import consensus_matrix, cophenetic_correlation

    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0]])
    C = consensus_matrix(labels)
    assert C[0, 1] == 0.75 and C[2, 3] == 1.0 and C[0, 2] == 0.0 and C[1, 2] == 0.25
    assert cophenetic_correlation(np.kron(np.eye(2), np.ones((2, 2)))) == 1.0
    assert cophenetic_correlation(C) < 1.0


def test_sweep_input_errors():
    with pytest.raises(ValueError, match="ranks"):
        jn.sweep(V_, ranks=[2, 40])
    # the user's weights in the message (not those of the fit on V / max V), and the remedy
    with pytest.raises(ValueError, match=r"same terms.*0\.3 \* l1\(H\).*weight 0"):
        jn.sweep(V_, ranks=[2], loss=[jn.losses.kl(), jn.losses.kl() + 0.3 * jn.losses.l1("H")])
    with pytest.raises(ValueError, match="heldout"):
        jn.sweep(V_, ranks=[2], heldout=1.5)
    with pytest.raises(ValueError, match=r"ranks must be distinct; repeated: \[2\]"):
        jn.sweep(V_, ranks=[2, 3, 2])
    with pytest.raises(ValueError, match=r"seeds must be distinct; repeated: \[1\]"):
        jn.sweep(V_, ranks=[2], seeds=[1, np.int64(1)])
    with pytest.raises(KeyError):
        jn.sweep(V_, ranks=[2], max_iter=2).result(rank=3, seed=0)


def test_suggest_takes_the_peak_not_the_largest_drop():
    ranks = np.arange(2, 11)
    coph = np.array([0.9991, 0.9816, 1.0, 0.9990, 0.9949, 0.9890, 0.9828, 0.9791, 0.9762])
    table = jn.RankTable({"rank": ranks, "cophenetic": coph, "dispersion": coph})
    assert table.suggest("cophenetic") == 4 and table.suggest("dispersion") == 4
    flat = jn.RankTable({"rank": ranks[:3], "cophenetic": np.ones(3)})
    assert flat.suggest("cophenetic") == 4


@pytest.mark.parametrize("case", [{"loss": "kl"}, {"loss": "frobenius", "heldout": 0.2}])
def test_members_in_sequence_run_in_rank_buckets_and_match_single_fits(monkeypatch, case):
    # On the CPU the general executor's members (KL; Frobenius with a held-out split) run one
    # at a time (vmap_size=1), in programs of neighbouring ranks, each padded only to its own
    # largest rank
    import importlib

    sweep_module = importlib.import_module("jaxnmf.sweep")
    widths = []
    real = sweep_module._plan_general
    monkeypatch.setattr(
        sweep_module,
        "_plan_general",
        lambda *a, **k: (lambda plan: widths.append(plan.spec.k_max) or plan)(real(*a, **k)),
    )
    kw = dict(solver="mu", loss=case["loss"], max_iter=15, tol=1e-6)
    heldout = case.get("heldout", 0.0)
    sw = jn.sweep(V_, ranks=[6, 2, 3], seeds=[2], heldout=heldout, **kw)
    assert sorted(widths) == [3, 6]
    assert sw.W.shape[-1] == 6 and np.all(sw.W[1, 0, :, 2:] == 0)
    mask = sw.fit_mask(2) if heldout else None
    for r in (2, 3, 6):
        got, want = sw.result(rank=r, seed=2), jn.fit(V_, r, seed=2, mask=mask, **kw)
        assert got.n_iter == want.n_iter and got.status == want.status
        np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)


def test_default_vmap_size_groups_only_exact_masked_hals_on_the_cpu():
    from jaxnmf.sweep import default_vmap_size

    if jax.default_backend() != "cpu":
        pytest.skip("the CPU's defaults")
    frob = jn.losses.frobenius()
    exact, impute = jn.solvers.hals(), jn.solvers.hals(masked="impute")
    assert default_vmap_size(frob, exact, dense_mask=True) == 4
    one_side = jn.solvers.one_side(exact, "H")
    blocks = jn.solvers.alternating(jn.solvers.mu_block(), jn.solvers.hals_block())
    assert default_vmap_size(frob, one_side, dense_mask=True) == 4
    assert default_vmap_size(frob, blocks, dense_mask=True) == 4
    assert default_vmap_size(frob, exact, dense_mask=False) == 1
    for solver in (impute, jn.solvers.mu(), jn.solvers.accelerated_hals()):
        assert default_vmap_size(frob, solver, dense_mask=True) == 1, solver


# --- the batched-GEMM path (jaxnmf._fused): Frobenius family, dense V, no mask -------------


@pytest.mark.parametrize(
    ("kwargs", "fused"),
    [
        ({"solver": "mu"}, True),
        ({"solver": "hals", "loss": jn.losses.frobenius() + 0.1 * jn.losses.l1("H")}, True),
        ({"solver": "mu", "loss": "kl"}, False),
        ({"solver": "mu", "mask": np.ones_like(V_)}, False),
        ({"solver": "mu", "heldout": 0.1}, False),
        ({"solver": "pg"}, False),
        ({"solver": "mu", "eval_every": 2}, False),
        ({"solver": "hals", "pg_tol": 1e-3}, True),
    ],
)
def test_fused_path_is_taken_only_where_it_applies(monkeypatch, kwargs, fused):
    """What sweep runs, not only the predicate: a spy on the batched-GEMM executor."""
    import importlib

    sweep_module = importlib.import_module("jaxnmf.sweep")  # jaxnmf.sweep is also the function
    calls = []
    real = sweep_module._sweep_fused
    monkeypatch.setattr(
        sweep_module, "_sweep_fused", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    sw = jn.sweep(V_, [2, 3], [0], max_iter=3, **kwargs)
    assert bool(calls) == fused
    assert sw.W.shape == (2, 1, *V_.shape[:1], 3)


def test_fused_penalty_grid_and_buckets_match_single_fits():
    # ranks 1, 2, 4, 7 fall into several padded buckets; a penalty grid runs in the same call
    grid = [jn.losses.frobenius() + w * jn.losses.l1("H") + w * jn.losses.l2("W") for w in (0, 0.3)]
    kw = dict(solver="mu", max_iter=25, tol=1e-6)
    sw = jn.sweep(V_, ranks=[7, 1, 4, 2], seeds=[3, 0], loss=grid, **kw)
    assert sw.final_loss.shape == (2, 4, 2)
    for li, loss in enumerate(grid):
        for r in (1, 4, 7):
            got = sw.result(rank=r, seed=3, loss_index=li)
            want = jn.fit(V_, r, seed=3, loss=loss, **kw)
            np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)
            np.testing.assert_allclose(got.kkt_residual, want.kkt_residual, rtol=1e-8)
            assert got.n_iter == want.n_iter and got.status == want.status
    assert np.all(sw.W[:, 1, :, :, 1:] == 0) and np.all(sw.H[:, 2, :, 4:, :] == 0)
    # Buckets [1] and [7]: the rank-1 bucket converges after a few iterations and stays
    # frozen while rank 7 runs to max_iter; both still equal their single fits.
    two = jn.sweep(V_, ranks=[1, 7], seeds=[3], loss=grid[0], **kw)
    for r in (1, 7):
        got, want = two.result(rank=r, seed=3), jn.fit(V_, r, seed=3, loss=grid[0], **kw)
        np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)
        assert got.n_iter == want.n_iter
    assert two.n_iter[0, 0] < 10 and two.n_iter[1, 0] == 25


@pytest.mark.parametrize("p", [5, 300])  # either side of _GRAM_SEQUENTIAL_FROM (256)
def test_batched_gram_equals_numpy(p):
    from jaxnmf import _fused

    X = np.random.default_rng(p).random((3, 4, p))
    np.testing.assert_allclose(_fused._gram(X), np.einsum("sjp,skp->sjk", X, X), rtol=1e-12)


def test_fused_gram_in_sequence_matches_single_fits(monkeypatch):
    # every Gram product one member at a time (the long-row branch, which the suite's small
    # problems do not reach otherwise), members stopping at different iterations
    from jaxnmf import _fused

    monkeypatch.setattr(_fused, "_GRAM_SEQUENTIAL_FROM", 0)
    kw = dict(solver="hals", max_iter=23, tol=1e-5)
    sw = jn.sweep(V_, ranks=[2, 6], seeds=[4], **kw)
    for r in (2, 6):
        got, want = sw.result(rank=r, seed=4), jn.fit(V_, r, seed=4, **kw)
        assert got.n_iter == want.n_iter and got.status == want.status
        np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)


def test_fused_projected_gradient_rule_matches_single_fits():
    # pg_tol on the batched path: the KKT residual from the iteration's own products (with
    # the penalties' gradient terms) equals the driver's gradient from V at every iteration,
    # so members stop at the same iteration as fit's
    loss = jn.losses.frobenius() + 0.2 * jn.losses.l1("H") + 0.1 * jn.losses.l2("W")
    kw = dict(solver="hals", loss=loss, max_iter=60, tol=0.0, pg_tol=1e-2)
    sw = jn.sweep(V_, ranks=[2, 5], seeds=[0, 1], **kw)
    assert sw.kkt_history.shape == (2, 2, 60)
    for r in (2, 5):
        for seed in (0, 1):
            got, want = sw.result(rank=r, seed=seed), jn.fit(V_, r, seed=seed, **kw)
            assert got.n_iter == want.n_iter and got.status == want.status
            np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(got.kkt_history, want.kkt_history, rtol=1e-8)
            np.testing.assert_allclose(got.kkt_residual, want.kkt_residual, rtol=1e-8)
    stopped = sw.status_code == 1  # converged by the projected-gradient rule, before max_iter
    assert stopped.any() and np.all(sw.n_iter[stopped] < 60)


def test_compacted_members_match_single_fits(monkeypatch):
    # Compaction on for this tiny sweep (it is gated on the work of big ones): the call
    # stops once < 1/4 of an iteration's work goes to running members, which are packed
    # into fewer slots (padding slots frozen) and continued; every member still equals fit.
    from jaxnmf import _fused

    monkeypatch.setattr(_fused, "COMPACT_MIN_FLOPS", 0.0)
    rounds = []
    real = _fused.compact
    monkeypatch.setattr(_fused, "compact", lambda *a: rounds.append(real(*a)) or rounds[-1])
    kw = dict(solver="hals", max_iter=120, tol=0.0, pg_tol=5e-3)
    sw = jn.sweep(V_, ranks=[2, 3, 6], seeds=[0, 1, 2, 3, 4], **kw)
    packed = [len(idx) for _, running in rounds for idx, *_ in running]
    assert len(rounds) >= 2 and packed and all(n & (n - 1) == 0 for n in packed)
    assert len(set(sw.n_iter.ravel())) > 3  # members stopped at many different iterations
    for r in (2, 3, 6):
        for seed in range(5):
            got, want = sw.result(rank=r, seed=seed), jn.fit(V_, r, seed=seed, **kw)
            assert got.n_iter == want.n_iter and got.status == want.status
            np.testing.assert_allclose(got.W, want.W, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(got.kkt_history, want.kkt_history, rtol=1e-8)
            np.testing.assert_allclose(got.losses, want.losses, rtol=1e-10)


def test_compact_packs_running_members_into_power_of_two_slots():
    from jaxnmf import _driver, _fused

    R, C, M = _driver.Code.RUNNING, _driver.Code.CONVERGED, _driver.Code.MAX_ITER
    state = _driver.RunState(
        *[np.arange(6.0) * (i + 1) for i in range(10)], np.array([R, C, R, R, M, -1])
    )
    state = state._replace(status=np.array([R, C, R, R, M, M]))
    result = state._replace(W=-state.W)
    slots = np.array([10, 11, 12, 13, 14, -1])  # the last slot pads an earlier call
    finished, running = _fused.compact(
        [state], [result], [slots], [(np.arange(6.0),)], [np.arange(6)]
    )
    ((done_idx, done),) = finished
    assert done_idx.tolist() == [11, 14] and done.W.tolist() == [-1.0, -4.0]
    ((idx, packed, weights, ranks),) = running
    assert idx.tolist() == [10, 12, 13, -1]  # 3 running in 4 slots, the extra one frozen
    assert packed.W.tolist() == [0.0, 2.0, 3.0, 0.0] and packed.status.tolist() == [R, R, R, M]
    assert weights[0].tolist() == [0.0, 2.0, 3.0, 0.0] and ranks.tolist() == [0, 2, 3, 0]
    assert state.status.tolist() == [R, C, R, R, M, M]  # the input is not modified


def test_a_repeated_sweep_compiles_nothing():
    kw = dict(ranks=[2, 3], seeds=[0], solver="hals", max_iter=10)
    jn.sweep(V_, **kw)
    again = jn.sweep(V_ * 2, **kw)  # new data, same shapes
    assert again.compile_time == 0.0


def test_plan_buckets_minimizes_the_padded_work():
    import itertools

    from jaxnmf._fused import plan_buckets

    ranks = [2, 3, 5, 8, 9, 13, 14, 20]

    def work(buckets):
        return sum(len(b) * max(b) for b in buckets)

    best = min(
        work([ranks[i:j] for i, j in zip((0, *cuts), (*cuts, len(ranks)), strict=True)])
        for n_cuts in range(3)
        for cuts in itertools.combinations(range(1, len(ranks)), n_cuts)
    )
    buckets = plan_buckets(ranks, max_buckets=3)
    assert [r for b in buckets for r in b] == ranks and len(buckets) <= 3
    assert work(buckets) == best
    assert plan_buckets([4, 4, 4]) == [[4]]


def test_fused_sweep_evaluates_wh_a_few_members_at_a_time(monkeypatch):
    # Force batches of 2 members (plus a remainder of 1) wherever a member's WH is formed,
    # and the direct objective (float32, 0 < tol < 1e-4): same results as single fits.
    from jaxnmf import _compile, _fused, _run

    V32 = V_.astype(np.float32)
    monkeypatch.setattr(_fused, "_DENSE_BUDGET", 2 * V32.nbytes)
    _compile.clear()
    _run.run_compiled.clear_cache()  # trace again with the small budget
    kw = dict(solver="hals", max_iter=12, tol=1e-9)
    sw = jn.sweep(V32, ranks=[2, 3], seeds=[0, 1, 2], **kw)
    _compile.clear()
    _run.run_compiled.clear_cache()
    for r in (2, 3):
        for s in (0, 1, 2):
            got, want = sw.result(rank=r, seed=s), jn.fit(V32, r, seed=s, **kw)
            np.testing.assert_allclose(got.losses, want.losses, rtol=1e-5)
            np.testing.assert_allclose(got.W, want.W, rtol=1e-3, atol=1e-5)
            np.testing.assert_allclose(got.kkt_residual, want.kkt_residual, rtol=1e-3)
