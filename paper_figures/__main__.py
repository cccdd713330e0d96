"""Draw every figure whose results exist.

    python -m paper_figures [--results results] [--out paper_figures/output]
                            [--variant auto|smoke|full] [--readme [README.md]]
    python -m paper_figures --check-readme [README.md]

``--readme`` also rewrites the README's generated sections (``<!-- results:NAME -->`` ...
``<!-- /results:NAME -->``: the figure and benchmark tables) from the same results;
``--check-readme`` only checks that those sections are well formed and that every result
file they name exists (exit status 1 otherwise).

``--variant auto`` (the default) uses each experiment's ``full`` results when present, else
its ``smoke`` results. Figures whose results are missing are listed, with the command that
makes them, and skipped. A result that is corrupt, changed since it was written, or lacks an
array a figure needs is an error naming the file (the other figures are still drawn).
Exit status 1 when any figure failed so, or when no figure could be drawn.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import paper_figures


def figure_modules() -> list[str]:
    """Names of the ``fig_<nn>_<slug>`` modules, in order."""
    return sorted(
        m.name for m in pkgutil.iter_modules(paper_figures.__path__) if m.name.startswith("fig_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paper_figures", description="Draw every figure from saved results."
    )
    parser.add_argument("--results", default="results", help="results root (default: results)")
    parser.add_argument("--out", default="paper_figures/output", help="output folder")
    parser.add_argument("--variant", choices=("auto", "smoke", "full"), default="auto")
    parser.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        metavar="README",
        help="also rewrite the README's generated tables",
    )
    parser.add_argument(
        "--check-readme",
        nargs="?",
        const="README.md",
        metavar="README",
        help="check the README's generated sections; draw nothing",
    )
    args = parser.parse_args(argv)
    if args.check_readme:
        from paper_figures import _readme

        problems = _readme.check(args.check_readme)
        for problem in problems:
            print(f"{args.check_readme}: {problem}", file=sys.stderr)
        print(f"{args.check_readme}: generated sections " + ("BAD" if problems else "fine"))
        return 1 if problems else 0

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: pip install -e '.[figures]'; no figures drawn")
        return 1
    from paper_figures import _style

    drawn, missing, failed = 0, [], []
    for name in figure_modules():
        module = importlib.import_module(f"paper_figures.{name}")
        t0 = time.perf_counter()
        try:
            paths = module.draw(Path(args.results), Path(args.out), args.variant)
        except _style.ResultFileError as e:  # names the file (and the key): no traceback
            print(f"[{name}] error: {e}", file=sys.stderr)
            failed.append(name)
            continue
        if paths is None:
            reason = _style.skip_reason(Path(args.results), module.EXPERIMENT, args.variant)
            if reason is not None:  # the run exists but had nothing to draw (data absent)
                print(f"[{name}] skipped: {reason}")
                continue
            missing.append((name, module.EXPERIMENT))
            continue
        drawn += 1
        print(f"[{name}] {time.perf_counter() - t0:.1f} s: " + ", ".join(str(p) for p in paths))
    for name, experiment in missing:
        v = "smoke" if args.variant == "auto" else args.variant
        print(
            f"[{name}] skipped: no results in {args.results}/{experiment}/"
            f"{'{full,smoke}' if args.variant == 'auto' else args.variant}; make them with "
            f"`python -m experiments run {experiment} --variant {v} --out {args.results}`"
        )
    if failed:
        print(f"error: not drawn (see above): {', '.join(failed)}", file=sys.stderr)
    if args.readme and not failed:
        from paper_figures import _readme

        done = _readme.update(args.readme, Path(args.results), args.variant)
        print(f"{args.readme}: rewrote the generated sections {', '.join(done) or '(none found)'}")
    return 0 if drawn and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
