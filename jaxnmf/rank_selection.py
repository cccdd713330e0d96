"""Choosing the rank from one sweep: consensus clustering, held-out error, fit quality.

``rank_selection(sweep_result)`` returns a :class:`RankTable`: one row per rank, columns of
arrays, written to CSV or plotted directly.

* **cophenetic** (Brunet et al. 2004): each seed clusters the *samples* by the argmax of their
  coefficients; the consensus matrix C is the fraction of seeds that put two samples
  together; the cophenetic correlation is the Pearson correlation between the distances
  1 - C and the cophenetic distances of an average-linkage tree built on them. 1 means
  the clustering is the same for every seed.
* **dispersion** (Kim & Park 2007): ``mean(4 (C - ½)²)``, 1 for a perfectly crisp consensus.
* **heldout_rmse**: with ``sweep(..., heldout=f)``, a random fraction f of the entries is hidden
  during fitting (a different split per seed) and the RMSE on them is averaged over seeds
  (speckled cross-validation; Wold 1978, Kanagal & Sindhwani 2010).
* **heldout_rmse_se** and the one-standard-error rule (Breiman et al. 1984): the smallest
  rank whose mean held-out RMSE is within one standard error of the best rank's, the
  standard error taken over the paired per-seed differences (``suggest("heldout_rmse_1se")``).
* **pac** (Șenbabaoğlu et al. 2014): the fraction of sample pairs whose consensus entry is
  ambiguous, in (0.1, 0.9]; lower is better.
* **silhouette**: the consensus silhouette, samples under the distance 1 - C clustered by
  cutting its average-linkage tree into k clusters (Monti et al. 2003).
* **bcv_mse**: bi-cross-validation (Owen & Perry 2009) with ``rank_selection(..., bicv=p)``:
  a block of rows × columns is predicted from the fits of the rest, block by block; with
  ``bcv_mse_se``, the one-standard-error rule on it (``suggest("bcv_1se")``).
* reconstruction error, explained variance, Hoyer sparseness of W and H: mean and standard
  deviation over seeds.

``RankTable.suggest()`` gives every criterion's pick and one recommendation with its reason.

Samples are the columns of V by default (genes × samples, as in Brunet et al.); pass
``samples="rows"`` for the scikit-learn layout (samples × features).

References:
    Brunet, J.-P., Tamayo, P., Golub, T. R. & Mesirov, J. P. (2004). Metagenes and molecular
    pattern discovery using matrix factorization. PNAS 101(12).
    Kim, H. & Park, H. (2007). Sparse non-negative matrix factorizations via alternating
    non-negativity-constrained least squares for microarray data analysis. Bioinformatics 23.
    Breiman, L., Friedman, J., Olshen, R. & Stone, C. (1984). Classification and Regression
    Trees. Wadsworth.
    Monti, S., Tamayo, P., Mesirov, J. & Golub, T. (2003). Consensus clustering. Machine
    Learning 52.
    Owen, A. B. & Perry, P. O. (2009). Bi-cross-validation of the SVD and the nonnegative
    matrix factorization. Ann. Appl. Stat. 3(2).
    Șenbabaoğlu, Y., Michailidis, G. & Li, J. Z. (2014). Critical limitations of consensus
    clustering in class discovery. Sci. Rep. 4:6207.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping
from types import MappingProxyType

import jax
import numpy as np

from . import _sparse, _validate
from ._driver import Code
from ._sparse import SparseMatrix
from .losses import as_loss
from .metrics import hoyer_sparseness, relative_error
from .solvers import hals
from .solvers._base import is_quadratic
from .sweep import SweepResult, sweep

__all__ = [
    "RankTable",
    "Suggestion",
    "bicross_validation",
    "consensus_matrix",
    "consensus_silhouette",
    "cophenetic_correlation",
    "pac",
    "rank_selection",
    "silhouette_precomputed",
]


class Suggestion(int):
    """A recommended rank (an ``int``) with the evidence: ``picks`` (criterion → rank),
    ``criterion`` (the one followed) and ``reason``."""

    def __new__(cls, rank, *, picks, criterion, reason):
        self = super().__new__(cls, int(rank))
        self.picks = dict(picks)
        self.criterion = criterion
        self.reason = reason
        return self

    def __repr__(self) -> str:
        return f"Suggestion({int(self)}, criterion={self.criterion!r}, picks={self.picks})"


class RankTable(Mapping):
    """A read-only mapping of column name → array, one row per rank.

    ``table["cophenetic"]`` is an array of ``n_rows`` values; ``dict(table)``, ``keys()``,
    ``items()`` and ``in`` work as for any mapping (``len(table)`` counts the columns). The
    arrays are read-only, so a table cannot be changed behind the figures drawn from it.
    """

    def __init__(self, columns):
        arrays = {}
        for name, values in dict(columns).items():
            arr = np.array(values)  # a copy: the caller's arrays stay writable
            arr.setflags(write=False)
            arrays[str(name)] = arr
        if "rank" not in arrays:
            raise ValueError(f"a RankTable needs a 'rank' column, got {sorted(arrays)}")
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"RankTable columns must have equal lengths, got {lengths}")
        self._columns = arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    @property
    def columns(self) -> Mapping:
        """The columns, read-only (``types.MappingProxyType``)."""
        return MappingProxyType(self._columns)

    @property
    def n_rows(self) -> int:
        """One row per rank of the sweep."""
        return len(self._columns["rank"])

    @property
    def names(self) -> list[str]:
        return list(self._columns)

    def rows(self) -> list[dict]:
        """One ``{column: value}`` dict per rank."""
        return [{k: v[i].item() for k, v in self.items()} for i in range(self.n_rows)]

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (needs pandas), one row per rank."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is an optional extra
            raise ImportError("RankTable.to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame({k: np.asarray(v) for k, v in self.items()})

    def to_csv(self, path) -> None:
        """Write the table as CSV with a header row."""
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.names)
            writer.writeheader()
            writer.writerows(self.rows())

    # Criteria that point to the first peak of a stability coefficient, and those minimized.
    _PEAK = ("cophenetic", "dispersion", "silhouette")
    _ORDER = (
        "heldout_rmse_1se",
        "bcv_1se",
        "bcv",
        "heldout_rmse",
        "cophenetic",
        "silhouette",
        "pac",
        "dispersion",
    )  # the recommendation's preference, strongest evidence first

    @staticmethod
    def _peak(ranks, values) -> int:
        """The largest rank at which ``values`` is at its maximum (within 1e-4), in the first
        run of such ranks: the last rank before the coefficient begins to fall from its peak
        (Brunet et al. 2004)."""
        values = np.asarray(values, float)
        at_peak = np.nonzero(values >= np.nanmax(values) - 1e-4)[0]
        run_end = at_peak[0]
        while run_end + 1 in at_peak:
            run_end += 1
        return int(ranks[run_end])

    def suggest(self, criterion: str | None = None) -> int:
        """The rank a criterion points to, or (no criterion) one recommendation.

        * ``"heldout_rmse"``: the rank with the lowest mean held-out RMSE;
        * ``"heldout_rmse_1se"``: Breiman's one-standard-error rule: the smallest rank whose
          mean held-out RMSE is within one standard error of the best rank's, the standard
          error of the paired per-seed differences (column ``heldout_rmse_se``): the most
          parsimonious rank that the held-out error cannot tell from the best;
        * ``"bcv"``: the rank with the lowest bi-cross-validation error (``bcv_mse_mean``);
        * ``"bcv_1se"``: the one-standard-error rule on it: the smallest rank whose mean
          bi-cross-validation error is within one standard error of the best rank's, the
          standard error of the paired per-fold differences (column ``bcv_mse_se``; the
          folds are the same blocks for every rank). The plain minimum drifts upwards: on the
          planted problems of ``scripts/planted_rank_accuracy.py`` it never fell below the
          planted rank and fell above it in 375 of 600;
        * ``"pac"``: the rank with the lowest proportion of ambiguous clustering (the
          smallest of equal ones);
        * ``"cophenetic"`` / ``"dispersion"`` / ``"silhouette"``: the largest rank at which
          the coefficient is at its maximum (within 1e-4): the last rank before it begins to
          fall from its peak (Brunet et al.). An earlier rule, "before the largest drop",
          picked k = 2 over a perfect k = 4 when a small dip at k = 3 came first.

        Without a criterion, returns a :class:`Suggestion`: an ``int`` (the recommended rank)
        that also carries ``picks`` (every available criterion's rank), ``criterion`` (the
        one followed) and ``reason``. The recommendation follows the first available of
        ``heldout_rmse_1se`` (error on data the fits did not see, with the parsimony that
        guards against the minimum's drift to larger ranks), ``bcv_1se`` (the same rule on
        bi-cross-validation error), ``bcv``, then the consensus criteria; the reason says
        which criteria agree with it.

        References:
            Breiman, L., Friedman, J., Olshen, R. & Stone, C. (1984). Classification and
            Regression Trees. Wadsworth (the 1-SE rule).
            Owen, A. B. & Perry, P. O. (2009). Bi-cross-validation of the SVD and the
            nonnegative matrix factorization. Ann. Appl. Stat. 3(2).
            Șenbabaoğlu, Y., Michailidis, G. & Li, J. Z. (2014). Critical limitations of
            consensus clustering in class discovery. Sci. Rep. 4:6207.
        """
        if criterion is None:
            return self._recommend()
        ranks = self.columns["rank"]
        if criterion == "heldout_rmse":
            values = self._column("heldout_rmse_mean", "run the sweep with heldout > 0")
            return int(ranks[np.nanargmin(values)])
        if criterion == "heldout_rmse_1se":
            values = self._column("heldout_rmse_mean", "run the sweep with heldout > 0")
            se = self._column("heldout_rmse_se", "run the sweep with heldout > 0")
            return _one_standard_error(ranks, values, se)
        if criterion == "bcv":
            values = self._column("bcv_mse_mean", "pass bicv=... to rank_selection")
            return int(ranks[np.nanargmin(values)])
        if criterion == "bcv_1se":
            values = self._column("bcv_mse_mean", "pass bicv=... to rank_selection")
            se = self._column("bcv_mse_se", "pass bicv=... to rank_selection")
            return _one_standard_error(ranks, values, se)
        if criterion == "pac":
            values = self._column("pac", "pac needs the consensus matrices of a sweep")
            return int(ranks[np.nanargmin(values)])
        if criterion in self._PEAK:
            values = self._column(criterion, f"no {criterion} column")
            return self._peak(ranks, values)
        raise ValueError(f"unknown criterion {criterion!r}")

    def _column(self, name, hint):
        if name not in self._columns or np.all(np.isnan(np.asarray(self._columns[name], float))):
            raise ValueError(f"no {name}: {hint}")
        return np.asarray(self._columns[name], float)

    def picks(self) -> dict:
        """``{criterion: rank}`` for every criterion this table has the numbers for."""
        out = {}
        for criterion in self._ORDER:
            try:
                out[criterion] = self.suggest(criterion)
            except (ValueError, KeyError):
                continue
        return out

    def _recommend(self) -> Suggestion:
        picks = self.picks()
        if not picks:
            raise ValueError(f"no criterion can be evaluated from the columns {self.names}")
        criterion = next(c for c in self._ORDER if c in picks)
        rank = picks[criterion]
        agree = [c for c, r in picks.items() if r == rank and c != criterion]
        why = {
            "heldout_rmse_1se": "the smallest rank whose held-out error is within one "
            "(paired) standard error of the best: error on unseen entries, without the "
            "minimum's drift to larger ranks",
            "bcv_1se": "the smallest rank whose bi-cross-validation error is within one "
            "(paired, per-fold) standard error of the best (no held-out entries in this "
            "table)",
            "bcv": "the lowest bi-cross-validation error (no held-out entries in this table)",
        }.get(criterion, f"{criterion}: no held-out or bi-cross-validation error here")
        reason = f"{criterion} -> {rank}: {why}"
        reason += f"; agrees: {', '.join(agree)}" if agree else "; no other criterion agrees"
        return Suggestion(rank, picks=picks, criterion=criterion, reason=reason)

    def plot(self, **kwargs):
        """The criteria against the rank; see :func:`jaxnmf.plotting.plot_rank_selection`."""
        from .plotting import plot_rank_selection

        return plot_rank_selection(self, **kwargs)

    def __repr__(self) -> str:
        head = " ".join(f"{k:>14.14}" for k in self.names)
        lines = [head]
        for row in self.rows():
            lines.append(" ".join(f"{v:>14.6g}" for v in row.values()))
        return "\n".join(lines)


def consensus_matrix(labels: np.ndarray) -> np.ndarray:
    """Fraction of runs that put samples i and j in the same cluster.

    Args:
      labels: ``(n_runs, n_samples)`` integer cluster labels.

    Returns:
      ``(n_samples, n_samples)`` consensus matrix with ones on the diagonal.
    """
    labels = np.asarray(labels)
    n_runs, _ = labels.shape
    k = int(labels.max()) + 1
    C = 0.0
    for run in labels:
        onehot = np.eye(k)[run]  # (n_samples, k)
        C = C + onehot @ onehot.T
    return C / n_runs


def cophenetic_correlation(C: np.ndarray) -> float:
    """Pearson correlation of ``1 - C`` with the cophenetic distances of its average-linkage
    tree (Brunet et al. 2004). Needs scipy; NaN (with a warning) without it."""
    try:
        from scipy.cluster.hierarchy import cophenet, linkage
        from scipy.spatial.distance import squareform
    except ImportError:  # pragma: no cover - scipy is in every extra that tests use
        warnings.warn(
            "cophenetic correlation needs scipy (pip install scipy)",
            stacklevel=_validate.user_stacklevel(),
        )
        return float("nan")
    D = 1.0 - C
    np.fill_diagonal(D, 0.0)
    d = squareform(np.clip((D + D.T) / 2, 0, None), checks=False)
    if np.all(d == d[0]):  # one cluster or all apart: the tree carries no information
        return 1.0
    corr, _ = cophenet(linkage(d, method="average"), d)
    return float(corr)


def pac(C: np.ndarray, lower: float = 0.1, upper: float = 0.9) -> float:
    """Proportion of ambiguous clustering (Șenbabaoğlu et al. 2014): the fraction of sample
    pairs (i < j) whose consensus entry lies in ``(lower, upper]``, i.e. ``CDF(upper) -
    CDF(lower)`` of the off-diagonal consensus values. 0 for a crisp consensus (every pair
    always or never together); lower is better.

    Args:
      C: ``(n_samples, n_samples)`` consensus matrix.

    References:
        Șenbabaoğlu, Y., Michailidis, G. & Li, J. Z. (2014). Critical limitations of consensus
        clustering in class discovery. Sci. Rep. 4:6207.
    """
    C = np.asarray(C, float)
    c = C[np.triu_indices(C.shape[0], k=1)]
    if c.size == 0:
        return float("nan")
    return float(np.mean((c > lower) & (c <= upper)))


def silhouette_precomputed(D: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) from a distance matrix ``D`` ``(n, n)`` and labels
    ``(n,)``; a sample alone in its cluster scores 0, and fewer than 2 clusters give NaN
    (scikit-learn's ``silhouette_score(D, labels, metric="precomputed")`` conventions)."""
    D = np.asarray(D, float)
    labels = np.asarray(labels)
    ids, inv = np.unique(labels, return_inverse=True)
    if not 2 <= len(ids) <= len(labels) - 1:
        return float("nan")
    onehot = np.eye(len(ids))[inv]  # (n, n_clusters)
    counts = onehot.sum(axis=0)
    sums = D @ onehot
    n_own = counts[inv]
    a = sums[np.arange(len(inv)), inv] / np.maximum(n_own - 1, 1)
    mean_to = sums / counts[None, :]
    mean_to[np.arange(len(inv)), inv] = np.inf
    b = mean_to.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sil = np.nan_to_num((b - a) / np.maximum(a, b))
    return float(np.mean(np.where(n_own > 1, sil, 0.0)))


