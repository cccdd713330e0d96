"""The benchmarks' processes start without the machine's OpenBLAS kernel overrides.

``experiments/benchmarks/_fair_env.py`` removes ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
before numpy loads, so that scikit-learn's BLAS runs the kernels of the CPU it is on. These
tests start tiny child processes (no benchmark runs, well under a second each) with both
variables set and read, from the child, what it sees. This test process itself is never
changed: tests keep the machine's settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORCED = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "262144"}
VARIABLES = tuple(FORCED)

# A child that reports numpy's OpenBLAS as threadpoolctl sees it, without any cleaning.
PLAIN = """
import json, numpy
from threadpoolctl import threadpool_info
print(json.dumps({"blas": threadpool_info()}))
"""
# A parent that has loaded numpy (as `python -m experiments` has) starts a benchmark-like
# child through the speed experiment's launcher: the cleaning's own report.
VIA_RUN_MODULE = """
import numpy
from experiments.benchmarks import _fair_env
_fair_env.run_module("experiments.benchmarks._fair_env")
"""
# The speed experiment's own child process (experiments._run with clean_env=True): importing
# its entry module must clean the environment before numpy loads; then the same report.
VIA_SPEED_CHILD = """
import experiments._clean_child
import json, os, numpy  # numpy (its OpenBLAS) loads after the cleaning, as in the benchmarks
from threadpoolctl import threadpool_info
from experiments.benchmarks import _fair_env
print(json.dumps({"environ": {k: os.environ.get(k) for k in _fair_env.VARIABLES},
                  "fair_env": _fair_env.STATE, "blas": threadpool_info()}))
"""


def _child(args, env_extra: dict, drop=()) -> dict:
    """The JSON a ``python *args`` child prints, started from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _openblas_coretypes(report: dict) -> dict:
    """``{library file: OpenBLAS coretype}`` of the OpenBLAS libraries in a report."""
    blas = report["blas"]
    if not isinstance(blas, list):
        pytest.skip(f"no threadpoolctl report: {blas}")
    return {b["filepath"]: b.get("architecture") for b in blas if b["internal_api"] == "openblas"}


# The two ways a benchmark process starts, each run once for the tests below.
STARTS = {
    # `python -m experiments.benchmarks.<name>`: the cleaning runs before numpy loads.
    "direct": ["-m", "experiments.benchmarks._fair_env"],
    # The speed experiment: its process loaded numpy with the variables set, so it starts each
    # benchmark in a child whose environment lacks them (run_module).
    "run_module": ["-c", VIA_RUN_MODULE],
    # ... and the process it starts for the speed experiment runs the benchmark functions in.
    "speed_child": ["-c", VIA_SPEED_CHILD],
}


@pytest.fixture(scope="module")
def reports() -> dict:
    """The cleaning's report from a child started each way, with both variables set."""
    return {how: _child(args, FORCED) for how, args in STARTS.items()}


@pytest.fixture(scope="module")
def native_and_forced() -> tuple[dict, dict]:
    """numpy's OpenBLAS coretypes with neither variable set, and with both forced."""
    pytest.importorskip("threadpoolctl")  # a scikit-learn dependency
    native = _openblas_coretypes(_child(["-c", PLAIN], {}, drop=VARIABLES))
    if not native:
        pytest.skip("numpy's BLAS is not OpenBLAS: OPENBLAS_CORETYPE does not apply")
    forced = _openblas_coretypes(_child(["-c", PLAIN], FORCED))
    return native, forced


@pytest.mark.parametrize("how", list(STARTS))
def test_benchmark_process_starts_without_the_openblas_overrides(reports, how):
    report = reports[how]
    assert report["environ"] == dict.fromkeys(VARIABLES)  # absent in the child
    state = report["fair_env"]
    assert state["present_in_parent"] == FORCED  # recorded for the benchmark's JSON
    assert state["removed"] == sorted(VARIABLES)
    assert state["numpy_loaded_first"] is False
    assert state["fair"] is True


@pytest.mark.parametrize("how", list(STARTS))
def test_benchmark_process_runs_the_cpus_own_openblas_kernels(reports, native_and_forced, how):
    native, forced = native_and_forced
    if set(forced.values()) != {"Haswell"}:
        pytest.skip(f"this OpenBLAS ignores OPENBLAS_CORETYPE=Haswell (reports {forced})")
    if set(native.values()) == {"Haswell"}:
        pytest.skip("this CPU's own OpenBLAS coretype is Haswell: cleaning cannot be told apart")
    got = _openblas_coretypes(reports[how])
    assert got == native  # the CPU's own kernels, as if the variables had never been set
    assert "Haswell" not in got.values()


def test_cleaning_leaves_a_process_that_loaded_numpy_first_alone():
    # Too late to help its OpenBLAS, and it is a test's or a CLI's process: unchanged.
    code = (
        "import json, os, numpy\n"
        "from experiments.benchmarks import _fair_env\n"
        "print(json.dumps({'environ': {k: os.environ.get(k) for k in _fair_env.VARIABLES},"
        " 'fair_env': _fair_env.STATE}))\n"
    )
    report = _child(["-c", code], FORCED)
    assert report["environ"] == FORCED
    assert report["fair_env"]["numpy_loaded_first"] is True
    assert report["fair_env"]["removed"] == []
    assert report["fair_env"]["fair"] is False
