"""make-mfcc / make-fbank / compute-cmvn-stats on small data dirs of generated audio."""

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from knf_reference import knf_fbank, knf_mfcc

from kaldilite.cli import cli
from kaldilite.errors import KaldiliteError
from kaldilite.feat import FbankOptions, MfccOptions, cmvn_stats
from kaldilite.io.tables import read_matrices, read_matrix_dict


def tone(rate, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    return np.round(3000 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 300 * rng.standard_normal(t.size)).astype(np.int16)


@pytest.fixture
def data_dir(tmp_path):
    """3 speakers x 2 utterances at 8 kHz, plus one utterance too short for a frame."""
    audio, data = tmp_path / "audio", tmp_path / "data" / "train"
    audio.mkdir()
    data.mkdir(parents=True)
    wav, utt2spk = {}, {}
    for s, speaker in enumerate(["alice", "bob", "carol"]):
        for k in range(2):
            utt = f"{speaker}-{k}"
            path = audio / f"{utt}.wav"
            soundfile.write(path, tone(8000, 0.4 + 0.1 * k + 0.05 * s, seed=3 * s + k), 8000, subtype="PCM_16")
            wav[utt], utt2spk[utt] = path, speaker
    soundfile.write(audio / "short.wav", np.zeros(150, dtype=np.int16), 8000, subtype="PCM_16")
    wav["carol-short"], utt2spk["carol-short"] = audio / "short.wav", "carol"
    (data / "wav.scp").write_text("".join(f"{u} {wav[u]}\n" for u in sorted(wav)))
    (data / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
    spk2utt = {}
    for u in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[u], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (tmp_path / "mfcc.conf").write_text("--sample-frequency=8000  # FSDD-like\n--dither=0\n--num-mel-bins=20\n")
    return data


def invoke(args):
    return CliRunner().invoke(cli, args, catch_exceptions=True)


def test_make_mfcc_writes_kaldi_tables_matching_knf_and_skips_a_short_utterance(data_dir, tmp_path):
    conf = tmp_path / "mfcc.conf"
    result = invoke(["make-mfcc", "--config", str(conf), "--nj", "2", "--num-ceps=12", str(data_dir),
                     str(tmp_path / "log"), str(tmp_path / "mfcc")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "done 6 out of 7 utterances (1 failed)" in result.output
    feats = dict(read_matrices(data_dir / "feats.scp"))
    assert list(feats) == sorted(feats) and "carol-short" not in feats and len(feats) == 6
    opts = MfccOptions()
    opts.frame_opts.sample_frequency, opts.frame_opts.dither = 8000, 0.0
    opts.mel_opts.num_mel_bins, opts.num_ceps = 20, 12
    for utt, matrix in feats.items():
        samples, _ = soundfile.read(tmp_path / "audio" / f"{utt}.wav", dtype="int16")
        np.testing.assert_allclose(matrix, knf_mfcc(samples.astype(np.float32), opts), atol=1e-3, rtol=0)
    durations = dict(line.split() for line in (data_dir / "utt2dur").read_text().splitlines())
    assert float(durations["alice-1"]) == pytest.approx(0.5, abs=1e-3)
    frames = dict(line.split() for line in (data_dir / "utt2num_frames").read_text().splitlines())
    assert {u: int(n) for u, n in frames.items()} == {u: m.shape[0] for u, m in feats.items()}
    logs = "".join(p.read_text() for p in sorted((tmp_path / "log").glob("make_mfcc_train.*.log")))
    assert "failed to compute features for utterance carol-short" in logs and "shorter than one frame" in logs
    assert all(line.split()[1].startswith(str(tmp_path / "mfcc")) for line in (data_dir / "feats.scp").read_text().splitlines())

    result = invoke(["compute-cmvn-stats", str(data_dir), str(tmp_path / "log"), str(tmp_path / "mfcc")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    stats = read_matrix_dict(data_dir / "cmvn.scp")
    assert list(stats) == ["alice", "bob", "carol"] and stats["bob"].dtype == np.float64
    np.testing.assert_allclose(stats["bob"], cmvn_stats(feats["bob-0"]) + cmvn_stats(feats["bob-1"]), rtol=1e-10)

    # A re-run replaces the old outputs (kept in .backup, like make_mfcc.sh), stale cmvn.scp included.
    result = invoke(["make-mfcc", "--config", str(conf), "--nj", "3", str(data_dir), str(tmp_path / "log"), str(tmp_path / "mfcc")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert not (data_dir / "cmvn.scp").exists() and (data_dir / ".backup" / "cmvn.scp").exists()
    assert len((data_dir / "feats.scp").read_text().splitlines()) == 6


def test_make_fbank_with_command_line_options_only(data_dir, tmp_path):
    result = invoke(["make-fbank", "--sample-frequency=8000", "--dither=0", "--num-mel-bins=15", "--use-energy=true",
                     "--nj", "1", str(data_dir)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (data_dir / "data").is_dir() and (data_dir / "log").is_dir()  # Kaldi's default dirs
    opts = FbankOptions()
    opts.frame_opts.sample_frequency, opts.frame_opts.dither = 8000, 0.0
    opts.mel_opts.num_mel_bins, opts.use_energy = 15, True
    samples, _ = soundfile.read(tmp_path / "audio" / "bob-1.wav", dtype="int16")
    feats = dict(read_matrices(data_dir / "feats.scp"))
    np.testing.assert_allclose(feats["bob-1"], knf_fbank(samples.astype(np.float32), opts), atol=1e-3, rtol=0)


def test_segments_are_cut_from_their_recording(data_dir, tmp_path):
    (data_dir / "segments").write_text("alice-0-a alice-0 0.00 0.20\nalice-0-b alice-0 0.15 0.40\n")
    (data_dir / "utt2spk").write_text("alice-0-a alice\nalice-0-b alice\n")
    (data_dir / "spk2utt").write_text("alice alice-0-a alice-0-b\n")
    (data_dir / "wav.scp").write_text(f"alice-0 {tmp_path / 'audio' / 'alice-0.wav'}\n")
    result = invoke(["make-mfcc", "--config", str(tmp_path / "mfcc.conf"), "--nj", "1", str(data_dir)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    samples, _ = soundfile.read(tmp_path / "audio" / "alice-0.wav", dtype="int16")
    feats = dict(read_matrices(data_dir / "feats.scp"))
    opts = MfccOptions()
    opts.frame_opts.sample_frequency, opts.frame_opts.dither, opts.mel_opts.num_mel_bins = 8000, 0.0, 20
    np.testing.assert_allclose(feats["alice-0-b"], knf_mfcc(samples[1200:3200].astype(np.float32), opts), atol=1e-3)
    assert feats["alice-0-a"].shape[0] == 18  # 1600 samples: 1 + (1600 - 200) // 80


def test_wrong_sample_rate_fails_naming_the_file_both_rates_and_the_log(data_dir, tmp_path):
    result = invoke(["make-mfcc", "--sample-frequency=16000", "--nj", "1", str(data_dir), str(tmp_path / "log")])
    assert result.exit_code != 0 and isinstance(result.exception, KaldiliteError)
    message = str(result.exception)
    assert "make_mfcc_train.1.log" in message
    log_text = (tmp_path / "log" / "make_mfcc_train.1.log").read_text()
    assert "alice-0.wav: sample rate 8000 Hz but --sample-frequency=16000" in log_text
    # --allow-upsample lets it through (resampled to 16 kHz).
    result = invoke(["make-mfcc", "--sample-frequency=16000", "--allow-upsample=true", "--nj", "1", str(data_dir)])
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_unknown_option_in_config_is_one_clear_line(data_dir, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("--sample-frequency=8000\n--num-ceps=13\n--use-enrgy=false\n")
    result = invoke(["make-mfcc", "--config", str(bad), str(data_dir)])
    assert isinstance(result.exception, KaldiliteError)
    assert str(result.exception).startswith(f"{bad}:3: unknown option --use-enrgy for MfccOptions (did you mean --use-energy?)")
    assert not (data_dir / "feats.scp").exists()


def parse_text_archive(text):
    """Kaldi text matrices `key  [ rows ]` -> dict."""
    result, key, rows = {}, None, []
    for line in text.splitlines():
        if line.endswith("["):
            key, rows = line.split()[0], []
            continue
        values = line.replace("]", "").split()
        if values:
            rows.append([float(v) for v in values])
        if line.endswith("]"):
            result[key] = np.array(rows)
    return result


def test_compute_mfcc_feats_writes_text_and_binary_archives(data_dir, tmp_path):
    conf = tmp_path / "mfcc.conf"
    result = CliRunner().invoke(cli, ["compute-mfcc-feats", "--config", str(conf), f"scp:{data_dir / 'wav.scp'}", "ark,t:-"])
    assert result.exit_code == 0, result.output
    assert "failed to compute features for utterance carol-short" in result.output  # stderr is mixed in
    assert "Done 6 out of 7 utterances." in result.output
    text = parse_text_archive("\n".join(line for line in result.output.splitlines()
                                        if not line.startswith(("WARNING", "LOG"))))
    opts = MfccOptions()
    opts.frame_opts.sample_frequency, opts.frame_opts.dither, opts.mel_opts.num_mel_bins = 8000, 0.0, 20
    samples, _ = soundfile.read(tmp_path / "audio" / "carol-1.wav", dtype="int16")
    np.testing.assert_allclose(text["carol-1"], knf_mfcc(samples.astype(np.float32), opts), atol=2e-3)
    ark, scp = tmp_path / "x.ark", tmp_path / "x.scp"
    result = CliRunner().invoke(cli, ["compute-fbank-feats", "--config", str(conf), str(data_dir / "wav.scp"),
                                      f"ark,scp:{ark},{scp}"])
    assert result.exit_code == 0, result.output
    assert len(dict(read_matrices(scp))) == 6


def test_dither_differs_between_utterances_but_not_between_runs_or_job_counts(data_dir, tmp_path):
    # Two utterances with the same audio: dither must not add the same noise to both.
    wav = (data_dir / "wav.scp").read_text()
    (data_dir / "wav.scp").write_text(wav.replace(str(tmp_path / "audio" / "bob-1.wav"), str(tmp_path / "audio" / "bob-0.wav")))
    outputs = []
    for nj in ("1", "3"):
        result = invoke(["make-mfcc", "--sample-frequency=8000", "--dither=1", "--nj", nj, str(data_dir)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        outputs.append(dict(read_matrices(data_dir / "feats.scp")))
    first, second = outputs
    assert all(np.array_equal(first[u], second[u]) for u in first)
    assert first["bob-0"].shape == first["bob-1"].shape and not np.array_equal(first["bob-0"], first["bob-1"])
    np.testing.assert_allclose(first["bob-0"], first["bob-1"], atol=1.0)


def test_the_console_says_why_some_utterances_gave_no_features(data_dir, tmp_path, caplog):
    # the per-utterance reasons are in the jobs' logs; the console names the first one, so that a
    # rate or channel mismatch of a few files is visible where the user looks
    import logging

    with caplog.at_level(logging.WARNING, logger="kaldilite.feat.make"):
        result = invoke(["make-mfcc", "--config", str(tmp_path / "mfcc.conf"), "--nj", "2", str(data_dir),
                         str(tmp_path / "log"), str(tmp_path / "mfcc")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    (summary,) = [r.getMessage() for r in caplog.records if "features for 6 of 7 utterances" in r.getMessage()]
    assert "(1 failed, e.g. carol-short: " in summary and "shorter than one frame" in summary
    assert f"{tmp_path / 'log'}/make_mfcc_train.*.log" in summary and "kaldilite data fix" in summary
