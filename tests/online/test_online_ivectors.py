"""decode-online with an nnet2 model that takes online i-vectors (train-nnet2 --online-ivector-dir).

The model is a small p-norm network on the digits mono system's transition model, with online
CMVN, splicing and a 4-dim i-vector input from an extractor on a UBM trained on the digits training
speakers (random weights: the test is about what the online path feeds the network, not what it
recognizes). The independent answer is the batch path the nnet2 scripts take: features of the whole
clip (apply-cmvn-online carried through the speaker's clips in order), i-vectors from
`extract_ivectors_online` on them (ivector-extract-online2: the stats carried through the speaker's
clips, row i at frame i * period) repeated per frame as decode-nnet2 --online-ivector-dir reads them,
scored by the model and decoded by the offline decoder. decode-online must give the same words, cost
and alignment on every clip, with the i-vector state carried from clip to clip of a speaker and reset
for a new one (all frames carried at full weight, --cmvn-silence-weight 1, as apply-cmvn-online and
ivector-extract-online2 carry them: the random network puts no frame on silence, so the default would
agree by accident, not by design); and the i-vectors must matter (the same clips scored with other
i-vectors decode differently), so that agreement is not an accident of a network that ignores them.
"""

import copy
import dataclasses

import numpy as np
import pytest
from online_helpers import MFCC_CONF, fsdd

IVECTOR_DIM, PERIOD = 4, 10
SPEAKERS = {"jackson": ["2_jackson_1", "7_jackson_3", "0_jackson_4"], "theo": ["3_theo_7", "8_theo_20"]}


@pytest.fixture(scope="module")
def ivector_system(digits_system, tmp_path_factory):
    """(exp dir with final.mdl, extractor dir with final.ie): a network with an i-vector input."""
    from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats, load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.ivector.extractor import IvectorExtractor
    from kaldilite.ivector.ivector_dir import extractor_id
    from kaldilite.ivector.model import IvectorModel, save_ivector_model
    from kaldilite.ivector.ubm import train_diag_ubm
    from kaldilite.nnet.model import IvectorInput, NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.network import Nnet

    tmp = tmp_path_factory.mktemp("ivector_system")
    train = digits_system / "data/train"
    stats = global_cmvn_stats(train)
    # the extractor's own pipeline, as train-diag-ubm makes it: online CMVN, splice +-1
    ivector_pipeline = FeaturePipeline(cmvn="online", online_cmvn_stats=stats, splice_left=1, splice_right=1)
    utts = sorted(line.split()[0] for line in (train / "feats.scp").read_text().splitlines())[::20]
    frames = np.concatenate([f for _, f in load_features(train, ivector_pipeline, utts)])
    ubm, _ = train_diag_ubm(frames, 8, num_iters_init=5, num_iters=2, rng=np.random.default_rng(0))
    extractor = IvectorExtractor.init_from_ubm(ubm.means, ubm.variances, np.exp(ubm.log_weights), IVECTOR_DIM,
                                               rng=np.random.default_rng(1))
    (tmp / "extractor").mkdir()
    save_ivector_model(tmp / "extractor/final.ie", IvectorModel(ubm, ivector_pipeline, extractor, {
        "num_gselect": 3, "min_post": 0.025, "posterior_scale": 0.1}))

    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    rng = np.random.default_rng(2)
    pipeline = FeaturePipeline(cmvn="online", online_cmvn_stats=stats, splice_left=2, splice_right=2)
    width = 13 * 5 + IVECTOR_DIM
    transform = np.eye(width, width + 1)
    transform[-IVECTOR_DIM:, -IVECTOR_DIM - 1:-1] *= 3.0  # i-vectors weigh as much as the features
    nnet = Nnet.pnorm(width, tm.num_pdfs, num_hidden_layers=2, pnorm_input_dim=60, pnorm_output_dim=20, rng=rng)
    nnet.output_affine.weight[...] = 2.0 * rng.standard_normal(nnet.output_affine.weight.shape)
    model = NnetAcousticModel(tm, nnet, rng.dirichlet(np.ones(tm.num_pdfs) * 5), pipeline, 13, "mfcc",
                              ivector=IvectorInput(IVECTOR_DIM, PERIOD, extractor_id(tmp / "extractor/final.ie"),
                                                   str(tmp / "extractor/final.ie")),
                              input_transform=transform)
    (tmp / "nnet").mkdir()
    save_nnet_model(tmp / "nnet/final.mdl", model)
    return tmp / "nnet", tmp / "extractor"


