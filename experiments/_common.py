"""The result store under the run helper (:mod:`experiments._run`): seeds, atomic writes,
hashes, resumable parts and the manifest of result hashes. Data loaders live in
:mod:`jaxnmf.datasets`; the environment record in :mod:`experiments._run`.

Seeds: every random number of an experiment comes from ``numpy.random.SeedSequence(root_seed,
spawn_key=path)`` for a fixed integer ``path`` (e.g. ``(seed_index,)``), so a run is a function
of its config alone, and one seed's draw does not depend on how many other seeds there are.

Resumable runs: a run folder ``results/<name>/<variant>/`` is *finished* when its
``meta.json`` says ``"complete": true`` for the same config (``config_sha256``). An experiment
with several parts (data sets, chunks of ranks) runs each through :class:`Parts`, which writes
``parts/<part>.json`` and then ``parts/<part>.npz`` atomically and, on a restart, loads a part
already written instead of computing it again. Both also record the digest of the code that
computed them (:func:`code_digest`): a run or part written by other code is computed again.

Nothing is reused unverified: the sha256 of every array file is recorded when it is written
(``arrays_sha256`` in ``meta.json``, ``npz_sha256`` in ``parts/<part>.json``), and a finished run
or part is skipped only when its files still have those hashes (:func:`verify_sha256`).
Otherwise the run stops with an error naming the file; ``--force`` is the only way to redo it.

Result array files (``arrays.npz``, ``parts/*.npz``) are written byte-for-byte
deterministically (fixed zip timestamps, sorted members) and hold no timings (wall times go to
``meta.json`` and ``parts/<part>.json``), so two runs of the same config give identical files;
``results/manifest.json`` records their sha256 (see ``python -m experiments check``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "Parts",
    "ResultFileError",
    "clear_run",
    "config_digest",
    "derive_seed",
    "finished_run",
    "load_json",
    "load_npz",
    "numpy_rng",
    "result_files",
    "sha256_file",
    "update_manifest",
    "verify_sha256",
    "write_results",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


def numpy_rng(root_seed: int, *path: int) -> np.random.Generator:
    """A NumPy generator for the stream ``path`` of ``root_seed``."""
    return np.random.default_rng(np.random.SeedSequence(int(root_seed), spawn_key=path))


def derive_seed(root_seed: int, *path: int) -> int:
    """A non-negative int seed (for ``jaxnmf.fit(seed=...)``) for the stream ``path``."""
    ss = np.random.SeedSequence(int(root_seed), spawn_key=path)
    return int(ss.generate_state(1, np.uint32)[0] >> 1)  # < 2**31: fits any int32 seed


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file in ``path``'s folder, then ``os.replace`` it."""
    # A unique name in the same folder (so os.replace is atomic), created with the umask's
    # permissions (tempfile.mkstemp would make it private to the user).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())  # NaN inside becomes null, as a float's would
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


class ResultFileError(RuntimeError):
    """A result file that is corrupt, or was written by another experiment or config."""


def config_digest(config: dict) -> str:
    """sha256 of the config as canonical JSON: what a result file was made from."""
    text = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the code that results are computed by: the names and bytes of every ``.py``
    file of the ``jaxnmf`` package (wherever it is imported from) and of ``experiments/``, in
    sorted order. A finished run or part written by other code is computed again, not
    reused: a result follows from its config *and* the code. (``paper_figures/`` is not in
    it: a changed figure is drawn again from the same results.)"""
    import jaxnmf

    h = hashlib.sha256()
    for root in (Path(jaxnmf.__file__).resolve().parent, Path(__file__).resolve().parent):
        for path in sorted(root.rglob("*.py")):
            h.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def written_by_other_code(meta: dict) -> bool:
    """Whether a ``meta.json`` or part summary was written by code other than this (or
    before the digest was recorded)."""
    return meta.get(_CODE_SHA) != code_digest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path, recorded: str | None, record) -> str:
    """Check that the file ``path`` still has the sha256 ``recorded`` when it was written.

    Args:
      path: a result file.
      recorded: its sha256 as the file ``record`` holds it; ``None`` when ``record`` has none
        (a result written before hashes were recorded: it cannot be verified).
      record: the file that holds ``recorded`` (named in the error).

    Returns:
      The sha256, verified.

    Raises:
      ResultFileError: the hashes differ (expected and found named), or none was recorded.
    """
    if recorded is None:
        raise ResultFileError(
            f"{path}: no sha256 of it recorded in {record} (written before result files were "
            "hashed), so it cannot be verified; rerun with --force to redo it"
        )
    found = sha256_file(path)
    if found != recorded:
        raise ResultFileError(
            f"{path}: changed since it was written: sha256 {found} found, {recorded} expected "
            f"(recorded in {record}); rerun with --force to redo it"
        )
    return found


# Zip entries get this timestamp (the earliest zip can store) instead of "now", so the same
# arrays always give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _plain_arrays(arrays: dict) -> dict:
    plain = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; results must load without pickle")
        plain[name] = arr
    return plain


def _npz_bytes(arrays: dict) -> bytes:
    """``numpy.savez_compressed`` without the time of day: members sorted, fixed dates.

    Made in memory, so that its sha256 is known before the file is in place (a part records
    it in its summary, written before the ``.npz`` that marks the part done).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arrays[name], allow_pickle=False)
    return buf.getvalue()


