"""``python -m experiments._clean_child CONFIG_JSON OUT_DIR``: run one experiment in this
process, started by :func:`experiments._run.run` with ``clean_env=True``.

Its first import cleans the environment (``_fair_env``) before anything loads numpy, so
scikit-learn's OpenBLAS picks the CPU's own kernels; no compilation cache is enabled, so the
benchmarks' compile times are those of a first call. It writes the run folder as any run does.
"""

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import json
import sys
from pathlib import Path

from experiments import load


def main(argv: list[str]) -> None:
    config_path, out_dir = argv
    config = json.loads(Path(config_path).read_text())
    load(config["name"]).main(config, Path(out_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
