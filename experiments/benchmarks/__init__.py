"""Benchmarks against scikit-learn, run on the same machine in the same process.

Each script measures the machine's matmul throughput first, so its times can be read as a
fraction of the ideal (floating-point work / measured GFLOP/s), runs the peer, writes a JSON
file under ``results/benchmarks/`` and prints a summary. Quote medians; never assert times.
"""
