"""Minibatch NMF against scikit-learn's ``MiniBatchNMF``, in one run on one machine.

1. **Digits** (1797 × 64, k = 10) and the **scipy docstrings TF-IDF** matrix (1227 × 1000,
   sparse, k = 10): the full-batch error E* (``jn.NMF``, HALS to convergence);
   for each library, the fewest passes over the data (same ``batch_size``, the same initial
   factors, no early stopping) whose ``reconstruction_err_`` is within 1 % of E*, and the
   time of a fit of that many passes (median of ``--repeats``; jaxnmf warm, its first call
   reported apart).
2. **Out of core**: a planted rank-20 float32 matrix (``--rows`` × ``--cols``, default
   2,000,000 × 500 = 4 GB) is written to a ``.npy`` file in chunks; one pass of
   ``jn.fit_minibatch(path, 20)`` (blocks read with ``read()`` calls and prefetched; with
   scikit-learn's ``fit`` forgetting, and with its ``partial_fit`` forgetting) and one
   pass of scikit-learn's ``partial_fit`` over the same blocks (read by the same reader), each
   in its own child process: wall time, rows per second, peak RSS
   (``VmHWM``), and the planted components' recovery (mean cosine of the matched rows
   of H, Hungarian matching) and the relative error on 2,000 sampled rows (NNLS per row).

Runs in its own process, without the machine's OpenBLAS kernel overrides (``_fair_env``);
writes ``results/benchmarks/minibatch_vs_sklearn.json`` and prints a summary. Expected time
on the 2-core CPU machine: about 5 minutes with the defaults, 1 minute with ``--quick``.
The issue's 40 GB run (10M × 1000, about 10 minutes there, writing included; 40 GB free under
``--dir``)::

    python -m experiments.benchmarks.minibatch_vs_sklearn --out-of-core-only \
        --rows 10000000 --cols 1000 --libs jaxnmf sklearn --dir /big/scratch

    python -m experiments.benchmarks.minibatch_vs_sklearn [--quick] [--rows N] [--cols N]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env

# isort: split
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

K_DIGITS, K_PLANTED = 10, 20
LIBS = ("jaxnmf", "jaxnmf_rho", "sklearn")  # the out-of-core runs (see child)
GRID = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 120, 200)


def _quiet():
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: passes are fixed here


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# --- 1. passes and time to the full-batch error: digits and TF-IDF ----------------------------


def to_full_batch_error(X, k: int, batch_size: int, repeats: int, max_passes: int) -> dict:
    """For each library, the fewest passes over ``X`` (same ``batch_size``, the same initial
    factors, no early stopping) whose ``reconstruction_err_`` is within 1 % of the full-batch
    error E* (``jn.NMF``, HALS to convergence), and the time of a fit of that many passes."""
    import jax
    from sklearn.decomposition import MiniBatchNMF

    import jaxnmf as jn

    _quiet()
    full = jn.NMF(k, tol=0.0, max_iter=2000).fit(X)
    target = 1.01 * full.reconstruction_err_

    # One starting point for both (NNDSVDA of X), outside the timings: the SVD is the same
    # one-off cost in both libraries, and on this loaded 2-core machine OpenBLAS's threads
    # made a 1797 × 64 SVD take 1.5 s (10 ms with one thread), which would swamp the fits.
    dense = X.toarray() if hasattr(X, "toarray") else X
    init = jn.api.initial_factors(dense, None, jax.random.key(0), rank=k, method="nndsvda")
    W0, H0 = (np.array(a, np.float32) for a in init)
    kw = dict(batch_size=batch_size, tol=0.0, max_no_improvement=None, init="custom")

    def ours(p):
        return jn.MiniBatchNMF(k, max_iter=p, **kw).fit(X, W=W0.copy(), H=H0.copy())

    def theirs(p):
        return MiniBatchNMF(k, max_iter=p, **kw).fit(X, W=W0.copy(), H=H0.copy())

    out = {
        "shape": list(X.shape),
        "sparse": hasattr(X, "toarray"),
        "k": k,
        "batch_size": batch_size,
        "full_batch_error": float(full.reconstruction_err_),
        "target": float(target),
    }
    for name, fit in (("jaxnmf", ours), ("sklearn", theirs)):
        errors, reached, prev = {}, None, 0
        for p in (g for g in GRID if g <= max_passes):
            errors[p] = float(fit(p).reconstruction_err_)
            if errors[p] <= target:
                lo, hi = prev, p  # the error falls with the passes: bisect (prev, p]
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    errors[mid] = float(fit(mid).reconstruction_err_)
                    lo, hi = (mid, hi) if errors[mid] > target else (lo, mid)
                reached = hi
                break
            prev = p
        passes = reached if reached is not None else max(errors)
        t0 = time.perf_counter()
        fit(passes)  # jaxnmf: compiled already by the search (one program per pass count)
        first = time.perf_counter() - t0
        seconds = _median_time(lambda p=passes, f=fit: f(p), repeats)
        out[name] = {
            "passes_to_target": reached,
            "passes_timed": passes,
            "seconds": seconds,
            "first_call_seconds": first,
            "error_at_passes": {str(p): e for p, e in sorted(errors.items())},
        }
    jt, st = out["jaxnmf"], out["sklearn"]
    out["time_ratio_sklearn_over_jaxnmf"] = st["seconds"] / jt["seconds"]
    return out


def digits(batch_size: int, repeats: int, max_passes: int) -> dict:
    """Digits (1797 × 64, float32), k = 10."""
    import jaxnmf as jn

    X = jn.datasets.load_digits()[0].astype(np.float32)
    return to_full_batch_error(X, K_DIGITS, batch_size, repeats, max_passes)


def tfidf(batch_size: int, repeats: int, max_passes: int) -> dict:
    """The scipy docstrings corpus as TF-IDF (1000 terms, ``min_df=3``, English stop words;
    the topics experiment's matrix), sparse float32, k = 10."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    import jaxnmf as jn

    texts, _, _ = jn.datasets.load_scipy_docstrings(return_raw=True)
    vec = TfidfVectorizer(max_features=1000, min_df=3, stop_words="english")
    X = vec.fit_transform(texts).astype(np.float32)
    return to_full_batch_error(X, K_DIGITS, batch_size, repeats, max_passes)


# --- 2. out of core ---------------------------------------------------------------------------


def write_planted(path: Path, rows: int, cols: int, seed: int = 0, chunk: int = 200_000):
    """A planted ``X = W* H* + noise`` (float32, rank 20) written in chunks (memory: one
    chunk); returns H* ``(20, cols)``."""
    rng = np.random.default_rng(seed)
    H = rng.gamma(0.5, 1.0, (K_PLANTED, cols)).astype(np.float32)
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for a in range(0, rows, chunk):
        b = min(a + chunk, rows)
        W = rng.gamma(0.5, 1.0, (b - a, K_PLANTED)).astype(np.float32)
        block = W @ H
        block += 0.05 * block.mean() * rng.random(block.shape, np.float32)
        X[a:b] = block
    X.flush()
    del X
    return H


def recovery(H, H_true) -> float:
    """Mean cosine similarity of the rows of H matched to those of H* (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    def unit(A):
        A = np.asarray(A, np.float64)
        return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-300)

    C = unit(H) @ unit(H_true).T
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].mean())


def sample_error(path: Path, H, n: int = 2000, seed: int = 1) -> float:
    """‖X_s - W_s H‖ / ‖X_s‖ on ``n`` sampled rows, W_s by NNLS row by row."""
    from scipy.optimize import nnls

    from jaxnmf._stream import NpyRows

    X = NpyRows(str(path))
    idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], n, replace=False))
    rows = np.vstack([X[i : i + 1] for i in idx]).astype(np.float64)
    H = np.asarray(H, np.float64)
    W = np.vstack([nnls(H.T, x)[0] for x in rows])
    return float(np.linalg.norm(rows - W @ H) / np.linalg.norm(rows))


def peak_rss() -> int:
    """This process's peak resident set (bytes): ``VmHWM`` of ``/proc/self/status`` (Linux).
    Not ``ru_maxrss``: Linux keeps that across ``exec``, so a child reports its parent's peak
    when that is higher."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(lib: str, path: str, batch_size: int) -> dict:
    """One pass over the file by ``lib``; runs in its own process (its own peak RSS)."""
    _quiet()
    from jaxnmf._stream import NpyRows

    X = NpyRows(path)
    n = X.shape[0]
    if lib.startswith("jaxnmf"):
        import jax

        import jaxnmf as jn

        # "jaxnmf": scikit-learn's fit forgetting, ρ = 0.7^(batch_size / n_samples) per
        # batch; "jaxnmf_rho": ρ = 0.7 per batch, what scikit-learn's partial_fit uses (its
        # first call sets ρ = forget_factor^(batch_size / batch_size))
        forget = 0.7 if lib == "jaxnmf" else 0.7 ** (n / batch_size)
        t = time.perf_counter()
        res = jn.fit_minibatch(
            path,
            K_PLANTED,
            batch_size=batch_size,
            max_iter=1,
            tol=0.0,
            max_no_improvement=None,
            forget_factor=forget,
        )
        seconds = time.perf_counter() - t
        H, extra = (
            res.H,
            {"status": str(res.status), "n_steps": res.n_steps, "device": str(jax.devices()[0])},
        )
    else:
        from sklearn.decomposition import MiniBatchNMF

        est = MiniBatchNMF(K_PLANTED, batch_size=batch_size, random_state=0)
        t = time.perf_counter()
        for a in range(0, n, batch_size):
            est.partial_fit(X[a : a + batch_size])
        seconds = time.perf_counter() - t
        H, extra = est.components_, {"n_steps": est.n_steps_}
    peak = peak_rss()
    np.save(path + f".{lib}.H.npy", H)
    return {"seconds": seconds, "rows_per_second": n / seconds, "peak_rss_bytes": peak, **extra}


def out_of_core(rows: int, cols: int, batch_size: int, folder: str | None, libs=LIBS) -> dict:
    with tempfile.TemporaryDirectory(dir=folder) as d:
        path = Path(d) / "planted.npy"
        t = time.perf_counter()
        H_true = write_planted(path, rows, cols)
        out = {
            "shape": [rows, cols],
            "k": K_PLANTED,
            "batch_size": batch_size,
            "file_bytes": path.stat().st_size,
            "write_seconds": time.perf_counter() - t,
        }
        env = _fair_env.cleaned(os.environ)
        for lib in libs:
            cmd = [
                sys.executable,
                "-m",
                "experiments.benchmarks.minibatch_vs_sklearn",
                "--child",
                lib,
                "--path",
                str(path),
                "--batch-size",
                str(batch_size),
            ]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, cwd=_fair_env.REPO_ROOT, check=False
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{lib} child failed:\n{proc.stderr[-3000:]}")
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            H = np.load(str(path) + f".{lib}.H.npy")
            rec["recovery_mean_cosine"] = recovery(H, H_true)
            rec["sample_relative_error"] = sample_error(path, H)
            out[lib] = rec
        if "jaxnmf" in out and "sklearn" in out:
            out["rows_per_second_ratio"] = (
                out["jaxnmf"]["rows_per_second"] / out["sklearn"]["rows_per_second"]
            )
    return out


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict:
    import jax

    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "load_average_start": list(os.getloadavg()),
        "fair_env": _fair_env.STATE,
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: t.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for t in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cols", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=4096, help="out-of-core batches")
    parser.add_argument(
        "--digits-batch-size", type=int, default=256, help="digits and TF-IDF batches"
    )
    parser.add_argument("--max-passes", type=int, default=200)
    parser.add_argument("--dir", default=None, help="folder for the planted file (temporary)")
    parser.add_argument("--out", default="results/benchmarks")
    parser.add_argument(
        "--libs", nargs="+", choices=LIBS, default=list(LIBS), help="out-of-core runs"
    )
    parser.add_argument(
        "--out-of-core-only",
        action="store_true",
        help="skip digits and TF-IDF; writes minibatch_out_of_core.json (e.g. the 40 GB run)",
    )
    parser.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.path, args.batch_size)))
        return
    rows, repeats = (200_000, 1) if args.quick else (args.rows, args.repeats)
    rec = {
        "benchmark": "minibatch_vs_sklearn",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
    }
    in_memory = () if args.out_of_core_only else ("digits", "tfidf")
    if in_memory:
        rec["digits"] = digits(args.digits_batch_size, repeats, args.max_passes)
        rec["tfidf"] = tfidf(args.digits_batch_size, repeats, args.max_passes)
    libs = [lib for lib in LIBS if lib in args.libs]
    rec["out_of_core"] = out_of_core(rows, args.cols, args.batch_size, args.dir, libs)
    rec["machine"]["load_average_end"] = list(os.getloadavg())
    name = "minibatch_vs_sklearn" if in_memory else "minibatch_out_of_core"
    path = Path(args.out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2))
    for name in in_memory:
        d = rec[name]
        print(
            f"{name} {d['shape']}: full-batch error {d['full_batch_error']:.4g}, "
            f"target {d['target']:.4g}"
        )
        for lib in ("jaxnmf", "sklearn"):
            r = d[lib]
            print(
                f"  {lib:8s} passes to target {r['passes_to_target']}, "
                f"{r['seconds']:.3f} s for {r['passes_timed']} passes"
            )
        print(f"  time ratio sklearn / jaxnmf: {d['time_ratio_sklearn_over_jaxnmf']:.1f}")
    o = rec["out_of_core"]
    print(f"out of core {o['shape']} ({o['file_bytes'] / 2**30:.2f} GiB):")
    for lib in libs:
        r = o[lib]
        print(
            f"  {lib:8s} {r['rows_per_second']:10.0f} rows/s, peak RSS "
            f"{r['peak_rss_bytes'] / 2**30:.2f} GiB, recovery {r['recovery_mean_cosine']:.4f}, "
            f"sample error {r['sample_relative_error']:.4f}"
        )
    if "rows_per_second_ratio" in o:
        print(f"  rows/s ratio jaxnmf / sklearn: {o['rows_per_second_ratio']:.1f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
