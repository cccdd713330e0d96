"""Command line for the experiments.

    python -m experiments list
    python -m experiments run NAME [--variant smoke|full] [--set key=value ...] [--out results]
                                   [--force]
    python -m experiments all [--variant smoke|full] [--out results] [--figures-out DIR]
                              [--force] [--no-figures]
    python -m experiments check [--out results] [--manifest PATH]

``run`` writes ``<out>/<NAME>/<variant>/arrays.npz`` and ``meta.json``. ``--set`` overrides a
config entry; nested entries use dots and values are read as JSON when they parse
(``--set faces.rank=36 --set solvers='["mu","hals"]' --set faces.enabled=false``). Each value
must have the type of the entry it replaces (an int stays an int, a float takes an int, a list
keeps its element type), checked before anything runs.
``all`` runs every experiment, then draws every figure and rewrites the README's generated
tables (``python -m paper_figures --readme``).
The default variant is ``full``, or ``smoke`` when the environment sets ``JAXNMF_SMOKE=1``.

Runs are resumable. A finished run (``meta.json`` complete for the same config, every array
file with the sha256 recorded when it was written) is skipped; ``--force`` deletes it and runs
again, and is the only way to redo it. Experiments with several parts (data sets, chunks of
ranks) write each finished part to ``parts/<part>.npz`` and, when restarted after an
interruption, load those parts (verified the same way) instead of recomputing them. A corrupt
or changed result file, or one made by another config, stops the run with an error naming the
file.

Every run records the sha256 of its array files in ``<out>/manifest.json``; ``check``
recomputes them and compares (with ``--manifest`` a copy saved from an earlier run: two runs of
the same command give identical files), and never writes the manifest. Array files hold no
timings; wall times are in the JSON files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import EXPERIMENTS, VARIANTS, _common, load
from ._config import ConfigError
from ._run import run_one


def _default_variant() -> str:
    return "smoke" if os.environ.get("JAXNMF_SMOKE", "") not in ("", "0") else "full"


def _cmd_list(_args) -> int:
    for name in EXPERIMENTS:
        doc = (load(name).__doc__ or "").strip()
        first = doc.splitlines()[0] if doc else ""
        paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
        runtime = next((p for p in paragraphs if p.lower().startswith("expected runtime")), "")
        print(f"{name}\n    {first}\n    {runtime}")
    return 0


def _compile_cache(args) -> None:
    """JAX's persistent compilation cache, on by default (``<out>/.jax_cache``): a rerun of an
    experiment in a new process compiles nothing it compiled before. The speed benchmarks run
    in child processes without it, so that figure 7's compile times are those of a first call."""
    if args.no_compile_cache:
        return
    import jaxnmf

    folder = args.compile_cache or Path(args.out) / ".jax_cache"
    print(f"compiled programs cached in {jaxnmf.enable_compilation_cache(folder)}")


def _cmd_run(args) -> int:
    _compile_cache(args)
    run_one(args.name, args.variant, args.set or [], Path(args.out), force=args.force)
    return 0


def _cmd_all(args) -> int:
    _compile_cache(args)
    t_all = time.perf_counter()
    times = {}
    for name in EXPERIMENTS:
        t0 = time.perf_counter()
        run_one(name, args.variant, [], Path(args.out), force=args.force)
        times[name] = time.perf_counter() - t0
    if args.no_figures:
        status = 0
    else:
        from paper_figures.__main__ import main as figures_main

        t0 = time.perf_counter()
        readme = [] if args.no_readme else ["--readme", args.readme]
        status = figures_main(
            ["--results", args.out, "--out", args.figures_out, "--variant", args.variant, *readme]
        )
        times["figures"] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    print(
        "timings: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        + f"; total {total:.1f} s"
    )
    return status


def check(out: Path, manifest_path: Path | None = None) -> int:
    """Recompute the sha256 of every result array file under ``out`` and compare with the
    manifest; print one line per difference and a summary. 0 when every listed file matches.
    """
    manifest_path = manifest_path or out / _common.MANIFEST
    if not manifest_path.is_file():
        print(f"no manifest at {manifest_path}: run an experiment first")
        return 1
    listed = _common.load_json(manifest_path).get("files", {})
    on_disk = {}
    for run_dir in sorted(p.parent for p in out.glob("*/*/meta.json")):
        for f in _common.result_files(run_dir):
            on_disk[f.relative_to(out).as_posix()] = f
    bad = 0
    for rel, expected in sorted(listed.items()):
        f = out / rel
        if not f.is_file():
            print(f"MISSING  {f}")
            bad += 1
        elif _common.sha256_file(f) != expected:
            print(f"CHANGED  {f} (sha256 differs from {manifest_path})")
            bad += 1
    unlisted = sorted(set(on_disk) - set(listed))
    for rel in unlisted:
        print(f"UNLISTED {out / rel} (not in {manifest_path})")
    print(
        f"check: {len(listed) - bad} of {len(listed)} files in {manifest_path} match"
        + (f", {len(unlisted)} result files not listed" if unlisted else "")
    )
    return 1 if bad else 0


def _cmd_check(args) -> int:
    return check(Path(args.out), Path(args.manifest) if args.manifest else None)


def _cache_options(p) -> None:
    p.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="persistent compilation cache folder (default: <out>/.jax_cache)",
    )
    p.add_argument("--no-compile-cache", action="store_true", help="compile afresh in this process")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")

    p = sub.add_parser("run", help="run one experiment")
    p.add_argument("name", choices=EXPERIMENTS)
    p.add_argument("--variant", choices=VARIANTS, default=_default_variant())
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--force", action="store_true", help="rerun even if finished earlier")
    _cache_options(p)

    p = sub.add_parser("all", help="run every experiment, then draw every figure")
    p.add_argument("--variant", choices=VARIANTS, default=_default_variant())
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--figures-out", default="paper_figures/output", help="figure folder")
    p.add_argument("--no-figures", action="store_true", help="skip drawing the figures")
    p.add_argument("--readme", default="README.md", help="README whose tables are rewritten")
    p.add_argument("--no-readme", action="store_true", help="leave the README alone")
    p.add_argument("--force", action="store_true", help="rerun experiments finished earlier")
    _cache_options(p)

    p = sub.add_parser("check", help="compare result files with the manifest's sha256")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--manifest", help="manifest to compare with (default: <out>/manifest.json)")

    args = parser.parse_args(argv)
    commands = {"list": _cmd_list, "run": _cmd_run, "all": _cmd_all, "check": _cmd_check}
    try:
        return commands[args.command](args)
    except ConfigError as e:  # a bad --set: a usage message, not a traceback
        parser.error(str(e))
        return 2  # not reached: parser.error exits
    except _common.ResultFileError as e:  # names the file; no traceback needed
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