@pytest.fixture(scope="module")
def ivector_bundle(ivector_system, digits_system):
    from kaldilite.online.bundle import ModelBundle, export_model

    exp, extractor = ivector_system
    graph = digits_system / "exp/mono/graph"  # the network has the mono system's transition model
    out = exp.parent / "bundle"
    export_model(exp, graph, out, mfcc_config=MFCC_CONF, ivector_extractor=extractor)
    bundle = ModelBundle.load(out)
    bundle.mfcc_opts = copy.deepcopy(bundle.mfcc_opts)
    bundle.mfcc_opts.frame_opts.dither = 0.0  # the batch answer computes its MFCC separately
    return bundle


def _batch_answer(bundle, clips, first_frame_weight=1.0):
    """{clip: (words, cost, alignment)} of the batch path over one speaker's clips in order.

    first_frame_weight: the weight of each clip's frame 0 in its first i-vector (row 0), the others weighing
    1 (the carried stats and the later rows take every frame at weight 1)."""
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.cmvn import apply_cmvn_online
    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.ivector.ivector_dir import ivectors_of_frames
    from kaldilite.ivector.online import extract_ivectors_online

    raw = {name: compute_mfcc(wave, bundle.mfcc_opts) for name, wave in clips}
    order = {"spk": [name for name, _ in clips]}
    model_pipeline, ivector = bundle.pipeline, bundle.ivector_model
    feats = {u: model_pipeline.without_cmvn().apply(f)
             for u, f in apply_cmvn_online(raw, model_pipeline.online_cmvn_stats, model_pipeline.online_cmvn_opts(),
                                           order)}
    ivector_feats = [(u, ivector.pipeline.without_cmvn().apply(f))
                     for u, f in apply_cmvn_online(raw, ivector.pipeline.online_cmvn_stats,
                                                   ivector.pipeline.online_cmvn_opts(), order)]
    utt2spk = {u: "spk" for u in raw}
    rows = dict(extract_ivectors_online(ivector_feats, ivector.ubm, ivector.extractor, bundle.ivector_opts,
                                        utt2spk=utt2spk))
    if first_frame_weight != 1.0:  # ivector-extract-online2 --frame-weights-rspecifier, one clip's frame 0 reweighed
        for k, (utt, _) in enumerate(ivector_feats):
            weights = {u: np.ones(len(g)) for u, g in ivector_feats[:k + 1]}
            weights[utt][0] = first_frame_weight
            reweighed = dict(extract_ivectors_online(ivector_feats[:k + 1], ivector.ubm, ivector.extractor,
                                                     bundle.ivector_opts, utt2spk=utt2spk, frame_weights=weights))
            rows[utt] = np.vstack([reweighed[utt][:1], rows[utt][1:]])
    o = bundle.online_opts
    out = {}
    for utt in order["spk"]:
        loglikes = bundle.scorer.log_likelihoods(feats[utt], ivectors_of_frames(rows[utt], len(feats[utt]), PERIOD))
        best = decode_utterance(bundle.graph, loglikes, bundle.tid_to_pdf, beam=o.beam, max_active=o.max_active,
                                min_active=o.min_active, acoustic_scale=o.acoustic_scale)
        out[utt] = (tuple(bundle.words.symbol(w) for w in best.words), best.cost, best.alignment)
    return out


