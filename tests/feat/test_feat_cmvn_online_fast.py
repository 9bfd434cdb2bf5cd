"""apply_cmvn_online's compiled batch path against two independent answers.

1. A straightforward per-frame reference written here from Kaldi's OnlineCmvn rules
   (src/feat/online-feature.cc, ComputeStatsForFrame + SmoothOnlineCmvnStats): for each frame,
   sum the window's frames, top the count up to --cmn-window with the speaker's previous
   frames (at most --speaker-frames, scaled) and then the global stats (at most
   --global-frames), then normalize. Plain Python loops, no prefix sums.
2. The streaming `OnlineCmvn` class the live recognizer runs, utterance by utterance with its
   state carried through get_state: the batch path must equal it bit for bit.

Utterances shorter and longer than the window, several speakers, norm-vars and skip-dims.
"""

import dataclasses

import numpy as np
import pytest

from kaldilite.feat.cmvn import OnlineCmvn, OnlineCmvnOptions, OnlineCmvnState, apply_cmvn_online


def reference_online_cmvn(utterances, global_stats, opts):
    """One speaker's utterances (list of (T, D) arrays) normalized frame by frame."""
    skip = {int(d) for d in opts.skip_dims.split(":") if d}
    dim = utterances[0].shape[1]
    speaker_sum, speaker_sq, speaker_count = np.zeros(dim), np.zeros(dim), 0.0
    g_sum, g_sq, g_count = global_stats[0, :dim], global_stats[1, :dim], global_stats[0, dim]
    results = []
    for x in utterances:
        x = x.astype(np.float64)
        out = np.empty_like(x)
        for t in range(len(x)):
            frames = x[max(0, t - opts.cmn_window + 1):t + 1]
            total, sq, count = frames.sum(axis=0), (frames ** 2).sum(axis=0), float(len(frames))
            if speaker_count > 0:
                take = min(max(opts.cmn_window - count, 0), opts.speaker_frames, speaker_count)
                total, sq, count = (total + take / speaker_count * speaker_sum, sq + take / speaker_count * speaker_sq,
                                    count + take)
            take = min(max(opts.cmn_window - count, 0), opts.global_frames)
            total, sq, count = total + take / g_count * g_sum, sq + take / g_count * g_sq, count + take
            for d in range(dim):
                if d in skip:
                    out[t, d] = x[t, d]
                    continue
                mean = total[d] / count
                out[t, d] = x[t, d] - mean
                if opts.norm_vars:
                    out[t, d] /= np.sqrt(max(sq[d] / count - mean * mean, 1e-20))
        speaker_sum, speaker_sq = speaker_sum + x.sum(0), speaker_sq + (x ** 2).sum(0)
        speaker_count += len(x)
        results.append(out)
    return results


def _corpus(seed=3, dim=5):
    rng = np.random.default_rng(seed)
    lengths = {"s1": [3, 40, 7, 1], "s2": [25], "s3": [12, 60]}
    feats, spk2utt = {}, {}
    for speaker, lens in lengths.items():
        offset = rng.normal(0, 3, dim)
        spk2utt[speaker] = []
        for k, n in enumerate(lens):
            utt = f"{speaker}-u{k}"
            feats[utt] = (offset + rng.normal(0, 1 + k, (n, dim))).astype(np.float32)
            spk2utt[speaker].append(utt)
    global_stats = np.zeros((2, dim + 1))
    every = np.concatenate(list(feats.values())).astype(np.float64) * 1.3 + 0.5
    global_stats[0, :dim], global_stats[1, :dim], global_stats[0, dim] = every.sum(0), (every ** 2).sum(0), len(every)
    return feats, spk2utt, global_stats


OPTIONS = [OnlineCmvnOptions(cmn_window=10, speaker_frames=6, global_frames=4),
           OnlineCmvnOptions(cmn_window=10, speaker_frames=6, global_frames=4, norm_vars=True),
           OnlineCmvnOptions(cmn_window=20, speaker_frames=20, global_frames=0, skip_dims="1:4"),
           OnlineCmvnOptions()]  # Kaldi's defaults: 600/600/200


@pytest.mark.parametrize("opts", OPTIONS, ids=["mean", "norm_vars", "skip_dims_no_global", "defaults"])
def test_batch_online_cmvn_equals_a_per_frame_reference(opts):
    feats, spk2utt, global_stats = _corpus()
    out = dict(apply_cmvn_online(feats, global_stats, opts, spk2utt))
    assert set(out) == set(feats)
    for speaker, utts in spk2utt.items():
        expected = reference_online_cmvn([feats[u] for u in utts], global_stats, opts)
        for utt, ref in zip(utts, expected):
            assert out[utt].dtype == np.float32
            np.testing.assert_allclose(out[utt], ref, rtol=1e-5, atol=1e-5, err_msg=utt)


@pytest.mark.parametrize("opts", OPTIONS, ids=["mean", "norm_vars", "skip_dims_no_global", "defaults"])
def test_batch_online_cmvn_equals_the_streaming_class_bit_for_bit(opts):
    feats, spk2utt, global_stats = _corpus(seed=8)
    out = dict(apply_cmvn_online(feats, global_stats, opts, spk2utt))
    for utts in spk2utt.values():
        state = OnlineCmvnState(global_stats=global_stats)
        for utt in utts:
            stream = OnlineCmvn(feats[utt], opts, state)
            np.testing.assert_array_equal(out[utt], stream.get_frames(0, len(feats[utt])), err_msg=utt)
            state = stream.get_state(len(feats[utt]) - 1)
    # without spk2utt every utterance starts from the global prior alone
    fresh = dict(apply_cmvn_online(feats.items(), global_stats, opts))
    for utt, x in feats.items():
        np.testing.assert_array_equal(fresh[utt], OnlineCmvn(x, opts, OnlineCmvnState(global_stats=global_stats))
                                      .get_frames(0, len(x)))


def test_no_mean_normalization_passes_the_features_through():
    feats, spk2utt, global_stats = _corpus()
    opts = dataclasses.replace(OPTIONS[0], norm_means=False)
    out = dict(apply_cmvn_online(feats, global_stats, opts, spk2utt))
    for utt, x in feats.items():
        np.testing.assert_array_equal(out[utt], x)


def test_one_compiled_variant_for_read_only_and_joined_input():
    """A speaker with one read-only utterance (a memory-mapped archive) and a speaker whose
    utterances are joined into a new array reach the kernel as the same array type: one variant
    compiles, and read-only input gives the same numbers as a writable copy of it."""
    from kaldilite.feat.cmvn import _online_cmvn_utterance

    feats, spk2utt, global_stats = _corpus(seed=5)
    read_only = {}
    for utt, x in feats.items():
        read_only[utt] = x.copy()
        read_only[utt].flags.writeable = False
    opts = OPTIONS[0]
    expected = dict(apply_cmvn_online(feats, global_stats, opts, spk2utt))
    out = dict(apply_cmvn_online(read_only, global_stats, opts, spk2utt))  # s2 has one utterance
    out_alone = dict(apply_cmvn_online(read_only.items(), global_stats, opts))  # every utterance alone
    for utt in feats:
        np.testing.assert_array_equal(out[utt], expected[utt], err_msg=utt)
        assert out_alone[utt].shape == feats[utt].shape
    assert len(_online_cmvn_utterance.signatures) == 1, _online_cmvn_utterance.signatures
