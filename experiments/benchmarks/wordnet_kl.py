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

Runtime on a 2-core CPU: about 3 minutes (``--quick``: a 20,000-gloss subset, ~40 s).
:func:`run` returns a :class:`WordNetBenchmark` record; the command line writes
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import _run
from experiments.benchmarks._bench import (
    gemm_gflops,
    machine,
    matmul_gflops,
    peak_rss_gib,
    print_machine,
    write_json,
)
from experiments.benchmarks.solvers_vs_sklearn import _differential

_T = {"metadata": _run.META}  # a timing (or machine) field: JSON, outside the hashed arrays

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


@dataclass(frozen=True)
class WordNetBenchmark:
    """KL MU on the sparse gloss counts: jaxnmf against scikit-learn, per iteration, and the
    process's peak memory after loading the data, after jaxnmf, after scikit-learn."""

    shape: np.ndarray  # (2,) glosses × terms
    nnz: int
    k: int
    iterations_differenced: int
    dense_float32_gib: float  # what the dense matrix would need
    jaxnmf_s_per_iter: float = field(**_T)
    sklearn_s_per_iter: float = field(**_T)
    jaxnmf_compile_s: float = field(**_T)  # both lengths
    jaxnmf_kl_after: float = field(**_T)  # after 10 + n iterations (the same algorithm)
    sklearn_kl_after: float = field(**_T)
    matmul_gflops_float32: float = field(**_T)
    peak_rss_gib: list = field(**_T)  # after loading, after jaxnmf, after scikit-learn
    machine: dict = field(**_T)


def run(
    quick: bool = False, repeats: int = 3, iters: int | None = None, k: int = 50, min_df: int = 2
) -> WordNetBenchmark | None:
    """Time both libraries' KL MU on the gloss counts (a 20,000-gloss subset with ``quick``);
    ``None`` when wordnet-base is not installed."""
    if not DATA_NOUN.exists():
        print(f"skipped: {DATA_NOUN} not found; `apt-get install wordnet-base` (Debian/Ubuntu)")
        return None
    import jax.numpy as jnp
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import CountVectorizer

    import jaxnmf as jn

    # At the start: the load average and the BLAS. The GEMM throughput is measured last, so
    # its buffers stay out of the peak memory figures.
    mach = machine(gemm=False)
    glosses = load_glosses()[0][: 20000 if quick else None]
    X = CountVectorizer(min_df=min_df, dtype=np.float32).fit_transform(glosses).tocsr()
    (m, n), n_iter, rss = X.shape, iters or (10 if quick else 20), [peak_rss_gib()]
    print(f"WordNet noun glosses: {m} × {n}, {X.nnz} stored; peak RSS {rss[0]:.2f} GiB")
    # The same initial factors for both (scikit-learn's init="random" scaling).
    rng = np.random.default_rng(0)
    scale = np.sqrt(X.sum() / (m * n) / k)
    W0 = (scale * np.abs(rng.standard_normal((m, k)))).astype(np.float32)
    H0 = (scale * np.abs(rng.standard_normal((k, n)))).astype(np.float32)

    def run_jaxnmf(it):
        return jn.fit(X, k, loss="kl", solver="mu", init=(W0, H0), max_iter=it, tol=0.0)

    def run_sklearn(it):
        model = NMF(
            k, init="custom", solver="mu", beta_loss="kullback-leibler", max_iter=it, tol=0.0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, intended
            W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
        return W, model.components_

    t0 = time.perf_counter()
    run_jaxnmf(10), run_jaxnmf(10 + n_iter)  # compile both lengths (max_iter is static)
    compile_s = time.perf_counter() - t0
    jx_s = _differential(run_jaxnmf, n_iter, repeats)[0]
    jx_kl = run_jaxnmf(10 + n_iter).loss
    rss.append(peak_rss_gib())
    sk_s = _differential(run_sklearn, n_iter, repeats)[0]
    sk_kl = float(jn.metrics.beta_divergence(X, *run_sklearn(10 + n_iter), "kl"))  # sparse
    rss.append(peak_rss_gib())
    mach["gemm_gflops"] = gemm_gflops()
    print_machine(mach)
    print(
        f"KL MU, k = {k}, per iteration: jaxnmf {1e3 * jx_s:.1f} ms, scikit-learn "
        f"{1e3 * sk_s:.1f} ms (ratio {jx_s / sk_s:.2f}); peak RSS {rss} GiB"
    )
    return WordNetBenchmark(
        np.asarray([m, n]),
        int(X.nnz),
        k,
        n_iter,
        m * n * 4 / 2**30,
        jx_s,
        sk_s,
        compile_s,
        float(jx_kl),
        sk_kl,
        matmul_gflops(jnp.float32),
        rss,
        mach,
    )


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20,000-gloss subset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=None, help="n of t(10 + n) - t(10)")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--min-df", type=int, default=2)
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    args = parser.parse_args(argv)
    rec = run(args.quick, args.repeats, args.iters, args.k, args.min_df)
    if rec is not None:
        print(f"wrote {write_json('wordnet_kl', _run.to_json(rec), args.out)}")
    return rec


if __name__ == "__main__":
    main()
