"""add-deltas, splice-feats, transform-feats and the FeaturePipeline that chains them with CMVN."""

import json

import numpy as np
import pytest

from knf_reference import knf

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.feat import (FeaturePipeline, add_deltas, apply_cmvn, cmvn_stats, global_cmvn_stats, load_features,
                            splice_frames, transform_features)


def kaldi_delta_reference(feats, order, window):
    """Kaldi's DeltaFeatures written out directly: scales by repeated convolution, edge frames repeated."""
    scales = [np.array([1.0])]
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur = np.zeros(len(prev) + 2 * window)
        cur_offset = prev_offset + window
        normalizer = 0.0
        for j in range(-window, window + 1):
            normalizer += j * j
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append(cur / normalizer)
    num_frames, dim = feats.shape
    out = np.zeros((num_frames, dim * (order + 1)))
    for t in range(num_frames):
        for i, scale in enumerate(scales):
            max_offset = (len(scale) - 1) // 2
            for j in range(-max_offset, max_offset + 1):
                source = min(max(t + j, 0), num_frames - 1)
                out[t, i * dim:(i + 1) * dim] += scale[j + max_offset] * feats[source]
    return out


@pytest.mark.parametrize("order, window", [(2, 2), (1, 2), (3, 1), (0, 2)])
def test_deltas_follow_kaldis_formula(order, window):
    feats = np.array([[1.0, -2.0], [4.0, 0.5], [9.0, 3.0], [16.0, 2.0], [25.0, -1.0], [36.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(add_deltas(feats, order, window), kaldi_delta_reference(feats, order, window), atol=1e-5)


def test_deltas_by_hand_and_against_knf():
    # A linear ramp x_t = t has delta 1 away from the edges and delta-delta 0 in the middle.
    ramp = np.arange(10, dtype=np.float32)[:, None]
    out = add_deltas(ramp)
    np.testing.assert_allclose(out[4:6, 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[4:6, 2], 0.0, atol=1e-6)
    # Frame 0 with window 2: (1*(x1 - x_-1) + 2*(x2 - x_-2)) / 10 = (1*1 + 2*2) / 10 with x_-k = x0 = 0.
    assert out[0, 1] == pytest.approx(0.5)
    feats = np.random.default_rng(0).normal(size=(40, 13)).astype(np.float32)
    opts = knf.DeltaOptions()
    np.testing.assert_allclose(add_deltas(feats), knf.compute_deltas(opts, feats), atol=1e-5)


def test_splice_by_hand():
    feats = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    np.testing.assert_array_equal(splice_frames(feats, 1, 2), [
        [1, 2, 1, 2, 3, 4, 5, 6],
        [1, 2, 3, 4, 5, 6, 5, 6],
        [3, 4, 5, 6, 5, 6, 5, 6],
    ])
    np.testing.assert_array_equal(splice_frames(feats, 0, 0), feats)
    with pytest.raises(InputError, match="non-empty"):
        splice_frames(np.zeros((0, 2)), 1, 1)


def test_transform_linear_and_affine_by_hand():
    feats = np.array([[1, 2], [3, 4]], dtype=np.float32)
    np.testing.assert_allclose(transform_features(feats, [[1, 1], [0, 2], [1, -1]]), [[3, 4, -1], [7, 8, -1]])
    np.testing.assert_allclose(transform_features(feats, [[1, 1, 10], [0, 2, -1]]), [[13, 3], [17, 7]])
    with pytest.raises(DimensionMismatchError, match="does not fit features of dimension 2"):
        transform_features(feats, np.eye(4))


def test_pipeline_runs_cmvn_deltas_splice_transform_in_kaldis_order():
    rng = np.random.default_rng(1)
    feats = rng.normal(3, 2, size=(20, 4)).astype(np.float32)
    speaker = cmvn_stats(rng.normal(2, 1, size=(50, 4)))
    lda = rng.normal(size=(6, 4 * 3 * 3 + 1))
    pipeline = FeaturePipeline(cmvn="speaker", norm_vars=True, delta_order=2, splice_left=1, splice_right=1, transform=lda)
    expected = transform_features(splice_frames(add_deltas(apply_cmvn(feats, speaker, True)), 1, 1), lda)
    np.testing.assert_allclose(pipeline.apply(feats, speaker), expected, rtol=1e-5, atol=1e-5)
    assert pipeline.output_dim(4) == 6 and pipeline.spliced_dim(4) == 36
    assert FeaturePipeline(cmvn="none", delta_order=2).output_dim(13) == 39
    assert FeaturePipeline(cmvn="utterance", splice_left=3, splice_right=3).output_dim(13) == 91
    with pytest.raises(DimensionMismatchError, match="37-dim input .36-dim if affine. but 13-dim features give 117"):
        pipeline.output_dim(13)
    utterance = FeaturePipeline(cmvn="utterance")
    np.testing.assert_allclose(utterance.apply(feats).mean(axis=0), 0.0, atol=1e-5)
    with pytest.raises(InputError, match="needs per-speaker CMVN stats"):
        pipeline.apply(feats)


def test_pipeline_survives_json_round_trip_exactly():
    lda = np.random.default_rng(2).normal(size=(3, 5))
    pipeline = FeaturePipeline(cmvn="utterance", norm_vars=True, splice_left=2, splice_right=2, transform=lda)
    back = FeaturePipeline.from_dict(json.loads(json.dumps(pipeline.to_dict())))
    assert back == pipeline and back.transform.dtype == np.float64
    np.testing.assert_array_equal(back.transform, lda)
    assert FeaturePipeline().with_transform(lda).transform.shape == (3, 5)
    with pytest.raises(InputError, match="cmvn must be one of"):
        FeaturePipeline(cmvn="global")
    with pytest.raises(InputError, match="unknown fields"):
        FeaturePipeline.from_dict({"cmvn": "none", "vtln": 1})


def write_data_dir(tmp_path, rng):
    from kaldilite.io.tables import write_matrices

    data = tmp_path / "data"
    data.mkdir()
    utt2spk = {"a-1": "a", "a-2": "a", "b-1": "b"}
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
    (data / "spk2utt").write_text("a a-1 a-2\nb b-1\n")
    feats = {u: rng.normal(i, 1, size=(10 + i, 3)).astype(np.float32) for i, u in enumerate(utt2spk)}
    write_matrices(sorted(feats.items()), tmp_path / "raw.ark", data / "feats.scp")
    stats = {"a": cmvn_stats(np.concatenate([feats["a-1"], feats["a-2"]])), "b": cmvn_stats(feats["b-1"])}
    write_matrices(sorted(stats.items()), tmp_path / "cmvn.ark", data / "cmvn.scp", dtype=np.float64)
    return data, feats, stats


def test_load_features_applies_each_speakers_stats(tmp_path):
    data, feats, stats = write_data_dir(tmp_path, np.random.default_rng(3))
    pipeline = FeaturePipeline(cmvn="speaker", delta_order=1)
    got = dict(load_features(data, pipeline))
    assert list(got) == ["a-1", "a-2", "b-1"]
    for utt, speaker in (("a-1", "a"), ("a-2", "a"), ("b-1", "b")):
        np.testing.assert_allclose(got[utt], add_deltas(apply_cmvn(feats[utt], stats[speaker]), 1), atol=1e-5)
    # Speaker a's two utterances together have zero mean after speaker CMVN.
    both = np.concatenate([got["a-1"], got["a-2"]])[:, :3]
    np.testing.assert_allclose(both.mean(axis=0), 0.0, atol=1e-5)
    assert list(dict(load_features(data, pipeline, utterances=["b-1"]))) == ["b-1"]
    np.testing.assert_allclose(global_cmvn_stats(data), cmvn_stats(np.concatenate(list(feats.values()))), rtol=1e-10)
    (data / "cmvn.scp").unlink()
    with pytest.raises(MissingFileError, match="run compute-cmvn-stats"):
        next(load_features(data, pipeline))
    assert len(dict(load_features(data, FeaturePipeline(cmvn="utterance")))) == 3


def test_online_cmvn_pipeline_refuses_one_utterance_alone_and_without_cmvn_keeps_the_other_steps():
    # online CMVN normalizes an utterance with its speaker's earlier ones: apply() on one utterance
    # cannot know them (it used to take the global prior alone, as for a new speaker, silently)
    rng = np.random.default_rng(3)
    feats = rng.normal(3, 2, size=(20, 4)).astype(np.float32)
    stats = cmvn_stats(rng.normal(2, 1, size=(50, 4)))
    lda = rng.normal(size=(5, 4 * 3 * 3))
    online = FeaturePipeline(cmvn="online", online_cmvn_stats=stats, delta_order=2, splice_left=1, splice_right=1,
                             transform=lda)
    with pytest.raises(InputError, match="online CMVN carries stats across a speaker's utterances.*load_features"):
        online.apply(feats, where="feats.scp (u1)")
    rest = online.without_cmvn()
    assert rest.cmvn == "none" and rest.online_cmvn_stats is None and online.cmvn == "online"
    np.testing.assert_allclose(rest.apply(feats), transform_features(splice_frames(add_deltas(feats), 1, 1), lda),
                               rtol=1e-5, atol=1e-5)
