"""jaxnmf.enable_compilation_cache: compiled programs persist across processes, and a program
loaded from the cache computes the same bits as a fresh compilation.

Run in subprocesses: the cache is process-wide state that must not leak into other tests.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import jaxnmf as jn
    folder = jn.enable_compilation_cache(sys.argv[1])
    V = np.random.default_rng(0).random((30, 20)).astype(np.float32)
    t = time.perf_counter()
    res = jn.fit(V, 3, solver="hals", max_iter=30)
    print(json.dumps({"folder": str(folder), "seconds": time.perf_counter() - t,
                      "W": res.W.tolist()}))
    """
)


def _run(folder):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compiled_programs_persist_and_give_the_same_bits(tmp_path):
    folder = tmp_path / "xla"
    cold = _run(folder)
    entries = sorted(p.name for p in folder.iterdir())
    assert entries, "the first process wrote no cache entry"
    warm = _run(folder)
    assert sorted(p.name for p in folder.iterdir()) == entries  # nothing new to compile
    assert warm["W"] == cold["W"]
    assert cold["folder"] == str(folder.resolve())
