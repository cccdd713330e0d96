"""Benchmarks against scikit-learn, run on the same machine in the same process.

Each benchmark is a function returning a typed record (``sweep_vs_sklearn.run`` ->
``SweepBenchmark``, ``solvers_vs_sklearn.run`` -> ``SolverBenchmark``): the speed experiment
calls them directly; their command lines (``python -m experiments.benchmarks.<name>``) are
thin wrappers that print and write a JSON file under ``results/benchmarks/``. Each measures
the machine's matmul throughput, so its times can be read as a fraction of the ideal
(floating-point work / measured GFLOP/s). Quote medians; never assert times.

Each script imports ``_fair_env`` before numpy: its process runs without the machine's
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, which would give scikit-learn's BLAS slower
kernels. ``machine`` in each record holds its BLAS libraries (threadpoolctl: kernels,
threads), what was removed, numpy's and jax's GEMM throughput and the load average.
"""
