"""Online i-vectors: at each period boundary they equal the offline i-vector of the frames so far;
streaming in chunks gives the same frames; a speaker's stats carry over (and are capped); model files."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.ivector.model import IvectorModel, load_ivector_model, save_ivector_model
from kaldilite.ivector.online import (MatrixSource, OnlineIvectorExtractionConfig, OnlineIvectorFeature,
                                      extract_ivectors_online)
from kaldilite.ivector.ubm import gselect_posteriors


def _offline(ubm, extractor, frames, config):
    post = gselect_posteriors(ubm, frames, config.num_gselect, config.min_post)[0] * config.posterior_scale
    return extractor.extract(post.sum(axis=0)[None], (post.T @ frames)[None])[0]


def test_online_ivectors_equal_offline_ones_at_period_boundaries(corpus, system):
    ubm, extractor = system
    config = OnlineIvectorExtractionConfig(ivector_period=7)
    frames = corpus.utterances[150][:45]
    (utt, rows), = extract_ivectors_online([("u1", frames)], ubm, extractor, config)
    assert utt == "u1" and rows.shape == (7, 3)  # ceil(45 / 7)
    for i, row in enumerate(rows):
        np.testing.assert_allclose(row, _offline(ubm, extractor, frames[:i * 7 + 1], config), rtol=1e-5, atol=1e-5)


class _GrowingSource(MatrixSource):
    """Frames arriving in chunks."""

    def __init__(self, feats):
        super().__init__(feats)
        self.ready = 0

    @property
    def num_frames_ready(self):
        return self.ready

    def is_last_frame(self, frame):
        return self.ready == len(self.feats) and frame == self.ready - 1


def test_streaming_in_chunks_gives_the_same_frames(corpus, system):
    ubm, extractor = system
    config = OnlineIvectorExtractionConfig(ivector_period=10)
    frames = corpus.utterances[151][:63]
    whole = OnlineIvectorFeature(MatrixSource(frames), ubm, extractor, config).get_frames()
    assert whole.shape == (63, 3)
    source = _GrowingSource(frames)
    stream = OnlineIvectorFeature(source, ubm, extractor, config)
    got = []
    for chunk in (5, 1, 17, 30, 10):
        source.ready += chunk
        got.append(stream.get_frames(sum(len(g) for g in got), stream.num_frames_ready))
    assert stream.is_last_frame(62)
    np.testing.assert_array_equal(np.concatenate(got), whole)
    # one i-vector per frame: frame t carries the i-vector of frame 10 * (t // 10)
    np.testing.assert_array_equal(whole[:, :], np.repeat(whole[::10], 10, axis=0)[:63])


def test_a_speakers_stats_carry_over_to_the_next_utterance(corpus, system):
    ubm, extractor = system
    first, second = corpus.utterances[152][:40], corpus.utterances[153][:25]
    config = OnlineIvectorExtractionConfig(ivector_period=10, max_remembered_frames=1e9)
    out = dict(extract_ivectors_online([("a", first), ("b", second)], ubm, extractor, config,
                                       utt2spk={"a": "s", "b": "s"}))
    np.testing.assert_allclose(out["b"][1], _offline(ubm, extractor, np.concatenate([first, second[:11]]), config),
                               rtol=1e-5, atol=1e-5)
    # another speaker starts afresh
    alone = dict(extract_ivectors_online([("b", second)], ubm, extractor, config))
    np.testing.assert_allclose(alone["b"][1], _offline(ubm, extractor, second[:11], config), rtol=1e-5, atol=1e-5)
    # max-remembered-frames: the carried stats weigh as that many frames (scaled by the posterior scale)
    capped = OnlineIvectorExtractionConfig(ivector_period=10, max_remembered_frames=8)
    feature = OnlineIvectorFeature(MatrixSource(first), ubm, extractor, capped)
    feature.get_frames()
    state = feature.adaptation_state()
    assert state.stats.num_frames == pytest.approx(8 * 0.1)
    post = gselect_posteriors(ubm, first)[0] * 0.1
    scale = 0.8 / post.sum()
    expected = extractor.posteriors(scale * post.sum(axis=0)[None], scale * (post.T @ first)[None])[0][0]
    np.testing.assert_allclose(state.stats.ivector(), expected, rtol=1e-9)


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="--ivector-period"):
        OnlineIvectorExtractionConfig(ivector_period=0).check()
    with pytest.raises(InputError, match="--posterior-scale"):
        OnlineIvectorExtractionConfig(posterior_scale=0.0).check()


def test_model_file_round_trip_and_refusals(tmp_path, system):
    from kaldilite.feat.pipeline import FeaturePipeline

    ubm, extractor = system
    pipeline = FeaturePipeline(cmvn="none", splice_left=1, splice_right=1,
                               transform=np.arange(12.0).reshape(4, 3) / 10)
    path = tmp_path / "final.ie"
    save_ivector_model(path, IvectorModel(ubm, pipeline, extractor, {"num_gselect": 5}))
    model = load_ivector_model(path, need_extractor=True)
    np.testing.assert_array_equal(model.extractor.projections, extractor.projections)
    assert model.extractor.prior_offset == extractor.prior_offset
    np.testing.assert_array_equal(model.ubm.means, ubm.means)
    assert model.pipeline == pipeline and model.options == {"num_gselect": 5}
    save_ivector_model(tmp_path / "final.dubm", IvectorModel(ubm, pipeline))
    with pytest.raises(InputError, match="not an i-vector extractor"):
        load_ivector_model(tmp_path / "final.dubm", need_extractor=True)
    with pytest.raises(FileNotFoundError, match="train-ivector-extractor"):
        load_ivector_model(tmp_path / "missing.ie", need_extractor=True)
    with pytest.raises(InputError, match="expects 4-dim"):
        extractor.check_dim(np.zeros((3, 5)))


def test_offline_ivectors_per_utterance_and_per_speaker(corpus, system):
    from kaldilite.ivector.online import extract_ivectors_offline

    ubm, extractor = system
    config = OnlineIvectorExtractionConfig(ivector_period=10)
    a, b, c = corpus.utterances[160][:41], corpus.utterances[161][:30], corpus.utterances[162][:21]
    per_utt = extract_ivectors_offline([("a", a), ("b", b), ("c", c)], ubm, extractor, config)
    # an utterance's i-vector is the online one once all its frames are in (41 frames: the row at frame 40)
    (_, rows), = extract_ivectors_online([("a", a)], ubm, extractor, config)
    np.testing.assert_allclose(per_utt["a"], rows[-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(per_utt["b"], _offline(ubm, extractor, b, config), rtol=1e-12)
    per_spk = extract_ivectors_offline([("a", a), ("b", b), ("c", c)], ubm, extractor, config,
                                       utt2spk={"a": "s1", "b": "s2", "c": "s1"})
    assert set(per_spk) == {"s1", "s2"}
    np.testing.assert_allclose(per_spk["s1"], _offline(ubm, extractor, np.concatenate([a, c]), config), rtol=1e-10)
    with pytest.raises(InputError, match="expects 4-dim"):
        extract_ivectors_offline([("x", np.zeros((5, 3)))], ubm, extractor, config)
