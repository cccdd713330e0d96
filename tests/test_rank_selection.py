"""Rank-selection criteria added for issue 17: the one-standard-error rule, PAC, the consensus
silhouette, bi-cross-validation and suggest()'s recommendation. Closed forms and
scikit-learn oracles on small arrays; one small bi-cross-validation run. (The original
criteria are tested in tests/test_sweep.py.)"""

import importlib

import numpy as np
import pytest

import jaxnmf as jn
from jaxnmf.rank_selection import (
    Suggestion,
    _paired_se,
    bicross_validation,
    consensus_silhouette,
    pac,
    silhouette_precomputed,
)


def test_pac_closed_form():
    C = np.array(
        [
            [1.0, 0.95, 0.5, 0.0],
            [0.95, 1.0, 0.1, 0.9],
            [0.5, 0.1, 1.0, 0.2],
            [0.0, 0.9, 0.2, 1.0],
        ]
    )
    # off-diagonal pairs: 0.95, 0.5, 0.0, 0.1, 0.9, 0.2; in (0.1, 0.9]: 0.5, 0.9, 0.2
    assert pac(C) == pytest.approx(3 / 6)
    assert pac(np.kron(np.eye(2), np.ones((3, 3)))) == 0.0


def test_silhouettes_against_scikit_learn():
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    X = rng.random((12, 3))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3])  # a singleton scores 0
    assert silhouette_precomputed(D, labels) == pytest.approx(
        silhouette_score(D, labels, metric="precomputed"), abs=1e-12
    )
    crisp = np.kron(np.eye(3), np.ones((4, 4)))
    assert consensus_silhouette(crisp, 3) == pytest.approx(1.0)
    fuzzy = 0.5 * crisp + 0.25
    assert consensus_silhouette(fuzzy, 3) < 1.0


def test_one_standard_error_rule():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 0.05, 6)  # per-seed variation shared by every rank
    means = np.array([1.0, 0.7, 0.51, 0.5, 0.505, 0.52])  # best at rank 5
    heldout = means[:, None] + shared[None, :] + rng.normal(0, 0.004, (6, 6))
    se = _paired_se(heldout)
    best = int(np.argmin(heldout.mean(1)))
    d = heldout - heldout[best]
    np.testing.assert_allclose(se, d.std(1, ddof=1) / np.sqrt(6))
    assert se[best] == 0
    # paired differences cancel the shared variation: far below the unpaired sd / √n
    assert se[2] < 0.5 * heldout[2].std(ddof=1) / np.sqrt(6)
    table = jn.RankTable(
        {
            "rank": np.arange(2, 8),
            "heldout_rmse_mean": heldout.mean(1),
            "heldout_rmse_se": se,
        }
    )
    within = heldout.mean(1) - heldout.mean(1)[best] <= se
    assert table.suggest("heldout_rmse") == 2 + best
    assert table.suggest("heldout_rmse_1se") == 2 + int(np.nonzero(within)[0].min())
    assert table.suggest("heldout_rmse_1se") <= table.suggest("heldout_rmse")


def test_suggest_reports_every_pick_and_a_reason():
    ranks = np.arange(2, 7)
    table = jn.RankTable(
        {
            "rank": ranks,
            "cophenetic": np.array([0.99, 0.98, 1.0, 0.95, 0.9]),
            "pac": np.array([0.2, 0.1, 0.0, 0.05, 0.3]),
            "heldout_rmse_mean": np.array([0.9, 0.6, 0.5, 0.49, 0.495]),
            "heldout_rmse_se": np.array([0.05, 0.03, 0.02, 0.0, 0.01]),
        }
    )
    rec = table.suggest()
    assert isinstance(rec, Suggestion) and rec == 4 and rec + 1 == 5
    assert rec.picks == {"heldout_rmse_1se": 4, "heldout_rmse": 5, "cophenetic": 4, "pac": 4}
    assert rec.criterion == "heldout_rmse_1se"
    assert "agrees: cophenetic, pac" in rec.reason
    # without held-out errors the consensus criteria decide
    only = jn.RankTable({"rank": ranks, "cophenetic": table["cophenetic"]})
    assert only.suggest() == 4 and only.suggest().criterion == "cophenetic"
    # bi-cross-validation without them: its one-standard-error rule leads
    bcv = jn.RankTable(
        {
            "rank": ranks,
            "cophenetic": table["cophenetic"],
            "bcv_mse_mean": np.array([0.9, 0.52, 0.5, 0.47, 0.48]),
            "bcv_mse_se": np.array([0.1, 0.06, 0.02, 0.0, 0.005]),
        }
    )
    rec = bcv.suggest()
    assert rec == 3 and rec.criterion == "bcv_1se"  # 0.52 - 0.47 <= 0.06
    assert rec.picks["bcv"] == 5 and "bi-cross-validation" in rec.reason
    with pytest.raises(ValueError, match="no bcv_mse_mean"):
        table.suggest("bcv")
    with pytest.raises(ValueError, match="unknown criterion"):
        table.suggest("aic")


