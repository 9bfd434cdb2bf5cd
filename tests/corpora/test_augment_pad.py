"""add-noise-data-dir --pad-range: noise-only pauses around the word, hand-checked.

The speech is a 16 kHz tone of known power and the noise a +-1000 square wave, whose mean power is 1e6
over any stretch of whole periods, so the scale an SNR asks for is known by hand: the pause samples
must be +-1000 * sqrt(P_speech / 1e6 * 10^(-SNR/10)) after int16 rounding, the samples under the word
exactly the unpadded copy's (same clip, offset and SNR drawn), and the pauses whole 10 ms frames of
the drawn lengths, listed in utt2pad and counted in utt2dur.
"""

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.corpora.augment import add_noise_data_dir, pad_noise
from kaldilite.errors import InputError
from kaldilite.io.datadir import DataDir, read_key_values, validate_data_dir

RATE = 16000
AMPLITUDE = 8000.0  # the tone's; its mean power over whole periods is AMPLITUDE**2 / 2
PERIOD = 80  # samples: the square wave's (and the 200 Hz tone's)


def _setup(root, lengths=(16000, 12000, 8000)):
    (root / "audio").mkdir(parents=True)
    (root / "noise").mkdir()
    square = np.where(np.arange(40 * PERIOD) % PERIOD < PERIOD // 2, 1000, -1000).astype(np.int16)
    sf.write(root / "noise" / "square.wav", square, RATE, subtype="PCM_16")
    wav_scp, text, utt2spk = {}, {}, {}
    for i, length in enumerate(lengths):
        wave = AMPLITUDE * np.sin(2 * np.pi * np.arange(length) / PERIOD)
        path = root / "audio" / f"{i}.wav"
        sf.write(path, np.round(wave).astype(np.int16), RATE, subtype="PCM_16")
        utt = f"spk{i}-utt{i}"
        wav_scp[utt], text[utt], utt2spk[utt] = str(path), f"word{i}", f"spk{i}"
    DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk).save(root / "data")
    return root / "data", root / "noise"


def _read(path):
    return sf.read(path, dtype="int16")[0].astype(np.int64)


