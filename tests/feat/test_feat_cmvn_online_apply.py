"""apply-cmvn-online: a data dir through the online decoder's CMVN, per speaker in spk2utt order.

Independent answers: a two-utterance case computed by hand from Kaldi's OnlineCmvn rules
(src/feat/online-feature.cc: window, then speaker stats, then global stats up to --cmn-window),
and the streaming feature pipeline the online recognizer runs (OnlineMfcc fed in random chunks
-> OnlineFeaturePipeline, state carried with get_state) against the batch path of
decode-commands --online-cmvn (load_features(..., online_cmvn=...)).
"""

import dataclasses

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.feat.cmvn import OnlineCmvnOptions, OnlineCmvnState, apply_cmvn_online
from kaldilite.io.tables import read_matrices, read_matrix, write_matrices

# Hand case: 1-dim features, --cmn-window=3 --speaker-frames=2 --global-frames=1, global mean 2
# (sum 10 over 5 frames). Speaker X says a = [1, 3] then b = [5].
HAND_OPTS = OnlineCmvnOptions(cmn_window=3, speaker_frames=2, global_frames=1)
GLOBAL = np.array([[10.0, 5.0], [30.0, 0.0]])
HAND_FEATS = {"a": np.array([[1.0], [3.0]], np.float32), "b": np.array([[5.0]], np.float32)}
# a, frame 0: window {1} + 1 global frame (mean 2): mean (1 + 2) / 2 = 1.5 -> 1 - 1.5 = -0.5
# a, frame 1: window {1, 3} + 1 global frame: mean (4 + 2) / 3 = 2 -> 3 - 2 = 1
# b, frame 0 after a: window {5} + 2 speaker frames (a's sum 4, count 2): 3 frames = the window, no
#   global: mean (5 + 4) / 3 = 3 -> 5 - 3 = 2
# b, frame 0 alone: window {5} + 1 global frame: mean 7 / 2 = 3.5 -> 1.5
HAND_CARRIED = {"a": [-0.5, 1.0], "b": [2.0]}
HAND_FRESH = {"a": [-0.5, 1.0], "b": [1.5]}


def test_two_utterances_of_one_speaker_by_hand():
    out = dict(apply_cmvn_online(HAND_FEATS, GLOBAL, HAND_OPTS, {"X": ["a", "b"]}))
    assert {u: m[:, 0].tolist() for u, m in out.items()} == HAND_CARRIED
    fresh = dict(apply_cmvn_online(HAND_FEATS.items(), GLOBAL, HAND_OPTS))
    assert {u: m[:, 0].tolist() for u, m in fresh.items()} == HAND_FRESH


def test_spk2utt_order_is_the_order_stats_are_carried_in():
    # b first: b starts from the global prior alone (1.5); a then borrows b's one frame (5) and
    # one global frame: frame 0 mean (1 + 5 + 2) / 3 -> 1 - 8/3; frame 1: window {1, 3} + b's
    # frame = 3 frames, mean 3 -> 0.
    out = dict(apply_cmvn_online(HAND_FEATS, GLOBAL, HAND_OPTS, {"X": ["b", "a"]}))
    assert out["b"][:, 0].tolist() == [1.5]
    np.testing.assert_allclose(out["a"][:, 0], [1 - 8 / 3, 0.0], atol=1e-6)
    # two speakers: nothing crosses from one to the other
    split = dict(apply_cmvn_online(HAND_FEATS, GLOBAL, HAND_OPTS, {"X": ["a"], "Y": ["b"]}))
    assert split["b"][:, 0].tolist() == HAND_FRESH["b"]


def test_variance_normalization_by_hand():
    opts = dataclasses.replace(HAND_OPTS, norm_vars=True)
    # a, frame 1: stats = frames {1, 3} + 1 global frame (sum 2, sum of squares 30/5 = 6):
    # mean 2, E[x^2] = (1 + 9 + 6) / 3 = 16/3, var = 16/3 - 4 = 4/3 -> (3 - 2) / sqrt(4/3)
    out = dict(apply_cmvn_online(HAND_FEATS, GLOBAL, opts, {"X": ["a"]}))
    assert out["a"][1, 0] == pytest.approx(1 / np.sqrt(4 / 3), rel=1e-6)


def test_missing_utterance_is_skipped_and_bad_input_is_named(caplog):
    out = dict(apply_cmvn_online(HAND_FEATS, GLOBAL, HAND_OPTS, {"X": ["a", "gone", "b"]}))
    assert {u: m[:, 0].tolist() for u, m in out.items()} == HAND_CARRIED
    assert "no features for utterance gone" in caplog.text
    with pytest.raises(DimensionMismatchError, match="2-dim features"):
        list(apply_cmvn_online({"a": np.zeros((3, 2))}, GLOBAL, HAND_OPTS, {"X": ["a"]}))
    with pytest.raises(InputError, match="zero frame count"):
        list(apply_cmvn_online(HAND_FEATS.items(), np.zeros((2, 2)), HAND_OPTS))