def test_bicross_validation_drops_at_the_planted_rank():
    """Owen & Perry's NMF bi-cross-validation of a rank-3 matrix (every sample a multiple of
    one of three profiles, 2% noise): the held-out blocks are predicted far better at rank 3
    than at rank 2. The shapes and fit settings are those of tests/test_consensus.py's
    fixture (D is 40 × 30, ranks 2 and 3 × 8 seeds), so its compiled sweep serves here."""
    rng = np.random.default_rng(0)
    m, n, k = 80, 60, 3
    W = rng.random((m, k))
    H = np.zeros((k, n))
    H[np.arange(n) % k, np.arange(n)] = 1 + rng.random(n)
    V = np.maximum(W @ H + 0.02 * rng.standard_normal((m, n)), 0)
    errors = bicross_validation(
        V, [2, 3], seeds=range(8), folds=2, solver="hals", max_iter=100, tol=1e-4
    )
    assert errors.shape == (2, 4)
    assert np.all(errors[1] < 0.2 * errors[0])
    with pytest.raises(ValueError, match="smallest held-in block"):
        bicross_validation(V, [31], folds=2)


def test_defaults_for_v_let_the_members_converge(monkeypatch):
    """rank_selection(V, ...) runs its sweep with held-out entries, HALS on the imputation
    majorizer for a Frobenius-family loss (MU otherwise) and 500 iterations, unless told
    otherwise (with the sweep's MU at 200 iterations no member of a planted rank-6 problem
    converged)."""
    seen = _record_sweep_calls(monkeypatch)
    V = np.ones((6, 5))
    for kw in ({}, {"loss": "kl"}, {"solver": "pg", "max_iter": 30, "heldout": 0.2}):
        with pytest.raises(_StopError):
            jn.rank_selection(V, [2], **kw)
    kws = [kw for _, kw in seen]
    assert kws[0] == {"heldout": 0.1, "max_iter": 500, "solver": jn.solvers.hals("impute")}
    assert kws[1] == {"loss": "kl", "heldout": 0.1, "max_iter": 500, "solver": "mu"}
    assert kws[2] == {"solver": "pg", "max_iter": 30, "heldout": 0.2}


class _StopError(Exception):
    pass


def _record_sweep_calls(monkeypatch) -> list:
    """rank_selection's sweep replaced by one that records ``(V, kwargs)`` and stops."""
    seen = []

    def record(V, ranks, seeds, **kw):
        seen.append((V, kw))
        raise _StopError

    monkeypatch.setattr(importlib.import_module("jaxnmf.rank_selection"), "sweep", record)
    return seen


def test_sparse_v_with_the_default_heldout_is_densified(monkeypatch):
    """Sparse V under the default heldout=0.1: its unstored zeros are data, as for dense V, so
    the table equals the dense one (duplicates summed); above the size limit, a ValueError that
    names what to pass; an explicit heldout or mask leaves V sparse."""
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    dense = (rng.random((24, 18)) * (rng.random((24, 18)) < 0.4)).astype(np.float32)
    r, c = np.nonzero(dense)
    # the first stored entry split into two duplicates that sum to it
    rows, cols = np.concatenate([r, r[:1]]), np.concatenate([c, c[:1]])
    vals = np.concatenate([dense[r, c], [0.0]]).astype(np.float32)
    vals[0], vals[-1] = 0.25 * dense[r[0], c[0]], 0.75 * dense[r[0], c[0]]
    V = sp.coo_matrix((vals, (rows, cols)), shape=dense.shape)

    kw = {"max_iter": 30}
    from_sparse = jn.rank_selection(V, [2, 3], range(2), **kw)
    from_dense = jn.rank_selection(dense, [2, 3], range(2), **kw)
    assert np.all(np.isfinite(from_sparse["heldout_rmse_mean"]))
    for name in from_dense:
        np.testing.assert_allclose(
            from_sparse[name], from_dense[name], rtol=1e-5, atol=1e-7, equal_nan=True, err_msg=name
        )

    module = importlib.import_module("jaxnmf.rank_selection")
    monkeypatch.setattr(module, "_DENSIFY_BYTES", dense.size * 4 - 1)
    with pytest.raises(ValueError, match=r"heldout=0 .*mask='stored'"):
        jn.rank_selection(V, [2], range(1), **kw)

    seen = _record_sweep_calls(monkeypatch)
    for extra in ({"heldout": 0.0}, {"mask": "stored"}):
        with pytest.raises(_StopError):
            jn.rank_selection(V, [2], range(1), **extra)
    assert len(seen) == 2 and all(v is V for v, _ in seen)
