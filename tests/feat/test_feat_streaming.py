"""Streaming extraction (OnlineMfcc / OnlineFbank) gives exactly the batch features, for any chunking."""

import dataclasses

import numpy as np
import pytest

from knf_reference import knf_mfcc

from kaldilite.errors import InputError
from kaldilite.feat import FbankOptions, MfccOptions, OnlineFbank, OnlineMfcc, compute_fbank, compute_mfcc
from kaldilite.feat.window import first_sample_of_frame


def speech_like(rate, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tone = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (180, 360, 900, 2400))
    return np.round(2000 * tone + 200 * rng.standard_normal(t.size)).astype(np.float32)


def feed_in_random_chunks(extractor, waveform, rng, max_chunk):
    """Feed `waveform` in random-length chunks; check frames only grow and never change once out."""
    seen = []
    position = 0
    while position < waveform.size:
        size = int(rng.integers(0, max_chunk + 1))
        extractor.accept_waveform(waveform[position:position + size])
        position += size
        ready = extractor.num_frames_ready
        assert ready >= len(seen)
        seen.extend(extractor.get_frames(len(seen), ready))
    extractor.input_finished()
    seen.extend(extractor.get_frames(len(seen), extractor.num_frames_ready))
    return np.array(seen).reshape(-1, extractor.dim)


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("kind", ["mfcc", "fbank"])
@pytest.mark.parametrize("dither", [0.0, 1.0])
def test_random_chunks_give_the_batch_frames(snip_edges, kind, dither):
    rng = np.random.default_rng(11)
    for trial, (rate, max_chunk) in enumerate([(8000, 50), (8000, 700), (16000, 3000), (16000, 1)]):
        waveform = speech_like(rate, 0.35 if max_chunk == 1 else 1.3, seed=trial)
        opts = MfccOptions() if kind == "mfcc" else FbankOptions()
        opts.frame_opts.sample_frequency = rate
        opts.frame_opts.snip_edges = snip_edges
        opts.frame_opts.dither = dither
        batch = (compute_mfcc if kind == "mfcc" else compute_fbank)(waveform, opts)
        extractor = OnlineMfcc(opts) if kind == "mfcc" else OnlineFbank(opts)
        streamed = feed_in_random_chunks(extractor, waveform, rng, max_chunk)
        assert streamed.shape == batch.shape
        # Same arithmetic per frame; only BLAS blocking over different row counts may differ.
        np.testing.assert_allclose(streamed, batch, rtol=1e-5, atol=1e-4)


def test_frames_become_ready_only_when_their_samples_have_arrived():
    opts = MfccOptions()
    opts.frame_opts.sample_frequency = 8000
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    waveform = speech_like(8000, 0.5, seed=3)  # 4000 samples -> 50 frames once finished
    extractor = OnlineMfcc(opts)
    extractor.accept_waveform(waveform[:179])
    # Frame 0 spans samples -60..139 (reflected at the start), frame 1 spans 20..219.
    assert extractor.num_frames_ready == 1
    extractor.accept_waveform(waveform[179:220])
    assert extractor.num_frames_ready == 2
    extractor.accept_waveform(waveform[220:])
    # Frame k ends at 80k + 140; the last complete one is k = 48 (ends at 3980 <= 4000).
    assert extractor.num_frames_ready == 49
    assert not extractor.is_last_frame(48)
    extractor.input_finished()
    assert extractor.num_frames_ready == 50 and extractor.is_last_frame(49)
    np.testing.assert_allclose(extractor.get_frames(), knf_mfcc(waveform, opts), atol=1e-3, rtol=0)
    with pytest.raises(InputError, match="after input_finished"):
        extractor.accept_waveform(waveform[:10])


def test_streaming_does_not_keep_the_whole_signal():
    opts = MfccOptions()
    opts.frame_opts.dither = 0.0
    extractor = OnlineMfcc(opts)
    chunk = speech_like(16000, 0.1, seed=4)
    for _ in range(50):
        extractor.accept_waveform(chunk)
    assert extractor.num_frames_ready == 498
    assert extractor._remainder.size <= opts.frame_opts.window_size_samples + 1


def test_batch_output_is_the_callers_and_streamed_views_are_read_only():
    opts = MfccOptions()
    opts.frame_opts.dither = 0.0
    waveform = speech_like(16000, 0.3, seed=5)
    batch = compute_mfcc(waveform, opts)
    batch -= batch.mean(axis=0)  # in-place edits of batch output are fine
    extractor = OnlineMfcc(opts)
    extractor.accept_waveform(waveform)
    with pytest.raises(ValueError):
        extractor.get_frames(0, 2)[0, 0] = 1.0
    opts.num_ceps = 5  # editing the options afterwards does not touch the running extractor
    extractor.input_finished()
    assert extractor.get_frames().shape == (28, 13)


