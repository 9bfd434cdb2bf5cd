"""train-nnet2 --online-cmvn carries each speaker's CMVN stats as decode-online does (OnlineCmvnEpochs).

Independent answers: the streaming `OnlineCmvn` class the live recognizer runs, utterance after
utterance, each one's state handed on by `get_state` with the per-frame weights the same silence
decisions give (the live recognizer's own carry) -- the training frames must equal it bit for bit, in
the order training drew; a carried mean computed by hand for silence weights 0, 0.5 and 1; and the
order itself: a permutation of each speaker's utterances, the same for the same (seed, epoch), another
for another epoch or seed, and not moved by the other speakers a data dir (or a job's split) holds.
"""

import numpy as np
import pytest

from kaldilite.feat.cmvn import OnlineCmvn, OnlineCmvnOptions, OnlineCmvnState, speaker_orders
from kaldilite.io.tables import write_matrices
from kaldilite.nnet.train import Nnet2Options, OnlineCmvnEpochs

CMVN_OPTS = OnlineCmvnOptions(cmn_window=12, speaker_frames=8, global_frames=4)


def _data_dir(path, feats):
    """A data dir of `feats` ({utt: matrix}); the speaker is the id's part before the first '-'."""
    path.mkdir(parents=True, exist_ok=True)
    write_matrices(sorted(feats.items()), path / "feats.ark", path / "feats.scp")
    speakers = {}
    for utt in sorted(feats):
        speakers.setdefault(utt.split("-")[0], []).append(utt)
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for s, us in speakers.items() for u in us))
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in speakers.items()))
    return path, speakers


def _corpus(seed=0, dim=4):
    rng = np.random.default_rng(seed)
    lengths = {"a": [30, 9, 45], "b": [20, 14], "c": [7]}
    feats, silence = {}, {}
    for spk, lens in lengths.items():
        offset = rng.normal(0, 3, dim)
        for k, n in enumerate(lens):
            utt = f"{spk}-{k:02d}"
            feats[utt] = (offset + rng.normal(0, 1 + k, (n, dim))).astype(np.float32)
            silence[utt] = rng.random(n) < 0.4
    global_stats = np.zeros((2, dim + 1))
    every = np.concatenate(list(feats.values())).astype(np.float64) * 1.2 + 0.3
    global_stats[0, :dim], global_stats[1, :dim], global_stats[0, dim] = every.sum(0), (every ** 2).sum(0), len(every)
    return feats, silence, global_stats


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_training_frames_are_what_the_streaming_recognizer_carries_in_the_drawn_order(tmp_path, weight):
    feats, silence, global_stats = _corpus()
    data, spk2utt = _data_dir(tmp_path / "data", feats)
    opts = Nnet2Options(online_cmvn=True, online_cmvn_order="random", online_cmvn_silence_weight=weight, seed=7)
    epochs = OnlineCmvnEpochs(data, global_stats, CMVN_OPTS, silence, opts)
    for epoch in (0, 1):
        got = list(epochs.features(opts.seed, epoch))
        expected_order = speaker_orders(spk2utt, (opts.seed, epoch))
        assert [u for u, _ in got] == [u for utts in expected_order.values() for u in utts]
        got = dict(got)
        for utts in expected_order.values():
            state = OnlineCmvnState(global_stats=global_stats)
            for utt in utts:
                stream = OnlineCmvn(feats[utt], CMVN_OPTS, state)
                np.testing.assert_array_equal(got[utt], stream.get_frames(0, len(feats[utt])), err_msg=utt)
                weights = np.where(silence[utt], weight, 1.0)  # what the recognizer's best path would weigh
                state = stream.get_state(len(feats[utt]) - 1, weights)
    # not vacuous: the first utterance of a speaker is normalized from the prior alone, the later ones not
    first = dict(epochs.features(opts.seed, 0))
    spk2utt_order = OnlineCmvnEpochs(data, global_stats, CMVN_OPTS, silence,
                                     Nnet2Options(online_cmvn=True, online_cmvn_order="spk2utt",
                                                  online_cmvn_silence_weight=weight))
    moved = [u for u, x in spk2utt_order.features(0, 0) if not np.array_equal(x, first[u])]
    assert moved  # another order, other frames


