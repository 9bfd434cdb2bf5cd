"""FSDD preparation: the two documented splits, on the real recordings and on a fake tree."""

import subprocess
import sys
import tarfile

import numpy as np
import pytest
import soundfile as sf

from kaldilite.corpora.fsdd import download_fsdd, prepare_fsdd
from kaldilite.errors import InputError
from kaldilite.io.datadir import DataDir, validate_data_dir


def test_speaker_independent_split_has_the_documented_sizes(fsdd_dir, tmp_path):
    parts = prepare_fsdd(fsdd_dir.parent, tmp_path, "independent")
    train, test = DataDir.load(tmp_path / "train"), DataDir.load(tmp_path / "test")
    assert (len(train.utt2spk), len(test.utt2spk)) == (2000, 1000)
    assert set(train.spk2utt) == {"george", "jackson", "lucas", "nicolas"}
    assert set(test.spk2utt) == {"theo", "yweweler"}
    assert train.text["jackson-7-32"] == "seven"
    assert train.wav_scp["jackson-7-32"].endswith("7_jackson_32.wav")
    assert validate_data_dir(tmp_path / "train", no_feats=True) == []
    assert validate_data_dir(tmp_path / "test", no_feats=True) == []
    assert set(parts) == {"train", "test"}


def test_speaker_dependent_split_tests_on_takes_zero_to_four(fsdd_dir, tmp_path):
    prepare_fsdd(fsdd_dir.parent, tmp_path, "dependent")
    test = DataDir.load(tmp_path / "test")
    train = DataDir.load(tmp_path / "train")
    assert (len(train.utt2spk), len(test.utt2spk)) == (2700, 300)
    assert all(int(u.rsplit("-", 1)[1]) < 5 for u in test.utt2spk)
    assert all(int(u.rsplit("-", 1)[1]) >= 5 for u in train.utt2spk)


def _fake_fsdd(root):
    rec = root / "recordings"
    rec.mkdir(parents=True)
    for speaker in ("george", "theo"):
        for digit in (0, 1):
            for take in range(3):
                sf.write(rec / f"{digit}_{speaker}_{take}.wav", np.zeros(800, dtype=np.int16), 8000, subtype="PCM_16")
    return root


def test_takes_limit_and_archive_source(tmp_path):
    corpus = _fake_fsdd(tmp_path / "free-spoken-digit-dataset-1.0.10")
    archive = tmp_path / "fsdd.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(corpus, arcname=corpus.name)
    root = download_fsdd(tmp_path / "downloads", source=archive)
    assert (root / "recordings" / "0_george_0.wav").exists()
    # A second call with no source finds the completed extraction through its marker.
    assert download_fsdd(tmp_path / "downloads") == root
    prepare_fsdd(root, tmp_path / "data", "independent", train_takes=2, test_takes=1)
    assert sorted(DataDir.load(tmp_path / "data" / "train").utt2spk) == [
        "george-0-00", "george-0-01", "george-1-00", "george-1-01"]
    assert sorted(DataDir.load(tmp_path / "data" / "test").utt2spk) == ["theo-0-00", "theo-1-00"]


def test_folder_without_recordings_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a fsdd folder"):
        download_fsdd(tmp_path / "dl", source=tmp_path)


def test_cli_prints_the_corpus_folder(tmp_path):
    corpus = _fake_fsdd(tmp_path / "fsdd")
    out = subprocess.run([sys.executable, "-m", "kaldilite", "download-fsdd", "--source", str(corpus), str(tmp_path / "dl")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(corpus)
