"""Sparse data: a COO matrix that is never densified, and the few kernels NMF needs on it.

:class:`SparseMatrix` holds the stored entries of ``V`` ``(m, n)`` as three arrays of length
``nnz`` (row and column indices, int32, sorted by row then column, no duplicates; and the
values) plus the static ``shape``. :func:`jaxnmf.api.prepare` builds it on the host from
``scipy.sparse`` matrices and arrays (any format) and ``jax.experimental.sparse`` BCOO/BCSR.

What NMF needs of ``V`` costs O(nnz · k) here, never O(m · n):

* ``V @ X``, ``X @ V`` and ``V.T`` (so ``V Hᵀ``, ``Wᵀ V``, ``H Vᵀ`` of the Gram-form solvers
  work unchanged: :class:`SparseMatrix` implements ``@`` and ``.T``);
* ``(WH)`` at the stored entries (:func:`sample`);
* the fused "sample, weigh, scatter" product (:func:`sample_scatter`): for every stored entry
  ``e = (i, j)`` compute ``(WH)_ij``, turn it into coefficients ``c_e`` and accumulate
  ``Σ_e c_e H[:, j]`` into row i (or ``Σ_e c_e W[i]`` into column j). This is ``(C ∘ f(WH)) Hᵀ``
  of a β-divergence gradient restricted to the stored entries, with each factor row gathered
  once per entry.

Why blocks: XLA on CPU materializes a gather ``W[rows]`` (nnz × k) in memory before using it;
for nnz ≈ 10⁶ and k = 50 that is 200 MB per product and the kernels run at memory speed.
Processing the entries in blocks of :data:`BLOCK` (``lax.map`` / ``lax.scan``) keeps each
block's gathers in cache: on a 2-core CPU, 880k entries and k = 50, ``(WH)`` at the entries
takes 23 ms instead of 127 ms, and ``V Hᵀ`` 28 ms instead of 95 ms (float32).

Two meanings of the unstored entries, chosen by the ``mask`` of a fit:

* ``mask=None``: unstored entries are zeros of ``V`` (a term-count matrix). Losses then need
  ``Σ_ij (WH)_ij`` or ``‖WH‖²`` over all entries, which come from ``k``-sized products
  (``sum(W, 0) · sum(H, 1)``, ``⟨WᵀW, HHᵀ⟩``): Frobenius and KL only.
* ``mask="stored"``: unstored entries are *missing* (ratings); every loss is evaluated at the
  stored entries only. The mask is then a :class:`SparseMatrix` with exactly ``V``'s pattern
  whose values are the entry weights (1, or 0 for entries a sweep holds out).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BLOCK", "SparseMatrix", "is_sparse_input", "sample", "sample_scatter", "sq_norm"]

#: Stored entries per block of the kernels (static). 16384 entries × k = 50 float32 factor
#: rows is 3 MB per gathered block: it stays in a CPU's L2/L3 cache.
BLOCK = 16384


@jax.tree_util.register_pytree_node_class
class SparseMatrix:
    """Stored entries of an ``(m, n)`` matrix in COO form: a JAX pytree.

    Attributes:
      rows, cols: ``(nnz,)`` int32 indices, sorted by (row, col), without duplicates
        (``.T`` swaps them, and the order is then by column).
      values: ``(nnz,)`` values of the compute dtype.
      shape: ``(m, n)``, static (part of the pytree structure: a new shape recompiles, and
        so does a new ``nnz``, which is the shape of the leaves).

    Supports ``V @ X`` (X ``(n, k)``), ``X @ V`` (X ``(k, m)``) and ``V.T``, each O(nnz · k).
    """

    # numpy's binary operators defer to __rmatmul__ instead of wrapping V in an object array.
    __array_ufunc__ = None

    def __init__(self, rows, cols, values, shape):
        self.rows, self.cols, self.values = rows, cols, values
        self.shape = tuple(int(s) for s in shape)

    def tree_flatten(self):
        return (self.rows, self.cols, self.values), self.shape

    @classmethod
    def tree_unflatten(cls, shape, leaves):
        return cls(*leaves, shape)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def nnz(self) -> int:
        return int(self.values.shape[-1])

    ndim = 2

    @property
    def T(self) -> SparseMatrix:  # noqa: N802 - the numpy name
        return SparseMatrix(self.cols, self.rows, self.values, self.shape[::-1])

    def with_values(self, values) -> SparseMatrix:
        """The same pattern with other values (e.g. ``V / WH`` at the stored entries)."""
        return SparseMatrix(self.rows, self.cols, values, self.shape)

    def __matmul__(self, X):
        """``V @ X``: ``(m, n) @ (n, k) -> (m, k)``."""
        return spmm(self.values, self.rows, self.cols, self.shape[0], X)

    def __rmatmul__(self, X):
        """``X @ V``: ``(k, m) @ (m, n) -> (k, n)``."""
        return spmm(self.values, self.cols, self.rows, self.shape[1], X.T).T

    def __repr__(self):
        return f"SparseMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def is_sparse_input(V) -> bool:
    """True for scipy.sparse matrices/arrays, BCOO/BCSR and :class:`SparseMatrix`."""
    if isinstance(V, SparseMatrix):
        return True
    if type(V).__module__.startswith("scipy.sparse"):
        return True
    return type(V).__name__ in ("BCOO", "BCSR")


# --- host-side conversion ------------------------------------------------------------------


def coo_arrays(V):
    """``(rows, cols, values, shape)`` of a sparse input, as it is stored (host, NumPy).

    Duplicates are not yet summed and values not yet checked; structural problems (not 2-D,
    BCOO with batch or dense dimensions, indices out of range) raise here.
    """
    if isinstance(V, SparseMatrix):
        return (np.asarray(V.rows), np.asarray(V.cols), np.asarray(V.values), V.shape)
    name = type(V).__name__
    if name == "BCSR":
        V = V.to_bcoo()
        name = "BCOO"
    if name == "BCOO":
        if V.n_batch or V.n_dense:
            raise ValueError(
                f"V is a BCOO with {V.n_batch} batch and {V.n_dense} dense dimensions; jaxnmf "
                "takes a plain 2-D BCOO (n_batch = n_dense = 0)"
            )
        shape = tuple(V.shape)
        if len(shape) != 2:
            raise ValueError(f"V must be 2-D (m × n), got a {len(shape)}-D BCOO of shape {shape}")
        idx = np.asarray(V.indices)
        values = np.asarray(V.data)
        rows, cols = idx[:, 0].astype(np.int64), idx[:, 1].astype(np.int64)
        if np.any(rows < 0) or np.any(cols < 0):
            raise ValueError("V (BCOO) has negative indices")
        # BCOO marks padding entries (e.g. after sum_duplicates with a fixed nse) by indices
        # out of range; they are not part of the matrix.
        inside = (rows < shape[0]) & (cols < shape[1])
        return rows[inside], cols[inside], values[inside], shape
    # scipy.sparse: every format converts to COO; 1-D and n-D sparse arrays exist since 1.13.
    shape = tuple(V.shape)
    if len(shape) != 2:
        raise ValueError(f"V must be 2-D (m × n), got a {len(shape)}-D sparse array")
    coo = V.tocoo()
    return (
        np.asarray(coo.row).astype(np.int64),
        np.asarray(coo.col).astype(np.int64),
        np.asarray(coo.data),
        shape,
    )


def canonical_csr(V):
    """``(rows, cols, values, shape)`` of a scipy CSR matrix in canonical format (sorted
    indices, no duplicates: what scipy's constructors and products give), which is already
    :func:`canonical`'s order: its arrays as they are, without :func:`canonical`'s int64
    round trip (``_validate.sparse_data`` of a 1227 × 1000 TF-IDF matrix with 83,000
    entries: 0.016 ms against 1.6 ms). None for any other input."""
    if not (
        type(V).__module__.startswith("scipy.sparse")
        and getattr(V, "format", None) == "csr"
        and len(V.shape) == 2
        and V.dtype != np.bool_  # canonical() sums boolean duplicates as counts
        and V.has_canonical_format
    ):
        return None
    m, n = V.shape
    rows = np.repeat(np.arange(m, dtype=np.int32), np.diff(V.indptr))
    cols = np.asarray(V.indices).astype(np.int32, copy=False)
    return rows, cols, np.ascontiguousarray(V.data), (m, n)


def canonical_arrays(V):
    """:func:`canonical` of a sparse input (:func:`canonical_csr` where it applies)."""
    fast = canonical_csr(V)
    return fast if fast is not None else canonical(*coo_arrays(V))


def canonical(rows, cols, values, shape):
    """Sorted by (row, col) with duplicates summed (host, NumPy); indices as int32."""
    m, n = shape
    if values.dtype == np.bool_:
        values = values.astype(np.int64)  # scipy sums boolean duplicates as counts too
    lin = rows.astype(np.int64) * n + cols.astype(np.int64)
    if lin.size > 1 and not np.all(lin[1:] > lin[:-1]):
        order = np.argsort(lin, kind="stable")
        lin, values = lin[order], values[order]
        first = np.concatenate([[True], lin[1:] != lin[:-1]])
        starts = np.flatnonzero(first)
        values = np.add.reduceat(values, starts)
        lin = lin[starts]
    return (
        (lin // n).astype(np.int32),
        (lin % n).astype(np.int32),
        np.ascontiguousarray(values),
        (m, n),
    )


# --- kernels (traceable; no jit here) ----------------------------------------------------------


def _over_blocks(body, init, nnz: int, *arrays):
    """Run ``body(carry, ok, *block) -> (carry, out)`` over the entries, block by block.

    ``arrays`` are ``(nnz,)``. Up to :data:`BLOCK` entries, ``body`` sees them all at once
    with ``ok = None`` (no loop: smaller programs that compile faster). Beyond, the arrays are
    padded to whole blocks (index 0, value 0) and scanned; ``ok`` ``(BLOCK,)`` is False on the
    padding. Returns the final carry and the per-entry outputs ``(nnz,)`` (or None).
    """
    if nnz <= BLOCK:
        return body(init, None, *arrays)
    n_blocks = -(-nnz // BLOCK)
    pad = n_blocks * BLOCK - nnz
    blocks = [jnp.pad(a, (0, pad)).reshape(n_blocks, BLOCK) for a in arrays]
    valid = (jnp.arange(n_blocks * BLOCK, dtype=jnp.int32) < nnz).reshape(n_blocks, BLOCK)
    carry, out = jax.lax.scan(lambda c, blk: body(c, *blk), init, (valid, *blocks))
    return carry, (None if out is None else out.reshape(-1)[:nnz])


def _drop_padding(x, ok):
    """Zero the rows of ``x`` ``(B, k)`` that belong to padding, so they add exactly nothing
    (even where a factor holds inf or NaN)."""
    return x if ok is None else jnp.where(ok[:, None], x, 0)


def sample(W, H, rows, cols):
    """``(WH)[rows[e], cols[e]]`` for every e, shape ``(nnz,)``, without forming WH.

    Args:
      W: ``(m, k)``; H: ``(k, n)``; rows, cols: ``(nnz,)`` int indices.
    """
    W, H = jnp.asarray(W), jnp.asarray(H)  # NumPy factors cannot be indexed by tracers
    Ht = H.T  # (n, k): gathering rows of Hᵀ reads k contiguous numbers per entry

    def body(carry, ok, r, c):
        return carry, jnp.sum(W[r] * Ht[c], axis=1)

    return _over_blocks(body, (), rows.shape[0], rows, cols)[1]


def spmm(values, rows, cols, n_rows: int, X):
    """``S @ X`` for ``S`` with entries ``values`` at ``(rows, cols)``: ``out[rows[e]] +=
    values[e] · X[cols[e]]``. ``X`` ``(n, k)`` -> ``(n_rows, k)``."""
    X = jnp.asarray(X)
    out = jnp.zeros((n_rows, X.shape[1]), jnp.result_type(values, X))

    def body(acc, ok, v, r, c):
        return acc.at[r].add(_drop_padding(v[:, None] * X[c], ok)), None

    return _over_blocks(body, out, values.shape[0], values, rows, cols)[0]


def sample_scatter(V, W, H, coef, wrt: str, extra=(), wh=None):
    """Fused ``(WH)`` at the stored entries, per-entry coefficients, and scatter.

    For every stored entry ``e = (i, j)`` of ``V``: ``wh_e = W[i] · H[:, j]``, then
    ``cs = coef(v_e, wh_e, *extra_e)`` (a tuple of arrays shaped like ``v``), and for each
    coefficient ``c`` the sum ``Σ_e c_e H[:, j]ᵀ`` into row i (``wrt="W"``, result ``(m, k)``)
    or ``Σ_e c_e W[i]`` into column j (``wrt="H"``, result ``(k, n)``).

    Args:
      V: a :class:`SparseMatrix` ``(m, n)``.
      W: ``(m, k)``; H: ``(k, n)``.
      coef: ``(v, wh, *extra) -> tuple of arrays``, element-wise.
      wrt: ``"W"`` or ``"H"`` (static).
      extra: arrays ``(nnz,)`` passed to ``coef`` entry by entry (e.g. weights).
      wh: ``(WH)`` at the stored entries ``(nnz,)`` if the caller has it (a multiplicative
        update carries it from the previous objective): then only the factor that is
        scattered is gathered, and no dot products are taken.

    Returns:
      A tuple with one ``(m, k)`` (or ``(k, n)``) array per coefficient.
    """
    W, H = jnp.asarray(W), jnp.asarray(H)
    m, n = V.shape
    k = W.shape[1]
    Ht = H.T
    entry = jax.ShapeDtypeStruct((1,), V.dtype)
    n_out = len(jax.eval_shape(coef, entry, entry, *(entry for _ in extra)))
    zeros = tuple(jnp.zeros((m if wrt == "W" else n, k), W.dtype) for _ in range(n_out))

    def body(acc, ok, v, r, c, *ex):
        if wh is None:
            w_rows, h_rows = W[r], Ht[c]  # (B, k) each, gathered once per block
            cs = coef(v, jnp.sum(w_rows * h_rows, axis=1), *ex)
            other = h_rows if wrt == "W" else w_rows
        else:  # wh is the last of the per-entry arrays
            cs = coef(v, ex[-1], *ex[:-1])
            other = Ht[c] if wrt == "W" else W[r]
        idx = r if wrt == "W" else c
        acc = tuple(
            a.at[idx].add(_drop_padding(c_[:, None] * other, ok))
            for a, c_ in zip(acc, cs, strict=True)
        )
        return acc, None

    per_entry = (*extra, wh) if wh is not None else tuple(extra)
    out, _ = _over_blocks(body, zeros, V.nnz, V.values, V.rows, V.cols, *per_entry)
    return out if wrt == "W" else tuple(o.T for o in out)


def sq_norm(V):
    """``‖V‖²``: ``Σ`` of the squared stored values, or ``vdot(V, V)`` for a dense array."""
    if isinstance(V, SparseMatrix):
        return jnp.vdot(V.values, V.values)
    return jnp.vdot(V, V)


def frobenius_sq(V, W, H, wh=None):
    """``‖V - WH‖²`` for sparse ``V`` whose unstored entries are zeros.

    ``Σ_stored (v - wh)² + (‖WH‖² - Σ_stored wh²)``: the first sum is taken directly, and
    ``‖WH‖² = ⟨WᵀW, HHᵀ⟩`` only enters through the mass of WH *outside* the stored entries.
    This cancels far less than ``‖V‖² - 2⟨V, WH⟩ + ‖WH‖²`` when the fit is good (for sparse
    data most of ``‖WH‖²`` lies outside the stored entries).
    """
    if wh is None:
        wh = sample(W, H, V.rows, V.cols)
    outside = jnp.vdot(W.T @ W, H @ H.T) - jnp.vdot(wh, wh)
    return jnp.sum(jnp.square(V.values - wh)) + jnp.maximum(outside, 0)
