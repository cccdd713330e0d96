"""Benchmarks against scikit-learn, run on the same machine in the same process.

Each script measures the machine's matmul throughput first, so its times can be read as a
fraction of the ideal (floating-point work / measured GFLOP/s), runs the peer, writes a JSON
file under ``results/benchmarks/`` and prints a summary. Quote medians; never assert times.

Each script imports ``_fair_env`` before numpy: its process runs without the machine's
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, which would give scikit-learn's BLAS slower
kernels. Run a script as its own process (``python -m experiments.benchmarks.<name>``, or
``_fair_env.run_module`` from a process that has loaded numpy). ``machine`` in the JSON
records its BLAS libraries, numpy's and jax's GEMM throughput and the load average.
"""
