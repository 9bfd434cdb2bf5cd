"""bench/_report.py update_section on a temporary BENCHMARKS.md: a bench's re-run replaces its own section
and nothing else, and a hand-written reading between `<!-- reading -->` markers survives it."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _report  # noqa: E402

READING = "<!-- reading -->\nReading. Accuracy rose by 2 points;\nsee issue 7.\n<!-- /reading -->"
OTHER = "<!-- bench:other -->\n## Other\n\n| a | 1 |\n<!-- /bench:other -->"


@pytest.fixture
def benchmarks(tmp_path, monkeypatch):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n<!-- bench:slice -->\n## Slice\n\n| acc | 80.1 |\n\n{READING}\n"
                    f"<!-- /bench:slice -->\n\n{OTHER}\n")
    monkeypatch.setattr(_report, "BENCHMARKS", path)
    return path


def test_a_rerun_keeps_the_reading_after_the_new_figures_and_leaves_other_sections_alone(benchmarks):
    _report.update_section("slice", "## Slice\n\n| acc | 82.4 |\n")
    assert benchmarks.read_text() == (f"# Benchmarks\n\n<!-- bench:slice -->\n## Slice\n\n| acc | 82.4 |\n\n{READING}\n"
                                      f"<!-- /bench:slice -->\n\n{OTHER}\n")
    _report.update_section("slice", "## Slice\n\n| acc | 83.0 |")  # and again: one copy, not two
    text = benchmarks.read_text()
    assert text.count(READING) == 1 and "82.4" not in text and "| acc | 83.0 |\n\n" + READING in text


def test_a_bench_writing_its_own_reading_replaces_the_old_one(benchmarks):
    own = "<!-- reading -->\nReading, by the bench.\n<!-- /reading -->"
    _report.update_section("slice", f"## Slice\n\n| acc | 82.4 |\n\n{own}")
    text = benchmarks.read_text()
    assert own in text and "issue 7" not in text


def test_a_section_without_reading_and_a_new_section(benchmarks):
    _report.update_section("other", "## Other\n\n| a | 2 |")
    _report.update_section("new", "## New\n\n| b | 3 |")
    text = benchmarks.read_text()
    assert "<!-- bench:other -->\n## Other\n\n| a | 2 |\n<!-- /bench:other -->" in text
    assert text.endswith("<!-- /bench:other -->\n\n<!-- bench:new -->\n## New\n\n| b | 3 |\n<!-- /bench:new -->\n")
    assert text.count(READING) == 1  # the slice section's reading stays where it was
