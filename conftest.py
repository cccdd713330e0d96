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
#
# XLA:CPU's MLIR fusion emitters (on by default in jaxlib 0.10) take about as long again to
# compile each fusion as the rest of the pipeline together; with them off, fusions go through
# the older LLVM IR emitters. Measured on a 2-core CPU: seven small fits and a sweep compiled
# in 6.1 s against 15.3 s at level 0 alone, and ran faster, with the same objectives to 12
# digits (the oracles' tolerances do not depend on it).
_QUICK_XLA = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
}
_flags = os.environ.get("XLA_FLAGS", "")
for _name, _value in _QUICK_XLA.items():
    if _name not in _flags:
        _flags = f"{_flags} --{_name}={_value}".strip()
os.environ["XLA_FLAGS"] = _flags

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
import pytest  # noqa: E402

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
