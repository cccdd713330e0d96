"""The run helper: an experiment declares its config and its parts, this module does the rest.

An experiment module has ``NAME``, ``get_config(variant) -> dict`` and a generator
``parts(config, run)`` that yields :class:`Part` objects and receives, for each, its typed
record (``record = yield Part(...)``); it may ``return`` one more record, the run's *result*
(e.g. chunks joined). Its ``main(config, out_dir)`` is ``return _run.run(config, out_dir,
parts)``. This module owns everything else:

* **config and resumption**: :func:`run_one` builds the run's config (the variant, its
  ``--set`` overrides typed by :mod:`experiments._config`), skips a finished run of the same
  config (its files verified), or clears it with ``force``, and updates the manifest.

* **records**: a part computes a frozen dataclass of arrays and scalars. Fields declared
  ``field(metadata=META)`` (timings, machine descriptions: anything that differs between two runs
  of the same config) are written to JSON; every other field goes to the hashed array files.
  :func:`to_arrays` / :func:`from_arrays` convert, by the field types.
* **parts**: each part is checkpointed (``parts/<part>.npz`` + ``.json``, via
  :class:`experiments._common.Parts`) and reused, verified, on a restart. A part whose data is
  absent (:class:`jaxnmf.datasets.DataUnavailableError`) or that its config section disables
  (``<part>.enabled = false``) is skipped with the reason.
* **metadata**: ``meta.json`` gets the config, the seeds drawn (:class:`Run`), the skipped
  parts, the reuse record, the records' JSON fields, versions, device, BLAS (threadpoolctl:
  kernel, threads), git revision and wall time, in the same layout for every experiment.
* **writes**: ``arrays.npz`` holds the result record's fields under their names, and each
  kept part's fields as ``<part>_<field>``, plus ``parts`` (the parts that ran); atomic,
  deterministic, hashed (:func:`experiments._common.write_results`).
* **a clean process**, for ``clean_env=True`` (the speed benchmarks): the experiment runs in
  one child process whose environment lacks the OpenBLAS overrides before numpy loads and
  that has no compilation cache (:mod:`experiments.benchmarks._fair_env`); the child writes
  the run folder, the parent reads its ``meta.json``.

Figures read runs through :func:`load`: ``load(run_dir).part("digits", Fit)`` is a ``Fit``, or
an error naming the file and the field it lacks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Generator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import _common, _config
from . import load as load_experiment

__all__ = [
    "META",
    "MissingResultError",
    "Part",
    "Run",
    "RunRecords",
    "concat",
    "environment",
    "from_arrays",
    "load",
    "run",
    "run_one",
    "to_arrays",
    "to_json",
]

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

_META = "jaxnmf_meta"

#: ``field(metadata=META)`` marks a record field kept in JSON (``meta.json``,
#: ``parts/<part>.json``), not in the hashed array files: timings and machine records, which
#: differ between two runs of one config.
META = {_META: True}


def _is_meta(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get(_META))


def to_arrays(record) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of a record: its array fields and its ``META`` fields."""
    arrays, meta = {}, {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if _is_meta(f):
            meta[f.name] = value
        else:
            arrays[f.name] = np.asarray(value)
    return arrays, meta


class MissingResultError(_common.ResultFileError, KeyError):
    """A result lacks a field (or key) that a record or figure needs; the message names the
    file and the field. A ``KeyError`` too, so ``except KeyError`` still catches it."""

    def __str__(self) -> str:  # KeyError's own would print the message in quotes
        return str(self.args[0])


class ResultDict(dict):
    """A dict read from the result file ``source``: a missing key raises
    :class:`MissingResultError` naming the file, the key (dotted, from the file's top) and the
    figure that needed it, e.g. ``results/x/smoke/arrays.npz has no array 'parts' (needed by
    fig_03_rank_selection)``. ``get`` and ``in`` work as on any dict."""

    def __init__(self, data: dict, source: Path, kind: str, needed_by: str | None, path: str):
        super().__init__(data)
        self._where = (source, kind, needed_by, path)

    def __missing__(self, key):
        source, kind, needed_by, path = self._where
        name = f"{path}.{key}" if path else str(key)
        by = f" (needed by {needed_by})" if needed_by else ""
        raise MissingResultError(f"{source} has no {kind} {name!r}{by}")


def _named(value, source: Path, needed_by: str | None, path: str = ""):
    """``value`` (parsed JSON) with every dict in it a :class:`ResultDict` of ``source``."""
    if isinstance(value, dict):
        items = {
            k: _named(v, source, needed_by, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
        return ResultDict(items, source, "key", needed_by, path)
    if isinstance(value, list):
        return [_named(v, source, needed_by, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _coerce(value, hint):
    """A stored value back in its field's type (0-d arrays to scalars, JSON null to NaN)."""
    if hint is float:
        return float("nan") if value is None else float(np.asarray(value))
    if hint is int or hint is bool:
        return hint(np.asarray(value))
    if hint is str:
        return str(np.asarray(value)[()])
    if hint is np.ndarray:
        return np.asarray(value, dtype=float) if isinstance(value, list) else np.asarray(value)
    return value  # dict, list, ...: JSON as written


def from_arrays(cls, arrays: dict, meta: dict, *, prefix: str = "", where=("", ""), by=""):
    """The record ``cls`` from stored ``arrays`` (names ``prefix + field``) and ``meta``.

    Raises:
      MissingResultError: a field is not there, naming the file (``where``: the array file,
        the JSON file) and the field (and ``by``, who needed it).
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if _is_meta(f):
            if f.name not in meta:
                raise MissingResultError(
                    f"{where[1]} has no field {f.name!r} of {cls.__name__} "
                    f"({prefix or 'result'}){by}"
                )
            values[f.name] = _coerce(meta[f.name], hints[f.name])
        else:
            key = prefix + f.name
            if key not in arrays:
                raise MissingResultError(f"{where[0]} has no field {key!r} of {cls.__name__}{by}")
            values[f.name] = _coerce(arrays[key], hints[f.name])
    return cls(**values)


def to_json(record) -> dict:
    """Every field of a record as JSON-able values (a benchmark's command-line output)."""
    return _common._jsonable(dataclasses.asdict(record))


def concat(records: list, axis: int = 0):
    """One record from records of one type: array fields concatenated along ``axis``, other
    fields (scalars, JSON) taken as a list per field."""
    first = records[0]
    values = {}
    for f in dataclasses.fields(first):
        items = [getattr(r, f.name) for r in records]
        values[f.name] = np.concatenate(items, axis) if isinstance(items[0], np.ndarray) else items
    return type(first)(**values)


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_revision() -> dict:
    def git(*args):
        out = subprocess.run(
            ["git", *args], cwd=_common.REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        rev, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev, "dirty": None if status is None else bool(status)}


def blas() -> list[dict] | str:
    """threadpoolctl's record of each BLAS and OpenMP library loaded (``architecture``: the
    OpenBLAS kernels), or why there is none. scipy.linalg and scikit-learn's NMF are imported
    first, so the libraries scikit-learn computes with (numpy's and scipy's OpenBLAS, its
    OpenMP) are loaded and listed."""
    try:
        import scipy.linalg  # noqa: F401  # scipy's own OpenBLAS
        import sklearn.decomposition  # noqa: F401  # its OpenMP runtime
        from threadpoolctl import threadpool_info
    except ImportError as e:
        return f"threadpoolctl not installed ({e})"
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: i.get(k) for k in keep} for i in threadpool_info()]


def environment() -> dict:
    """Versions, device, BLAS, git revision and command line, for ``meta.json``."""
    import jax

    import jaxnmf

    dev = jax.devices()[0]
    versions = ("jaxlib", "optax", "scikit-learn", "scikit-image", "scipy")
    return {
        "versions": {
            "python": platform.python_version(),
            "jaxnmf": jaxnmf.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            **{name: _version(name) for name in versions},
        },
        "device": {
            "platform": dev.platform,
            "device_kind": dev.device_kind,
            "device_count": jax.device_count(),
            "x64": bool(jax.config.jax_enable_x64),
            "host": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "blas": blas(),
        "git": _git_revision(),
        "argv": sys.argv,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --------------------------------------------------------------------------------------------
# Running an experiment
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Part:
    """One checkpointed piece of a run: ``compute()`` returns a ``record`` instance.

    ``keep=False``: the part's record is not copied into ``arrays.npz`` (the experiment's
    result record holds what it contributes, e.g. chunks of ranks joined).
    """

    name: str
    record: type
    compute: Callable[[], Any]
    keep: bool = True


SEED_DERIVATION = (
    "every random number comes from numpy.random.SeedSequence(root_seed, spawn_key=path): "
    "'seeds' maps each path to the int seed given to jaxnmf (generate_state(1)[0] >> 1), "
    "'streams' lists the paths of numpy generators (default_rng of that SeedSequence)"
)


class Run:
    """What a ``parts`` generator gets: the seeds (recorded as they are drawn) and a log."""

    def __init__(self, config: dict, log: Callable[[str], None] = print):
        self.root_seed = int(config["root_seed"])
        self.seeds: dict[str, int] = {}
        self.streams: list[str] = []
        self.log = log

    def seed(self, *path: int) -> int:
        """The int seed for ``jaxnmf`` of stream ``path`` (recorded in ``meta.json``)."""
        value = _common.derive_seed(self.root_seed, *path)
        self.seeds[",".join(map(str, path))] = value
        return value

    def rng(self, *path: int) -> np.random.Generator:
        """The NumPy generator of stream ``path`` (recorded in ``meta.json``)."""
        self.streams.append(",".join(map(str, path)))
        return _common.numpy_rng(self.root_seed, *path)

    def record(self) -> dict:
        streams = list(dict.fromkeys(self.streams))
        return {
            "root_seed": self.root_seed,
            "derivation": SEED_DERIVATION,
            "seeds": self.seeds,
            "streams": streams,
        }


PartsFn = Callable[[dict, Run], Generator[Part, Any, Any] | Any]


def _disabled(config: dict, name: str) -> str | None:
    section = config.get(name)
    if isinstance(section, dict) and section.get("enabled", True) is False:
        return f"disabled in the config ({name}.enabled=false)"
    return None


def run(config: dict, out_dir, parts: PartsFn, *, clean_env: bool = False) -> dict:
    """Run the experiment whose ``parts`` generator is given; write the run folder; its meta.

    ``clean_env``: run in one child process without the OpenBLAS overrides and without the
    compilation cache (:func:`_in_clean_child`), unless this process is that already.
    """
    from jaxnmf.datasets import DataUnavailableError

    from .benchmarks import _fair_env

    out_dir = Path(out_dir)
    if clean_env and _fair_env.STATE["numpy_loaded_first"]:
        return _in_clean_child(config, out_dir)
    t0 = time.perf_counter()
    store = _common.Parts(out_dir, config)
    ctx = Run(config)
    records, kept, skipped, meta_records = {}, {}, {}, {}
    gen, sent, result = parts(config, ctx), None, None
    # A plain function (no parts to checkpoint) returns the result record itself.
    while isinstance(gen, Generator):
        try:
            part = gen.send(sent)
        except StopIteration as stop:
            result = stop.value
            break
        except DataUnavailableError as e:  # the data of every part to come is absent
            skipped[config["name"]] = str(e)
            print(f"  skipped {config['name']}: {e}", flush=True)
            break
        sent = None
        reason = _disabled(config, part.name)
        if reason is None:
            try:
                arrays, meta = store.run(part.name, lambda p=part: to_arrays(p.compute()))
            except DataUnavailableError as e:
                reason = str(e)
        if reason is not None:
            skipped[part.name] = reason
            print(f"  skipped {part.name}: {reason}", flush=True)
            continue
        meta = {k: v for k, v in meta.items() if k != "wall_seconds"}
        where = (store.paths(part.name)[0], store.paths(part.name)[1])
        sent = records[part.name] = from_arrays(part.record, arrays, meta, where=where)
        meta_records[part.name] = meta
        if part.keep:
            kept[part.name] = arrays
    else:
        result = gen
    arrays = {f"{p}_{k}": v for p, a in kept.items() for k, v in a.items()}
    if result is not None:
        result_arrays, meta_records["result"] = to_arrays(result)
        arrays.update(result_arrays)
    arrays["parts"] = np.asarray(list(records), np.str_)
    meta = {
        "experiment": config["name"],
        "config": config,
        "seeds": ctx.record(),
        "skipped": skipped,
        "parts": store.record,
        "records": meta_records,
        "wall_seconds": time.perf_counter() - t0,
        **environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta


def run_one(name: str, variant: str, overrides: list[str], out: Path, force: bool = False) -> dict:
    """Run one experiment unless a finished run of the same config, by the same code, is
    there (or ``force``).

    Raises:
      ConfigError: a bad ``--set`` override (checked before anything runs).
      ResultFileError: a result file in the run folder is corrupt, changed since it was
        written, or from another config.
    """
    module = load_experiment(name)
    config = _config.config(module, variant, overrides)
    out_dir = out / name / variant
    tag = f"[{name}/{variant}]"
    if force:
        gone = _common.clear_run(out_dir)
        if gone:
            print(f"{tag} --force: deleted {len(gone)} earlier result files", flush=True)
    else:
        meta = _common.finished_run(out_dir, config)
        earlier = out_dir / "meta.json"
        stale = meta is None and earlier.is_file()
        if stale and _common.written_by_other_code(_common.load_json(earlier)):
            print(
                f"{tag} {earlier} was written by other code (jaxnmf/ or experiments/ "
                "changed since): running it again",
                flush=True,
            )
        if meta is not None and "records" not in meta:  # written before runs held records
            raise _common.ResultFileError(
                f"{out_dir}/meta.json: a finished run in the layout before typed records (no "
                "'records' in it), which the figures cannot read; rerun with --force"
            )
        if meta is not None:
            _common.update_manifest(out, out_dir)
            print(
                f"{tag} finished earlier ({out_dir}/meta.json complete, every array file has "
                "the sha256 recorded when it was written): not rerun (--force reruns it)",
                flush=True,
            )
            return meta
    print(f"{tag} config: {json.dumps(config, sort_keys=True)}", flush=True)
    t0 = time.perf_counter()
    meta = module.main(config, out_dir)
    wall = time.perf_counter() - t0
    _common.update_manifest(out, out_dir)
    print(f"{tag} wrote {out_dir}/arrays.npz, meta.json in {wall:.1f} s", flush=True)
    return meta


def _in_clean_child(config: dict, out_dir: Path) -> dict:
    """Run the experiment of ``config`` in a child process started with a cleaned environment
    (``python -m experiments._clean_child``); return the ``meta.json`` it wrote."""
    from .benchmarks import _fair_env

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        _fair_env.run_module("experiments._clean_child", [path, out_dir.resolve()])
    return _common.load_json(out_dir / "meta.json")


# --------------------------------------------------------------------------------------------
# Reading a run (figures, README tables)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunRecords:
    """A finished run folder, verified, read as records: :meth:`part` and :meth:`result`."""

    dir: Path
    arrays: dict
    meta: dict
    needed_by: str | None = None  # named in errors: the figure that reads the run

    @property
    def _by(self) -> str:
        return f" (needed by {self.needed_by})" if self.needed_by else ""

    @property
    def parts(self) -> list[str]:
        """The parts that ran, in order."""
        return [str(p) for p in self._array("parts")]

    def _array(self, key):
        if key not in self.arrays:
            raise MissingResultError(f"{self.dir / 'arrays.npz'} has no array {key!r}{self._by}")
        return self.arrays[key]

    def part(self, name: str, cls):
        """The record of part ``name`` as ``cls``."""
        meta = self.meta.get("records", {}).get(name, {})
        where = (self.dir / "arrays.npz", self.dir / "meta.json")
        return from_arrays(cls, self.arrays, meta, prefix=f"{name}_", where=where, by=self._by)

    def result(self, cls):
        """The run's result record as ``cls``."""
        meta = self.meta.get("records", {}).get("result", {})
        where = (self.dir / "arrays.npz", self.dir / "meta.json")
        return from_arrays(cls, self.arrays, meta, where=where, by=self._by)


def load(run_dir, needed_by: str | None = None) -> RunRecords:
    """A run folder's records; ``arrays.npz`` must have the sha256 ``meta.json`` recorded.

    Raises:
      ResultFileError: a file is corrupt or changed since it was written (naming it).
    """
    run_dir = Path(run_dir)
    npz, js = run_dir / "arrays.npz", run_dir / "meta.json"
    arrays, meta = _common.load_npz(npz), _common.load_json(js)
    _common.verify_sha256(npz, meta.get("arrays_sha256"), js)
    return RunRecords(run_dir, arrays, _named(meta, js, needed_by), needed_by)
