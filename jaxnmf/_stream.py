"""Reading ``X`` in row blocks, with the next block read while the device works on this one.

A *source* is anything :func:`open_source` takes: a NumPy array or memory map, an HDF5
dataset (h5py), a Zarr array, an AnnData object (opened ``backed="r"``: its ``X``), a
``scipy.sparse`` matrix, a path to a ``.npy`` file (memory-mapped) or a ``.h5ad`` file
(opened backed), an iterable of blocks (dense or ``scipy.sparse``, each ``(rows, n)``), or a
callable that returns a fresh such iterable (so that it can be read more than once).

Every block is checked on the host before it reaches the device — 2-D, the width of the
first block, the dtype of the first block, finite, non-negative — and a block that fails, or
a read that fails (a file that disappeared, a truncated dataset), becomes a
:class:`StreamError` naming the block (its index and first row). Memory: at most the block
being used, the block read ahead and the one being read, never ``X``.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from . import _sparse


class StreamError(ValueError):
    """A block of a streamed source is bad, or could not be read.

    Attributes:
      block: index of the block (0-based, in reading order).
      row: index of its first row in the stream (None when not known).
      result: the fit up to the last good batch (set by :func:`jaxnmf.fit_minibatch`), a
        :class:`~jaxnmf.minibatch.MiniBatchResult` with status ``"interrupted"``.
    """

    def __init__(self, message: str, block: int, row: int | None):
        super().__init__(message)
        self.block = block
        self.row = row
        self.result = None


class StreamTypeError(StreamError, TypeError):
    """A block of another kind than the first (dtype): a :class:`StreamError` and a
    ``TypeError``."""


class Source:
    """Row blocks of one source. ``n_rows`` is None for iterables of unknown length;
    ``rereadable`` says whether :meth:`blocks` can be called again (for more epochs)."""

    def __init__(
        self, blocks: Callable[[int], Iterator], n_rows, n_cols, rereadable: bool, name: str
    ):
        self._blocks = blocks
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.rereadable = rereadable
        self.name = name
        self._used = False

    def blocks(self, block_rows: int) -> Iterator:
        """Raw blocks, in order (not yet checked)."""
        if self._used and not self.rereadable:
            raise ValueError(
                f"{self.name} can be read once only; pass a callable that returns "
                "a fresh iterable to read it again"
            )
        self._used = True
        return self._blocks(block_rows)


class NpyRows:
    """Row blocks of a C-order ``.npy`` file read with ``read()`` calls, never mapped: the
    memory of a pass is one block (pages of a memory map count in the process's resident
    set until the kernel evicts them, so a memory-mapped pass over a 40 GB file shows up to
    40 GB of RSS). Fortran-order files fall back to a memory map."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._map = np.load(path, mmap_mode="r") if fortran and len(shape) > 1 else None

    def __getitem__(self, key):
        if self._map is not None or not isinstance(key, slice) or len(self.shape) != 2:
            X = self._map if self._map is not None else np.load(self.path, mmap_mode="r")
            return X[key]
        a, b, step = key.indices(self.shape[0])
        if step != 1:
            raise ValueError("NpyRows reads contiguous row ranges only")
        row_bytes = self.shape[1] * self.dtype.itemsize
        with open(self.path, "rb") as f:  # opened per block: a vanished file is an error here
            f.seek(self.offset + a * row_bytes)
            out = np.fromfile(f, self.dtype, count=max(b - a, 0) * self.shape[1])
        if out.size != max(b - a, 0) * self.shape[1]:
            raise OSError(f"{self.path} is truncated: rows {a}..{b} could not be read")
        return out.reshape(-1, self.shape[1])


def _sliced(X, n_rows: int, name: str) -> Callable[[int], Iterator]:
    def blocks(block_rows):
        for a in range(0, n_rows, block_rows):
            yield X[a : a + block_rows]

    return blocks