def load_npz(path) -> dict:
    """All arrays of a result ``.npz`` (read in full, so a bad CRC shows up here).

    Raises:
      FileNotFoundError: no such file.
      ResultFileError: the file is not a readable ``.npz`` (truncated, overwritten, ...).
    """
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        raise ResultFileError(
            f"{path}: corrupt result file, not an .npz (zip) archive (it starts with {head!r}); "
            "delete it, or rerun with --force"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as e:  # BadZipFile, bad CRC, a pickle, a bare .npy (no .files), ...
        raise ResultFileError(
            f"{path}: corrupt result file, not a readable .npz ({type(e).__name__}: {e}); "
            "delete it, or rerun with --force"
        ) from e


def load_json(path) -> dict:
    """A JSON result file as a dict; :class:`ResultFileError` naming it when unreadable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise ResultFileError(
            f"{path}: corrupt result file, not readable JSON ({type(e).__name__}: {e}); "
            "delete it, or rerun with --force"
        ) from e
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: corrupt result file, expected a JSON object")
    return data


def _config_difference(a, b, prefix="") -> list[str]:
    """Dotted keys where two configs differ (for error messages)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if _jsonable(a) == _jsonable(b) else [prefix or "(config)"]
    out = []
    for key in sorted(set(a) | set(b)):
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in a or key not in b:
            out.append(where)
        else:
            out += _config_difference(a[key], b[key], where)
    return out


def write_results(out_dir: Path, arrays: dict, meta: dict) -> tuple[Path, Path]:
    """Write ``arrays.npz`` (plain arrays, no pickles, deterministic bytes), then ``meta.json``.

    Both atomically, arrays first: a ``meta.json`` with ``"complete": true`` is written last,
    so it marks a finished run. ``meta["config"]`` must be the run's config; ``meta.json``
    records the config's digest and the sha256 of ``arrays.npz`` (``arrays_sha256``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _npz_bytes(_plain_arrays(arrays))
    meta = {
        **meta,
        "complete": True,
        "config_sha256": config_digest(meta["config"]),
        _CODE_SHA: code_digest(),
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
    }
    npz, js = out_dir / "arrays.npz", out_dir / "meta.json"
    _atomic_write(npz, lambda f: f.write(data))
    text = json.dumps(_jsonable(meta), indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic_write(js, lambda f: f.write(text.encode()))
    return npz, js


# --------------------------------------------------------------------------------------------
# Resumable runs
# --------------------------------------------------------------------------------------------

# Key of the stamp stored in every part file: which experiment, config and part wrote it.
_STAMP = "__part_stamp__"
# Key, in a part's summary (parts/<part>.json), of the sha256 of its .npz.
_PART_SHA = "npz_sha256"
# Key, in meta.json and in a part's summary, of the code digest (code_digest) that wrote it.
_CODE_SHA = "code_sha256"


def finished_run(out_dir, config: dict) -> dict | None:
    """The ``meta.json`` of a finished run of ``config`` in ``out_dir``, else ``None``.

    ``None`` when there is no ``meta.json``, when it does not say ``"complete": true`` (a run
    cut short, or written before runs were resumable), when ``arrays.npz`` is missing, when
    other code wrote it (:func:`code_digest`: the run is then computed again), or
    when a part was skipped for want of data or a package (which may be installed now; the
    parts that did run are reused, each verified as it is loaded).

    A finished run is returned only once its files are verified: ``arrays.npz`` and every
    ``parts/*.npz`` still have the sha256 recorded when they were written.

    Raises:
      ResultFileError: ``meta.json`` or an array file is corrupt, or differs from the hash
        recorded for it (or none was recorded), or the run there was made by another
        experiment or another config (naming the keys that differ).
    """
    out_dir = Path(out_dir)
    js, npz = out_dir / "meta.json", out_dir / "arrays.npz"
    if not js.is_file():
        return None
    meta = load_json(js)
    if not meta.get("complete"):
        return None
    if meta.get("experiment") != config["name"] or meta.get("config_sha256") != config_digest(
        config
    ):
        diff = _config_difference(meta.get("config"), config)
        raise ResultFileError(
            f"{js}: a finished run of another config (experiment {meta.get('experiment')!r}; "
            f"differs in: {', '.join(diff) or 'config digest'}); rerun with --force to replace "
            "it, or write elsewhere with --out"
        )
    if not npz.is_file() or written_by_other_code(meta):
        return None
    missing = {k: v for k, v in (meta.get("skipped") or {}).items() if not _by_config(v)}
    if missing:  # data or a package was absent: try again, it may be installed now
        return None
    load_npz(npz)  # a corrupt file gets its own message, before the hash says "changed"
    verify_sha256(npz, meta.get("arrays_sha256"), js)
    parts = Parts(out_dir, config, log=lambda _: None)
    for part_npz in sorted(parts.dir.glob("*.npz")):
        parts.load(part_npz.stem)  # corrupt, foreign or changed: ResultFileError
    return meta


def _by_config(reason: str) -> bool:
    """Whether a skip reason is a config choice (``<part>.enabled=false``), not absent data."""
    return str(reason).startswith("disabled in the config")


def clear_run(out_dir) -> list[Path]:
    """Delete the result files of a run folder (``--force``); returns what was deleted."""
    out_dir = Path(out_dir)
    doomed = [out_dir / "arrays.npz", out_dir / "meta.json"]
    parts = out_dir / "parts"
    if parts.is_dir():
        doomed += sorted(parts.glob("*.npz")) + sorted(parts.glob("*.json"))
        doomed += sorted(parts.glob(".*.tmp"))
    doomed += sorted(out_dir.glob(".*.tmp"))
    gone = []
    for p in doomed:
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone


class Parts:
    """Checkpoints of one run: each finished part is written, atomically, to
    ``<out_dir>/parts/<part>.json`` (its summary, wall time and the sha256 of its ``.npz``) and
    then ``<out_dir>/parts/<part>.npz`` (its arrays, stamped with the experiment, the config
    digest and the part name). :meth:`run` computes a part only when its ``.npz`` is not there
    yet, and reuses one only when it has the stamp and the hash recorded for it.

    Args:
      out_dir: the run folder.
      config: the run's config (its ``"name"`` is the experiment).
      log: printed lines go through this (default ``print``).
    """

    def __init__(self, out_dir, config: dict, log: Callable[[str], None] | None = None):
        self.dir = Path(out_dir) / "parts"
        self.experiment = config["name"]
        self.digest = config_digest(config)
        self.record: dict[str, dict] = {}
        self._log = log or (lambda msg: print(msg, flush=True))

    def _stamp(self, part: str) -> str:
        return json.dumps(
            {"experiment": self.experiment, "config_sha256": self.digest, "part": part},
            sort_keys=True,
        )

    def paths(self, part: str) -> tuple[Path, Path]:
        if not part or "/" in part or part.startswith("."):
            raise ValueError(f"bad part name {part!r}")
        return self.dir / f"{part}.npz", self.dir / f"{part}.json"

    def load(self, part: str) -> tuple[dict, dict] | None:
        """``(arrays, meta)`` of a part written earlier by this config, else ``None``.

        Raises:
          ResultFileError: the part file is corrupt, stamped by another experiment, config or
            part, has no summary, or differs from the sha256 its summary recorded.
        """
        found = self._load(part)
        return None if found is None else found[:2]

    def _load(self, part: str) -> tuple[dict, dict, str] | None:
        """:meth:`load`, and the part file's verified sha256."""
        npz, js = self.paths(part)
        if not npz.is_file():
            return None
        arrays = load_npz(npz)
        stamp = arrays.pop(_STAMP, None)
        if stamp is None or str(stamp) != self._stamp(part):
            found = "no stamp" if stamp is None else str(stamp)
            raise ResultFileError(
                f"{npz}: a foreign result file, not written by part {part!r} of this "
                f"{self.experiment!r} config (config_sha256 {self.digest[:12]}...; the file "
                f"has {found}); rerun with --force to replace it, or write elsewhere with --out"
            )
        if not js.is_file():
            raise ResultFileError(f"{npz}: its summary {js.name} is missing; rerun with --force")
        meta = load_json(js)
        sha = verify_sha256(npz, meta.pop(_PART_SHA, None), js)
        if written_by_other_code(meta):
            self._log(f"  part {part}: {npz} was computed by other code: computing it again")
            return None
        meta.pop(_CODE_SHA)
        return arrays, meta, sha

    def run(self, part: str, compute: Callable[[], tuple[dict, dict]]) -> tuple[dict, dict]:
        """The part's ``(arrays, meta)``: loaded when written earlier, else ``compute()``d,
        written and returned. ``meta`` must be JSON-able; keep timings there, not in arrays.
        """
        found = self._load(part)
        npz, js = self.paths(part)
        if found is not None:
            arrays, meta, sha = found
            self._log(f"  part {part}: finished earlier, loaded {npz} (sha256 verified)")
            self.record[part] = {
                "reused": True,
                "wall_seconds": meta.get("wall_seconds"),
                "sha256": sha,
            }
            return arrays, meta
        t0 = time.perf_counter()
        arrays, meta = compute()
        arrays = _plain_arrays(arrays)
        if _STAMP in arrays:
            raise ValueError(f"array name {_STAMP!r} is reserved")
        if _PART_SHA in meta or _CODE_SHA in meta:
            raise ValueError(f"summary keys {_PART_SHA!r} and {_CODE_SHA!r} are reserved")
        meta = _jsonable({**meta, "wall_seconds": time.perf_counter() - t0})
        data = _npz_bytes({**arrays, _STAMP: np.str_(self._stamp(part))})
        sha = hashlib.sha256(data).hexdigest()
        self.dir.mkdir(parents=True, exist_ok=True)
        summary = {**meta, _PART_SHA: sha, _CODE_SHA: code_digest()}
        text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
        _atomic_write(js, lambda f: f.write(text.encode()))
        _atomic_write(npz, lambda f: f.write(data))  # last: marks the part done
        self._log(f"  part {part}: wrote {npz} ({meta['wall_seconds']:.1f} s)")
        self.record[part] = {"reused": False, "wall_seconds": meta["wall_seconds"], "sha256": sha}
        return arrays, meta


# --------------------------------------------------------------------------------------------
# Manifest of result hashes
# --------------------------------------------------------------------------------------------

MANIFEST = "manifest.json"


def result_files(run_dir) -> list[Path]:
    """The array files of a run folder: ``arrays.npz`` and ``parts/*.npz``, sorted."""
    run_dir = Path(run_dir)
    files = [run_dir / "arrays.npz"] if (run_dir / "arrays.npz").is_file() else []
    return files + sorted((run_dir / "parts").glob("*.npz"))


def update_manifest(results_root, run_dir) -> Path:
    """Record the sha256 of ``run_dir``'s array files in ``<results_root>/manifest.json``
    (replacing that folder's earlier entries)."""
    root = Path(results_root)
    path = root / MANIFEST
    manifest = load_json(path) if path.is_file() else {}
    files = dict(manifest.get("files", {}))
    prefix = Path(run_dir).resolve().relative_to(root.resolve()).as_posix() + "/"
    files = {k: v for k, v in files.items() if not k.startswith(prefix)}
    for f in result_files(run_dir):
        files[f.resolve().relative_to(root.resolve()).as_posix()] = sha256_file(f)
    manifest = {
        "algorithm": "sha256",
        "note": "hashes of the result array files (no timings in them); "
        "`python -m experiments check` recomputes and compares",
        "files": dict(sorted(files.items())),
    }
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode()))
    return path
