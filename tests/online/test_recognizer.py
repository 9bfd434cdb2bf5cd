"""The online recognizer on real speech: streaming equals offline, agreement, continuous commands, gaps."""

import dataclasses

import numpy as np
import pytest

from online_helpers import RATE, fsdd

TEST_UTTERANCES = ["3_theo_7", "8_theo_20", "0_yweweler_11", "6_yweweler_30", "4_theo_41", "9_yweweler_2"]


def stream(recognizer, wave, step=80):
    results = []
    for pos in range(0, len(wave), step):
        results += recognizer.accept(wave[pos:pos + step])
    return results + recognizer.input_finished()


def offline_on_online_cmvn(bundle, wave):
    """The offline decoder on features normalized by online CMVN over the whole utterance at once."""
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.cmvn import OnlineCmvn
    from kaldilite.feat.extract import compute_mfcc

    raw = compute_mfcc(wave, bundle.mfcc_opts)
    normalized = OnlineCmvn(raw, bundle.cmvn_opts, bundle.cmvn_state()).get_frames(0, len(raw))
    feats = bundle.pipeline.without_cmvn().apply(normalized)
    o = bundle.online_opts
    return decode_utterance(bundle.graph, bundle.scorer.log_likelihoods(feats), bundle.tid_to_pdf, beam=o.beam,
                            max_active=o.max_active, min_active=o.min_active, acoustic_scale=o.acoustic_scale)


@pytest.mark.parametrize("step", [80, 37, 800])
def test_streaming_in_small_chunks_equals_the_offline_decoder_on_the_same_features(digits_bundle, fsdd_dir, step):
    from kaldilite.online.recognizer import OnlineRecognizer

    opts = dataclasses.replace(digits_bundle.online_opts, do_endpointing=False, chunk_length=0.01)
    for name in TEST_UTTERANCES:
        wave = fsdd(fsdd_dir, name)
        recognizer = OnlineRecognizer(digits_bundle, opts)
        results = stream(recognizer, wave, step)
        offline = offline_on_online_cmvn(digits_bundle, wave)
        words = tuple(digits_bundle.words.symbol(w) for w in offline.words)
        assert len(results) == 1 and results[0].words == words, name
        online = recognizer.decoder.finalize()
        assert online.cost == pytest.approx(offline.cost, rel=1e-5)
        np.testing.assert_array_equal(online.alignment, offline.alignment)


def test_online_words_agree_with_the_offline_decode_on_a_sample_of_the_test_set(digits_bundle, digits_system):
    """Offline = the recipe's decode (feats.scp, per-speaker CMVN). Online: each speaker's CMVN
    statistics carried from utterance to utterance, as Kaldi's online2 tools do per speaker."""
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.pipeline import load_features
    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.online.recognizer import OnlineRecognizer

    data = DataDir.load(digits_system / "data/test")
    sample = sorted(data.wav_scp)[::25]  # 40 utterances, both test speakers, all digits
    o = digits_bundle.online_opts
    offline = {}
    for utt, feats in load_features(digits_system / "data/test", digits_bundle.pipeline, sample):
        r = decode_utterance(digits_bundle.graph, digits_bundle.scorer.log_likelihoods(feats),
                             digits_bundle.tid_to_pdf, beam=o.beam, acoustic_scale=o.acoustic_scale)
        offline[utt] = tuple(digits_bundle.words.symbol(w) for w in r.words)
    recognizers = {}
    same = 0
    for utt in sample:
        speaker = data.utt2spk[utt]
        recognizer = recognizers.setdefault(speaker, OnlineRecognizer(digits_bundle))
        recognizer.new_stream(utt)  # the speaker's next file; CMVN statistics carried over
        results = stream(recognizer, read_audio(data.wav_scp[utt]), 80)
        same += tuple(w for r in results for w in r.words) == offline[utt]
    assert same >= 0.9 * len(sample)  # 97.6% on the whole test set (BENCHMARKS.md, online)


