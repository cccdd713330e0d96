"""Several devices: a sharded fit, a sharded sweep and a sharded minibatch fit equal the
single-device results.

JAX fixes its device count at start-up, so the check runs in a subprocess that asks XLA for
4 host (CPU) devices. Four simulated devices on 2 cores say nothing about speed.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import jaxnmf as jn
    from jaxnmf import _sharding
    from jaxnmf._testing import positive_data

    out = {"n_devices": len(jax.devices()), "cases": []}
    V = positive_data(30, 14, seed=3)  # 30 rows: not a multiple of 4, so padding is used
    for solver in ("mu", "hals", "greedy_cd"):
        for loss in ("frobenius", "kl"):
            if solver in ("hals", "greedy_cd") and loss == "kl":
                continue
            kw = dict(solver=solver, loss=loss, max_iter=30, tol=0.0, seed=2)
            one = jn.fit(V, 3, **kw)
            four = jn.fit(V, 3, devices=4, **kw)
            kw2 = {k: v for k, v in kw.items() if k != "seed"}
            sw1 = jn.sweep(V, [2, 3], [0, 1], **kw2)
            sw4 = jn.sweep(V, [2, 3], [0, 1], devices=4, **kw2)
            out["cases"].append({
                "solver": solver, "loss": loss,
                "fit_W": float(np.max(np.abs(four.W - one.W) / np.abs(one.W).max())),
                "fit_H": float(np.max(np.abs(four.H - one.H) / np.abs(one.H).max())),
                "fit_loss": abs(four.loss - one.loss) / one.loss,
                "sweep_W": float(np.max(np.abs(sw4.W - sw1.W)) / np.abs(sw1.W).max()),
                "sweep_loss": float(np.max(np.abs(sw4.final_loss - sw1.final_loss)
                                           / sw1.final_loss)),
            })
    # V really is split: each device holds only its rows, and W stays split in the fit.
    mesh = _sharding.mesh(jax.devices(), "rows")
    Vs = _sharding.split_rows(_sharding.pad_rows(V, 4), mesh)
    out["shard_rows"] = sorted({tuple(s.data.shape) for s in Vs.addressable_shards})
    out["shard_devices"] = len({s.device for s in Vs.addressable_shards})
    from jaxnmf import _run, api
    W0, H0 = api.initial_factors(V, None, jax.random.key(0), rank=3, method="random")
    member = _run.Member(
        jn.losses.frobenius().astype(np.float64), rank=np.int32(3),
        W0=_sharding.split_rows(_sharding.pad_rows(np.asarray(W0), 4), mesh),
        H0=_sharding.replicate(np.asarray(H0), mesh))
    state, _ = _run.run_compiled(
        Vs, None, member, _run.Hyper(np.float64(0), np.float64(0)),
        spec=_run.RunSpec(solver=jn.solvers.mu(), max_iter=5, k_max=3))
    out["W_spec"] = str(state.W.sharding.spec)
    out["W_shards"] = sorted({tuple(s.data.shape) for s in state.W.addressable_shards})
    # fit_minibatch(devices=4): batches of 10 rows, padded to 12 and split 3 per device
    X = positive_data(30, 14, seed=4)
    out["minibatch"] = []
    for solver, loss in (("hals", "frobenius"), ("mu", "kl")):
        kw = dict(solver=solver, loss=loss, batch_size=10, max_iter=3, tol=0.0, seed=1)
        a, b = jn.fit_minibatch(X, 3, **kw), jn.fit_minibatch(X, 3, devices=4, **kw)
        out["minibatch"].append({
            "H": float(np.max(np.abs(b.H - a.H)) / np.abs(a.H).max()),
            "losses": float(np.max(np.abs(b.losses - a.losses) / a.losses)),
            "steps": [a.n_steps, b.n_steps],
        })
    from jaxnmf.minibatch import _Online
    engine = _Online(
        np.ones((3, 14)), lambda b: jn.losses.frobenius(), jn.solvers.hals(), tol=0.0,
        inner_tol=0.0, max_no_improvement=None, inner_max_iter=2,
        objective_from_grams=False, devices=jax.devices())
    Xs, _, valid = engine._split(X[:10], np.ones((10, 3)))
    out["batch_shards"] = sorted({tuple(s.data.shape) for s in Xs.addressable_shards})
    out["valid"] = np.asarray(valid).tolist()
    print(json.dumps(out))
    """
)


def test_sharded_fit_and_sweep_equal_single_device():
    # keep the suite's XLA flags (conftest.py), add 4 simulated devices
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n_devices"] == 4
    assert len(out["cases"]) == 4  # mu × (frobenius, kl), hals, greedy_cd (blocks only)
    for case in out["cases"]:
        for key in ("fit_W", "fit_H", "fit_loss", "sweep_W", "sweep_loss"):
            assert case[key] < 1e-8, case
    assert out["shard_rows"] == [[8, 14]] and out["shard_devices"] == 4
    assert "rows" in out["W_spec"] and out["W_shards"] == [[8, 3]]
    for case in out["minibatch"]:  # hals/frobenius, then mu/kl (padded rows masked there)
        assert case["H"] < 1e-8 and case["losses"] < 1e-8, case
        assert case["steps"] == [9, 9]  # 3 passes × 3 batches
    assert out["batch_shards"] == [[3, 14]] and out["valid"] == [True] * 10 + [False] * 2