def test_decode_online_with_i_vectors_equals_the_batch_decode_with_extracted_i_vectors(ivector_bundle, fsdd_dir):
    from kaldilite.online.recognizer import OnlineRecognizer

    opts = dataclasses.replace(ivector_bundle.online_opts, do_endpointing=False, chunk_length=0.02,
                               cmvn_silence_weight=1.0)
    recognizer = OnlineRecognizer(ivector_bundle, opts)
    for speaker, names in SPEAKERS.items():
        clips = [(name, fsdd(fsdd_dir, name)) for name in names]
        expected = _batch_answer(ivector_bundle, clips)
        # a new speaker: the priors alone (the previous speaker's CMVN and i-vector stats dropped)
        recognizer.new_stream(names[0], speaker_state=ivector_bundle.speaker_state())
        for k, (name, wave) in enumerate(clips):
            if k:
                recognizer.new_stream(name)  # the same speaker's next clip: the state carries over
            results = []
            for pos in range(0, len(wave), 333):
                results += recognizer.accept(wave[pos:pos + 333])
            results += recognizer.input_finished()
            words, cost, alignment = expected[name]
            assert len(results) == 1 and results[0].words == words, name
            final = recognizer.decoder.finalize()
            assert final.cost == pytest.approx(cost, rel=1e-5), name
            np.testing.assert_array_equal(final.alignment, alignment)


def test_silence_weighted_i_vectors_follow_kaldis_rules(ivector_bundle, fsdd_dir):
    """--ivector-silence-weighting.silence-weight 0 (Kaldi's OnlineSilenceWeighting): the random network puts
    no frame on silence, so by Kaldi's rules the only frames that weigh 0 are those ready before anything was
    decoded (no traceback yet: the silence weight), and only until the next chunk's traceback revises them to
    1. With 20 ms chunks that is frame 0 in row 0 of each clip (frame 10's row comes chunks later, after the
    revision). The answer: the batch path with ivector-extract-online2's frame weights, frame 0 weighing 0 in
    row 0 alone; it differs from the unweighted answer, so the weighting is seen."""
    from kaldilite.hmm import silence_tid_mask
    from kaldilite.online.recognizer import OnlineRecognizer

    opts = dataclasses.replace(ivector_bundle.online_opts, do_endpointing=False, chunk_length=0.02,
                               cmvn_silence_weight=1.0, ivector_silence_weight=0.0)
    is_silence = silence_tid_mask(ivector_bundle.tid_to_phone, ivector_bundle.silence_phones())
    recognizer = OnlineRecognizer(ivector_bundle, opts)
    changed = 0
    for names in SPEAKERS.values():
        clips = [(name, fsdd(fsdd_dir, name)) for name in names]
        expected = _batch_answer(ivector_bundle, clips, first_frame_weight=0.0)
        unweighted = _batch_answer(ivector_bundle, clips)
        recognizer.new_stream(names[0], speaker_state=ivector_bundle.speaker_state())
        for k, (name, wave) in enumerate(clips):
            if k:
                recognizer.new_stream(name)
            results = recognizer.accept(wave) + recognizer.input_finished()
            final = recognizer.decoder.finalize()
            assert not is_silence[final.alignment].any()  # the premise: no frame on silence
            words, cost, alignment = expected[name]
            assert len(results) == 1 and results[0].words == words, name
            assert final.cost == pytest.approx(cost, rel=1e-5), name
            np.testing.assert_array_equal(final.alignment, alignment)
            changed += abs(unweighted[name][1] - cost) > 1e-4 * abs(cost)
    assert changed >= 3


