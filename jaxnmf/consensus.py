"""Consensus NMF (cNMF; Kotliar et al. 2019) from one sweep.

``consensus(V, ranks, seeds)`` fits every (rank, replicate) member with :func:`jaxnmf.sweep`
and then, per rank k, follows the steps of the ``cnmf`` package's ``cNMF.consensus``
(version 1.7.1), on the same conventions:

1. pool the k components of every replicate (the rows of H of samples × features data,
   "spectra"), each scaled to unit L2 norm: ``n_replicates · k`` points in feature space;
2. local density of each point: the mean distance to its ``L`` nearest other points, with
   ``L = int(local_neighborhood_size · n_replicates)`` (cNMF truncates, it does not round);
   points with density ``>= density_threshold`` are outliers and dropped;
3. k-means with k clusters on the points kept (Lloyd's algorithm from greedy k-means++
   seeds, ``n_init`` restarts in one vmapped call, the restart of least inertia kept; all
   ranks in the same compiled call);
4. consensus component = the element-wise median of a cluster, scaled to sum 1;
5. stability = silhouette score (euclidean) of that clustering; the other factor (usages)
   is refitted with the consensus components fixed, and the refit's error is reported.

Finally, as cNMF does, the components are ordered by their total share of the normalized
usages (largest first).

Replicates are random restarts by default. ``replicates="poisson"`` (each replicate fits
``V' ~ Poisson(V)``) and ``"bootstrap"`` (each fits the samples drawn with replacement)
perturb the data per replicate, as NMFk (Alexandrov et al. 2013; Nebgen et al. 2021) and
SigProfilerExtractor (Islam et al. 2022) do. Every replicate is drawn inside the one
compiled sweep (``sweep(perturb=...)``: each seed's members fit their own draw, shared by that
seed's ranks), except a bootstrap of sparse V, whose drawn rows change the number of stored
entries: that is one sweep per replicate (every sweep after the first reuses the compiled
program when the draws have equal numbers of stored entries).

References:
    Kotliar, D., Veres, A., Nagy, M. A., et al. (2019). Identifying gene expression programs
    of cell-type identity and cellular activity with single-cell RNA-Seq. eLife 8:e43803.
    Alexandrov, L. B., Nik-Zainal, S., Wedge, D. C., Campbell, P. J. & Stratton, M. R. (2013).
    Deciphering signatures of mutational processes operative in human cancer. Cell Reports 3.
    Arthur, D. & Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding. SODA.
    Rousseeuw, P. J. (1987). Silhouettes: a graphical aid to the interpretation and validation
    of cluster analysis. J. Comput. Appl. Math. 20.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from . import _run, _sparse, _validate
from . import api as _api
from .losses import BetaDivergence, as_loss
from .rank_selection import RankTable
from .sweep import SweepResult, sweep

__all__ = ["Clustering", "ConsensusResult", "ConsensusTable", "consensus"]

# Distances between unit vectors with non-negative entries lie in [0, √2]: cNMF documents a
# threshold of 2.0 or more as "no filter".
_NO_FILTER = 2.0
_REPLICATES = ("restarts", "poisson", "bootstrap")


# --------------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------------


class ConsensusTable(RankTable):
    """The k-selection table of :func:`consensus`: one row per rank (a :class:`RankTable`).

    Columns: ``rank``, ``stability`` (silhouette of the clustering), ``error`` (cNMF's
    "prediction error" ``‖V − WH‖²_F`` of the consensus fit, on observed entries),
    ``rel_error`` (``‖V − WH‖_F / ‖V‖_F``), ``loss`` (the refit's objective), ``n_outliers``,
    ``n_kept``, ``inertia`` (of the best k-means restart), ``refit_n_iter``,
    ``refit_converged``.
    """

    def suggest(self, criterion: str = "stability") -> int:
        """The rank at the first peak of ``stability`` (the largest rank at which it is within
        1e-4 of its maximum, as for the cophenetic coefficient), or any
        :meth:`RankTable.suggest` criterion."""
        if criterion == "stability":
            return RankTable._peak(self.columns["rank"], self.columns["stability"])
        return super().suggest(criterion)

    def plot(self, *, ax=None):
        """cNMF's k-selection plot: stability (left axis) and error (right axis) against the
        rank. Needs matplotlib. Returns the figure."""
        from .plotting import _pyplot

        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        ranks = np.asarray(self["rank"])
        ax.plot(ranks, self["stability"], "o-", color="C0", label="stability")
        ax.set_ylabel("stability (silhouette)", color="C0")
        ax.set_xlabel("rank k")
        ax.set_xticks(ranks)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(ranks, self["error"], "o-", color="C3", label="error")
        twin.set_ylabel("error ‖V − WH‖²", color="C3")
        return fig


@dataclasses.dataclass(frozen=True)
class Clustering:
    """The clustering of one rank's pooled replicate components.

    Attributes:
      rank: k.
      components: ``(n_replicates · k, n_features)`` every replicate's components, unit L2
        norm, replicate-major (replicate 0's k components first), as cNMF's merged spectra.
      density: ``(n_replicates · k,)`` mean distance to the ``n_neighbors`` nearest others.
      kept: ``(n_replicates · k,)`` bool, ``density < density_threshold``.
      labels: ``(n_replicates · k,)`` cluster of each component, i.e. the index of its
        consensus component; -1 for outliers.
      inertia: k-means objective (sum of squared distances to the centroids) of the kept.
      silhouette: mean silhouette of the kept components (the stability).
      n_neighbors: L.
    """

    rank: int
    components: np.ndarray
    density: np.ndarray
    kept: np.ndarray
    labels: np.ndarray
    inertia: float
    silhouette: float
    n_neighbors: int


@dataclasses.dataclass(frozen=True)
class ConsensusResult:
    """What :func:`consensus` returns.

    Attributes:
      ranks, seeds: the grid.
      samples: ``"rows"`` or ``"columns"``: which axis of V holds the samples.
      table: :class:`ConsensusTable`, the k-selection table.
      fits: one :class:`~jaxnmf.FitResult` per rank, in V's orientation: with
        ``samples="rows"``, ``W`` ``(m, k)`` are the usages and ``H`` ``(k, n)`` the consensus
        components; with ``samples="columns"``, ``W`` ``(m, k)`` holds the components as
        columns and ``H`` ``(k, n)`` the usages. ``losses`` and ``n_iter`` are the refit's.
      clusterings: one :class:`Clustering` per rank.
      replicates: ``"restarts"``, ``"poisson"`` or ``"bootstrap"``.
      sweep: the :class:`~jaxnmf.SweepResult` of the replicates, on the samples × features
        orientation of V (its ``perturb`` says whether they fit perturbed data); None for a
        bootstrap of sparse V, which runs one sweep per replicate.
    """

    ranks: tuple
    seeds: tuple
    samples: str
    table: ConsensusTable
    fits: tuple
    clusterings: tuple
    replicates: str
    sweep: SweepResult | None

    def _i(self, rank: int) -> int:
        if rank not in self.ranks:
            raise KeyError(f"rank {rank} is not in this consensus's ranks {list(self.ranks)}")
        return self.ranks.index(rank)

    def result(self, rank: int) -> _api.FitResult:
        """The consensus factorization of ``rank`` (see ``fits``)."""
        return self.fits[self._i(rank)]

    def components(self, rank: int) -> np.ndarray:
        """``(k, n_features)`` consensus components (each sums to 1), cNMF's spectra."""
        fit = self.result(rank)
        return fit.H if self.samples == "rows" else fit.W.T

    def usages(self, rank: int) -> np.ndarray:
        """``(n_samples, k)`` usages of the consensus components."""
        fit = self.result(rank)
        return fit.W if self.samples == "rows" else fit.H.T

    def clustering(self, rank: int) -> Clustering:
        return self.clusterings[self._i(rank)]

    def __repr__(self) -> str:
        return (
            f"ConsensusResult(ranks={list(self.ranks)}, n_replicates={len(self.seeds)}, "
            f"samples={self.samples!r}, replicates={self.replicates!r}, "
            f"stability={np.round(self.table['stability'], 3).tolist()})"
        )


# --------------------------------------------------------------------------------------------
# The clustering steps, in JAX: every rank in one call
# --------------------------------------------------------------------------------------------


def _pairwise_sq(X, Y):
    """``‖x_i − y_j‖²`` ``(len(X), len(Y))`` as scikit-learn's ``euclidean_distances`` forms
    it (``‖x‖² − 2 x·y + ‖y‖²``, clipped at 0), so that its ties and rounding are ours too."""
    xx = jnp.sum(jnp.square(X), axis=1)
    yy = jnp.sum(jnp.square(Y), axis=1)
    return jnp.maximum(xx[:, None] - 2 * (X @ Y.T) + yy[None, :], 0)


@functools.partial(jax.jit, static_argnames="n_neighbors")
def _densities(P, valid, *, n_neighbors):
    """Distances and local densities of the pooled components of every rank.

    Args:
      P: ``(n_ranks, N, d)`` unit-norm components, padded with zero rows to N points.
      valid: ``(n_ranks, N)`` bool, False on the padding.
      n_neighbors: L (static: it sets the size of the partial sort).

    Returns:
      ``D`` ``(n_ranks, N, N)`` euclidean distances (0 on the diagonal, as scikit-learn sets
      it) and the densities ``(n_ranks, N)``: the sum of the L + 1 smallest distances of a row
      (itself included, at 0) over L, as cNMF takes them with ``np.argpartition``.
    """

    def one(X, ok):
        D = jnp.sqrt(_pairwise_sq(X, X))
        D = jnp.where(jnp.eye(X.shape[0], dtype=bool), 0, D)
        far = jnp.where(ok[None, :], D, jnp.inf)  # padding is never a neighbour
        nearest = -jax.lax.top_k(-far, n_neighbors + 1)[0]
        density = jnp.sum(nearest, axis=1) / n_neighbors
        return D, jnp.where(ok, density, jnp.inf)

    return jax.vmap(one)(P, valid)


def _kmeans_pp(key, X, w, k, k_max, n_trials):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with ``n_trials`` local trials
    per centre as scikit-learn's): ``(k_max, d)`` centres, rows ``>= k`` unused.

    Points of weight 0 are never chosen and add nothing to the potential.
    """
    N = X.shape[0]
    k0, key = jax.random.split(key)
    p = w / jnp.sum(w)
    first = jax.random.choice(k0, N, p=p)
    centres = jnp.zeros((k_max, X.shape[1]), X.dtype).at[0].set(X[first])
    closest = w * _pairwise_sq(X[first][None, :], X)[0]

    def add(j, carry):
        centres, closest, key = carry
        key, sub = jax.random.split(key)
        # D² sampling of n_trials candidates; keep the one that lowers the potential most
        probs = closest / jnp.maximum(jnp.sum(closest), jnp.finfo(X.dtype).tiny)
        probs = jnp.where(jnp.sum(closest) > 0, probs, p)  # all points covered: uniform
        cand = jax.random.choice(sub, N, (n_trials,), p=probs)
        d = jnp.minimum(closest[None, :], w[None, :] * _pairwise_sq(X[cand], X))
        best = jnp.argmin(jnp.sum(d, axis=1))
        use = jnp.asarray(j, jnp.int32) < k
        centres = jnp.where(use, centres.at[j].set(X[cand[best]]), centres)
        closest = jnp.where(use, d[best], closest)
        return centres, closest, key

    centres, _, _ = jax.lax.fori_loop(1, k_max, add, (centres, closest, key))
    return centres


def _lloyd(X, w, k, centres, max_iter, tol):
    """Lloyd's iterations from ``centres`` until no centre moves more than ``tol`` (in
    squared norm, summed; scikit-learn's rule) or ``max_iter``. Returns
    ``(labels (N,), centres (k_max, d), inertia)``; an emptied cluster keeps its centre."""
    k_max = centres.shape[0]
    active = jnp.arange(k_max, dtype=jnp.int32) < k

    def assign(c):
        d = jnp.where(active[None, :], _pairwise_sq(X, c), jnp.inf)
        return jnp.argmin(d, axis=1).astype(jnp.int32), jnp.min(d, axis=1)

    def update(c):
        labels, _ = assign(c)
        onehot = (labels[:, None] == jnp.arange(k_max, dtype=labels.dtype)[None, :]).astype(
            X.dtype
        ) * w[:, None]
        counts = jnp.sum(onehot, axis=0)
        means = (onehot.T @ X) / jnp.maximum(counts, 1)[:, None]
        return jnp.where((counts > 0)[:, None], means, c)

    def cond(s):
        it, _, shift = s
        return (it < max_iter) & (shift > tol)

    def body(s):
        it, c, _ = s
        new = update(c)
        return it + 1, new, jnp.sum(jnp.square(new - c))

    init = (jnp.zeros((), jnp.int32), centres, jnp.asarray(jnp.inf, X.dtype))
    _, centres, _ = jax.lax.while_loop(cond, body, init)
    labels, d = assign(centres)
    return labels, centres, jnp.sum(w * d)


def _kmeans_best(X, w, k, keys, tol, *, k_max, max_iter):
    """k-means of ``X`` ``(N, d)`` with weights ``w`` ``(N,)`` (0/1) into ``k <= k_max``
    clusters (k traced, so that every rank shares one program): one restart per key
    (vmapped), the one of least inertia returned as ``(labels, centres, inertia)``."""
    # scikit-learn takes 2 + ⌊ln k⌋ trials; k is traced here, so the largest k's count
    # serves every rank (more trials: a seeding at least as good)
    n_trials = 2 + int(math.log(k_max))

    def restart(key):
        centres = _kmeans_pp(key, X, w, k, k_max, n_trials)
        return _lloyd(X, w, k, centres, max_iter, tol)

    labels, centres, inertia = jax.vmap(restart)(keys)
    best = jnp.argmin(inertia)  # the first of equal inertias, as scikit-learn keeps it
    return labels[best], centres[best], inertia[best]


def _silhouette(D, labels, w, k_max):
    """Mean silhouette (Rousseeuw 1987) of the weight-1 points, from distances ``D``
    ``(N, N)``; a point alone in its cluster scores 0 (scikit-learn's convention)."""
    onehot = (labels[:, None] == jnp.arange(k_max, dtype=labels.dtype)[None, :]).astype(
        D.dtype
    ) * w[:, None]
    counts = jnp.sum(onehot, axis=0)  # (k_max,)
    sums = D @ onehot  # (N, k_max): distance of each point to each cluster, summed
    own = jnp.take_along_axis(sums, labels[:, None], axis=1)[:, 0]
    n_own = counts[labels]
    a = own / jnp.maximum(n_own - 1, 1)
    other = jnp.arange(k_max, dtype=labels.dtype)[None, :] != labels[:, None]
    mean_to = jnp.where(other & (counts[None, :] > 0), sums / jnp.maximum(counts, 1)[None, :], 0)
    b = jnp.min(jnp.where(other & (counts[None, :] > 0), mean_to, jnp.inf), axis=1)
    s = (b - a) / jnp.maximum(jnp.maximum(a, b), jnp.finfo(D.dtype).tiny)
    s = jnp.where((n_own > 1) & jnp.isfinite(b), s, 0)
    return jnp.sum(w * s) / jnp.maximum(jnp.sum(w), 1)


@functools.partial(jax.jit, static_argnames=("k_max", "max_iter"))
def _cluster_all(P, D, kept, ks, keys, tols, *, k_max, max_iter):
    """k-means and silhouette of every rank in one call: ``P`` ``(n_ranks, N, d)``, ``D``
    ``(n_ranks, N, N)``, ``kept`` ``(n_ranks, N)``, ``ks`` and ``tols`` ``(n_ranks,)``; the
    same restart keys for every rank. Returns labels ``(n_ranks, N)``, inertia, silhouette."""

    def one(X, Dr, ok, k, tol):
        w = ok.astype(X.dtype)
        labels, _, inertia = _kmeans_best(X, w, k, keys, tol, k_max=k_max, max_iter=max_iter)
        return labels, inertia, _silhouette(Dr, labels, w, k_max)

    return jax.vmap(one)(P, D, kept, ks, tols)


def _restart_keys(seed, n_init):
    key = _validate.seed_key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_init, dtype=jnp.uint32))


def _kmeans_tol(X, ok, tol):
    """scikit-learn's absolute tolerance: ``tol`` times the mean variance of the features."""
    pts = X[ok]
    return float(tol) * float(np.mean(np.var(pts, axis=0))) if len(pts) else 0.0


# --------------------------------------------------------------------------------------------
# The refit with the consensus components fixed
# --------------------------------------------------------------------------------------------


def _refit_with_fixed_components(X, mask, H, loss, solver, *, max_iter, tol, width=None):
    """Usages ``W`` ``(m, k)`` of ``X`` ``(m, n)`` ≈ ``W H`` with ``H`` ``(k, n)`` fixed.

    The one place where consensus (and bi-cross-validation in :mod:`jaxnmf.rank_selection`)
    solves a one-factor problem: the W-half of ``solver`` (its one-side schedule), run by
    the library's driver as :meth:`jaxnmf.NMF.transform` runs it, from cNMF's
    (scikit-learn's) start ``W = √(mean(X) / k)`` everywhere, on ``X / max X`` like every fit
    (:mod:`jaxnmf._scale`). Returns a :class:`~jaxnmf.FitResult` with ``H`` exactly as given.
    ``width``: the padded width to solve at (the largest rank of the caller: one compiled
    program for every rank; see :func:`jaxnmf.estimator.solve_w_with_h_fixed`).
    """
    from .estimator import solve_w_with_h_fixed

    V, mask_c, loss_c, solver_c, dtype = _api.prepare(X, None, loss, solver, mask)
    H = np.asarray(H, dtype)
    state, scaling = solve_w_with_h_fixed(V, mask_c, loss_c, solver_c, H, tol, max_iter, width)
    res = _api.to_result(state, solver_c, loss_c, scaling)
    return dataclasses.replace(res, H=H)


# --------------------------------------------------------------------------------------------
# Replicates by perturbed data
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames="kind")
def _perturb_dense(key, X, *, kind):
    """One replicate's data in the user's units (:func:`jaxnmf._run.perturbed`)."""
    return _run.perturbed(X, key, kind)