def open_source(source) -> Source:
    """A :class:`Source` for ``source`` (see the module docstring).

    Raises:
      TypeError: for anything else, before anything is read.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".npy"):
            return open_source(NpyRows(path))
        if path.endswith(".h5ad"):
            import anndata

            return open_source(anndata.read_h5ad(path, backed="r"))
        raise TypeError(f"a path source must be a .npy or .h5ad file, got {path!r}")
    if hasattr(source, "obs_names") and hasattr(source, "X"):  # AnnData (backed or not)
        return open_source(source.X)
    if _sparse.is_sparse_input(source):
        if not type(source).__module__.startswith("scipy.sparse"):
            raise TypeError("a sparse source must be a scipy.sparse matrix or array")
        if source.ndim != 2:
            raise ValueError(f"the source must be 2-D, got {source.ndim}-D")
        csr = source.tocsr()
        return Source(
            _sliced(csr, csr.shape[0], "matrix"),
            csr.shape[0],
            csr.shape[1],
            True,
            "the sparse matrix",
        )
    shape = getattr(source, "shape", None)
    if shape is not None and hasattr(source, "__getitem__") and hasattr(source, "dtype"):
        if len(shape) != 2:
            raise ValueError(
                f"the source must be 2-D (n_samples × n_features), got shape {tuple(shape)}"
            )
        if shape[0] == 0 or shape[1] == 0:
            raise ValueError(f"the source is empty: shape {tuple(shape)}")
        kind = type(source).__name__
        return Source(
            _sliced(source, int(shape[0]), kind), int(shape[0]), int(shape[1]), True, f"the {kind}"
        )
    if callable(source):
        return Source(lambda _: iter(source()), None, None, True, "the callable's iterable")
    if isinstance(source, Iterable) and not isinstance(source, (bytes, dict)):
        return Source(
            lambda _: iter(source),
            None,
            None,
            not isinstance(source, Iterator),
            "the iterable of blocks",
        )
    raise TypeError(
        "source must be an array or memory map, an h5py/zarr dataset, an AnnData object, a "
        "scipy.sparse matrix, a .npy/.h5ad path, an iterable of blocks or a callable returning "
        f"one; got {type(source).__name__}"
    )


def check_block(block, index: int, row: int | None, n_cols: int | None, dtype):
    """``block`` as a float ndarray or scipy CSR matrix, checked (see the module docstring).

    ``n_cols``/``dtype``: those of the first block (None for the first block itself).
    Raises :class:`StreamError` (:class:`StreamTypeError` for a dtype change) naming it.
    """
    where = f"block {index}" + ("" if row is None else f" (rows {row}..)")
    if _sparse.is_sparse_input(block):
        if not type(block).__module__.startswith("scipy.sparse"):
            raise StreamTypeError(f"{where}: a sparse block must be scipy.sparse", index, row)
        block = block.tocsr()
        values = block.data
    else:
        try:
            block = np.asarray(block)
        except Exception as e:  # ragged lists and the like
            raise StreamTypeError(f"{where}: not an array ({e})", index, row) from e
        values = block
    if block.ndim != 2:
        raise StreamError(
            f"{where} is {block.ndim}-D with shape {block.shape}; blocks must "
            "be 2-D (rows × n_features)",
            index,
            row,
        )
    if block.shape[0] == 0:
        raise StreamError(f"{where} has no rows", index, row)
    if block.dtype.kind not in "fiub":
        raise StreamTypeError(f"{where} holds {block.dtype}, not real numbers", index, row)
    if n_cols is not None and block.shape[1] != n_cols:
        raise StreamError(
            f"{where} has {block.shape[1]} columns, the blocks before it "
            f"{n_cols}: every block must have the same width",
            index,
            row,
        )
    if dtype is not None and block.dtype != dtype:
        raise StreamTypeError(
            f"{where} has dtype {block.dtype}, the blocks before it {dtype}: "
            "every block must have the same dtype",
            index,
            row,
        )
    if values.size:
        finite = np.isfinite(values)
        if not finite.all():
            raise StreamError(
                f"{where} holds {int(values.size - finite.sum())} NaN or "
                "infinite entries; X must be finite",
                index,
                row,
            )
        low = values.min()
        if low < 0:
            raise StreamError(
                f"{where} has negative entries (down to {low:g}); NMF needs X >= 0", index, row
            )
    return block


def checked_blocks(source: Source, block_rows: int, n_cols=None, dtype=None) -> Iterator:
    """``(index, first_row, block)`` for every block, checked; :class:`StreamError` for the
    first bad one (a failed read included, as a StreamError from the error)."""
    row = 0
    index = 0
    it = source.blocks(block_rows)
    while True:
        try:
            block = next(it)
        except StopIteration:
            return
        except StreamError:
            raise
        except Exception as e:  # the read failed: the file vanished, a dataset is truncated
            raise StreamError(
                f"block {index} (rows {row}..) of {source.name} could not be "
                f"read: {type(e).__name__}: {e}",
                index,
                row,
            ) from e
        block = check_block(block, index, row, n_cols, dtype)
        n_cols, dtype = block.shape[1], block.dtype
        yield index, row, block
        row += block.shape[0]
        index += 1


_DONE = object()


def prefetched(blocks: Iterator, depth: int = 1) -> Iterator:
    """``blocks`` read ahead by a background thread (``depth`` blocks in its queue), so
    that reading and checking block i+1 overlaps the device's work on block i. An error in
    the reader is raised here, in order, after the blocks before it. Closing the generator
    stops the reader."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader():
        try:
            for item in blocks:
                if not put(("ok", item)):
                    return
            put(("done", _DONE))
        except BaseException as e:  # delivered to the consumer, in order
            put(("error", e))

    thread = threading.Thread(target=reader, name="jaxnmf-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def dense_rows(block, a: int, b: int, dtype) -> np.ndarray:
    """Rows ``a:b`` of a checked block as a dense C-contiguous array of ``dtype`` (a sparse
    block is densified one batch at a time: bounded by the batch, not by X)."""
    if _sparse.is_sparse_input(block) and block.format not in ("csr", "csc"):
        block = block.tocsr()  # COO, DIA, ... cannot be sliced by rows
    part = block[a:b]
    if _sparse.is_sparse_input(part):
        part = part.toarray()
    return np.ascontiguousarray(part, dtype=dtype)


def dense_into(out: np.ndarray, block) -> None:
    """Write a checked block (dense, or scipy.sparse CSR/CSC) into ``out``, an array of its
    shape, in ``out``'s dtype: :func:`dense_rows` without a dense temporary of the block."""
    if _sparse.is_sparse_input(block):
        if block.dtype == out.dtype and out.flags.c_contiguous:
            block.toarray(out=out)  # scipy overwrites out
            return
        block = block.toarray()
    out[...] = block
