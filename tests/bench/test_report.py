"""bench/_report.py update_section on a temporary BENCHMARKS.md: a bench's re-run replaces its own section
and nothing else, and a hand-written reading between `<!-- reading -->` markers survives it."""

import contextlib
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


def _slice(tmp_path):
    """A small data dir: 3 speakers' clips of two commands and a filler."""
    data = tmp_path / "slice"
    data.mkdir()
    utts = {f"spk{s}-{w}-0": w for s in range(3) for w in ("up", "down", "cat")}
    (data / "text").write_text("".join(f"{u} {w}\n" for u, w in sorted(utts.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u[:4]}\n" for u in sorted(utts)))
    (data / "wav.scp").write_text("".join(f"{u} /audio/{u}.wav\n" for u in sorted(utts)))
    return data


def _contents(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_timing_bench_writes_its_section_only_from_a_quiet_machine(benchmarks, capsys):
    before = benchmarks.read_text()
    assert not _report.update_section_if_quiet("other", "## Other\n\n| a | 9 |", load_before=1.5)
    assert benchmarks.read_text() == before and "load average 1.5" in capsys.readouterr().out
    assert _report.update_section_if_quiet("other", "## Other\n\n| a | 9 |", load_before=0.3)
    assert "| a | 9 |" in benchmarks.read_text() and "| a | 1 |" not in benchmarks.read_text()


def test_heldout_commands_dir_is_rewritten_only_when_its_content_changes_and_then_whole(tmp_path):
    data, dest = _slice(tmp_path), tmp_path / "out/data/heldout_commands"
    _report.heldout_commands_dir(data, ["up", "down"], dest)
    assert _contents(dest)["text"] == "".join(f"spk{s}-{w}-0 heldout_{w}\n" for s in range(3) for w in ("down", "up"))
    assert _contents(dest)["utt2spk"].count("\n") == 6
    inode = (dest / "text").stat().st_ino
    (dest / "split2").mkdir()  # what a decode of it leaves
    _report.heldout_commands_dir(data, ["down", "up"], dest)  # the same content: not touched
    assert (dest / "text").stat().st_ino == inode and (dest / "split2").is_dir()
    _report.heldout_commands_dir(data, ["up"], dest)  # another command list: replaced whole, nothing stale kept
    assert _contents(dest)["text"] == "".join(f"spk{s}-up-0 heldout_up\n" for s in range(3))
    assert not (dest / "split2").exists()
    assert [p.name for p in dest.parent.iterdir()] == ["heldout_commands"]  # no temporary left beside it


def test_a_run_that_finds_its_dir_written_meanwhile_by_another_keeps_it_if_equal_else_says_so(tmp_path, monkeypatch):
    """Two runs sharing --out: the second one's rename finds the first one's dir. Equal to its own: no error;
    another content (another slice in the same --out): one line saying so, the first run's dir left whole."""
    import kaldilite.utils.atomic

    data, dest = _slice(tmp_path), tmp_path / "out/data/heldout_up"
    real = kaldilite.utils.atomic.atomic_dir
    rival = []

    @contextlib.contextmanager
    def racing(path, owned=()):
        with real(path, owned) as new:
            if rival:  # the other run finishes while this one fills its new dir
                _report.write_data_subset(data, path, rival.pop())
            yield new

    monkeypatch.setattr(kaldilite.utils.atomic, "atomic_dir", racing)
    rival.append(["spk0-up-0", "spk1-up-0"])
    _report.write_data_subset(data, dest, ["spk0-up-0", "spk1-up-0"])
    assert not rival and _contents(dest)["utt2spk"] == "spk0-up-0 spk0\nspk1-up-0 spk1\n"
    dest = tmp_path / "out/data/heldout_down"
    rival.append(["spk2-down-0"])
    with pytest.raises(RuntimeError, match=r"heldout_down: another run wrote it meanwhile with another content"):
        _report.write_data_subset(data, dest, ["spk0-down-0"])
    assert _contents(dest)["utt2spk"] == "spk2-down-0 spk2\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["heldout_down", "heldout_up"]  # no temporaries left


def test_modules_at_loads_a_revision_whose_modules_import_each_other_and_today_s_kaldilite_for_the_rest():
    import subprocess

    import numpy as np

    import kaldilite.corpora.rir as rir
    import kaldilite.io.datadir as datadir

    old = _report.modules_at("HEAD", "corpora", ["rir", "augment"], "old_corpora_test")
    assert sys.modules["old_corpora_test.augment"] is old.augment
    source = subprocess.run(["git", "-C", str(Path(_report.__file__).parents[1]), "show",
                             "HEAD:kaldilite/corpora/augment.py"], check=True, capture_output=True, text=True).stdout
    assert Path(old.augment.__file__).read_text() == source.replace("kaldilite.corpora.rir import",
                                                                    "old_corpora_test.rir import")
    # augment's `from kaldilite.corpora.rir import ...` now names the old copy; io.datadir stays today's
    assert old.augment.reverberate is old.rir.reverberate is not rir.reverberate
    assert old.augment.read_key_values is datadir.read_key_values
    signal = np.arange(5.0)
    assert np.array_equal(old.rir.loop_to_length(signal, 12), rir.loop_to_length(signal, 12))
    with pytest.raises(subprocess.CalledProcessError):  # git show: no such file at the revision
        _report.modules_at("HEAD", "corpora", ["no_such_module"], "old_corpora_missing")


def test_modules_at_compiles_and_runs_an_old_revision_s_numba_cache_true_kernel():
    import numpy as np

    from kaldilite.nnet import updates

    # 6b7597b: updates._apply_step (njit, cache=True) had its factor-1 branch, gone since 236d4bd; numba
    # refuses cache=True for code without a source file, so this load needs the old module on disk
    old = _report.modules_at("6b7597b", "nnet", ["updates"], "old_nnet_updates_test").updates
    assert "if factor == 1.0:" in Path(old.__file__).read_text()
    assert old._apply_step is not updates._apply_step
    step = np.array([0.1, 0.2, -0.3, 1e-9])
    for factor in (1.0, 0.5):
        param = np.array([1.0, -2.0, 3.0, 1.0], np.float32)
        old._apply_step(param, step, factor)
        # the kernel's rule worked by hand: param + float32(step * factor), in float32
        assert param.tolist() == (np.array([1.0, -2.0, 3.0, 1.0], np.float32)
                                  + (step * factor).astype(np.float32)).tolist()
    assert old._apply_step.signatures  # compiled, with numba's cache in the copy's folder
    assert Path(old._apply_step._cache._cache_path).parent == Path(old.__file__).parent


def test_modules_at_keeps_the_old_kernels_cache_in_its_temporary_copy_under_numba_cache_dir(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR set (kaldilite.precompile's docstring: a read-only install), numba would cache the
    copies' kernels in NUMBA_CACHE_DIR/AS_NAME_<hash of the temporary dir>: a new folder each bench run, never
    removed. They stay in the copy's __pycache__, removed with it; today's kernels still use NUMBA_CACHE_DIR."""
    import numpy as np
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    old = _report.modules_at("6b7597b", "nnet", ["updates"], "old_nnet_updates_cache_dir_test").updates
    param = np.array([1.0, -2.0], np.float32)
    old._apply_step(param, np.array([0.5, 0.25]), 0.5)
    assert param.tolist() == [1.25, -1.875]  # param + float32(step * factor), by hand
    assert Path(old._apply_step._cache._cache_path).parent == Path(old.__file__).parent
    assert list(tmp_path.iterdir()) == []
    assert config.CACHE_DIR == str(tmp_path)
