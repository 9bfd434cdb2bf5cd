"""Speech Commands preparation: splits by validation_list.txt, ids, <UNK>, duplicates, noise as !SIL."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from kaldilite.corpora.speech_commands import prepare_speech_commands, split_noise_clips
from kaldilite.errors import InputError
from kaldilite.io.audio import read_audio
from kaldilite.io.datadir import DataDir, validate_data_dir


def _wav(path, rng, seconds=1.0, scale=1000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (scale * rng.standard_normal(int(16000 * seconds))).astype(np.int16), 16000, subtype="PCM_16")


def _fake_corpus(root, rng):
    for word in ("yes", "no", "marvin", "backward"):
        for speaker in ("aaaa0001", "bbbb0002", "cccc0003"):
            _wav(root / word / f"{speaker}_nohash_0.wav", rng)
    _wav(root / "yes" / "aaaa0001_nohash_1.wav", rng)
    shutil.copy(root / "yes" / "aaaa0001_nohash_0.wav", root / "yes" / "aaaa0001_nohash_2.wav")  # a repeated take
    for k in range(7):
        _wav(root / "_background_noise_" / f"{k}.wav", rng, scale=50)
    _wav(root / "_background_noise_" / "long_noise.wav", rng, seconds=3.2, scale=50)
    (root / "validation_list.txt").write_text("".join(f"{w}/cccc0003_nohash_0.wav\n"
                                                      for w in ("yes", "no", "marvin", "backward")))
    (root / "README.md").write_text("not a word folder\n")


def test_fake_tree_splits_by_validation_list(tmp_path, rng):
    _fake_corpus(tmp_path / "sc", rng)
    parts = prepare_speech_commands(tmp_path / "sc", tmp_path / "data",
                                    lexicon_words={"yes", "no", "marvin", "!SIL"}, dev_noise_every=5)
    train, dev = parts["train"], parts["dev"]
    speech_train = {u: t for u, t in train.text.items() if not u.startswith("noise")}
    speech_dev = {u: t for u, t in dev.text.items() if not u.startswith("noise")}
    assert set(speech_dev) == {"cccc0003-yes-00", "cccc0003-no-00", "cccc0003-marvin-00", "cccc0003-backward-00"}
    # 2 speakers x 4 words + one extra take; the byte-identical take 2 is dropped
    assert len(speech_train) == 9 and "aaaa0001-yes-02" not in speech_train
    assert speech_train["aaaa0001-yes-01"] == "yes"
    assert speech_train["bbbb0002-backward-00"] == "<UNK>" and speech_dev["cccc0003-marvin-00"] == "marvin"
    # 7 one-second clips + the 3.2 s file cut into 3 chunks = 10 noise utterances; every 5th is dev
    noise_train = {u: t for u, t in train.text.items() if u.startswith("noise")}
    noise_dev = {u: t for u, t in dev.text.items() if u.startswith("noise")}
    assert (len(noise_train), len(noise_dev)) == (8, 2)
    assert set(noise_train.values()) == {"!SIL"} == set(noise_dev.values())
    chunks = [spec for u, spec in {**train.wav_scp, **dev.wav_scp}.items() if "long_noise" in u]
    assert len(chunks) == 3 and all("trim" in spec and spec.endswith("|") for spec in chunks)
    if shutil.which("sox"):
        assert len(read_audio(chunks[0])) == 16000
    assert set(DataDir.load(tmp_path / "data" / "noise_train").utt2spk) == set(noise_train)
    # the split on its own (what bench/online.py pads with when a work dir has no noise_dev): the same clips
    split = split_noise_clips(tmp_path / "sc", 5)
    for part in ("train", "dev"):
        written = DataDir.load(tmp_path / "data" / f"noise_{part}").wav_scp.values()
        assert sorted(spec for _, spec in split[part]) == sorted(written)
    for part in ("train", "dev"):
        assert validate_data_dir(tmp_path / "data" / part, no_feats=True, no_wav=True) == []
    assert set(train.speakers) & set(dev.speakers) <= {s for s in train.speakers if s.startswith("noise")}


def test_quick_subset_keeps_speakers_with_fillers_first(tmp_path, rng):
    _fake_corpus(tmp_path / "sc", rng)
    (tmp_path / "sc" / "marvin" / "aaaa0001_nohash_0.wav").unlink()
    parts = prepare_speech_commands(tmp_path / "sc", tmp_path / "data", speakers_per_part=1, silence=False)
    # both train speakers said 'backward' (a non-command); the first in sorted order is kept
    assert parts["train"].speakers == ["aaaa0001"]


def test_missing_validation_list_is_one_clear_error(tmp_path, rng):
    _wav(tmp_path / "sc" / "yes" / "aaaa0001_nohash_0.wav", rng)
    with pytest.raises(InputError, match="validation_list.txt"):
        prepare_speech_commands(tmp_path / "sc", tmp_path / "data")


def test_shared_subset_has_the_documented_split(speech_commands_dir, tmp_path):
    parts = prepare_speech_commands(speech_commands_dir, tmp_path)
    train, dev = parts["train"], parts["dev"]
    speakers = lambda d: {s for s in d.speakers if not s.startswith("noise")}  # noqa: E731
    assert (len(speakers(train)), len(speakers(dev))) == (124, 25)
    assert not speakers(train) & speakers(dev)
    words = lambda d: [t for u, t in d.text.items() if not u.startswith("noise")]  # noqa: E731
    # README: 2014 train + 390 dev files, of which 62 are repeated takes (41 train, 21 dev)
    assert (len(words(train)), len(words(dev))) == (2014 - 41, 390 - 21)
    # README: 189 noise clips, every 5th to dev
    assert sum(t == "!SIL" for t in train.text.values()) == 189 - 189 // 5
    assert sum(t == "!SIL" for t in dev.text.values()) == 189 // 5
    assert validate_data_dir(tmp_path / "dev", no_feats=True) == []


def test_heldout_speakers_leave_train_and_noise_train(tmp_path, rng):
    _fake_corpus(tmp_path / "sc", rng)
    for k in range(7, 13):  # 13 one-second clips + 3 chunks = 16; dev takes every 5th: noise00 (10) + noise01 (3)
        _wav(tmp_path / "sc" / "_background_noise_" / f"{k}.wav", rng, scale=50)
    full = prepare_speech_commands(tmp_path / "sc", tmp_path / "full")
    assert full["train"].speakers == ["aaaa0001", "bbbb0002", "noise00", "noise01"]
    listing = tmp_path / "heldout.txt"
    listing.write_text("bbbb0002\nnoise01\n")
    parts = prepare_speech_commands(tmp_path / "sc", tmp_path / "data", heldout_speakers=listing)
    # the split by hand from the full preparation: every utterance of the two speakers moves, nothing else changes
    moved = {u for u, s in full["train"].utt2spk.items() if s in ("bbbb0002", "noise01")}
    assert len(moved) == 4 + 3
    assert parts["heldout"].utt2spk == {u: full["train"].utt2spk[u] for u in sorted(moved)}
    assert parts["train"].utt2spk == {u: s for u, s in full["train"].utt2spk.items() if u not in moved}
    assert parts["train"].wav_scp == {u: w for u, w in full["train"].wav_scp.items() if u not in moved}
    assert parts["dev"].utt2spk == full["dev"].utt2spk
    noise_train = DataDir.load(tmp_path / "data" / "noise_train").wav_scp
    assert noise_train == {u: w for u, w in DataDir.load(tmp_path / "full" / "noise_train").wav_scp.items()
                           if u not in moved} and len(noise_train) == 10
    assert not (tmp_path / "data" / "noise_heldout").exists()
    for part in ("train", "heldout"):
        assert validate_data_dir(tmp_path / "data" / part, no_feats=True, no_wav=True) == []


@pytest.mark.parametrize("ids, line", [("aaaa0001\ncccc0003\n", 2), ("aaaa0001\nnoise07\n", 2), ("zzzz\n", 1)])
def test_heldout_speaker_not_in_train_is_one_error_at_its_line(tmp_path, rng, ids, line):
    _fake_corpus(tmp_path / "sc", rng)
    listing = tmp_path / "heldout.txt"
    listing.write_text(ids)
    with pytest.raises(InputError, match=rf"heldout.txt:{line}: \S+ is not a training speaker"):
        prepare_speech_commands(tmp_path / "sc", tmp_path / "data", heldout_speakers=listing)
    assert not (tmp_path / "data").exists()  # refused before anything is written
