"""The benches' default pause noise (bench/online.py's helpers; bench/online_stream.py pauses with them): the
work dir's noise clips no model trained on.

A hand-made work dir as the commands recipe's stage 0 lays it out: data/noise_train (the clips the
models trained on), data/noise_dev (dev's !SIL clips) and, for a held-out-speaker slice, data/heldout
(held-out words and the held-out noise pseudo-speakers' !SIL clips). Each clip is a constant signal of
its own level, so the clips the bench would pause with are identified by their samples: exactly
noise_dev's and heldout's !SIL ones, none of noise_train's (`--quiet`: those below the peak of 1000).
A work dir whose noise_dev shares a clip with noise_train, or has none, is refused; the same audio is found
however its path is spelled (relative with '..', a symlinked folder, a pipe over it, a byte copy), in a
training dir's utt2noise too, and by time within a recording (segments); a dir with segments pauses on its
!SIL segments; without noise_train and utt2noise one line says the check could not run."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import online as bench  # noqa: E402

RATE = 16000


def _data_dir(path, clips, text=None):
    """A data dir of `clips` {utt: level}: each a 0.1 s wav of constant `level` (16-bit units)."""
    import soundfile as sf

    path.mkdir(parents=True)
    for utt, level in clips.items():
        sf.write(path / f"{utt}.wav", np.full(RATE // 10, level, np.int16), RATE, subtype="PCM_16")
    (path / "wav.scp").write_text("".join(f"{u} {path / u}.wav\n" for u in sorted(clips)))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(clips)))
    if text is not None:
        (path / "text").write_text("".join(f"{u} {text[u]}\n" for u in sorted(clips)))


def _levels(clips):
    levels = []
    for clip in clips:
        assert np.all(clip == clip[0])  # (read back whole, unscaled)
        levels.append(int(clip[0]))
    return sorted(levels)


def _work(tmp_path, heldout=False):
    work = tmp_path / "work"
    _data_dir(work / "data/noise_train", {"noise00-silence-a": 100, "noise00-silence-b": 2000})
    _data_dir(work / "data/noise_dev", {"noise00-silence-c": 300, "noise00-silence-d": 4000})
    if heldout:
        _data_dir(work / "data/heldout", {"noise01-silence-e": 500, "s1-yes-00": 600, "s1-wow-00": 6000},
                  text={"noise01-silence-e": "!SIL", "s1-yes-00": "yes", "s1-wow-00": "<UNK>"})
    return work


def test_the_default_noise_is_the_clips_no_model_trained_on(tmp_path):
    work = _work(tmp_path)
    dirs = bench.default_noise_dirs(work)
    assert dirs == [work / "data/noise_dev"]
    assert _levels(bench.noise_clips(dirs, RATE, quiet=False)) == [300, 4000]
    assert _levels(bench.noise_clips(dirs, RATE, quiet=True)) == [300]
    assert bench.noise_description(dirs, 1, True, False) == \
        f"the 1 quiet !SIL clips of {work / 'data/noise_dev'} (no model trained on them)"
    # a held-out-speaker slice's work dir: the held-out noise pseudo-speakers' clips too, not their words
    work = _work(tmp_path / "slice", heldout=True)
    dirs = bench.default_noise_dirs(work)
    assert dirs == [work / "data/noise_dev", work / "data/heldout"]
    assert _levels(bench.noise_clips(dirs, RATE, quiet=False)) == [300, 500, 4000]
    # --noise-dir as given (noise_train included, if asked): the header says so
    asked = [work / "data/noise_train"]
    assert _levels(bench.noise_clips(asked, RATE, quiet=False)) == [100, 2000]
    assert bench.noise_description(asked, 2, False, True).endswith("(as --noise-dir asks)")


def test_a_work_dir_whose_unseen_noise_was_trained_on_or_missing_is_refused(tmp_path):
    work = _work(tmp_path)
    trained = (work / "data/noise_train/wav.scp").read_text().splitlines()[0].split()[1]
    with open(work / "data/noise_dev/wav.scp", "a") as handle:
        handle.write(f"noise00-silence-z {trained}\n")
    with pytest.raises(SystemExit, match=r"noise_dev: noise clip noise00-silence-z \(1 in all\) is the audio of "
                                         r"noise00-silence-a of .*noise_train, which the models trained on"):
        bench.default_noise_dirs(work)
    with pytest.raises(SystemExit, match="noise_dev: missing .* pass --noise-dir DIR"):
        bench.default_noise_dirs(tmp_path / "no_work")


def _refusal(work):
    with pytest.raises(SystemExit) as info:
        bench.default_noise_dirs(work)
    return str(info.value)


def test_the_same_audio_is_found_however_its_path_is_spelled_and_in_the_training_dirs_utt2noise(tmp_path, capsys):
    # the check compared wav.scp's text: another spelling, a symlink, a pipe or a copy of a trained clip passed
    import shutil

    for name in ("relative", "symlink", "pipe", "copy"):
        work = _work(tmp_path / name)
        trained = work / "data/noise_train/noise00-silence-a.wav"
        if name == "symlink":
            (tmp_path / name / "linked").symlink_to(trained.parent)
        if name == "copy":
            shutil.copy(trained, tmp_path / name / "copy.wav")
        spec = {"relative": "data/noise_train/../noise_train/noise00-silence-a.wav",  # from the work dir
                "symlink": f"{tmp_path / name / 'linked' / trained.name}",
                "pipe": f"sox {trained} -t wav - speed 1.1 |", "copy": f"{tmp_path / name / 'copy.wav'}"}[name]
        with open(work / "data/noise_dev/wav.scp", "a") as handle:
            handle.write(f"noise00-silence-z {spec}\n")
        assert "noise clip noise00-silence-z (1 in all) is the audio of noise00-silence-a of" in _refusal(work), name
    # the noise mixed into a training dir (add-noise-data-dir's utt2noise), with or without noise_train
    work = _work(tmp_path / "mixed")
    dev_clip = work / "data/noise_dev/noise00-silence-d.wav"
    (work / "data/train_noise").mkdir(parents=True)
    (work / "data/train_noise/utt2noise").write_text(f"noise-s1-yes-00 {dev_clip} 1234 10\n")
    assert _refusal(work).endswith(f"noise clip noise00-silence-d (1 in all) is the audio of the noise of "
                                   f"noise-s1-yes-00 in {work / 'data/train_noise/utt2noise'}, which the models "
                                   f"trained on; rebuild the work dir's stage 0 or pass --noise-dir DIR")
    shutil.rmtree(work / "data/noise_train")
    assert "noise00-silence-d (1 in all)" in _refusal(work)
    # neither: the check cannot run, and says so in one line
    (work / "data/train_noise/utt2noise").unlink()
    capsys.readouterr()
    assert bench.default_noise_dirs(work) == [work / "data/noise_dev"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not be checked" in err
    assert err.startswith(f"{work / 'data'}: no noise_train and no train*/utt2noise, so whether the models trained on")


def test_noise_clips_of_a_dir_with_segments_are_its_silence_segments_and_overlap_is_by_time(tmp_path):
    import soundfile as sf

    work = _work(tmp_path)
    dev = work / "data/noise_dev"
    # one 0.3 s recording: 0.1 s at 700, 0.1 s at 800, 0.1 s at 900; three segments, the middle one a word
    sf.write(dev / "rec.wav", np.repeat(np.array([700, 800, 900], np.int16), RATE // 10), RATE, subtype="PCM_16")
    (dev / "wav.scp").write_text(f"rec {dev / 'rec.wav'}\n")
    (dev / "segments").write_text("noise00-silence-x rec 0.0 0.1\nnoise00-silence-y rec 0.2 0.3\n"
                                  "s1-yes-0 rec 0.1 0.2\n")
    (dev / "utt2spk").write_text("noise00-silence-x noise00\nnoise00-silence-y noise00\ns1-yes-0 s1\n")
    (dev / "text").write_text("noise00-silence-x !SIL\nnoise00-silence-y !SIL\ns1-yes-0 yes\n")
    assert _levels(bench.noise_clips([dev], RATE, quiet=False)) == [700, 900]
    assert bench.default_noise_dirs(work) == [dev]
    # noise_train trained on the recording's first 0.15 s: x (0-0.1) overlaps it, y (0.2-0.3) does not
    train = work / "data/noise_train"
    (train / "wav.scp").write_text(f"rec {dev / 'rec.wav'}\n")
    (train / "segments").write_text("noise00-silence-t rec 0.0 0.15\n")
    (train / "utt2spk").write_text("noise00-silence-t noise00\n")
    assert "noise clip noise00-silence-x (1 in all) is the audio of noise00-silence-t of" in _refusal(work)
    (train / "segments").write_text("noise00-silence-t rec 0.1 0.2\n")  # the word's time only: not a !SIL clip's
    assert bench.default_noise_dirs(work) == [dev]


def _corpus_noise(root, levels):
    """A Speech Commands corpus under `root` (KALDILITE_DATA) whose _background_noise_ holds 1 s clips of
    constant `levels`, named in their order."""
    import soundfile as sf

    folder = root / "speech_commands/_background_noise_"
    folder.mkdir(parents=True)
    for k, level in enumerate(levels):
        sf.write(folder / f"{k:04d}.wav", np.full(RATE, level, np.int16), RATE, subtype="PCM_16")


def test_a_work_dir_without_a_noise_split_pauses_on_the_clips_the_commands_recipe_holds_out(tmp_path, monkeypatch):
    # the digits recipe's work dir: no data/noise_*; the corpus's every 5th clip (stage 0's noise_dev) is used
    monkeypatch.setenv("KALDILITE_DATA", str(tmp_path / "shared"))
    _corpus_noise(tmp_path / "shared", [100 * (k + 1) for k in range(10)])  # clips 4 and 9: 500 and 1000
    digits = tmp_path / "digits_work"
    (digits / "data/train").mkdir(parents=True)
    clips, words = bench.unseen_noise(digits, RATE, quiet=False)
    assert _levels(clips) == [500, 1000]
    assert words.startswith("the 2 clips of ") and "puts in data/noise_dev (no commands model trained on them" in words
    clips, words = bench.unseen_noise(digits, RATE, quiet=True)
    assert _levels(clips) == [500] and words.startswith("the 1 quiet clips")
    # a commands work dir: its own split, checked as before; a broken split (noise_train only) is refused
    work = _work(tmp_path)
    clips, words = bench.unseen_noise(work, RATE, quiet=False)
    assert _levels(clips) == [300, 4000] and words.endswith("(no model trained on them)")
    clips, words = bench.unseen_noise(work, RATE, quiet=False, noise_dirs=[work / "data/noise_train"])
    assert _levels(clips) == [100, 2000] and words.endswith("(as --noise-dir asks)")
    import shutil

    shutil.rmtree(work / "data/noise_dev")
    with pytest.raises(SystemExit, match="noise_dev: missing"):
        bench.unseen_noise(work, RATE, quiet=False)
    monkeypatch.setenv("KALDILITE_DATA", str(tmp_path / "nowhere"))
    assert bench.unseen_noise(digits, RATE, quiet=False) == ([], "no Speech Commands corpus here: Gaussian noise")


def test_a_pause_longer_than_its_clip_runs_on_without_a_step():
    # a 1 s clip of a slow sine that does not end where it starts: looped plainly, it jumps at 1 s
    clip = 8000 * np.sin(2 * np.pi * 2.25 * np.arange(RATE) / RATE)  # ends at its peak, starts at 0
    pause = bench.pause_noise(clip, int(1.5 * RATE), RATE)
    fade = int(bench.PAUSE_CROSSFADE_SECONDS * RATE)
    assert np.array_equal(pause[:RATE - fade], clip[:RATE - fade])
    slope = np.abs(np.diff(clip)).max()
    assert np.abs(np.diff(np.resize(clip, len(pause)))).max() > 100 * slope
    assert np.abs(np.diff(pause)).max() < 1.5 * slope


def test_the_stream_refuses_clips_at_another_rate_or_without_words(tmp_path):
    import online_stream
    from kaldilite.io.datadir import DataDir

    words = {"s1-yes-00": "yes", "s1-no-00": "no", "noise00-silence-a": "!SIL"}
    _data_dir(tmp_path / "ok", dict.fromkeys(words, 100), text=words)
    assert online_stream.stream_clips(DataDir.load(tmp_path / "ok"), tmp_path / "ok", RATE, "B") == \
        {"s1": ["s1-no-00", "s1-yes-00"]}
    with pytest.raises(SystemExit, match=r"s1-no-00.wav \(s1-no-00 of .*ok/wav.scp\): 16000 Hz, but the bundle B "
                                         r"decodes 8000 Hz audio; give --data a data dir at 8000 Hz"):
        online_stream.stream_clips(DataDir.load(tmp_path / "ok"), tmp_path / "ok", 8000, "B")
    _data_dir(tmp_path / "bare", dict.fromkeys(words, 100))
    with pytest.raises(SystemExit, match=r"bare/text: missing; the stream bench scores each clip against its words"):
        online_stream.stream_clips(DataDir.load(tmp_path / "bare"), tmp_path / "bare", RATE, "B")