def test_pauses_are_the_noise_at_its_level_and_the_word_is_the_unpadded_copy(tmp_path):
    src, noise = _setup(tmp_path)
    plain = add_noise_data_dir(src, tmp_path / "noise_copy", noise, snrs=(10.0, 20.0), utt_prefix="noise")
    padded = add_noise_data_dir(src, tmp_path / "pad_copy", noise, snrs=(10.0, 20.0), utt_prefix="pad-noise",
                                pad_range=(0.2, 1.5), pad_probability=1.0)
    assert validate_data_dir(padded, no_feats=True) == []
    plain_noise, pad_noise_used = read_key_values(plain / "utt2noise"), read_key_values(padded / "utt2noise")
    pads, durs = read_key_values(padded / "utt2pad"), read_key_values(padded / "utt2dur")
    wavs, plain_wavs = read_key_values(padded / "wav.scp"), read_key_values(plain / "wav.scp")
    assert read_key_values(padded / "text") == {"pad-noise-" + u: t for u, t in read_key_values(src / "text").items()}
    assert read_key_values(padded / "utt2uniq") == {"pad-noise-" + u: u for u in read_key_values(src / "text")}
    for utt, wav in sorted(wavs.items()):
        source = "noise-" + utt[len("pad-noise-"):]
        assert pad_noise_used[utt] == plain_noise[source]  # the same clip, offset and SNR as without pauses
        snr = float(pad_noise_used[utt].split()[2])
        before, after = (float(x) for x in pads[utt].split())
        for seconds in (before, after):
            assert 0.2 <= seconds <= 1.5
            assert abs(seconds * 100 - round(seconds * 100)) < 1e-9  # whole 10 ms frames
        b, a = int(round(before * RATE)), int(round(after * RATE))
        audio, word = _read(wav), _read(plain_wavs[source])
        assert len(audio) == b + len(word) + a
        assert float(durs[utt]) == pytest.approx(len(audio) / RATE, abs=1e-3)
        assert np.array_equal(audio[b:b + len(word)], word)  # sample for sample the unpadded copy
        # the pauses: the square wave at the scale the SNR gives against the tone's power (1e6 per unit square)
        level = 1000 * np.sqrt(AMPLITUDE ** 2 / 2 / 1e6 * 10 ** (-snr / 10))
        for pause in (audio[:b], audio[b + len(word):]):
            assert np.abs(np.abs(pause) - level).max() <= 1.0, (utt, level)
            assert len(pause) % PERIOD == 0 and pause.sum() == 0  # whole periods of the square wave
        # and the square wave runs on through the word into the pauses with no jump in its phase
        offset = int(pad_noise_used[utt].split()[1])
        assert np.sign(audio[b - 1]) == (1 if (offset - 1) % PERIOD < PERIOD // 2 else -1)


def test_no_pause_drawn_is_the_plain_copy_and_the_draws_are_independent_of_the_option(tmp_path):
    src, noise = _setup(tmp_path)
    plain = add_noise_data_dir(src, tmp_path / "a", noise, snrs=(5.0,))
    none = add_noise_data_dir(src, tmp_path / "b", noise, snrs=(5.0,), pad_range=(0.2, 1.5), pad_probability=0.0)
    assert set(read_key_values(none / "utt2pad").values()) == {"0.00 0.00"}
    for utt, wav in read_key_values(none / "wav.scp").items():
        assert np.array_equal(_read(wav), _read(read_key_values(plain / "wav.scp")[utt]))
    assert not (plain / "utt2pad").exists()


def test_pad_noise_is_mix_at_snr_under_the_speech(rng):
    speech, noise = rng.normal(0, 3000, 1000), rng.normal(0, 500, 333)
    out = pad_noise(speech, noise, 7.0, 100, 160, 320)
    from kaldilite.corpora.augment import mix_at_snr

    assert np.array_equal(out[160:1160], mix_at_snr(speech, noise, 7.0, 100)[0])
    scale = (out[160:1160] - speech)[0] / noise[100]
    assert np.allclose(out[:160], scale * noise[np.arange(100 - 160, 100) % 333])  # the loop, run backwards
    assert np.allclose(out[1160:], scale * noise[np.arange(1100, 1420) % 333])


def test_bad_pad_options_are_one_line_errors(tmp_path):
    src, noise = _setup(tmp_path)
    for bad in ((1.5, 0.2), (0.2, float("inf")), (float("nan"), 1.0)):  # (inf was an OverflowError traceback)
        with pytest.raises(InputError, match="--pad-range .*min:max"):
            add_noise_data_dir(src, tmp_path / "x", noise, pad_range=bad, pad_probability=1.0)
    result = CliRunner().invoke(cli, ["add-noise-data-dir", "--bg-noise-dir", str(noise), "--pad-range", "0.5",
                                      str(src), str(tmp_path / "y")])
    assert result.exit_code != 0 and "--pad-range needs two values min:max" in str(result.exception)


@pytest.mark.parametrize("rate", [8000, 22050])
def test_utt2pad_counts_the_extractors_frames_at_the_audios_rate(tmp_path, rate):
    """Long pauses at 22.05 kHz, where Kaldi's 10 ms shift is 220 samples (9.977 ms): utt2pad, read as
    train-nnet2 reads it (seconds / 10 ms, rounded), must give the frames the MFCC extractor adds at the
    audio's rate, and the word's frames must be the unpadded copy's (no dither). utt2pad in true seconds
    (before) said 2.99 for a 300-frame pause: one frame short, the clip dropped as mismatched."""
    import dataclasses

    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.feat.options import MfccOptions

    (tmp_path / "noise").mkdir()
    square = np.where(np.arange(37 * PERIOD) % PERIOD < PERIOD // 2, 1000, -1000).astype(np.int16)
    sf.write(tmp_path / "noise" / "square.wav", square, rate, subtype="PCM_16")
    wav_scp, text, utt2spk = {}, {}, {}
    for i, length in enumerate((rate, rate // 2 + 77, 3 * rate // 4 + 13)):
        path = tmp_path / f"{i}.wav"
        sf.write(path, np.round(AMPLITUDE * np.sin(np.arange(length) / 7.0)).astype(np.int16), rate, subtype="PCM_16")
        wav_scp[f"u{i}"], text[f"u{i}"], utt2spk[f"u{i}"] = str(path), "word", f"s{i}"
    DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk).save(tmp_path / "data")
    plain = add_noise_data_dir(tmp_path / "data", tmp_path / "plain", tmp_path / "noise", snrs=(10.0,))
    padded = add_noise_data_dir(tmp_path / "data", tmp_path / "pad", tmp_path / "noise", snrs=(10.0,),
                                utt_prefix="pad-noise", pad_range=(2.5, 3.0), pad_probability=1.0)
    pads, wavs = read_key_values(padded / "utt2pad"), read_key_values(padded / "wav.scp")
    plain_wavs = read_key_values(plain / "wav.scp")
    shift = int(rate * 0.01)  # Kaldi's WindowShift(), truncated
    for snip_edges in (True, False):
        opts = MfccOptions()
        opts.frame_opts = dataclasses.replace(opts.frame_opts, sample_frequency=float(rate), dither=0.0,
                                              snip_edges=snip_edges)
        for utt, wav in wavs.items():
            before, after = (int(round(float(x) / 0.01)) for x in pads[utt].split())
            assert 250 * 0.99 <= before <= 300 and 250 * 0.99 <= after <= 300
            audio, word = _read(wav), _read(plain_wavs["noise-" + utt[len("pad-noise-"):]])
            assert len(audio) == (before + after) * shift + len(word)
            feats, word_feats = compute_mfcc(audio, opts), compute_mfcc(word, opts)
            assert len(feats) == before + len(word_feats) + after, (utt, snip_edges)
            if snip_edges:  # the word's frames are on the same samples (reflected edges differ otherwise)
                assert np.array_equal(feats[before:before + len(word_feats)], word_feats)


def test_pauses_depend_on_the_seed_and_the_utterance_only(tmp_path):
    """The same pauses and audio for an utterance whether the source holds it alone or among others in
    reversed wav.scp order (each utterance draws from its own (seed, id) generator); another seed draws
    other pauses."""
    src, noise = _setup(tmp_path, lengths=(16000, 12000, 8000, 9000, 10000))
    options = dict(snrs=(5.0, 15.0), utt_prefix="pad-noise", pad_range=(0.1, 1.0), pad_probability=0.7)
    full = add_noise_data_dir(src, tmp_path / "full", noise, random_seed=3, **options)
    lines = (src / "wav.scp").read_text().splitlines()
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("text", "utt2spk"):
        (alone / name).write_text((src / name).read_text())
    (alone / "wav.scp").write_text("\n".join(reversed(lines)) + "\n")
    reordered = add_noise_data_dir(alone, tmp_path / "reordered", noise, random_seed=3, **options)
    (alone / "wav.scp").write_text(lines[2] + "\n")
    single = add_noise_data_dir(alone, tmp_path / "single", noise, random_seed=3, **options)
    other = add_noise_data_dir(src, tmp_path / "other", noise, random_seed=4, **options)
    pads = read_key_values(full / "utt2pad")
    assert read_key_values(reordered / "utt2pad") == pads and len(set(pads.values())) == 5
    utt = "pad-noise-" + lines[2].split()[0]
    assert read_key_values(single / "utt2pad") == {utt: pads[utt]}
    assert np.array_equal(_read(read_key_values(single / "wav.scp")[utt]), _read(read_key_values(full / "wav.scp")[utt]))
    assert read_key_values(other / "utt2pad") != pads


def test_a_15_ms_frame_shift_pads_whole_15_ms_frames_that_make_mfcc_and_train_nnet2_count_alike(tmp_path):
    """--frame-shift 15 (a conf/mfcc.conf with --frame-shift=15): at 16 kHz a frame is 240 samples, so every
    pause is a multiple of 240 samples, written in utt2pad as seconds of 15 ms frames; make-mfcc with that
    config records 0.015 in DATA/frame_shift, and the padded copy's frame count (utt2num_frames) is the
    unpadded copy's plus the pauses read as train-nnet2 reads them (seconds / DATA/frame_shift): counted
    by hand from the samples. With 10 ms pads (the old fixed quantum) most pauses are not whole 15 ms frames."""
    from kaldilite.io.datadir import read_frame_shift

    src, noise = _setup(tmp_path)
    plain = add_noise_data_dir(src, tmp_path / "plain", noise, snrs=(10.0,), utt_prefix="noise")
    runner = CliRunner()
    result = runner.invoke(cli, ["add-noise-data-dir", "--bg-noise-dir", str(noise), "--bg-snrs", "10",
                                 "--utt-prefix", "pad-noise", "--pad-range", "0.2:0.9", "--pad-probability", "1",
                                 "--frame-shift", "15", str(src), str(tmp_path / "pad")])
    assert result.exit_code == 0, (result.output, result.exception)
    padded = tmp_path / "pad"
    conf = tmp_path / "mfcc.conf"
    conf.write_text("--sample-frequency=16000\n--frame-shift=15\n--dither=0\n")
    for data in (plain, padded):
        result = runner.invoke(cli, ["make-mfcc", "--config", str(conf), "--nj", "1", str(data), str(data / "log"),
                                     str(data / "mfcc")])
        assert result.exit_code == 0, (result.output, result.exception)
    assert (padded / "frame_shift").read_text() == "0.015\n" and read_frame_shift(padded) == 0.015
    pads, frames = read_key_values(padded / "utt2pad"), read_key_values(padded / "utt2num_frames")
    plain_frames, wavs = read_key_values(plain / "utt2num_frames"), read_key_values(padded / "wav.scp")
    plain_wavs = read_key_values(plain / "wav.scp")
    for utt, value in pads.items():
        source = "noise-" + utt[len("pad-noise-"):]
        samples = len(_read(wavs[utt])) - len(_read(plain_wavs[source]))  # both pauses, by the audio
        before, after = (float(x) for x in value.split())
        assert samples % 240 == 0 and samples // 240 == round(before / 0.015) + round(after / 0.015)
        for seconds in (before, after):
            assert abs(seconds / 0.015 - round(seconds / 0.015)) < 1e-9 and 0.2 - 0.0075 <= seconds <= 0.9 + 0.0075
        assert int(frames[utt]) == int(plain_frames[source]) + samples // 240
    ten = add_noise_data_dir(src, tmp_path / "ten", noise, snrs=(10.0,), utt_prefix="pad-noise",
                             pad_range=(0.2, 0.9), pad_probability=1.0)
    seconds = [float(x) for v in read_key_values(ten / "utt2pad").values() for x in v.split()]
    assert any(abs(x / 0.015 - round(x / 0.015)) > 0.1 for x in seconds)  # what padded_alignments refuses


def test_the_frame_shift_must_be_positive(tmp_path):
    src, noise = _setup(tmp_path)
    for bad in (0.0, -10.0, float("inf")):
        with pytest.raises(InputError, match="--frame-shift .* in ms"):
            add_noise_data_dir(src, tmp_path / "x", noise, pad_range=(0.2, 0.5), frame_shift=bad)
