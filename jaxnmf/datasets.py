"""Real data sets that load offline, from installed packages (see ``DATA.md``).

Nothing here downloads: every loader reads data shipped inside a package and raises
``ImportError`` naming the package when it is absent (tests skip on it).

* :func:`load_digits`: scikit-learn's bundled 8×8 handwritten digits, ``(1797, 64)``.
* :func:`load_scipy_docstrings`: the docstrings of SciPy's public callables, labelled by
  subpackage, for topic modelling with ground truth (≈1200 documents; the exact count
  depends on the SciPy version, so test ranges, not numbers).

Examples:
    >>> from jaxnmf import datasets
    >>> texts, labels, names = datasets.load_scipy_docstrings(return_raw=True)
    >>> len(texts) == len(labels) > 1000, names[0]
    (True, 'special')
"""

# ruff: noqa: N806

from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings

import numpy as np

__all__ = ["SCIPY_SUBPACKAGES", "load_digits", "load_scipy_docstrings"]

#: The subpackages whose docstrings form the corpus, in label order.
SCIPY_SUBPACKAGES = (
    "special",
    "stats",
    "signal",
    "linalg",
    "ndimage",
    "optimize",
    "interpolate",
    "sparse",
    "fft",
    "integrate",
)

#: numpydoc sections left out of every docstring (code and citations, not topic words).
DROPPED_SECTIONS = ("examples", "references")

#: A paragraph found in this many docstrings or more is boilerplate and is dropped.
BOILERPLATE_MIN_DOCS = 3


def _require(package: str, what: str):
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(
            f"{what} needs {package.split('.')[0]!r}, which is not installed "
            f"(pip install {'scikit-learn' if package.startswith('sklearn') else package})"
        ) from None


def load_digits(dtype=np.float64):
    """The 8×8 handwritten digits bundled with scikit-learn (UCI ML hand-written digits).

    Args:
      dtype: floating dtype of ``X``.

    Returns:
      ``(X, y)``: ``X`` ``(1797, 64)`` pixel intensities 0–16 (non-negative, as NMF needs),
      ``y`` ``(1797,)`` int64 labels 0–9.

    Raises:
      ImportError: scikit-learn is not installed.
    """
    datasets = _require("sklearn.datasets", "load_digits")
    bunch = datasets.load_digits()
    return np.asarray(bunch.data, dtype=dtype), np.asarray(bunch.target, dtype=np.int64)


# --- SciPy docstrings ----------------------------------------------------------------------

# A numpydoc section header: a title line, then a line of dashes (or =) at least 3 long.
_HEADER = re.compile(r"^(?P<title>[^\n]+)\n[ \t]*[-=]{3,}[ \t]*$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def _drop_sections(doc: str, titles=DROPPED_SECTIONS) -> str:
    """``doc`` without the numpydoc sections whose title is in ``titles`` (case-insensitive);
    a section runs from its header to the next header."""
    headers = list(_HEADER.finditer(doc))
    if not headers:
        return doc
    parts = [doc[: headers[0].start()]]
    for i, h in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
        if h.group("title").strip().lower() not in titles:
            parts.append(doc[h.start() : end])
    return "".join(parts)


def _paragraphs(doc: str) -> list[str]:
    """Blank-line separated paragraphs, whitespace collapsed, empty ones left out."""
    paras = (" ".join(p.split()) for p in _BLANK_LINES.split(doc))
    return [p for p in paras if p]


def _public_callables(subpackage: str):
    """``(name, object)`` of the public callables of ``scipy.<subpackage>``, sorted by name:
    the names of its ``__all__`` (else of ``dir``) not starting with ``_``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated names warn on access
        module = importlib.import_module(f"scipy.{subpackage}")
        names = getattr(module, "__all__", None) or dir(module)
        found = []
        for name in sorted(set(names)):
            if name.startswith("_"):
                continue
            try:
                obj = getattr(module, name)
            except Exception:  # a lazily loaded name that fails to import
                continue
            if callable(obj) and not inspect.ismodule(obj):
                found.append((name, obj))
    return found


@functools.lru_cache(maxsize=1)
def _scipy_corpus() -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
    """``(texts, labels, names)`` as tuples, ``names`` the ``"subpackage.name"`` of each
    document; built once per process (≈1 s)."""
    _require("scipy", "load_scipy_docstrings")
    seen = set()  # an object exported under several names (or subpackages) counts once
    raw = []  # (label, name, paragraphs)
    for label, sub in enumerate(SCIPY_SUBPACKAGES):
        for name, obj in _public_callables(sub):
            doc = getattr(obj, "__doc__", None)
            if id(obj) in seen or not isinstance(doc, str) or not doc.strip():
                continue
            seen.add(id(obj))
            paras = _paragraphs(_drop_sections(inspect.cleandoc(doc)))
            raw.append((label, f"{sub}.{name}", paras))

    doc_count: dict[str, int] = {}
    for _, _, paras in raw:
        for p in set(paras):
            doc_count[p] = doc_count.get(p, 0) + 1

    texts, labels, names = [], [], []
    for label, name, paras in raw:
        kept = [p for p in paras if doc_count[p] < BOILERPLATE_MIN_DOCS]
        if kept:
            texts.append("\n\n".join(kept))
            labels.append(label)
            names.append(name)
    return tuple(texts), tuple(labels), tuple(names)


def load_scipy_docstrings(*, min_df: int = 3, return_raw: bool = False):
    """Docstrings of SciPy's public callables, labelled by subpackage (``DATA.md``).

    The corpus: for each subpackage of :data:`SCIPY_SUBPACKAGES` (special, stats, signal,
    linalg, ndimage, optimize, interpolate, sparse, fft, integrate), the docstring of every
    public callable (the names of its ``__all__``; an object exported under several names
    counts once, under its first subpackage and name), dedented, without its ``Examples`` and
    ``References`` sections, split into blank-line separated paragraphs; a paragraph that
    appears in 3 or more docstrings is boilerplate and is dropped, and so is a docstring left
    empty. The label of a document is its subpackage. Order: subpackage, then name.

    Args:
      min_df: with ``return_raw=False``, keep the terms found in at least ``min_df``
        documents.
      return_raw: return the texts instead of a count matrix.

    Returns:
      With ``return_raw=True``: ``(texts, labels, label_names)``, ``texts`` a list of
      ``n_docs`` strings, ``labels`` ``(n_docs,)`` int64 indices into ``label_names``, the
      tuple :data:`SCIPY_SUBPACKAGES`.

      With ``return_raw=False``: ``(X, labels, label_names, terms)``, ``X`` a
      ``scipy.sparse.csr_matrix`` ``(n_docs, n_terms)`` of float64 word counts
      (scikit-learn's ``CountVectorizer``: lower case, English stop words removed, words of 2+
      letters) and ``terms`` ``(n_terms,)`` the words of its columns.

      Sizes with SciPy 1.17: 1227 documents; 3167 terms at ``min_df=3``.

    Raises:
      ImportError: SciPy (or, for the count matrix, scikit-learn) is not installed.
    """
    texts, labels, _ = _scipy_corpus()
    labels = np.asarray(labels, dtype=np.int64)
    if return_raw:
        return list(texts), labels, SCIPY_SUBPACKAGES
    text = _require("sklearn.feature_extraction.text", "load_scipy_docstrings(return_raw=False)")
    vectorizer = text.CountVectorizer(
        min_df=min_df,
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
        dtype=np.float64,
    )
    X = vectorizer.fit_transform(texts).tocsr()
    terms = vectorizer.get_feature_names_out()
    return X, labels, SCIPY_SUBPACKAGES, terms
