"""Synthetic espeak-ng corpus: Speech Commands layout, 1 s 16 kHz speech, held-out speakers, deterministic."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from kaldilite.corpora.speech_commands import prepare_speech_commands
from kaldilite.corpora.synthetic import synthesize_corpus, synthetic_speakers

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng not installed (CI installs it via tools/install_system_deps.sh)")


def test_corpus_has_the_layout_and_audio_prepare_expects(tmp_path):
    out = synthesize_corpus(tmp_path / "syn", ["yes", "marvin"], num_speakers=3, takes=1, dev_every=3,
                            num_noise_clips=4, seed=1)
    speakers = synthetic_speakers(3, seed=1)
    for word in ("yes", "marvin"):
        files = sorted((out / word).glob("*.wav"))
        assert [f.name for f in files] == sorted(f"{s[0]}_nohash_0.wav" for s in speakers)
        for path in files:
            wave, rate = sf.read(path, dtype="int16")
            assert rate == 16000 and len(wave) == 16000
            # speech, not just the added noise: the loudest 100 ms is well above the quietest
            frames = np.abs(wave.astype(float)).reshape(10, 1600).mean(axis=1)
            assert frames.max() > 5 * frames.min()
    dev_speaker = speakers[2][0]
    assert (out / "validation_list.txt").read_text().split() == [f"marvin/{dev_speaker}_nohash_0.wav",
                                                                 f"yes/{dev_speaker}_nohash_0.wav"]
    parts = prepare_speech_commands(out, tmp_path / "data", dev_noise_every=2)
    assert set(parts["dev"].speakers) - {"noise00"} == {dev_speaker}
    assert len(parts["train"].utt2spk) == 4 + 2


def test_same_seed_same_audio_other_seed_other_voices(tmp_path):
    a = synthesize_corpus(tmp_path / "a", ["go"], num_speakers=2, takes=1, dev_every=2, num_noise_clips=1, seed=5)
    b = synthesize_corpus(tmp_path / "b", ["go"], num_speakers=2, takes=1, dev_every=2, num_noise_clips=1, seed=5)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.wav"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.wav"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    assert synthetic_speakers(8, seed=5) != synthetic_speakers(8, seed=6)
    voices = {(v, var) for _, v, var, _, _ in synthetic_speakers(20, seed=5)}
    assert len(voices) == 20  # voice/variant pairs are not repeated while unused ones remain


@pytest.mark.parametrize("snrs, message", [
    ("30:loud", "--snrs must be numbers separated by ':' (e.g. 30:20:15:10), not '30:loud'"),
    (":", "--snrs is empty; give e.g. 30:20:15:10"),
])
def test_synthesize_corpus_rejects_bad_snrs_in_one_line_before_synthesizing(tmp_path, snrs, message):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    commands = tmp_path / "commands.txt"
    commands.write_text("yes\n")
    result = CliRunner().invoke(cli, ["synthesize-corpus", "--commands", str(commands), "--snrs", snrs,
                                      str(tmp_path / "syn")])
    assert result.exit_code != 0 and str(result.exception) == message
    assert not (tmp_path / "syn").exists()


def test_synthesize_corpus_passes_the_colon_separated_snrs_as_numbers(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import kaldilite.corpora.synthetic as synthetic
    from kaldilite.cli import cli

    seen = {}
    monkeypatch.setattr(synthetic, "synthesize_corpus", lambda out, words, **kw: seen.update(kw, words=words) or out)
    commands = tmp_path / "commands.txt"
    commands.write_text("yes\nno\n")
    result = CliRunner().invoke(cli, ["synthesize-corpus", "--commands", str(commands), "--snrs", "25:12.5:-3",
                                      str(tmp_path / "syn")])
    assert result.exit_code == 0, result.output
    assert seen["snrs"] == [25.0, 12.5, -3.0] and seen["words"] == ["yes", "no"]


def test_synthesize_corpus_refuses_a_dev_every_that_holds_out_no_speaker_or_every_one(tmp_path):
    # more than --num-speakers wrote an empty validation_list.txt, which prepare-speech-commands then refused;
    # 1 would hold out every speaker (nothing to train on)
    from click.testing import CliRunner

    from kaldilite.cli import cli
    from kaldilite.errors import InputError

    commands = tmp_path / "commands.txt"
    commands.write_text("yes\n")
    result = CliRunner().invoke(cli, ["synthesize-corpus", "--commands", str(commands), "--num-speakers", "2",
                                      "--dev-every", "3", str(tmp_path / "syn")])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == (
        "--dev-every 3 holds out none of --num-speakers 2: validation_list.txt, which prepare-speech-commands needs, "
        "would be empty; give --dev-every 2 or less, or more --num-speakers")
    result = CliRunner().invoke(cli, ["synthesize-corpus", "--commands", str(commands), "--num-speakers", "2",
                                      "--dev-every", "1", str(tmp_path / "syn")])
    assert result.exit_code == 2 and "--dev-every" in result.output and "x>=2" in result.output
    with pytest.raises(InputError, match="^--dev-every 0: every N-th speaker is held out, so N is 1 or more$"):
        synthesize_corpus(tmp_path / "syn", ["yes"], num_speakers=2, dev_every=0)
    assert not (tmp_path / "syn").exists()
