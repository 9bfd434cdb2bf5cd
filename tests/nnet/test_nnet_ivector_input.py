"""An nnet2 model with an online i-vector input (train-nnet2 --online-ivector-dir).

Against hand-built answers: frame t takes i-vector row t // period (a hand-written table); the
model scores exactly like a bare network fed the numpy concatenation [spliced features, repeated
i-vector rows] through the preconditioning, as the file stores it, folded, and after a save/load
round trip; the training examples append the same rows and LDA statistics cover them; and the
refusals: no i-vectors, i-vectors of another extractor, dimension or period, an uncovered utterance,
i-vectors for a model trained without them.
"""

import json
import zipfile

import numpy as np
import pytest

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.feat.functions import splice_frames
from kaldilite.feat.pipeline import FeaturePipeline
from kaldilite.io.tables import write_matrices
from kaldilite.ivector.ivector_dir import OnlineIvectorDir, extractor_id, ivectors_of_frames
from kaldilite.nnet.model import (IvectorInput, NnetAcousticModel, check_online_ivectors, ivector_appended,
                                  load_nnet_model, load_nnet_scorer, save_nnet_model)
from kaldilite.nnet.network import Nnet, NnetEnsemble
from kaldilite.nnet.train import SplicedFrames, accumulate_class_stats
from toy_nnet_models import three_phone_transition_model, trained_looking_nnet

RAW_DIM, SPLICE, IVECTOR_DIM, PERIOD = 4, 2, 3, 10
SPLICED_DIM = RAW_DIM * (2 * SPLICE + 1)
EXTRACTOR_ID = "0123456789abcdef0123456789abcdef"


def test_frame_t_takes_row_t_div_period():
    rows = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
    # written out: frames 0..9 row 0, 10..19 row 1, 20..24 row 2
    expected = np.array([[1.0, -1.0]] * 10 + [[2.0, -2.0]] * 10 + [[3.0, -3.0]] * 5, np.float32)
    np.testing.assert_array_equal(ivectors_of_frames(rows, 25, 10), expected)
    np.testing.assert_array_equal(ivectors_of_frames(rows, 20, 10), expected[:20])  # a third row unused
    np.testing.assert_array_equal(ivectors_of_frames(rows, 3, 1), rows.astype(np.float32))
    with pytest.raises(InputError, match="2 i-vector rows for 21 frames at period 10 .need 3."):
        ivectors_of_frames(rows[:2], 21, 10, "x")


def _model(affine=True, ensemble=False, seed=0):
    tm = three_phone_transition_model()
    rng = np.random.default_rng(seed)
    width = SPLICED_DIM + IVECTOR_DIM
    transform = rng.normal(scale=2.0, size=(width, width + int(affine)))
    nnets = [trained_looking_nnet(width, tm.num_pdfs, rng) for _ in range(2 if ensemble else 1)]
    pipeline = FeaturePipeline(cmvn="utterance", splice_left=SPLICE, splice_right=SPLICE)
    return NnetAcousticModel(tm, NnetEnsemble(nnets) if ensemble else nnets[0], rng.dirichlet(np.ones(tm.num_pdfs)),
                             pipeline, RAW_DIM, "mfcc", prior_scale=0.5,
                             ivector=IvectorInput(IVECTOR_DIM, PERIOD, EXTRACTOR_ID, "exp/extractor/final.ie"),
                             input_transform=transform)


