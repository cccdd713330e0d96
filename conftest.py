"""Test configuration: float64 on, strict dtype promotion, no implicit rank promotion, quick
XLA compilation.

x64 must be set before any JAX array exists, so it is set at import time, once.
Shared data makers and NumPy oracles live in ``jaxnmf/_testing.py``.
"""

import os

# The suite's run time is mostly XLA compilation of small programs; LLVM's optimization of the
# generated CPU code is most of that. Level 0 keeps XLA's own (HLO) passes and the same
# floating-point semantics, and made tests/test_solvers.py 36 % faster (173 s -> 112 s here).
# The main job (CI's smoke run of every experiment) still runs at the default level.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import jax  # after XLA_FLAGS: the backend reads them when it starts
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Every XLA:CPU executable holds about 9 memory mappings of JIT-compiled code, and JAX keeps
# every executable it compiled alive. The suite compiles several thousand programs; at Linux's
# default vm.max_map_count (65530) the next compilation segfaults inside LLVM (seen in CI:
# exit 139 in the last test files). So the caches are dropped when the process nears the limit:
# tests sharing compiled functions keep sharing them until then.
_MAPS = "/proc/self/maps"
_MAX_MAPS = 30000


def _n_mappings() -> int:
    with open(_MAPS, "rb") as f:
        return sum(1 for _ in f)


@pytest.fixture(autouse=True)
def _bound_compiled_code():
    yield
    if os.path.exists(_MAPS) and _n_mappings() > _MAX_MAPS:
        from jaxnmf import _compile

        _compile.clear()
        jax.clear_caches()
