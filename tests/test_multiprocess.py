"""Several processes: ``devices=`` across 2 processes joined by ``jax.distributed``.

Two Python processes on this machine (a localhost coordinator, CPU collectives by gloo), each
with 2 simulated CPU devices: ``jax.devices()`` lists all 4. Each runs the same fit:

* ``jn.fit(V, devices=jax.devices())`` equals the single-process (one-device) fit;
* a row-sharded run whose W spans both processes (32 rows: no padding, so nothing slices it
  back onto one process) is gathered whole by ``jaxnmf._sharding.gather`` in each process
  and equals the single-process run; each process held only its own rows before that;
* ``jn.fit`` of those 32 rows and ``jn.sweep(..., devices=jax.devices())`` (members split
  over both processes' devices) return, in each process, the single-process results;
* ``jn.fit_minibatch(..., devices=jax.devices())`` (each batch's rows split over both
  processes' devices, zero-padded to a multiple of 4) equals the single-process fit.

Skipped with the reason when the platform cannot start the processes (no gloo, no free
port, a sandbox that forbids sockets).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port = int(sys.argv[1]), sys.argv[2]
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    import numpy as np
    import jaxnmf as jn
    from jaxnmf import _sharding
    from jaxnmf._testing import positive_data

    out = {"pid": pid, "n_devices": len(jax.devices()), "n_local": len(jax.local_devices())}
    res = jn.fit(positive_data(30, 14, seed=3), 3, devices=jax.devices(), **FIT)
    out["fit"] = [res.W.tolist(), res.H.tolist(), res.loss]
    # 32 rows divide by 4 devices: no padding slice to make W whole by accident
    out["fit32"] = jn.fit(GIVEN()[0], 3, devices=jax.devices(), **FIT).W.tolist()
    sw = jn.sweep(positive_data(30, 14, seed=3), [2, 3], [0, 1], devices=jax.devices(), **SWEEP)
    out["sweep"] = [np.asarray(sw.W).tolist(), np.asarray(sw.final_loss).tolist()]
    # batches of 10 rows over 4 devices of 2 processes: padded to 12, 3 rows per device
    out["minibatch"] = [
        [mb.H.tolist(), mb.losses.tolist(), mb.n_steps]
        for mb in (jn.fit_minibatch(MB_DATA(), 3, devices=jax.devices(), **kw) for kw in MB)
    ]

    V, W0, H0 = GIVEN()
    mesh = _sharding.mesh(jax.devices(), "rows")
    state = RUN_GIVEN(
        _sharding.split_rows(V, mesh), _sharding.split_rows(W0, mesh), _sharding.replicate(H0, mesh)
    )
    out["W_spans_processes"] = not state.W.is_fully_addressable
    out["local_rows"] = sorted(int(s.index[0].start) for s in state.W.addressable_shards)
    whole = _sharding.gather(state)
    out["gathered"] = [np.asarray(whole.W).tolist(), np.asarray(whole.H).tolist()]
    print("RESULT " + json.dumps(out), flush=True)
    """
)

# Shared by the workers and the single-process reference computed here.
PRELUDE = textwrap.dedent(
    """
    import numpy as np
    FIT = dict(solver="mu", max_iter=20, tol=0.0, seed=2)
    SWEEP = dict(solver="mu", max_iter=20, tol=0.0)
    MB = [dict(solver=solver, loss=loss, batch_size=10, max_iter=3, tol=0.0, seed=1)
          for solver, loss in (("hals", "frobenius"), ("mu", "kl"))]

    def MB_DATA():
        from jaxnmf._testing import positive_data
        return positive_data(30, 14, seed=4)

    def GIVEN():
        from jaxnmf._testing import positive_data
        rng = np.random.default_rng(4)
        return positive_data(32, 14, seed=3), rng.random((32, 3)) + 0.1, rng.random((3, 14)) + 0.1

    def RUN_GIVEN(V, W0, H0):
        # the library's one compiled entry (MU, 20 iterations) from the given factors: its
        # final state, W row-sharded where V and W0 are
        import jaxnmf as jn
        from jaxnmf import _run
        loss, zero = jn.losses.frobenius().astype(np.float64), np.float64(0)
        member = _run.Member(loss, rank=np.int32(3), W0=W0, H0=H0)
        spec = _run.RunSpec(solver=jn.solvers.mu(), max_iter=20, k_max=3)
        return _run.run_compiled(V, None, member, _run.Hyper(zero, zero), spec=spec)[0]
    """
)


def _reference():
    """The single-process results, in this (pytest) process."""
    import numpy as np

    import jaxnmf as jn
    from jaxnmf._testing import positive_data

    ns = {}
    exec(PRELUDE, ns)
    fit = jn.fit(positive_data(30, 14, seed=3), 3, **ns["FIT"])
    V, W0, H0 = ns["GIVEN"]()
    state = ns["RUN_GIVEN"](V, W0, H0)
    fit32 = jn.fit(V, 3, **ns["FIT"])
    sw = jn.sweep(positive_data(30, 14, seed=3), [2, 3], [0, 1], **ns["SWEEP"])
    mb = [jn.fit_minibatch(ns["MB_DATA"](), 3, **kw) for kw in ns["MB"]]
    return fit, np.asarray(state.W), np.asarray(state.H), fit32, sw, mb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_fit_and_gather_like_one(tmp_path):
    try:
        port = _free_port()
    except OSError as e:
        pytest.skip(f"no localhost socket for the coordinator: {e}")
    script = tmp_path / "worker.py"
    script.write_text(PRELUDE + WORKER)
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            outs.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rc, _, stderr in outs:
        unsupported = "gloo" in stderr.lower() and "not" in stderr.lower()
        if rc != 0 and (unsupported or "Address already in use" in stderr):
            pytest.skip(f"the platform cannot start 2 JAX processes: {stderr[-500:]}")
        assert rc == 0, stderr[-3000:]
    import numpy as np

    results = [json.loads(o[1].split("RESULT ", 1)[1]) for o in outs]
    assert sorted(r["pid"] for r in results) == [0, 1]
    fit, W_ref, H_ref, fit32, sw, mb = _reference()
    rows = []
    for r in results:
        assert r["n_devices"] == 4 and r["n_local"] == 2
        W, H, loss = r["fit"]
        np.testing.assert_allclose(W, fit.W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(H, fit.H, rtol=1e-10, atol=1e-12)
        assert abs(loss - fit.loss) <= 1e-12 * fit.loss
        np.testing.assert_allclose(r["fit32"], fit32.W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r["sweep"][0], sw.W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r["sweep"][1], sw.final_loss, rtol=1e-10)
        for (H, losses, steps), ref in zip(r["minibatch"], mb, strict=True):
            # hals/frobenius, then mu/kl, whose padded rows are masked by weight
            np.testing.assert_allclose(H, ref.H, rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(losses, ref.losses, rtol=1e-8)
            assert steps == ref.n_steps == 9  # 3 passes × 3 batches
        assert r["W_spans_processes"]
        np.testing.assert_allclose(r["gathered"][0], W_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r["gathered"][1], H_ref, rtol=1e-10, atol=1e-12)
        rows.append(r["local_rows"])
    # each process held its own two shards of 8 rows, and together all four
    assert sorted(rows[0] + rows[1]) == [0, 8, 16, 24] and not set(rows[0]) & set(rows[1])