def _by_hand(model, raw, rows):
    """CMVN, splicing, the repeated i-vector rows pasted on (a loop over frames), the float64 affine
    transform, the network's log posteriors minus prior_scale x log prior: written out."""
    spliced = splice_frames(raw - raw.mean(axis=0), SPLICE, SPLICE)
    pasted = np.array([np.concatenate([spliced[t], rows[t // PERIOD]]) for t in range(len(raw))])
    transform = model.input_transform
    x = pasted @ transform[:, :pasted.shape[1]].T
    if transform.shape[1] > pasted.shape[1]:
        x += transform[:, -1]
    posteriors = model.nnet.posteriors(x.astype(np.float32)).astype(np.float64)
    return np.log(np.maximum(posteriors, 1e-20)) - 0.5 * np.log(model.priors)


@pytest.mark.parametrize("affine, ensemble", [(True, False), (False, False), (True, True)])
def test_scores_equal_the_network_on_the_hand_pasted_input_stored_folded_and_reloaded(tmp_path, affine, ensemble):
    model = _model(affine, ensemble)
    rng = np.random.default_rng(2)
    raw = rng.normal(size=(37, RAW_DIM)).astype(np.float32)
    rows = rng.normal(size=(4, IVECTOR_DIM)).astype(np.float32)  # ceil(37 / 10) rows
    expected = _by_hand(model, raw, rows)
    feats = model.pipeline.apply(raw)
    per_frame = ivectors_of_frames(rows, len(raw), PERIOD)
    np.testing.assert_allclose(model.log_likelihoods(feats, per_frame), expected, atol=2e-4)
    # the batch form: the i-vectors already appended
    np.testing.assert_allclose(model.log_likelihoods(model.append_ivectors(feats, per_frame)), expected, atol=2e-4)

    save_nnet_model(tmp_path / "final.mdl", model)
    with zipfile.ZipFile(tmp_path / "final.mdl") as archive:
        header = json.loads(bytes(np.load(archive.open("header.npy"))).decode())
    assert header["version"] == 8  # an older reader must refuse it
    assert header["ivector"] == {"dim": IVECTOR_DIM, "period": PERIOD, "extractor_id": EXTRACTOR_ID,
                                 "extractor": "exp/extractor/final.ie"}
    stored = load_nnet_model(tmp_path / "final.mdl")
    assert stored.ivector == model.ivector and stored.pipeline.transform is None
    np.testing.assert_array_equal(stored.input_transform, model.input_transform)
    scorer = load_nnet_scorer(tmp_path / "final.mdl")
    assert scorer.input_transform is None and scorer.input_dim == SPLICED_DIM + IVECTOR_DIM  # folded
    assert scorer.feature_dim == SPLICED_DIM and scorer.ivector == model.ivector
    np.testing.assert_allclose(scorer.log_likelihoods(feats, per_frame), expected, atol=2e-4)
    assert scorer.describe_input() == ("4-dim mfcc + utterance CMVN, spliced -2/+2 = 20, + 3-dim online i-vector "
                                       "every 10 frames = 23, LDA 23")


def test_scoring_refuses_missing_i_vectors_and_i_vectors_of_the_wrong_shape():
    model = _model()
    feats = np.zeros((12, SPLICED_DIM), np.float32)
    with pytest.raises(InputError, match="trained with online i-vectors .3-dim online i-vector every 10 frames.; "
                                         "decode with --online-ivector-dir"):
        model.log_likelihoods(feats)
    with pytest.raises(DimensionMismatchError, match=r"one 3-dim i-vector per frame; got i-vectors of shape \(12, 4\)"):
        model.log_likelihoods(feats, np.zeros((12, 4)))
    with pytest.raises(DimensionMismatchError, match=r"shape \(11, 3\) for 12 frames"):
        model.log_likelihoods(feats, np.zeros((11, 3)))
    with pytest.raises(DimensionMismatchError, match="expects 20-dim input .* features .without i-vectors. are 21"):
        model.log_likelihoods(np.zeros((12, SPLICED_DIM + 1)), np.zeros((12, 3)))


def _ivector_dir(folder, rows_by_utt, period=PERIOD, ident=EXTRACTOR_ID):
    folder.mkdir(parents=True, exist_ok=True)
    write_matrices(sorted(rows_by_utt.items()), str(folder / "ivector_online.1.ark"),
                   str(folder / "ivector_online.scp"), dtype=np.float32)
    (folder / "ivector_period").write_text(f"{period}\n")
    if ident is not None:
        (folder / "final.ie.id").write_text(f"{ident}\n")
    return folder


def _data_dir(folder, feats_by_utt):
    from kaldilite.io.datadir import DataDir

    folder.mkdir(parents=True, exist_ok=True)
    write_matrices(sorted(feats_by_utt.items()), str(folder / "feats.ark"), str(folder / "feats.scp"))
    DataDir(utt2spk={u: u.split("-")[0] for u in feats_by_utt}).save(folder)
    write_matrices(sorted(feats_by_utt.items()), str(folder / "feats.ark"), str(folder / "feats.scp"))
    return folder


def test_an_ivector_dir_of_another_extractor_dimension_or_period_is_refused_in_one_line(tmp_path):
    model = _model()
    rng = np.random.default_rng(3)
    data = _data_dir(tmp_path / "data", {"a-1": rng.normal(size=(25, RAW_DIM)), "b-1": rng.normal(size=(8, RAW_DIM))})
    good = {"a-1": rng.normal(size=(3, IVECTOR_DIM)), "b-1": rng.normal(size=(1, IVECTOR_DIM))}
    ivectors = check_online_ivectors(model, data, _ivector_dir(tmp_path / "good", good))
    assert ivectors.dim == IVECTOR_DIM and ivectors.period == PERIOD
    cases = [
        (_ivector_dir(tmp_path / "other", good, ident="f" * 32), InputError, "i-vectors of another extractor"),
        (_ivector_dir(tmp_path / "noid", good, ident=None), InputError, "final.ie.id: missing"),
        (_ivector_dir(tmp_path / "dim", {u: np.zeros((3, 5)) for u in good}), InputError, "5-dim i-vectors but"),
        (_ivector_dir(tmp_path / "period", good, period=5), InputError, "period 5 but .* trained on period 10"),
        (_ivector_dir(tmp_path / "few", {"a-1": good["a-1"]}), InputError, "no i-vectors for 1 of the 2 utterances"),
        (tmp_path / "absent", MissingFileError, "no such directory"),
    ]
    for folder, error, pattern in cases:
        with pytest.raises(error, match=pattern) as caught:
            check_online_ivectors(model, data, folder)
        assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="decode with --online-ivector-dir"):
        check_online_ivectors(model, data, None)
    plain = load_plain_model()
    with pytest.raises(InputError, match="trained without i-vectors .* drop --online-ivector-dir"):
        check_online_ivectors(plain, data, tmp_path / "good")
    assert check_online_ivectors(plain, data, None) is None


def load_plain_model():
    rng = np.random.default_rng(0)
    tm = three_phone_transition_model()
    nnet = Nnet.pnorm(SPLICED_DIM, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    return NnetAcousticModel(tm, nnet, None, FeaturePipeline(cmvn="none", splice_left=SPLICE, splice_right=SPLICE),
                             RAW_DIM)


def test_a_dir_stream_appends_each_utterances_rows_by_the_period_rule(tmp_path):
    model = _model()
    rng = np.random.default_rng(4)
    rows = {"a-1": rng.normal(size=(3, IVECTOR_DIM)), "a-2": rng.normal(size=(1, IVECTOR_DIM))}
    ivectors = OnlineIvectorDir(_ivector_dir(tmp_path / "iv", rows))
    feats = [("a-1", rng.normal(size=(21, SPLICED_DIM))), ("a-2", rng.normal(size=(10, SPLICED_DIM)))]
    out = dict(ivector_appended(model, iter(feats), ivectors))
    for utt, f in feats:
        hand = np.array([np.concatenate([f[t], rows[utt][t // PERIOD]]) for t in range(len(f))], np.float32)
        np.testing.assert_array_equal(out[utt], hand)


def test_a_dir_stacked_for_training_indexes_each_frames_row_in_the_concatenated_rows(tmp_path):
    rows = {"a-1": np.arange(6.0).reshape(3, 2), "a-2": np.array([[10.0, 11.0]])}
    ivectors = OnlineIvectorDir(_ivector_dir(tmp_path / "iv", rows, period=2))
    stacked, row_of_frame = ivectors.stacked(["a-2", "a-1"], [2, 5])
    np.testing.assert_array_equal(stacked, [[10, 11], [0, 1], [2, 3], [4, 5]])
    # written out: a-2's frames 0,1 -> its row 0 (stacked row 0); a-1's frames 0..4 -> rows 0,0,1,1,2 (+1)
    np.testing.assert_array_equal(row_of_frame, [0, 0, 1, 1, 2, 2, 3])
    assert row_of_frame.dtype == np.int64
    with pytest.raises(InputError, match=r"\(a-2\): 1 i-vector rows for 3 frames at period 2 .need 2."):
        ivectors.stacked(["a-2"], [3])


def test_extractor_id_is_the_md5_of_final_ie(tmp_path):
    import hashlib

    (tmp_path / "final.ie").write_bytes(b"not really an extractor")
    assert extractor_id(tmp_path) == hashlib.md5(b"not really an extractor").hexdigest()
    assert extractor_id(tmp_path / "final.ie") == extractor_id(tmp_path)


def test_training_examples_paste_the_frames_rows_after_the_spliced_context_and_lda_stats_cover_them():
    rng = np.random.default_rng(5)
    lengths = [7, 12]
    frames = rng.normal(size=(sum(lengths), 2)).astype(np.float32)
    offsets = np.array([0, 7, 19])
    period = 5
    rows = [rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 3)).astype(np.float32)]
    row_of_frame = np.concatenate([np.arange(7) // period, 2 + np.arange(12) // period])
    examples = SplicedFrames(frames, offsets, 1, ivectors=np.concatenate(rows), ivector_rows=row_of_frame)
    hand = []
    for k, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
        spliced = splice_frames(frames[start:end], 1, 1)
        hand += [np.concatenate([spliced[t], rows[k][t // period]]) for t in range(end - start)]
    hand = np.array(hand, np.float32)
    assert examples.input_dim == 9 and examples.shape == (19, 9)
    np.testing.assert_array_equal(examples[np.arange(19)], hand)
    mask = np.arange(19) % 3 == 0
    np.testing.assert_array_equal(examples.subset(mask)[slice(None)], hand[mask])
    transform = rng.normal(size=(9, 10))
    np.testing.assert_allclose(examples.with_transform(transform)[np.arange(19)],
                               hand @ transform[:, :9].T + transform[:, 9], rtol=1e-5, atol=1e-5)
    labels = np.arange(19) % 2
    stats = accumulate_class_stats(examples, labels, 2, chunk=4)
    hand64 = hand.astype(np.float64)
    np.testing.assert_allclose(stats.sums, [hand64[labels == c].sum(axis=0) for c in (0, 1)], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats.scatter, hand64.T @ hand64, rtol=1e-6, atol=1e-9)
