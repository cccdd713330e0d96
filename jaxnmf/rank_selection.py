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
* reconstruction error, explained variance, Hoyer sparseness of W and H: mean and standard
  deviation over seeds.

Samples are the columns of V by default (genes × samples, as in Brunet et al.); pass
``samples="rows"`` for the scikit-learn layout (samples × features).

References:
    Brunet, J.-P., Tamayo, P., Golub, T. R. & Mesirov, J. P. (2004). Metagenes and molecular
    pattern discovery using matrix factorization. PNAS 101(12).
    Kim, H. & Park, H. (2007). Sparse non-negative matrix factorizations via alternating
    non-negativity-constrained least squares for microarray data analysis. Bioinformatics 23.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ._driver import Code
from ._sparse import SparseMatrix
from .metrics import relative_error
from .sweep import SweepResult, sweep

__all__ = ["RankTable", "consensus_matrix", "cophenetic_correlation", "rank_selection"]


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

    def suggest(self, criterion: str = "heldout_rmse") -> int:
        """The rank a criterion points to.

        * ``"heldout_rmse"``: the rank with the lowest mean held-out RMSE;
        * ``"cophenetic"`` / ``"dispersion"``: the largest rank at which the coefficient is
          at its maximum (within 1e-4): the last rank before it begins to fall from its peak
          (Brunet et al.). An earlier rule, "before the largest drop", picked k = 2 over a
          perfect k = 4 when a small dip at k = 3 came first.
        """
        ranks = self.columns["rank"]
        if criterion == "heldout_rmse":
            values = self.columns["heldout_rmse_mean"]
            if np.all(np.isnan(values)):
                raise ValueError("no held-out error: run the sweep with heldout > 0")
            return int(ranks[np.nanargmin(values)])
        if criterion in ("cophenetic", "dispersion"):
            values = self.columns[criterion]
            at_peak = np.nonzero(values >= np.nanmax(values) - 1e-4)[0]
            # the first run of peak values, and its last rank
            run_end = at_peak[0]
            while run_end + 1 in at_peak:
                run_end += 1
            return int(ranks[run_end])
        raise ValueError(f"unknown criterion {criterion!r}")

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
        warnings.warn("cophenetic correlation needs scipy (pip install scipy)", stacklevel=2)
        return float("nan")
    D = 1.0 - C
    np.fill_diagonal(D, 0.0)
    d = squareform(np.clip((D + D.T) / 2, 0, None), checks=False)
    if np.all(d == d[0]):  # one cluster or all apart: the tree carries no information
        return 1.0
    corr, _ = cophenet(linkage(d, method="average"), d)
    return float(corr)


def _hoyer(X, axis):
    d = X.shape[axis]
    l1 = np.sum(np.abs(X), axis=axis)
    l2 = np.sqrt(np.sum(X**2, axis=axis))
    ok = l2 > 0
    s = (np.sqrt(d) - l1[ok] / l2[ok]) / (np.sqrt(d) - 1)
    return float(np.mean(s)) if s.size else float("nan")


def rank_selection(
    sweep_or_V, ranks=None, seeds=range(10), *, samples: str = "columns", **sweep_kwargs
) -> RankTable:
    """One row per rank of the selection criteria, from one sweep.

    Args:
      sweep_or_V: a :class:`~jaxnmf.SweepResult`, or the data V, in which case
        ``jaxnmf.sweep(V, ranks, seeds, **sweep_kwargs)`` is run first (with ``heldout=0.1``
        unless given).
      ranks, seeds: the grid when V is given.
      samples: ``"columns"`` (V is features × samples; samples are clustered by the argmax of
        their column of H) or ``"rows"`` (samples × features; by the argmax of their row of W).

    Returns:
      A :class:`RankTable` with columns ``rank, cophenetic, dispersion, heldout_rmse_mean,
      heldout_rmse_std, rel_error_mean, rel_error_std, explained_variance_mean,
      explained_variance_std, sparseness_W_mean, sparseness_W_std, sparseness_H_mean,
      sparseness_H_std, n_converged``.

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
        sweep_kwargs.setdefault("heldout", 0.1)
        sw = sweep(sweep_or_V, ranks, seeds, **sweep_kwargs)
    if not sw.single_loss:
        raise ValueError("rank_selection needs a sweep with a single loss (no penalty grid)")
    if samples not in ("columns", "rows"):
        raise ValueError(f"samples must be 'columns' or 'rows', got {samples!r}")

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
        )
    }
    for i, r in enumerate(sw.ranks):
        W = sw.W[i][:, :, :r]  # (n_seeds, m, r)
        H = sw.H[i][:, :r, :]  # (n_seeds, r, n)
        # cluster label of each sample: its dominant component, per seed
        labels = np.argmax(H, axis=1) if samples == "columns" else np.argmax(W, axis=2)
        C = consensus_matrix(labels)
        rel = np.array([rel_error(w, h, M) for w, h, M in zip(W, H, fit_masks, strict=True)])
        spW = np.array([_hoyer(w, 0) for w in W])
        spH = np.array([_hoyer(h, 1) for h in H])
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
    return RankTable({k: np.asarray(v) for k, v in cols.items()})