def _perturbed(X, seed, kind):
    """Replicate ``seed``'s data on the host: dense X by the draw the sweep makes
    (:func:`jaxnmf._run.perturbed`); scipy.sparse X by a row bootstrap (the one draw the
    sweep cannot make: its number of stored entries varies)."""
    key = _validate.seed_key(seed)
    if not _sparse.is_sparse_input(X):
        return np.asarray(_perturb_dense(key, jnp.asarray(X), kind=kind))
    if kind != "bootstrap":
        raise ValueError(f"host-side replicates of sparse X are row bootstraps, not {kind!r}")
    import scipy.sparse

    Xc = scipy.sparse.csr_matrix(X)
    sub = jax.random.fold_in(key, _run.PERTURB_TAG)
    rows = np.asarray(jax.random.randint(sub, (Xc.shape[0],), 0, Xc.shape[0]))
    return Xc[rows]


# --------------------------------------------------------------------------------------------
# consensus()
# --------------------------------------------------------------------------------------------


def _transpose(V):
    return V.T  # numpy and scipy.sparse alike; a view or a cheap format change


@_validate.dtype_warning_once
def consensus(
    V,
    ranks,
    seeds=range(100),
    *,
    samples: str = "rows",
    loss="frobenius",
    solver=None,
    init: str = "random",
    max_iter: int = 1000,
    tol: float = 1e-4,
    mask=None,
    replicates: str = "restarts",
    density_threshold: float = 0.5,
    local_neighborhood_size: float = 0.30,
    n_init: int = 10,
    kmeans_max_iter: int = 300,
    kmeans_tol: float = 1e-4,
    kmeans_seed: int = 1,
    refit_max_iter: int | None = None,
    **sweep_kwargs,
) -> ConsensusResult:
    """Consensus NMF (cNMF) over ``ranks``, ``len(seeds)`` replicates per rank, from one sweep.

    Args:
      V: data, dense ``(m, n)`` or ``scipy.sparse``, non-negative.
      ranks: the ranks k to try, each in ``1..min(m, n)``.
      seeds: one replicate per seed (cNMF's default is 100 replicates).
      samples: ``"rows"`` (default: V is samples × features, e.g. cells × genes as in cNMF
        and AnnData) or ``"columns"`` (features × samples). The components are vectors over
        the features; the usages are over the samples.
      loss, init, max_iter, tol, mask: as in :func:`jaxnmf.sweep` (cNMF uses Frobenius, its
        default, or KL; ``max_iter=1000`` as cNMF's ``max_NMF_iter``).
      solver: default ``"hals"`` for a Frobenius-family loss (cNMF's scikit-learn ``cd``) and
        ``"mu"`` otherwise, as cNMF chooses.
      replicates: ``"restarts"`` (random initializations of the same data, as cNMF),
        ``"poisson"`` (replicate s fits ``Poisson(V)``) or ``"bootstrap"`` (replicate s fits
        the samples drawn with replacement).
      density_threshold: components whose local density is at or above it are outliers
        (cNMF's default 0.5; 2.0 or more keeps every component).
      local_neighborhood_size: L = ``int(local_neighborhood_size · n_replicates)`` neighbours
        define the local density (cNMF's default 0.30).
      n_init, kmeans_max_iter, kmeans_tol, kmeans_seed: k-means restarts, Lloyd iterations,
        tolerance and seed (cNMF: scikit-learn's ``KMeans(n_init=10, random_state=1)``).
      refit_max_iter: iterations of the usage refit (default ``max_iter``).
      **sweep_kwargs: passed to :func:`jaxnmf.sweep` (``batch_size``, ``vmap_size``,
        ``devices``, ``progress``, ``eval_every``, ``pg_tol``).

    Returns:
      A :class:`ConsensusResult`: ``result(rank)`` the consensus factorization, ``table`` the
      k-selection table (``table.plot()``, ``table.to_pandas()``), ``clustering(rank)``.

    Raises:
      ValueError: before anything is compiled, for a rank outside ``1..min(m, n)``, fewer
        replicates than the density filter needs (L < 1), a ``density_threshold <= 0``
        (every component would be dropped), an unknown ``samples`` or ``replicates``; after
        the fits, when the filter leaves fewer than k components of some rank k.

    Notes:
      cNMF's ``k_selection_plot`` computes stability and error without the density filter;
      ``density_threshold=2.0`` reproduces those numbers. Here the table describes the
      clustering that gives the consensus components (the filtered one).

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> rng = np.random.default_rng(0)
      >>> V = rng.random((40, 3)) @ rng.random((3, 30))
      >>> cons = jn.consensus(V, ranks=[2, 3], seeds=range(8), max_iter=100)
      >>> cons.components(3).shape, cons.usages(3).shape
      ((3, 30), (40, 3))
      >>> cons.table["rank"].tolist(), cons.clustering(3).labels.shape
      ([2, 3], (24,))
    """
    # --- validation, all of it before anything compiles ---------------------------------
    if samples not in ("rows", "columns"):
        raise ValueError(f"samples must be 'rows' or 'columns', got {samples!r}")
    if replicates not in _REPLICATES:
        raise ValueError(f"replicates must be one of {_REPLICATES}, got {replicates!r}")
    if isinstance(loss, (list, tuple)):
        raise ValueError("consensus takes one loss (a penalty grid has no single consensus)")
    if "heldout" in sweep_kwargs:
        raise ValueError("consensus fits every replicate to all of V: heldout is not taken")
    loss = as_loss(loss)
    if solver is None:
        frobenius = all(isinstance(t, BetaDivergence) and t.beta == 2 for t, _ in loss.data_terms)
        solver = "hals" if frobenius else "mu"
    X = V if samples == "rows" else _transpose(V)
    Xmask = mask if mask is None or isinstance(mask, str) or samples == "rows" else mask.T
    # prepare() is the library's check of V, mask, loss and solver (raises on bad input)
    Xc, mask_c, _, _, dtype = _api.prepare(X, None, loss, solver, Xmask)
    m, n = Xc.shape
    ranks = [_validate.rank(r, m, n, "ranks") for r in ranks]
    if not ranks:
        raise ValueError("ranks is empty")
    _validate.distinct(ranks, "ranks")
    seeds = list(seeds)
    _validate.distinct(seeds, "seeds")
    for s in seeds:
        _validate.seed_key(s)
    n_rep = len(seeds)
    if not isinstance(density_threshold, numbers.Real) or not np.isfinite(density_threshold):
        raise ValueError(f"density_threshold must be a finite number, got {density_threshold!r}")
    if density_threshold <= 0:
        raise ValueError(
            f"density_threshold = {density_threshold} drops every component: local densities "
            "are mean distances, >= 0 (cNMF keeps those strictly below the threshold)"
        )
    if not 0 < local_neighborhood_size <= 1:
        raise ValueError(
            f"local_neighborhood_size must be in (0, 1], got {local_neighborhood_size!r}"
        )
    filtering = density_threshold < _NO_FILTER
    n_neighbors = int(local_neighborhood_size * n_rep)  # cNMF: int(), i.e. truncation
    if filtering and n_neighbors < 1:
        need = math.ceil(1 / local_neighborhood_size)
        raise ValueError(
            f"the density filter needs L = int(local_neighborhood_size · n_replicates) >= 1 "
            f"neighbours; {n_rep} replicates give L = {n_neighbors} "
            f"(use at least {need} seeds, a larger local_neighborhood_size, or "
            f"density_threshold=2.0 for no filter)"
        )
    if n_neighbors + 1 > n_rep * min(ranks):
        raise ValueError(
            f"L = {n_neighbors} neighbours need L + 1 components per rank; rank {min(ranks)} "
            f"pools {n_rep * min(ranks)} (lower local_neighborhood_size)"
        )
    if mask is not None and replicates == "bootstrap":
        raise ValueError("replicates='bootstrap' with a mask is not supported")
    n_init = _validate.positive_int(n_init, "n_init")
    kmeans_max_iter = _validate.positive_int(kmeans_max_iter, "kmeans_max_iter")
    kmeans_tol = _validate.non_negative_float(kmeans_tol, "kmeans_tol")
    max_iter = _validate.positive_int(max_iter, "max_iter")
    refit_max_iter = _validate.positive_int(
        max_iter if refit_max_iter is None else refit_max_iter, "refit_max_iter"
    )
    fit_kw = dict(loss=loss, solver=solver, init=init, max_iter=max_iter, tol=tol, mask=Xmask)

    # --- the replicates -------------------------------------------------------------------
    if replicates == "restarts":
        sw = sweep(X, ranks, seeds, **fit_kw, **sweep_kwargs)
        H_all = np.asarray(sw.H)  # (n_ranks, n_rep, k_max, n)
    elif replicates == "bootstrap" and _sparse.is_sparse_input(X):
        sw = None
        per_rep = []
        for s in seeds:  # one sweep per replicate: the draws differ in stored entries
            one = sweep(_perturbed(X, s, replicates), ranks, [s], **fit_kw, **sweep_kwargs)
            per_rep.append(np.asarray(one.H)[:, 0])  # (n_ranks, k_max, n)
        H_all = np.stack(per_rep, axis=1)
    else:  # every replicate drawn inside the one compiled sweep
        sw = sweep(X, ranks, seeds, perturb=replicates, **fit_kw, **sweep_kwargs)
        H_all = np.asarray(sw.H)

    # --- pooled, unit-norm components; densities -----------------------------------------
    k_max = max(ranks)
    N = n_rep * k_max
    P = np.zeros((len(ranks), N, n), dtype)
    valid = np.zeros((len(ranks), N), bool)
    for i, r in enumerate(ranks):
        comps = H_all[i][:, :r, :].reshape(n_rep * r, n).astype(dtype)
        norms = np.sqrt(np.sum(comps**2, axis=1, keepdims=True))
        # a component that a fit zeroed has no direction; cNMF would divide by 0 (NaN)
        P[i, : n_rep * r] = comps / np.where(norms > 0, norms, 1)
        valid[i, : n_rep * r] = True
    D, density = _densities(jnp.asarray(P), jnp.asarray(valid), n_neighbors=max(n_neighbors, 1))
    D, density = np.asarray(D), np.asarray(density)
    kept = valid & (density < density_threshold) if filtering else valid.copy()
    for i, r in enumerate(ranks):
        if kept[i].sum() < r:
            raise ValueError(
                f"rank {r}: density_threshold = {density_threshold} keeps "
                f"{int(kept[i].sum())} of {n_rep * r} components, fewer than the {r} clusters "
                f"(smallest density {float(np.min(density[i][valid[i]])):.3g}); raise the "
                "threshold"
            )

    # --- k-means and silhouette, every rank in one call -----------------------------------
    tols = [_kmeans_tol(P[i], kept[i], kmeans_tol) for i in range(len(ranks))]
    # scikit-learn scales tol by the variance of the points clustered: one tol per rank
    labels, inertia, sil = _cluster_all(
        jnp.asarray(P),
        jnp.asarray(D),
        jnp.asarray(kept),
        jnp.asarray(ranks, jnp.int32),
        _restart_keys(kmeans_seed, n_init),
        jnp.asarray(np.asarray(tols, dtype)),
        k_max=k_max,
        max_iter=kmeans_max_iter,
    )
    labels, inertia, sil = (np.asarray(x) for x in (labels, inertia, sil))

    # --- medians, refit, order; the table ------------------------------------------------
    fits, clusterings = [], []
    cols = {
        c: []
        for c in (
            "rank",
            "stability",
            "error",
            "rel_error",
            "loss",
            "n_outliers",
            "n_kept",
            "inertia",
            "refit_n_iter",
            "refit_converged",
        )
    }
    sq_norm = _observed_sq_norm(Xc, mask_c)
    for i, r in enumerate(ranks):
        n_pts = n_rep * r
        pts, ok, lab = P[i, :n_pts], kept[i, :n_pts], labels[i, :n_pts]
        sizes = np.bincount(lab[ok], minlength=r)
        if np.any(sizes == 0):  # Lloyd can empty a cluster of duplicated points
            raise ValueError(
                f"rank {r}: k-means left {int(np.sum(sizes == 0))} of {r} clusters empty; "
                "the kept components have fewer than k distinct directions"
            )
        spectra = np.stack([np.median(pts[ok & (lab == c)], axis=0) for c in range(r)])
        spectra = spectra / spectra.sum(axis=1, keepdims=True)
        fit = _refit_with_fixed_components(
            X, Xmask, spectra, loss, solver, max_iter=refit_max_iter, tol=tol, width=max(ranks)
        )
        # cNMF's order: by total share of the row-normalized usages, largest first
        usage = fit.W / np.maximum(fit.W.sum(axis=1, keepdims=True), np.finfo(dtype).tiny)
        order = np.argsort(-usage.sum(axis=0), kind="stable")
        rank_of = np.empty(r, int)
        rank_of[order] = np.arange(r)
        fit = dataclasses.replace(fit, W=fit.W[:, order], H=fit.H[order])
        rel = float(_rel_error(Xc, mask_c, fit.W, fit.H))
        if samples == "columns":
            fit = dataclasses.replace(fit, W=fit.H.T, H=fit.W.T)
        fits.append(fit)
        clusterings.append(
            Clustering(
                rank=r,
                components=pts,
                density=density[i, :n_pts],
                kept=ok,
                labels=np.where(ok, rank_of[lab], -1),
                inertia=float(inertia[i]),
                silhouette=float(sil[i]),
                n_neighbors=n_neighbors,
            )
        )
        cols["rank"].append(r)
        cols["stability"].append(float(sil[i]))
        cols["error"].append(rel**2 * sq_norm)
        cols["rel_error"].append(rel)
        cols["loss"].append(fit.loss)
        cols["n_outliers"].append(int(n_pts - ok.sum()))
        cols["n_kept"].append(int(ok.sum()))
        cols["inertia"].append(float(inertia[i]))
        cols["refit_n_iter"].append(fit.n_iter)
        cols["refit_converged"].append(fit.status == _api.Status.CONVERGED)
    return ConsensusResult(
        ranks=tuple(ranks),
        seeds=tuple(seeds),
        samples=samples,
        table=ConsensusTable({k: np.asarray(v) for k, v in cols.items()}),
        fits=tuple(fits),
        clusterings=tuple(clusterings),
        replicates=replicates,
        sweep=sw,
    )


def _observed_sq_norm(V, mask):
    """``Σ M V²`` of prepared V (dense with optional weights, or a SparseMatrix)."""
    if isinstance(V, _sparse.SparseMatrix):
        values = np.asarray(V.values, np.float64)
        w = 1.0 if mask is None else np.asarray(mask.values, np.float64)
        return float(np.sum(w * values**2))
    M = 1.0 if mask is None else np.asarray(mask, np.float64)
    return float(np.sum(M * np.asarray(V, np.float64) ** 2))


def _rel_error(V, mask, W, H):
    from .metrics import relative_error

    return relative_error(V, W, H, mask)