def test_carried_mean_by_hand_for_silence_weights_0_half_1(tmp_path):
    """One speaker, two 1-dim clips: u1 = [1, 3, 10, 20] with frames 0 and 3 on silence, then u2 = [5].
    Global prior off (--global-frames 0), window and speaker frames 10: u2's frame sees its own frame plus
    all of u1's carried stats. Weight 0: (5 + 3 + 10) / (1 + 2) = 6 -> 5 - 6 = -1; weight 0.5:
    (5 + 0.5 + 3 + 10 + 10) / (1 + 3) = 7.125 -> -2.125; weight 1: (5 + 34) / 5 = 7.8 -> -2.8."""
    feats = {"s-u1": np.array([[1.0], [3.0], [10.0], [20.0]], np.float32), "s-u2": np.array([[5.0]], np.float32)}
    silence = {"s-u1": np.array([True, False, False, True]), "s-u2": np.array([False])}
    data, _ = _data_dir(tmp_path / "data", feats)
    cmvn_opts = OnlineCmvnOptions(cmn_window=10, speaker_frames=10, global_frames=0)
    global_stats = np.array([[0.0, 1.0], [0.0, 0.0]])  # (a count, for the checks; never lent: global-frames 0)
    for weight, expected in ((0.0, -1.0), (0.5, -2.125), (1.0, -2.8)):
        opts = Nnet2Options(online_cmvn=True, online_cmvn_order="spk2utt", online_cmvn_silence_weight=weight)
        out = dict(OnlineCmvnEpochs(data, global_stats, cmvn_opts, silence, opts).features(0, 0))
        assert out["s-u2"][0, 0] == pytest.approx(expected, abs=1e-6), weight
        # u1 itself starts from nothing: frame t minus the mean of frames 0..t
        np.testing.assert_allclose(out["s-u1"][:, 0], [0.0, 1.0, 10 - 14 / 3, 20 - 8.5], atol=1e-5)


def test_the_order_is_a_seeded_permutation_fresh_per_epoch_and_independent_of_other_speakers():
    spk2utt = {"x": [f"x-{k:02d}" for k in range(12)], "y": ["y-00", "y-01", "y-02"]}
    first = speaker_orders(spk2utt, (5, 0))
    assert all(sorted(first[s]) == sorted(u) for s, u in spk2utt.items())
    assert first == speaker_orders(spk2utt, (5, 0))                 # seeded
    assert first["x"] != speaker_orders(spk2utt, (5, 1))["x"]       # another epoch, another order
    assert first["x"] != speaker_orders(spk2utt, (6, 0))["x"]       # another seed too
    assert first["x"] != spk2utt["x"]                               # not the sorted order
    assert speaker_orders({"x": spk2utt["x"][::-1]}, (5, 0))["x"] == first["x"]  # the list's order does not matter
    assert speaker_orders({"x": spk2utt["x"]}, (5, 0))["x"] == first["x"]        # nor the other speakers
    assert speaker_orders(spk2utt, None) == spk2utt                  # None: as given
    # twelve clips drawn afresh in each of 6 epochs: 6 different orders
    assert len({tuple(speaker_orders(spk2utt, (5, e))["x"]) for e in range(6)}) == 6


def test_renormalize_rewrites_the_examples_frames_for_each_epoch(tmp_path):
    feats, silence, global_stats = _corpus(seed=2)
    data, _ = _data_dir(tmp_path / "data", feats)
    opts = Nnet2Options(online_cmvn=True, online_cmvn_order="random", online_cmvn_silence_weight=0.0, seed=1)
    epochs = OnlineCmvnEpochs(data, global_stats, CMVN_OPTS, silence, opts)
    first = list(epochs.features(1, 0))
    utts = [u for u, _ in first][1:]  # one utterance not trained on (no rows): it still carries
    frames = np.concatenate([x for _, x in first][1:])
    offsets = np.concatenate([[0], np.cumsum([len(feats[u]) for u in utts])])
    epochs.attach(frames, utts, offsets, 1)
    before = frames.copy()
    epochs.renormalize(1, 0)  # the frames it has: nothing to do
    np.testing.assert_array_equal(frames, before)
    epochs.renormalize(1, 3)
    third = dict(epochs.features(1, 3))
    for k, utt in enumerate(utts):
        np.testing.assert_array_equal(frames[offsets[k]:offsets[k + 1]], third[utt])
    assert not np.array_equal(frames, before)


def test_options_are_checked():
    with pytest.raises(Exception, match="online-cmvn-order"):
        Nnet2Options(online_cmvn_order="sorted")
    with pytest.raises(Exception, match="online-cmvn-silence-weight"):
        Nnet2Options(online_cmvn_silence_weight=1.5)
