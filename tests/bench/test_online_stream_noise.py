"""bench/online_stream.py's default pause noise: the work dir's noise clips no model trained on.

A hand-made work dir as the commands recipe's stage 0 lays it out: data/noise_train (the clips the
models trained on), data/noise_dev (dev's !SIL clips) and, for a held-out-speaker slice, data/heldout
(held-out words and the held-out noise pseudo-speakers' !SIL clips). Each clip is a constant signal of
its own level, so the clips the bench would pause with are identified by their samples: exactly
noise_dev's and heldout's !SIL ones, none of noise_train's (`--quiet`: those below the peak of 1000).
A work dir whose noise_dev shares a clip with noise_train, or has none, is refused."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import online_stream as bench  # noqa: E402

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
    with pytest.raises(SystemExit, match=r"noise_dev: noise clip noise00-silence-z \(1 in all\) is also in .*"
                                         r"noise_train, which the models trained on"):
        bench.default_noise_dirs(work)
    with pytest.raises(SystemExit, match="noise_dev: missing .* pass --noise-dir DIR"):
        bench.default_noise_dirs(tmp_path / "no_work")
