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
import ast
import copy
import json
import os
import reprlib
import sys
import time
from pathlib import Path

from . import EXPERIMENTS, VARIANTS, _common, load


def _default_variant() -> str:
    return "smoke" if os.environ.get("JAXNMF_SMOKE", "") not in ("", "0") else "full"


class ConfigError(ValueError):
    """A bad ``--set`` override."""


def _parse_value(text: str):
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
    return text  # a bare string, e.g. solver=hals


# Returned by _conform when a value does not have the template's type.
_MISMATCH = object()


def _conform(value, template):
    """``value`` in the type of ``template`` (the config value it replaces), or ``_MISMATCH``.

    bool takes only a bool, int only an int (2.5 and 2.0 are refused: a count must not be
    truncated), float an int or a float (stored as float), str only a string; a list or tuple
    takes a list or tuple whose every element conforms to the template's elements. A ``None``
    template (e.g. "the benchmark's own list") says nothing about the type: anything goes.
    """
    if template is None:
        return value
    if isinstance(template, bool):  # before int: bool is an int subclass
        return value if isinstance(value, bool) else _MISMATCH
    if isinstance(template, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if isinstance(template, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _MISMATCH
    if isinstance(template, str):
        return value if isinstance(value, str) else _MISMATCH
    if isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        element = _element_template(template)
        items = [_conform(v, element) for v in value]
        return _MISMATCH if any(v is _MISMATCH for v in items) else type(template)(items)
    return _MISMATCH  # a section (dict): its keys are set one by one


def _element_template(seq):
    """One value standing for every element of a config list (``None``: no constraint)."""
    kinds = {type(v) for v in seq}
    if kinds <= {int, float} and float in kinds:
        return 0.0  # [0.5, 1] is a list of floats
    return seq[0] if len(kinds) == 1 else None  # empty or mixed: nothing to check against


# How error messages name a type: (one value, the plural for "a list of ...").
_TYPE_NAMES = {
    bool: ("a bool (true or false)", "bools (true or false)"),
    int: ("an int", "ints"),
    float: ("a float", "floats (or ints)"),
    str: ("a string", "strings"),
    list: ("a list", "lists"),
    tuple: ("a list", "lists"),
}


def _type_name(template) -> str:
    """What ``template``'s type accepts, for error messages: "an int", "a list of floats"."""
    if template is None:
        return "null"
    if isinstance(template, dict):
        return "a section (set its keys one by one, section.key=value)"
    if isinstance(template, (list, tuple)):
        element = _element_template(template)
        if element is not None:
            return "a list of " + _TYPE_NAMES.get(type(element), ("", "values"))[1]
    return _TYPE_NAMES.get(type(template), (f"a {type(template).__name__}",))[0]


def _values_at(configs, key: str) -> list:
    """The values at the dotted ``key`` in those of ``configs`` that have it."""
    found = []
    for node in configs:
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            found.append(node)
    return found


def _typed_value(key: str, text: str, templates: list):
    """The ``--set key=text`` value, parsed and checked against the values it may replace.

    ``templates``: the config's value at ``key`` first, then the other variants'. ``None`` in
    one of them (full: ``"solvers": None``) allows null, not every type; only when all are
    ``None`` is any value accepted.
    """
    given = _parse_value(text)
    typed = [t for t in templates if t is not None]
    if given is None and len(typed) < len(templates):
        return None
    for template in typed or [None]:
        value = _conform(given, template)
        if value is not _MISMATCH:
            return value
    expected = " or ".join(dict.fromkeys(_type_name(t) for t in templates))
    hint = ""
    if any(isinstance(t, str) for t in typed) and not isinstance(given, str):
        hint = f" (for the string, quote it: --set {key}='\"{text}\"')"
    was = reprlib.repr(templates[0])
    raise ConfigError(
        f"--set {key}={text}: expected {expected} (the config's value: {was}), "
        f"got {given!r} ({type(given).__name__}){hint}"
    )


def apply_overrides(config: dict, overrides: list[str], like: tuple[dict, ...] = ()) -> dict:
    """``config`` with each ``key=value`` (dotted keys for nested dicts) applied.

    Each value is parsed (JSON, else a Python literal, else a bare string) and must have the
    type of the value it replaces (see :func:`_conform`). ``like``: other configs of the same
    experiment (its other variants); the type of the same key there is accepted too, so that
    ``--set time_to_target.solvers='["mu"]'`` works where the full variant has ``None``.

    Raises:
      ConfigError: a malformed override, a key the config does not have (so a typo never runs
        silently with the default), or a value of the wrong type (naming the key, the value
        and the type expected), all before anything runs.
    """
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section of the config")
            node = node[p]
        if leaf not in node:
            raise ConfigError(
                f"--set {key}: no such config key; known here: {', '.join(sorted(node))}"
            )
        node[leaf] = _typed_value(key, text, [node[leaf], *_values_at(like, key)])
    return config


def run_one(name: str, variant: str, overrides: list[str], out: Path, force: bool = False) -> dict:
    """Run one experiment unless a finished run of the same config is there (or ``force``).

    Raises:
      ConfigError: a bad ``--set`` override (checked before anything runs).
      ResultFileError: a result file in the run folder is corrupt, changed since it was
        written, or from another config.
    """
    module = load(name)
    others = tuple(module.get_config(v) for v in VARIANTS if v != variant)
    config = apply_overrides(module.get_config(variant), overrides, like=others)
    out_dir = out / name / variant
    tag = f"[{name}/{variant}]"
    if force:
        gone = _common.clear_run(out_dir)
        if gone:
            print(f"{tag} --force: deleted {len(gone)} earlier result files", flush=True)
    else:
        meta = _common.finished_run(out_dir, config)
        if meta is not None:
            _common.update_manifest(out, out_dir)
            print(
                f"{tag} finished earlier ({out_dir}/meta.json complete, every array file has "
                "the sha256 recorded when it was written): not rerun (--force reruns it)",
                flush=True,
            )
            return meta
    print(f"{tag} config: {json.dumps(config, sort_keys=True)}", flush=True)
    t0 = time.perf_counter()
    meta = module.main(config, out_dir)
    wall = time.perf_counter() - t0
    _common.update_manifest(out, out_dir)
    print(f"{tag} wrote {out_dir}/arrays.npz, meta.json in {wall:.1f} s", flush=True)
    return meta


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