def test_continuous_audio_gives_each_command_and_rejects_the_oov_words_in_order(commands_bundle, continuous_stream):
    from kaldilite.online.recognizer import OnlineRecognizer

    wave, expected = continuous_stream
    recognizer = OnlineRecognizer(commands_bundle)
    results, heard = [], []  # heard: seconds of audio fed when each result came out
    for pos in range(0, len(wave), 80):
        for result in recognizer.accept(wave[pos:pos + 80]):
            results.append(result)
            heard.append(min(pos + 80, len(wave)) / recognizer.model_rate)
    assert [r.text for r in results] == [word for word, _, _ in expected]
    for result, at, (_, start, end) in zip(results, heard, expected):
        assert start - 0.05 <= result.start < result.end <= end + 0.05  # inside its recording
        assert result.endpoint.startswith("rule")
        # the audio that had to be heard after the word (endpoint rule + look-ahead): deterministic, unlike
        # the processing delay the reported latency adds on top (wall clock: a loaded machine only adds)
        assert 0.0 < at - result.end < 0.6
        assert result.latency >= at - result.end - 1e-9
    assert [r.reason for r in results if not r.accepted] == ["filler", "filler"]


def test_the_vad_gate_gives_the_same_sequence(commands_bundle, continuous_stream):
    from kaldilite.online.recognizer import OnlineRecognizer

    wave, expected = continuous_stream
    opts = dataclasses.replace(commands_bundle.online_opts,
                               vad_opts=dataclasses.replace(commands_bundle.online_opts.vad_opts, vad=True))
    results = stream(OnlineRecognizer(commands_bundle, opts), wave, 160)
    assert [r.text for r in results] == [word for word, _, _ in expected]


def chunked(recognizer, wave, sizes):
    """Feed `wave` in chunks of the given sizes, cycling through them."""
    results, pos, k = [], 0, 0
    while pos < len(wave):
        results += recognizer.accept(wave[pos:pos + sizes[k % len(sizes)]])
        pos += sizes[k % len(sizes)]
        k += 1
    return results + recognizer.input_finished()


def test_results_do_not_depend_on_how_the_source_chunks_the_audio(commands_bundle, continuous_stream):
    """Endpoints are checked at fixed stream positions (every --chunk-length), so a source's block
    size or a resampler's delay cannot move an endpoint and with it the next utterance's start.
    (Before, a first chunk of 70 samples instead of 80 moved one endpoint by a frame and the trailing
    pause came out as "eight".)"""
    from kaldilite.online.recognizer import OnlineRecognizer

    wave, _ = continuous_stream

    def outcome(sizes):
        return [(r.text, r.reason, r.endpoint, r.num_frames, round(r.start, 4), round(r.end, 4), r.confidence)
                for r in chunked(OnlineRecognizer(commands_bundle), wave, sizes)]

    reference = outcome([80])
    assert len(reference) == 6
    for sizes in ([70, 80, 80, 80, 80], [37], [1000], [13, 500, 211]):
        assert outcome(sizes) == reference, sizes


def test_audio_at_another_rate_is_resampled_on_the_fly(commands_bundle, continuous_stream):
    from kaldilite.io.audio import resample
    from kaldilite.online.recognizer import OnlineRecognizer

    wave, expected = continuous_stream
    at_48k = resample(wave, RATE, 48000)
    results = stream(OnlineRecognizer(commands_bundle, sample_rate=48000), at_48k, 480)
    assert [r.text for r in results] == [word for word, _, _ in expected]
    for result, (_, start, end) in zip(results, expected):
        assert start - 0.05 <= result.start < result.end <= end + 0.05
    # exactly what the model-rate recognizer gives on the same audio resampled back in one piece: the
    # streamed resampling changes nothing but the rate (the 48 kHz round trip itself is not lossless:
    # ~42 dB SNR, the loss above 3.5 kHz)
    offline = stream(OnlineRecognizer(commands_bundle), resample(at_48k, 48000, RATE), 80)
    assert [(r.text, r.reason, r.endpoint, r.num_frames, r.start, r.end, r.confidence) for r in results] == \
        [(r.text, r.reason, r.endpoint, r.num_frames, r.start, r.end, r.confidence) for r in offline]