@pytest.mark.parametrize("pipeline_args", [
    dict(cmvn="none", delta_order=2),
    dict(cmvn="none", splice_left=3, splice_right=3, transform_rows=20),
    dict(cmvn="none", delta_order=1, delta_window=3, splice_left=1, splice_right=2),
    dict(cmvn="utterance", norm_vars=True, delta_order=2),
])
def test_online_pipeline_equals_the_batch_pipeline(pipeline_args):
    from kaldilite.feat import (FeaturePipeline, OnlineCmvn, OnlineCmvnOptions, OnlineCmvnState, OnlineFeaturePipeline,
                                cmvn_stats)

    args = dict(pipeline_args)
    rows = args.pop("transform_rows", None)
    rng = np.random.default_rng(6)
    transform = rng.normal(size=(rows, 13 * 7 + 1)) if rows else None
    pipeline = FeaturePipeline(transform=transform, **args)
    opts = MfccOptions()
    opts.frame_opts.dither = 0.0
    waveform = speech_like(16000, 0.9, seed=7)
    batch_mfcc = compute_mfcc(waveform, opts)
    state = OnlineCmvnState(global_stats=cmvn_stats(rng.normal(size=(500, 13))))
    cmvn_opts = OnlineCmvnOptions(norm_vars=pipeline.norm_vars)
    if pipeline.cmvn == "none":
        expected = pipeline.apply(batch_mfcc)
    else:  # online CMVN replaces per-utterance CMVN; the rest of the chain is the batch one
        normalized = OnlineCmvn(batch_mfcc, cmvn_opts, state).get_frames()
        expected = FeaturePipeline(cmvn="none", delta_order=pipeline.delta_order).apply(normalized)
    mfcc = OnlineMfcc(opts)
    online = OnlineFeaturePipeline(mfcc, pipeline, cmvn_opts, state)
    got, position = [], 0
    while position < waveform.size:
        size = int(rng.integers(1, 2500))
        mfcc.accept_waveform(waveform[position:position + size])
        position += size
        assert online.num_frames_ready <= max(0, mfcc.num_frames_ready - online.right_context)
        got.append(online.get_frames(sum(map(len, got)), online.num_frames_ready))
    mfcc.input_finished()
    got.append(online.get_frames(sum(map(len, got)), online.num_frames_ready))
    got = np.concatenate(got)
    assert got.shape == expected.shape == (batch_mfcc.shape[0], pipeline.output_dim(13))
    assert online.is_last_frame(got.shape[0] - 1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("frame_shift", [10.0, 15.0])
def test_odd_frame_length_without_snip_edges_streams_like_batch(frame_shift):
    # 201-sample frames: with a shift over half a frame (15 ms = 120 samples) and 4020 samples,
    # the last frame starts at 3920 and its reflection at the end reaches sample 3919, one
    # before its start, after frame 32 (which ends at 4001) was already computed. The extractor
    # must still hold that sample. (Kaldi's online extractor, and so knf, has already dropped it
    # and reflects around its buffer start instead; Kaldi's offline tools use sample 3919.)
    opts = MfccOptions()
    opts.frame_opts.sample_frequency = 8000
    opts.frame_opts.frame_length = 25.125
    opts.frame_opts.frame_shift = frame_shift
    opts.frame_opts.snip_edges = False
    opts.frame_opts.dither = 0.0
    snipped = MfccOptions()
    snipped.frame_opts = dataclasses.replace(opts.frame_opts, snip_edges=True)
    rng = np.random.default_rng(8)
    for length in [3960, 4020] + list(range(3961, 4100, 13)):
        waveform = speech_like(8000, 0.6, seed=length)[:length]
        batch = compute_mfcc(waveform, opts)
        np.testing.assert_allclose(batch[:-1], knf_mfcc(waveform, opts)[:-1], atol=1e-3, rtol=0)
        # The last frame, built by hand: Kaldi's offline reflection at the end of the signal.
        start = first_sample_of_frame(batch.shape[0] - 1, opts.frame_opts)
        positions = np.arange(start, start + 201)
        positions = np.where(positions >= length, 2 * length - 1 - positions, positions)
        np.testing.assert_allclose(batch[-1:], knf_mfcc(waveform[positions], snipped), atol=1e-3, rtol=0)
        streamed = feed_in_random_chunks(OnlineMfcc(opts), waveform, rng, 120)
        np.testing.assert_allclose(streamed, batch, rtol=1e-5, atol=1e-4)
        whole_then_finish = OnlineMfcc(opts)
        whole_then_finish.accept_waveform(waveform)
        whole_then_finish.input_finished()
        np.testing.assert_allclose(whole_then_finish.get_frames(), batch, rtol=1e-5, atol=1e-4)
