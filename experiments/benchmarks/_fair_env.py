"""A fair BLAS for the benchmarks: drop the machine's OpenBLAS kernel overrides before numpy loads.

Why: this project's machines set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE`` in the
environment, for old OpenBLAS builds. OpenBLAS reads them once, when the library is loaded
(``import numpy``, and ``import scipy`` for scipy's own copy), and then runs the Haswell
kernels even on a CPU that has faster ones: numpy's float32 GEMM fell from about 195 to 72
GFLOP/s on the 2-core AMD EPYC machine. scikit-learn computes through numpy's and scipy's
OpenBLAS, jaxnmf through XLA's own kernels (which ignore these variables), so every
scikit-learn time measured with them set was handicapped.

So every benchmark module imports this module first, before numpy: importing it removes both
variables from the process environment, and OpenBLAS, loaded afterwards, picks its kernels
for the CPU it finds. Removing them from a process that has already loaded numpy changes
nothing (OpenBLAS has read them), so then this module leaves the environment alone and
records that the BLAS was not cleaned. That is the case of ``python -m experiments run
speed``, whose command line loads numpy before the speed experiment: the run helper
(``experiments._run.run(..., clean_env=True)``) runs that experiment in one child process
started by :func:`run_module`, whose environment lacks both variables, and which calls the
benchmark functions directly.
Tests and CI keep the machine's settings; only the benchmark processes change.

``python -m experiments.benchmarks._fair_env`` prints, as JSON, what a benchmark process
sees: the two variables (absent), :data:`STATE`, and threadpoolctl's view of numpy's BLAS.
"""

from __future__ import annotations

# Standard library only: nothing here may load numpy.
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The environment variables that make OpenBLAS pick slower kernels than the CPU's own.
VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Set by run_module in the child's environment: the variables the parent removed for it (a JSON
# object, name -> value), so the child's record says what its parent environment held.
_REMOVED_BY_PARENT = "JAXNMF_BENCH_REMOVED_ENV"

REPO_ROOT = Path(__file__).resolve().parents[2]


def cleaned(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without :data:`VARIABLES`, for a benchmark child process.

    What was removed travels to the child as JSON under ``JAXNMF_BENCH_REMOVED_ENV`` (merged
    with what an earlier parent removed), so the child can record it.
    """
    env = dict(environ)
    removed = json.loads(env.pop(_REMOVED_BY_PARENT, "{}"))
    removed.update({name: env.pop(name) for name in VARIABLES if name in env})
    env[_REMOVED_BY_PARENT] = json.dumps(removed, sort_keys=True)
    return env


def _clean_this_process() -> dict:
    """Remove :data:`VARIABLES` from ``os.environ`` unless numpy is already loaded; the record."""
    numpy_loaded_first = "numpy" in sys.modules
    if numpy_loaded_first:
        # Too late for this process's OpenBLAS; and this is not a benchmark's own process (a
        # test, or a caller running a benchmark's main in process): leave its environment as
        # it is, so that processes it starts later inherit the machine's settings.
        # No warning here: the speed experiment imports this module for run_module. A benchmark
        # that records a run with "fair": false says so (_bench.print_machine).
        present = {name: os.environ[name] for name in VARIABLES if name in os.environ}
        return {
            "variables": list(VARIABLES),
            "present_in_parent": present,
            "removed": [],
            "numpy_loaded_first": True,
            # A guess: the environment now, not necessarily the one numpy loaded with.
            "fair": not present,
        }
    present = json.loads(os.environ.pop(_REMOVED_BY_PARENT, "{}"))
    present.update({name: os.environ.pop(name) for name in VARIABLES if name in os.environ})
    return {
        "variables": list(VARIABLES),
        # Those set where the benchmark was started (its shell, or the parent that started it
        # with run_module): name -> value, {} when neither was set.
        "present_in_parent": present,
        # Absent from this process's environment when numpy loaded (removed here or by the
        # parent): OpenBLAS chose its kernels for the CPU.
        "removed": sorted(present),
        "numpy_loaded_first": False,
        "fair": True,
    }


#: What this process did, for the benchmarks' JSON (``machine()["fair_env"]``): ``variables``,
#: ``present_in_parent`` (name -> value), ``removed`` (names), ``numpy_loaded_first`` and
#: ``fair`` (no variable was in the environment when numpy's OpenBLAS loaded).
STATE = _clean_this_process()


def run_module(module: str, argv: Sequence[str] = (), **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m module *argv`` in a child process whose environment lacks
    :data:`VARIABLES`, from the repository root; raise ``CalledProcessError`` if it fails.

    Its output goes to this process's stdout and stderr as it comes. ``kwargs`` go to
    ``subprocess.run``.
    """
    env = cleaned(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # the child's progress lines as they are printed
    sys.stdout.flush()  # keep the parent's earlier lines before the child's
    sys.stderr.flush()
    cmd = [sys.executable, "-m", module, *map(str, argv)]
    return subprocess.run(cmd, env=env, cwd=REPO_ROOT, check=True, **kwargs)


if __name__ == "__main__":
    import numpy  # noqa: F401  # loaded now, after the cleaning, as in a benchmark

    try:
        from threadpoolctl import threadpool_info

        blas = threadpool_info()
    except ImportError as e:  # threadpoolctl comes with scikit-learn
        blas = f"threadpoolctl not installed ({e})"
    report = {
        "environ": {name: os.environ.get(name) for name in VARIABLES},
        "fair_env": STATE,
        "blas": blas,
    }
    print(json.dumps(report, indent=2))