def test_the_i_vectors_change_the_decode(ivector_bundle, fsdd_dir):
    """The same clip after another speaker's clips (their i-vector and CMVN stats carried) or with the
    priors alone decodes to another cost: the network reads the i-vectors, so the agreement above
    checks them."""
    from kaldilite.online.recognizer import OnlineRecognizer

    opts = dataclasses.replace(ivector_bundle.online_opts, do_endpointing=False)
    wave = fsdd(fsdd_dir, "0_jackson_4")

    def cost_after(state):
        recognizer = OnlineRecognizer(ivector_bundle, opts)
        recognizer.new_stream("x", speaker_state=state)
        recognizer.accept(wave)
        recognizer.input_finished()
        return recognizer.decoder.finalize().cost, recognizer

    fresh, recognizer = cost_after(ivector_bundle.speaker_state())
    carried = recognizer.speaker_state
    assert carried.ivector.stats.num_frames > 0
    again, _ = cost_after(carried)
    assert abs(again - fresh) > 1e-3 * abs(fresh)
    only_ivectors = dataclasses.replace(ivector_bundle.speaker_state(), ivector=carried.ivector)
    other, _ = cost_after(only_ivectors)  # the i-vector stats alone move it
    assert abs(other - fresh) > 1e-3 * abs(fresh)


def test_export_copies_the_extractor_and_refuses_a_missing_or_foreign_one(ivector_system, digits_system, tmp_path):
    from kaldilite.errors import InputError, MissingFileError
    from kaldilite.ivector.ivector_dir import extractor_id
    from kaldilite.ivector.model import load_ivector_model, save_ivector_model
    from kaldilite.nnet.model import load_nnet_model, save_nnet_model
    from kaldilite.online.bundle import ModelBundle, export_model

    exp, extractor = ivector_system
    graph = digits_system / "exp/mono/graph"
    out = export_model(exp, graph, tmp_path / "b", mfcc_config=MFCC_CONF)  # the extractor the model records
    assert extractor_id(out / "ivector_extractor/final.ie") == extractor_id(extractor / "final.ie")
    assert "--ivector-period=10" in (out / "conf/ivector_extractor.conf").read_text().split()
    assert "--num-gselect=3" in (out / "conf/ivector_extractor.conf").read_text().split()

    other = load_ivector_model(extractor / "final.ie", need_extractor=True)
    other.extractor.projections[0, 0, 1] += 1.0
    (tmp_path / "other").mkdir()
    save_ivector_model(tmp_path / "other/final.ie", other)
    with pytest.raises(InputError, match=r"not the i-vector extractor .* was trained with \(md5 "):
        export_model(exp, graph, tmp_path / "c", mfcc_config=MFCC_CONF, ivector_extractor=tmp_path / "other")
    with pytest.raises(InputError, match="trained without i-vectors"):
        export_model(digits_system / "exp/mono", digits_system / "exp/mono/graph", tmp_path / "d",
                     mfcc_config=MFCC_CONF, data_dir=digits_system / "data/train", ivector_extractor=extractor)
    # a model whose recorded extractor is gone, and no --ivector-extractor: refused at export, not at decode time
    model = load_nnet_model(exp / "final.mdl")
    model.ivector = dataclasses.replace(model.ivector, extractor=str(tmp_path / "gone/final.ie"))
    (tmp_path / "moved").mkdir()
    save_nnet_model(tmp_path / "moved/final.mdl", model)
    with pytest.raises(MissingFileError, match=r"moved/final.mdl: takes online i-vectors \(4-dim online i-vector every "
                                               r"10 frames\) but its extractor .*gone/final.ie is not there; pass "
                                               "--ivector-extractor DIR"):
        export_model(tmp_path / "moved", graph, tmp_path / "e", mfcc_config=MFCC_CONF)
    # a bundle that lost its extractor is refused at load, in one line naming the fix
    (out / "ivector_extractor/final.ie").unlink()
    with pytest.raises(MissingFileError, match="final.ie: missing from the model bundle, whose model takes online "
                                               "i-vectors .* --ivector-extractor"):
        ModelBundle.load(out)
