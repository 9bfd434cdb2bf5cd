"""Splitting a data dir we may not write into: the parts go to a private temp dir, the data dir stays untouched.

A data dir is made read-only for real: `chmod a-w` for a normal user; as root (whom permission bits
do not stop) a read-only bind mount in a private mount namespace (`unshare -m`), skipped where that
is not permitted. Independent answers: the parts equal those of Kaldi's place (`DATA/splitN`) in a
writable copy of the same dir, and a `--nj 2` decode equals the `--nj 1` decode, which splits nothing.
"""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kaldilite.io.datadir import split_data_dir, subset_data_dir

KALDILITE = str(Path(sys.executable).with_name("kaldilite"))


def run_with_read_only_dir(data_dir, argv, env):
    """Run argv (a subprocess) while `data_dir` cannot be written to; the CompletedProcess."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [data_dir, *data_dir.iterdir()]}
        for p, mode in modes.items():
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            return subprocess.run(argv, capture_output=True, text=True, env=env)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare(1): cannot make a dir read-only for root")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0"', str(data_dir)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root and a read-only bind mount is not permitted here: {probe.stderr.strip()}")
    script = 'mount --bind -o ro "$0" "$0" && touch "$0/.probe" 2>/dev/null && exit 99; exec "$@"'
    out = subprocess.run(["unshare", "-m", "sh", "-c", script, str(data_dir), *argv],
                         capture_output=True, text=True, env=env)
    assert out.returncode != 99, "the bind mount did not make the data dir read-only"
    return out


def write_data_dir(path):
    path.mkdir(parents=True)
    utts = [(f"{spk}-{k}", spk) for spk in ("s1", "s2", "s3") for k in range(3 if spk != "s2" else 1)]
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (path / "text").write_text("".join(f"{u} word{i}\n" for i, (u, _) in enumerate(utts)))
    (path / "wav.scp").write_text("".join(f"{u} /audio/{u}.wav\n" for u, _ in utts))
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(u for u, t in utts if t == s)}\n"
                                          for s in ("s1", "s2", "s3")))
    return path


def test_a_read_only_data_dir_splits_into_a_private_dir_with_the_parts_kaldis_place_gets(tmp_path):
    data = write_data_dir(tmp_path / "frozen" / "train")
    writable = tmp_path / "copy" / "train"
    shutil.copytree(data, writable)
    expected = split_data_dir(writable, 2)
    assert expected[0] == writable / "split2" / "1"
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    out = run_with_read_only_dir(data, [KALDILITE, "data", "split", str(data), "2"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    parts = [Path(line) for line in out.stdout.split()]
    assert not (data / "split2").exists()
    assert len(parts) == 2 and all(str(p).startswith(str(tmp_path / "tmp")) for p in parts)
    assert "is not writable: splitting it into" in out.stderr
    for part, reference in zip(parts, expected):
        names = sorted(p.name for p in reference.iterdir())
        assert sorted(p.name for p in part.iterdir()) == names
        for name in names:
            assert (part / name).read_text() == (reference / name).read_text()

    mtimes = [(p / "utt2spk").stat().st_mtime_ns for p in parts]
    again = run_with_read_only_dir(data, [KALDILITE, "data", "split", str(data), "2"], env)
    assert [Path(line) for line in again.stdout.split()] == parts  # the private split is found and reused
    assert [(p / "utt2spk").stat().st_mtime_ns for p in parts] == mtimes
    assert "is not writable" not in again.stderr


def test_decode_with_nj_2_reads_a_read_only_data_dir(digits_system, tmp_path):
    data = subset_data_dir(digits_system / "data/test", tmp_path / "test", 8, per_spk=True)
    graph = digits_system / "exp/mono/graph"
    env = dict(os.environ, TMPDIR=str(tmp_path), OPENBLAS_NUM_THREADS="1")
    single = subprocess.run([KALDILITE, "decode", "--nj", "1", str(graph), str(data), str(tmp_path / "dec1")],
                            capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr

    out = run_with_read_only_dir(data, [KALDILITE, "decode", "--nj", "2", str(graph), str(data),
                                        str(tmp_path / "dec2")], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not (data / "split2").exists()
    hyps = (tmp_path / "dec2/hyp.txt").read_text()
    assert len(hyps.splitlines()) == 16 and hyps == (tmp_path / "dec1/hyp.txt").read_text()


def test_chmod_a_w_freezes_a_data_dir_for_root_too(tmp_path, monkeypatch):
    """Permission bits do not stop root; a dir without any write bit is still taken as frozen."""
    import tempfile

    data = write_data_dir(tmp_path / "frozen" / "train")
    reference = split_data_dir(shutil.copytree(data, tmp_path / "copy" / "train"), 2)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    data.chmod(0o555)
    try:
        parts = split_data_dir(data, 2)
    finally:
        data.chmod(0o755)
    assert sorted(p.name for p in data.iterdir()) == ["spk2utt", "text", "utt2spk", "wav.scp"]
    assert str(parts[0]).startswith(str(tmp_path / "tmp")) and [p.name for p in parts] == ["1", "2"]
    for part, expected in zip(parts, reference):
        assert (part / "utt2spk").read_text() == (expected / "utt2spk").read_text()
