"""The README's generated sections: rewritten between their markers only, and checked.

No experiment runs here: an empty results folder gives sections that say so, and the checks
run on small hand-written READMEs (milliseconds, once matplotlib is imported).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from paper_figures import _readme

REPO = Path(__file__).resolve().parents[1]

TEXT = """# Title

Hand-written text, kept as it is.

<!-- results:figures -->
| a number typed by hand | 1.23 |
<!-- /results:figures -->

More text.

<!-- results:benchmarks -->
old
<!-- /results:benchmarks -->
"""


def test_update_rewrites_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(TEXT)
    done = _readme.update(readme, tmp_path / "no-results")
    text = readme.read_text()
    assert done == ["figures", "benchmarks"]
    assert "1.23" not in text and "\nold\n" not in text  # hand-edited numbers overwritten
    assert text.startswith("# Title\n\nHand-written text, kept as it is.\n")
    assert "\nMore text.\n" in text
    assert "| `fig_01_parts` | not drawn: not run | — |" in text
    assert "No speed results yet" in text
    assert _readme.check(readme) == []  # well formed, names no result file
    before = readme.read_text()
    _readme.update(readme, tmp_path / "no-results")
    assert readme.read_text() == before  # the same results: the same README


def test_check_names_bad_markers_and_missing_files(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(TEXT.replace("<!-- /results:benchmarks -->\n", ""))
    assert any("'benchmarks' is not closed" in p for p in _readme.check(readme))

    readme.write_text(TEXT.replace("results:benchmarks", "results:bench"))
    assert any("unknown section 'bench'" in p for p in _readme.check(readme))

    missing = "results/nowhere/smoke/meta.json"
    readme.write_text(TEXT.replace("old", f"from `{missing}`"))
    assert _readme.check(readme) == [f"section 'benchmarks' names {missing}, which does not exist"]
    assert not (REPO / missing).exists()


def test_the_repository_readme_has_both_sections():
    text = (REPO / "README.md").read_text()
    for name in _readme.SECTIONS:
        assert f"<!-- results:{name} -->" in text and f"<!-- /results:{name} -->" in text