def test_dropped_audio_ends_the_utterance_there_and_recognition_resumes_after_it(commands_bundle,
                                                                                continuous_stream):
    from kaldilite.online.recognizer import OnlineRecognizer

    wave, expected = continuous_stream
    recognizer = OnlineRecognizer(commands_bundle)
    _, seven_start, seven_end = expected[2]
    gap_from, gap_to = int(seven_start * RATE) - 800, int(seven_end * RATE) + 800  # "seven" is lost
    results = []
    for pos in range(0, len(wave), 80):
        if gap_from <= pos < gap_to:
            continue
        results += recognizer.accept(wave[pos:pos + 80], start=pos)
    results += recognizer.input_finished()
    assert recognizer.num_overruns == 1
    assert [r.text for r in results] == ["two", "<rejected>", "zero", "<rejected>", "three"]
    assert results[2].start > seven_end  # times stay stream times after the gap


def test_partial_results_grow_into_the_final_one(commands_bundle, fsdd_dir):
    from kaldilite.online.recognizer import OnlineRecognizer

    seen = []
    recognizer = OnlineRecognizer(commands_bundle, on_partial=seen.append)
    results = stream(recognizer, fsdd(fsdd_dir, "7_jackson_3"), 80)
    assert results[0].words == ("seven",)
    assert seen[-1] == ("seven",) and () in seen[:1]


def test_a_wide_lattice_beam_reaches_the_decoders_link_pruning(digits_bundle, fsdd_dir, monkeypatch):
    """With --lattice-beam 12 (above the decoder's default 6), the streamed decoder's lattice holds the
    same word sequences at the same costs as one decoder run over the whole utterance with that beam:
    the periodic link pruning (forced here every few thousand links, as on a long stream) uses the
    rule's beam, not the default."""
    from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
    from kaldilite.feat.cmvn import OnlineCmvn
    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.online.recognizer import OnlineRecognizer

    monkeypatch.setattr(BeamDecoder, "prune_links_at", 2000)
    beam = 12.0
    opts = dataclasses.replace(digits_bundle.online_opts, do_endpointing=False, chunk_length=0.01, lattice_beam=beam)
    wider = 0
    for name in TEST_UTTERANCES:
        wave = fsdd(fsdd_dir, name)
        recognizer = OnlineRecognizer(digits_bundle, opts)
        stream(recognizer, wave)
        online = recognizer.decoder.get_lattice(beam).nbest(50, opts.acoustic_scale)

        raw = compute_mfcc(wave, digits_bundle.mfcc_opts)
        normalized = OnlineCmvn(raw, digits_bundle.cmvn_opts, digits_bundle.cmvn_state()).get_frames(0, len(raw))
        feats = digits_bundle.pipeline.without_cmvn().apply(normalized)
        whole = BeamDecoder(digits_bundle.graph, digits_bundle.tid_to_pdf,
                            DecoderOptions(beam=opts.beam, max_active=opts.max_active, min_active=opts.min_active,
                                           acoustic_scale=opts.acoustic_scale, lattice_beam=beam), lattice=True)
        whole.init()
        whole.advance(digits_bundle.scorer.log_likelihoods(feats))
        offline = whole.get_lattice(beam).nbest(50, opts.acoustic_scale)
        assert [w for w, _ in online] == [w for w, _ in offline], name
        np.testing.assert_allclose([c for _, c in online], [c for _, c in offline], rtol=1e-5)
        best = offline[0][1]
        wider += sum(6.0 < c - best <= beam for _, c in offline)
    assert wider > 0  # some sequence lies between the default beam and this one: the test can tell them apart