def test_apply_cmvn_online_and_matrix_sum_verbs(tmp_path):
    write_matrices(HAND_FEATS.items(), tmp_path / "feats.ark", tmp_path / "feats.scp")
    write_matrices([("s1", GLOBAL / 2), ("s2", GLOBAL / 2)], tmp_path / "cmvn.ark", tmp_path / "cmvn.scp")
    (tmp_path / "spk2utt").write_text("X a b\n")
    (tmp_path / "online_cmvn.conf").write_text("--cmn-window=3\n--speaker-frames=2\n--global-frames=5\n")
    runner = CliRunner()
    for binary in ("true", "false"):
        result = runner.invoke(cli, ["matrix-sum", f"--binary={binary}", f"scp:{tmp_path}/cmvn.scp",
                                     str(tmp_path / "global.stats")])
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(read_matrix(tmp_path / "global.stats"), GLOBAL)
    # command-line options override the config file (--global-frames=1 as in the hand case)
    common = ["--config", str(tmp_path / "online_cmvn.conf"), "--global-frames=1", str(tmp_path / "global.stats"),
              f"scp:{tmp_path}/feats.scp"]
    result = runner.invoke(cli, ["apply-cmvn-online", f"--spk2utt=ark:{tmp_path}/spk2utt", *common,
                                 f"ark:{tmp_path}/carried.ark"])
    assert result.exit_code == 0, result.output
    assert "Applied online CMVN to 2 files, or 3 frames" in result.output
    assert {u: m[:, 0].tolist() for u, m in read_matrices(tmp_path / "carried.ark")} == HAND_CARRIED
    result = runner.invoke(cli, ["apply-cmvn-online", *common, f"ark:{tmp_path}/fresh.ark"])
    assert result.exit_code == 0, result.output
    assert {u: m[:, 0].tolist() for u, m in read_matrices(tmp_path / "fresh.ark")} == HAND_FRESH


def _data_dir(tmp_path, rate=16000):
    """Two speakers, three utterances (speaker s1's in spk2utt order s1-u1, s1-u2), dither off."""
    from test_feat_streaming import speech_like

    from kaldilite.feat.make import compute_cmvn_stats, make_features
    from kaldilite.feat.options import MfccOptions

    data = tmp_path / "data"
    data.mkdir()
    utts = {"s1-u1": ("s1", 0.7, 1), "s1-u2": ("s1", 1.1, 2), "s2-u1": ("s2", 0.9, 3)}
    waves = {}
    for utt, (_, seconds, seed) in utts.items():
        waves[utt] = np.round(speech_like(rate, seconds, seed) * (0.3 if utt.startswith("s2") else 1.0))
        soundfile.write(tmp_path / f"{utt}.wav", waves[utt].astype(np.int16), rate, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"{u} {tmp_path / u}.wav\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _, _) in utts.items()))
    (data / "spk2utt").write_text("s1 s1-u1 s1-u2\ns2 s2-u1\n")
    opts = MfccOptions()
    opts.frame_opts.sample_frequency = rate
    opts.frame_opts.dither = 0.0
    make_features(data, tmp_path / "log", tmp_path / "mfcc", opts=opts, nj=1)
    compute_cmvn_stats(data, tmp_path / "log", tmp_path / "mfcc")
    return data, waves, opts


@pytest.mark.parametrize("pipeline_args", [dict(cmvn="speaker", delta_order=2),
                                           dict(cmvn="utterance", norm_vars=True, splice_left=2, splice_right=2)])
def test_batch_online_cmvn_equals_the_streaming_pipeline(tmp_path, pipeline_args):
    from test_feat_streaming import feed_in_random_chunks

    from kaldilite.feat.extract import OnlineMfcc
    from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats, load_features
    from kaldilite.feat.streaming import OnlineFeaturePipeline

    data, waves, mfcc_opts = _data_dir(tmp_path)
    pipeline = FeaturePipeline(**pipeline_args)
    stats = global_cmvn_stats(data)
    opts = OnlineCmvnOptions(cmn_window=120, speaker_frames=100, global_frames=50)
    batch = dict(load_features(data, pipeline, online_cmvn=(stats, opts)))
    assert list(batch) == ["s1-u1", "s1-u2", "s2-u1"]
    rng = np.random.default_rng(0)
    for speaker_utts in (["s1-u1", "s1-u2"], ["s2-u1"]):
        state = OnlineCmvnState(global_stats=stats)
        for utt in speaker_utts:
            # what OnlineRecognizer builds per utterance, fed as a microphone would feed it
            streamed = OnlineFeaturePipeline(OnlineMfcc(mfcc_opts), pipeline, opts, state)
            frames = feed_in_random_chunks(streamed.source.source, waves[utt], rng, 700)
            assert len(frames) == len(batch[utt])
            np.testing.assert_allclose(streamed.get_frames(0, streamed.num_frames_ready), batch[utt], atol=2e-4)
            state = streamed.source.get_state(len(frames) - 1)
    # and it is not the offline per-speaker CMVN (the second utterance of s1 differs most)
    offline = dict(load_features(data, pipeline))
    assert not np.allclose(offline["s1-u1"], batch["s1-u1"], atol=1e-2)


def test_a_subset_normalized_through_its_history_is_normalized_as_in_the_whole(tmp_path):
    from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats, load_features
    from kaldilite.io.datadir import subset_data_dir

    data, _, _ = _data_dir(tmp_path)
    pipeline = FeaturePipeline(cmvn="speaker")
    online = (global_cmvn_stats(data), OnlineCmvnOptions(cmn_window=120, speaker_frames=100, global_frames=50))
    whole = dict(load_features(data, pipeline, online_cmvn=online))
    subset = tmp_path / "second"
    subset_data_dir(data, subset, utt_list=["s1-u2", "s2-u1"])
    through = dict(load_features(subset, pipeline, online_cmvn=online, online_cmvn_history=data))
    assert list(through) == ["s1-u2", "s2-u1"]
    for utt in through:
        np.testing.assert_array_equal(through[utt], whole[utt])
    # alone, s1-u2 is a first utterance: the global prior instead of s1-u1's stats
    alone = dict(load_features(subset, pipeline, online_cmvn=online))
    assert not np.allclose(alone["s1-u2"], whole["s1-u2"], atol=1e-2)
    np.testing.assert_array_equal(alone["s2-u1"], whole["s2-u1"])
    with pytest.raises(InputError, match="s1-u1 of .* is not there"):
        list(load_features(data, pipeline, online_cmvn=online, online_cmvn_history=subset))