def consensus_silhouette(C: np.ndarray, k: int) -> float:
    """Silhouette of the samples under the distance ``1 - C``, clustered by cutting the
    average-linkage tree of ``1 - C`` into ``k`` clusters (the consensus silhouette of
    Monti et al. 2003 and of R's ``NMF`` package). 1 for a crisp consensus. Needs scipy."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    D = 1.0 - np.asarray(C, float)
    np.fill_diagonal(D, 0.0)
    D = np.clip((D + D.T) / 2, 0, None)
    if D.shape[0] < 3:
        return float("nan")
    labels = fcluster(linkage(squareform(D, checks=False), method="average"), k, "maxclust")
    return silhouette_precomputed(D, labels)


@jax.jit
def _hoyer_all(W, H):
    """:func:`jaxnmf.metrics.hoyer_sparseness` of every member's factors at once: ``W``
    ``(n_ranks, n_seeds, m, k_max)`` by columns and ``H`` ``(n_ranks, n_seeds, k_max, n)`` by
    rows, each ``(n_ranks, n_seeds)``. The padding components are zero vectors, which the
    metric leaves out, so one program serves every rank (one call per rank and seed, eager,
    took seconds)."""
    per = jax.vmap(jax.vmap(lambda w, h: (hoyer_sparseness(w, 0), hoyer_sparseness(h, 1))))
    return per(W, H)


def _paired_se(errors: np.ndarray) -> np.ndarray:
    """Per rank, the standard error of its errors minus the best rank's (the rank of lowest
    mean), replicate by replicate: ``errors`` ``(n_ranks, n_replicates)``, the per-seed
    held-out RMSE or the per-fold bi-cross-validation error. ``std(d, ddof=1) / √n`` of the
    paired differences ``d``, so that the variation between replicates that all ranks share
    cancels (0 at the best rank; NaN with one replicate or no errors)."""
    errors = np.asarray(errors, float)
    n = errors.shape[1]
    if n < 2 or np.all(np.isnan(errors)):
        return np.full(errors.shape[0], np.nan)
    best = np.nanargmin(np.mean(errors, axis=1))
    d = errors - errors[best][None, :]
    return np.std(d, axis=1, ddof=1) / np.sqrt(n)


def _one_standard_error(ranks, mean, se) -> int:
    """Breiman's rule: the smallest rank whose ``mean`` error is within ``se`` (of its paired
    difference from the best rank; NaN counts as 0) of the lowest mean."""
    mean, se = np.asarray(mean, float), np.asarray(se, float)
    best = np.nanargmin(mean)
    ok = mean - mean[best] <= np.where(np.isnan(se), 0, se)
    ok[best] = True
    return int(np.min(np.asarray(ranks)[ok]))


def bicross_validation(
    V,
    ranks,
    seeds=range(3),
    *,
    folds=2,
    shuffle_seed: int = 0,
    loss="frobenius",
    solver="mu",
    init: str = "random",
    max_iter: int = 200,
    tol: float = 1e-4,
    **sweep_kwargs,
) -> np.ndarray:
    """Bi-cross-validation error of NMF (Owen & Perry 2009, section 5) per rank and fold.

    Rows and columns are shuffled (``shuffle_seed``) and cut into ``p × q`` blocks. For each
    held-out block ``A`` (rows I, columns J) of ``V = [[A, B], [C, D]]``, NMF of the
    remaining block ``D ≈ W_D H_D`` is fitted (all ranks × seeds in one sweep, the seed of
    lowest objective kept per rank); then ``B ≈ W_A H_D`` is solved for ``W_A`` with ``H_D``
    fixed and ``C ≈ W_D H_A`` for ``H_A`` with ``W_D`` fixed, and ``A`` is predicted by
    ``W_A H_A``. No entry of ``A`` is ever used by a fit.

    Args:
      V: dense data ``(m, n)``, non-negative (no mask).
      ranks: ranks to score; each at most ``min`` of the size of D.
      seeds: seeds of the fits of D.
      folds: ``p`` (``p × p`` blocks) or ``(p, q)``.
      loss, solver, init, max_iter, tol, **sweep_kwargs: the fits, as in
        :func:`jaxnmf.sweep`.

    Returns:
      ``(n_ranks, p · q)`` mean squared prediction error of each held-out block.

    References:
        Owen, A. B. & Perry, P. O. (2009). Bi-cross-validation of the SVD and the
        nonnegative matrix factorization. Ann. Appl. Stat. 3(2), 564–594.
    """
    from .consensus import _refit_with_fixed_components

    if _sparse.is_sparse_input(V):
        raise ValueError("bicross_validation takes dense V (its blocks are predicted densely)")
    V = _validate.data_matrix(V)
    _validate.check_values(V, None)
    m, n = V.shape
    p, q = (folds, folds) if np.isscalar(folds) else tuple(folds)
    p = _validate.positive_int(p, "folds (rows)", 2)
    q = _validate.positive_int(q, "folds (columns)", 2)
    if p > m or q > n:
        raise ValueError(f"folds {(p, q)} need at least that many rows and columns of V")
    rng = np.random.default_rng(shuffle_seed)
    row_blocks = np.array_split(rng.permutation(m), p)
    col_blocks = np.array_split(rng.permutation(n), q)
    # the smallest D of any fold bounds the ranks
    d_min = min(m - max(map(len, row_blocks)), n - max(map(len, col_blocks)))
    ranks = [int(r) for r in ranks]
    for r in ranks:
        if not 1 <= r <= d_min:
            raise ValueError(
                f"ranks: {r} is not in 1..{d_min}, the smallest held-in block's min(m, n) "
                f"with folds {(p, q)}"
            )
    kw = dict(loss=loss, solver=solver, max_iter=max_iter, tol=tol)
    one_side = dict(max_iter=max_iter, tol=tol, width=max(ranks))  # one program for all ranks
    errors = np.zeros((len(ranks), p * q))
    for fi, (rows, cols) in enumerate((r, c) for r in row_blocks for c in col_blocks):
        rest_r = np.setdiff1d(np.arange(m), rows)
        rest_c = np.setdiff1d(np.arange(n), cols)
        A, B = V[np.ix_(rows, cols)], V[np.ix_(rows, rest_c)]
        C, D = V[np.ix_(rest_r, cols)], V[np.ix_(rest_r, rest_c)]
        sw = sweep(D, ranks, seeds, init=init, **kw, **sweep_kwargs)
        for ri, r in enumerate(ranks):
            best = int(np.argmin(sw.final_loss[ri]))
            W_D, H_D = sw.W[ri][best][:, :r], sw.H[ri][best][:r]
            W_A = _refit_with_fixed_components(B, None, H_D, loss, solver, **one_side).W
            H_A = _refit_with_fixed_components(C.T, None, W_D.T, loss, solver, **one_side).W.T
            errors[ri, fi] = float(np.mean((A - W_A @ H_A) ** 2))
    return errors


# The largest sparse V (m·n·itemsize bytes) that rank_selection densifies for its default
# held-out split; the sweep of a dense V this size already needs several times as much.
_DENSIFY_BYTES = 1 << 30


def _dense_for_default_heldout(V):
    """Sparse V as a dense array, for rank_selection's default ``heldout=0.1``.

    The default hides entries of V, every one of which is data: its unstored zeros too,
    as for dense V (the sweep hides stored entries only with ``mask="stored"``, where
    unstored entries are missing). Dense input and sparse V above ``_DENSIFY_BYTES``
    pass through / raise with what to pass instead.
    """
    if not _sparse.is_sparse_input(V):
        return V
    rows, cols, values, (m, n) = _sparse.canonical_arrays(V)
    if m * n * values.dtype.itemsize > _DENSIFY_BYTES:
        raise ValueError(
            f"rank_selection's default heldout=0.1 hides entries of V, its unstored zeros "
            f"included, which would densify this {m}×{n} sparse V "
            f"({m * n * values.dtype.itemsize / 2**30:.1f} GiB); pass heldout=0 (no held-out "
            f"error; the consensus criteria remain) or mask='stored' (unstored entries "
            f"missing; held-out entries drawn from the stored ones)"
        )
    dense = np.zeros((m, n), dtype=values.dtype)
    dense[rows, cols] = values
    return dense


def rank_selection(
    sweep_or_V,
    ranks=None,
    seeds=range(10),
    *,
    samples: str = "columns",
    bicv=None,
    **sweep_kwargs,
) -> RankTable:
    """One row per rank of the selection criteria, from one sweep.

    Args:
      sweep_or_V: a :class:`~jaxnmf.SweepResult`, or the data V, in which case
        ``jaxnmf.sweep(V, ranks, seeds, **sweep_kwargs)`` is run first, with defaults that
        let its members converge unless given: ``heldout=0.1``,
        ``solver=hals(masked="impute")`` for a Frobenius-family loss (``"mu"`` otherwise)
        and ``max_iter=500``. (With the sweep's own defaults, MU and 200 iterations, no
        member of a planted rank-6 problem — 60×60, 5 % noise, ranks 2..10 × 5 seeds,
        float32 — reached the stopping rule and the held-out minimum was at rank 10. With
        exact masked HALS, 42 of 45 converged and both held-out criteria picked 6 in 2.81 s
        warm; with HALS on the imputation majorizer, 40 of 45 and 6 in 1.00 s: 2-core CPU,
        2026-12-02. Imputing once an iteration since 2026-12-03: 35 of 45 converged against
        37 of 45 before, on another draw of that problem, both picking 6.) Sparse V with
        that default split (no ``heldout``, no ``mask`` given) is densified, its unstored
        zeros data as for dense V, up to 1 GiB (``_DENSIFY_BYTES``); a larger one needs
        ``heldout=0`` or ``mask="stored"`` (held-out entries drawn from the stored ones).
      ranks, seeds: the grid when V is given.
      samples: ``"columns"`` (V is features × samples; samples are clustered by the argmax of
        their column of H) or ``"rows"`` (samples × features; by the argmax of their row of W).
      bicv: ``None`` (default), or the folds ``p`` or ``(p, q)`` of a bi-cross-validation
        (:func:`bicross_validation`, Owen & Perry 2009) run on the sweep's V with its loss,
        solver and ``max_iter`` (dense V without mask): columns ``bcv_mse_mean``,
        ``bcv_mse_std`` over the folds and ``bcv_mse_se`` (the standard error of the paired
        per-fold differences from the best rank's, for ``suggest("bcv_1se")``), NaN
        otherwise.

    Returns:
      A :class:`RankTable` with columns ``rank, cophenetic, dispersion, heldout_rmse_mean,
      heldout_rmse_std, rel_error_mean, rel_error_std, explained_variance_mean,
      explained_variance_std, sparseness_W_mean, sparseness_W_std, sparseness_H_mean,
      sparseness_H_std, n_converged, heldout_rmse_se, pac, silhouette, bcv_mse_mean,
      bcv_mse_std, bcv_mse_se``: ``heldout_rmse_se`` is the standard error of the paired per-seed
      differences from the best rank's held-out RMSE (for the one-standard-error rule),
      ``pac`` the proportion of ambiguous clustering of the consensus matrix
      (:func:`pac`), ``silhouette`` its consensus silhouette
      (:func:`consensus_silhouette`). :meth:`RankTable.suggest` reads them.

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> V = np.random.default_rng(0).random((30, 12))
      >>> table = jn.rank_selection(V, ranks=[2, 3], seeds=range(3), max_iter=30)
      >>> table["rank"].tolist()
      [2, 3]
    """
    if isinstance(sweep_or_V, SweepResult):
        sw = sweep_or_V
    else:
        if ranks is None:
            raise ValueError("rank_selection(V, ranks, seeds, ...) needs ranks")
        if "heldout" not in sweep_kwargs and sweep_kwargs.get("mask") is None:
            sweep_or_V = _dense_for_default_heldout(sweep_or_V)
        sweep_kwargs.setdefault("heldout", 0.1)
        sweep_kwargs.setdefault("max_iter", 500)
        if "solver" not in sweep_kwargs:
            loss = sweep_kwargs.get("loss", "frobenius")
            first = loss[0] if isinstance(loss, list | tuple) and loss else loss
            quadratic = is_quadratic(as_loss(first))
            sweep_kwargs["solver"] = hals(masked="impute") if quadratic else "mu"
        sw = sweep(sweep_or_V, ranks, seeds, **sweep_kwargs)
    if not sw.single_loss:
        raise ValueError("rank_selection needs a sweep with a single loss (no penalty grid)")
    if samples not in ("columns", "rows"):
        raise ValueError(f"samples must be 'columns' or 'rows', got {samples!r}")
    if bicv is not None and (isinstance(sw.V, SparseMatrix) or sw.mask is not None):
        raise ValueError("bicv needs a sweep of dense V without mask")

    V = sw.V
    # Fit quality is measured on the entries each member was fitted to (held-out entries are
    # scored apart, by heldout_rmse).
    fit_masks = [sw.fit_mask(int(s)) for s in sw.seeds]
    if isinstance(V, SparseMatrix):  # from the stored entries: never an m×n array

        def rel_error(w, h, M):
            return float(relative_error(V, w, h, M))
    else:
        fit_masks = [np.ones_like(V) if M is None else M for M in fit_masks]

        def rel_error(w, h, M):
            return np.sqrt(np.sum(M * (V - w @ h) ** 2) / np.sum(M * V**2))

    cols = {
        name: []
        for name in (
            "rank",
            "cophenetic",
            "dispersion",
            "heldout_rmse_mean",
            "heldout_rmse_std",
            "rel_error_mean",
            "rel_error_std",
            "explained_variance_mean",
            "explained_variance_std",
            "sparseness_W_mean",
            "sparseness_W_std",
            "sparseness_H_mean",
            "sparseness_H_std",
            "n_converged",
            "heldout_rmse_se",
            "pac",
            "silhouette",
            "bcv_mse_mean",
            "bcv_mse_std",
            "bcv_mse_se",
        )
    }
    # metrics divides a float sum by an integer count, which strict dtype promotion (the test
    # suite's setting) refuses: the standard rules apply to this call only.
    with jax.numpy_dtype_promotion("standard"):
        hoyer_W, hoyer_H = np.asarray(_hoyer_all(sw.W, sw.H), np.float64)
    for i, r in enumerate(sw.ranks):
        W = sw.W[i][:, :, :r]  # (n_seeds, m, r)
        H = sw.H[i][:, :r, :]  # (n_seeds, r, n)
        # cluster label of each sample: its dominant component, per seed
        labels = np.argmax(H, axis=1) if samples == "columns" else np.argmax(W, axis=2)
        C = consensus_matrix(labels)
        rel = np.array([rel_error(w, h, M) for w, h, M in zip(W, H, fit_masks, strict=True)])
        spW, spH = hoyer_W[i], hoyer_H[i]
        hold = sw.heldout_rmse[i]
        cols["rank"].append(int(r))
        cols["cophenetic"].append(cophenetic_correlation(C))
        cols["dispersion"].append(float(np.mean(4 * (C - 0.5) ** 2)))
        cols["heldout_rmse_mean"].append(float(np.mean(hold)))
        cols["heldout_rmse_std"].append(float(np.std(hold)))
        cols["rel_error_mean"].append(float(np.mean(rel)))
        cols["rel_error_std"].append(float(np.std(rel)))
        cols["explained_variance_mean"].append(float(np.mean(1 - rel**2)))
        cols["explained_variance_std"].append(float(np.std(1 - rel**2)))
        cols["sparseness_W_mean"].append(float(np.nanmean(spW)))
        cols["sparseness_W_std"].append(float(np.nanstd(spW)))
        cols["sparseness_H_mean"].append(float(np.nanmean(spH)))
        cols["sparseness_H_std"].append(float(np.nanstd(spH)))
        cols["n_converged"].append(int(np.sum(sw.status_code[i] == Code.CONVERGED)))
        cols["pac"].append(pac(C))
        cols["silhouette"].append(consensus_silhouette(C, int(r)))
    cols["heldout_rmse_se"] = list(_paired_se(sw.heldout_rmse))
    if bicv is None:
        cols["bcv_mse_mean"] = cols["bcv_mse_std"] = [float("nan")] * len(sw.ranks)
        cols["bcv_mse_se"] = cols["bcv_mse_mean"]
    else:
        bcv = bicross_validation(
            sw.V,
            sw.ranks,
            sw.seeds,
            folds=bicv,
            loss=sw.losses_grid[0],
            solver=sw.solver,
            max_iter=sw.history.shape[-1],
            tol=sweep_kwargs.get("tol", 1e-4),
        )
        cols["bcv_mse_mean"] = list(bcv.mean(axis=1))
        cols["bcv_mse_std"] = list(bcv.std(axis=1))
        cols["bcv_mse_se"] = list(_paired_se(bcv))
    return RankTable({k: np.asarray(v) for k, v in cols.items()})
