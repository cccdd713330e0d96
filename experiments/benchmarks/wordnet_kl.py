"""Large sparse input: KL NMF of the WordNet noun glosses, jaxnmf against scikit-learn.

Question (issue: sparse input, never densified): on a real term-count matrix of about
82,000 glosses × 27,000 terms (0.04 % stored; dense float32 would need ~8 GiB), what are
jaxnmf's peak memory and time per iteration of KL multiplicative updates at k = 50, on the
sparse matrix as it is, and how do they compare with scikit-learn's
``NMF(solver="mu", beta_loss="kullback-leibler")`` on the same CSR matrix, from the same
initial factors, in the same process?

Data: Debian package ``wordnet-base`` (DATA.md): ``/usr/share/wordnet/data.noun``, one gloss
per synset (the text after ``"| "``), label = lexicographer file number (field 2, unused
here); term counts by scikit-learn's ``CountVectorizer(min_df=2)``, float32 CSR.

Method: per-iteration time is ``(t(10 + n) - t(10)) / n``, ``t`` the median of ``--repeats``
whole calls (fixed costs such as validation and transfers cancel; jaxnmf compiles both
lengths beforehand and reports compilation apart). jaxnmf evaluates the objective after every
iteration (its stopping rule), scikit-learn every 10; the objectives reached after the same
number of iterations are reported to show both ran the same algorithm. Peak memory is the
process's maximum resident set size (``getrusage``), read after loading the data, after the
jaxnmf runs and after the scikit-learn runs (jaxnmf runs first, so its figure includes the
data and nothing of scikit-learn's).

Runtime on a 2-core CPU: about 3 minutes (``--quick``: a 20,000-gloss subset, ~40 s). Writes
``results/benchmarks/wordnet_kl.json`` (``machine`` in it: the BLAS, numpy's and jax's GEMM
throughput, the load; the process runs without the machine's OpenBLAS kernel overrides,
``_fair_env``). Skips (exit 0, with a message) when wordnet-base is
not installed: ``apt-get install wordnet-base``.

    python -m experiments.benchmarks.wordnet_kl [--quick]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from experiments.benchmarks._bench import (
    gemm_gflops,
    machine,
    matmul_gflops,
    median_time,
    peak_rss_gib,
    print_machine,
    write_json,
)

DATA_NOUN = Path("/usr/share/wordnet/data.noun")


def load_glosses(path: Path = DATA_NOUN):
    """``(glosses, labels)``: the gloss of every noun synset and its lexicographer file."""
    glosses, labels = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # the licence header lines start with two spaces
                continue
            head, sep, gloss = line.partition("| ")
            if not sep:
                continue
            glosses.append(gloss.strip())
            labels.append(int(head.split()[1]))
    return glosses, np.asarray(labels)


def _differential(run, n_iter, repeats):
    short = median_time(lambda: run(10), repeats)
    long = median_time(lambda: run(10 + n_iter), repeats)
    return max(long - short, 0.0) / n_iter, short


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20,000-gloss subset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=None, help="n of t(10 + n) - t(10)")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--min-df", type=int, default=2)
    parser.add_argument(
        "--out", default="results/benchmarks", help="folder of the result JSON file"
    )
    args = parser.parse_args(argv)
    if not DATA_NOUN.exists():
        print(
            f"skipped: {DATA_NOUN} not found; install the WordNet database with "
            "`apt-get install wordnet-base` (Debian/Ubuntu)"
        )
        return None

    import jax.numpy as jnp
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import CountVectorizer

    import jaxnmf as jn

    # At the start: the load average and the BLAS. The GEMM throughput is measured last, so
    # its buffers stay out of the peak memory figures.
    mach = machine(gemm=False)
    glosses, labels = load_glosses()
    if args.quick:
        glosses, labels = glosses[:20000], labels[:20000]
    X = CountVectorizer(min_df=args.min_df, dtype=np.float32).fit_transform(glosses).tocsr()
    m, n = X.shape
    k = args.k
    n_iter = args.iters or (10 if args.quick else 20)
    dense_gib = m * n * 4 / 2**30
    rss_data = peak_rss_gib()
    print(
        f"WordNet noun glosses: {m} × {n}, {X.nnz} stored ({100 * X.nnz / (m * n):.3f} %); "
        f"dense float32 would need {dense_gib:.1f} GiB. Peak RSS after loading: {rss_data:.2f} GiB"
    )
    gflops = matmul_gflops(jnp.float32)
    print(f"matmul throughput (float32): {gflops:.1f} GFLOP/s")

    # The same initial factors for both (scikit-learn's init="random" scaling).
    rng = np.random.default_rng(0)
    scale = np.sqrt(X.sum() / (m * n) / k)
    W0 = (scale * np.abs(rng.standard_normal((m, k)))).astype(np.float32)
    H0 = (scale * np.abs(rng.standard_normal((k, n)))).astype(np.float32)

    def run_jaxnmf(it):
        return jn.fit(X, k, loss="kl", solver="mu", init=(W0, H0), max_iter=it, tol=0.0)

    t0 = time.perf_counter()
    run_jaxnmf(10), run_jaxnmf(10 + n_iter)  # compile both lengths (max_iter is static)
    compile_s = time.perf_counter() - t0
    jx_s, jx_short = _differential(run_jaxnmf, n_iter, args.repeats)
    jx_res = run_jaxnmf(10 + n_iter)
    rss_jaxnmf = peak_rss_gib()

    def run_sklearn(it):
        model = NMF(
            k, init="custom", solver="mu", beta_loss="kullback-leibler", max_iter=it, tol=0.0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, intended
            W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
        return W, model.components_

    sk_s, sk_short = _differential(run_sklearn, n_iter, args.repeats)
    W_sk, H_sk = run_sklearn(10 + n_iter)
    rss_sklearn = peak_rss_gib()
    kl_sk = float(jn.metrics.beta_divergence(X, W_sk, H_sk, "kl"))  # sparse: never densified
    mach["gemm_gflops"] = gemm_gflops()
    print_machine(mach)

    # Work of one MU iteration on sparse data, as scikit-learn does it: WH at the stored
    # entries and one sparse-dense product, for each of W and H (2 nnz k flops each).
    flops = 8 * X.nnz * k
    out = {
        "machine": mach,
        "matmul_gflops_float32": gflops,
        "data": {
            "shape": [m, n],
            "nnz": int(X.nnz),
            "density": X.nnz / (m * n),
            "dense_float32_gib": dense_gib,
            "n_labels": len(np.unique(labels)),
            "min_df": args.min_df,
        },
        "k": k,
        "iterations_differenced": n_iter,
        "jaxnmf_mu": {
            "s_per_iter": jx_s,
            "call_10_iter_s": jx_short,
            "compile_s": compile_s,
            "kl_after": jx_res.loss,
            "gflops_effective": flops / jx_s / 1e9 if jx_s > 0 else float("nan"),
        },
        "sklearn_mu": {
            "s_per_iter": sk_s,
            "call_10_iter_s": sk_short,
            "kl_after": kl_sk,
            "gflops_effective": flops / sk_s / 1e9 if sk_s > 0 else float("nan"),
        },
        "ratio_jaxnmf_over_sklearn": jx_s / sk_s if sk_s > 0 else float("nan"),
        "peak_rss_gib": {
            "data": rss_data,
            "after_jaxnmf": rss_jaxnmf,
            "after_sklearn": rss_sklearn,
        },
    }
    print(
        f"\nKL MU, k = {k}, per iteration (median of {args.repeats}, "
        f"t({10 + n_iter}) - t(10) over {n_iter}):"
    )
    for name in ("jaxnmf_mu", "sklearn_mu"):
        row = out[name]
        print(
            f"  {name:11s} {1e3 * row['s_per_iter']:8.1f} ms/it  "
            f"({row['gflops_effective']:.2f} GFLOP/s effective, "
            f"{100 * row['gflops_effective'] / gflops:.1f} % of matmul)  "
            f"KL after {10 + n_iter} it: {row['kl_after']:.6g}"
        )
    print(f"  ratio jaxnmf / scikit-learn: {out['ratio_jaxnmf_over_sklearn']:.2f}")
    print(f"  jaxnmf compile (both lengths): {compile_s:.1f} s")
    print(
        f"peak RSS: {rss_data:.2f} GiB after loading, {rss_jaxnmf:.2f} GiB after jaxnmf, "
        f"{rss_sklearn:.2f} GiB after scikit-learn (dense float32 V alone: {dense_gib:.1f} GiB)"
    )
    path = write_json("wordnet_kl", out, args.out)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
