"""Shared plumbing for experiments: seeds, data loading, environment record, atomic writes.

Seeds: every random number of an experiment comes from ``numpy.random.SeedSequence(root_seed,
spawn_key=path)`` for a fixed integer ``path`` (e.g. ``(seed_index,)``), so a run is a function
of its config alone, and one seed's draw does not depend on how many other seeds there are.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = [
    "derive_seed",
    "environment",
    "load_digits",
    "load_faces",
    "numpy_rng",
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
# Data (real, bundled in installed packages: see DATA.md)
# --------------------------------------------------------------------------------------------


def load_digits() -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """scikit-learn's digits: ``V`` (1797, 64) float32 in [0, 16], the image shape, the labels."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return d.data.astype(np.float32), (8, 8), d.target.astype(np.int64)


def load_faces(n_images: int = 100) -> tuple[np.ndarray | None, tuple[int, int], str | None]:
    """The LFW subset bundled with scikit-image: the first ``n_images`` of its 100 faces.

    Returns ``(V, image_shape, skip_reason)``; ``V`` (n_images, 625) float32 in [0, 1], or
    ``None`` with the reason when scikit-image is not installed.
    """
    try:
        from skimage import data as skdata
    except ImportError:
        return None, (25, 25), "scikit-image is not installed (pip install scikit-image)"
    if not 1 <= n_images <= 100:
        raise ValueError(
            f"faces.n_images must be in [1, 100] (the subset has 100 faces), got {n_images}"
        )
    X = skdata.lfw_subset()  # (200, 25, 25): 100 faces, then 100 non-faces
    faces = X[:n_images].reshape(n_images, -1)
    return faces.astype(np.float32), tuple(X.shape[1:]), None


# --------------------------------------------------------------------------------------------
# Environment record
# --------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_revision() -> dict:
    def git(*args):
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        rev = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev, "dirty": None if status is None else bool(status)}


def environment() -> dict:
    """Versions, device and git revision, for ``meta.json``."""
    import jax

    import jaxnmf

    dev = jax.devices()[0]
    return {
        "versions": {
            "python": platform.python_version(),
            "jaxnmf": jaxnmf.__version__,
            "jax": jax.__version__,
            "jaxlib": _version("jaxlib"),
            "optax": _version("optax"),
            "numpy": np.__version__,
            "scikit-learn": _version("scikit-learn"),
            "scikit-image": _version("scikit-image"),
        },
        "device": {
            "platform": dev.platform,
            "device_kind": dev.device_kind,
            "device_count": jax.device_count(),
            "x64": bool(jax.config.jax_enable_x64),
            "host": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "git": _git_revision(),
        "argv": sys.argv,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def write_results(out_dir: Path, arrays: dict, meta: dict) -> tuple[Path, Path]:
    """Write ``arrays.npz`` (plain arrays, no pickles) and ``meta.json`` atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; results must load without pickle")
        plain[name] = arr
    npz, js = out_dir / "arrays.npz", out_dir / "meta.json"
    _atomic_write(npz, lambda f: np.savez_compressed(f, **plain))
    text = json.dumps(_jsonable(meta), indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic_write(js, lambda f: f.write(text.encode()))
    return npz, js
