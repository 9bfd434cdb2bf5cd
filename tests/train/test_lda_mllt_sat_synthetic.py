"""LDA+MLLT and SAT training on data from a known generating model with known speaker distortions.

Phones a, b, c are 3-state HMMs whose states emit from Gaussians with one shared, strongly
correlated covariance (so a diagonal model on the raw features is wrong, and LDA+MLLT has
something to fix). Each of four speakers sees the canonical features through its own known
affine map x -> A_s x + b_s. The real code paths run on it: train-mono, align, train-lda-mllt,
align, train-sat, align-fmllr, decode-fmllr.

Known answers: (1) the tri2b model aligns the utterances along the generating states;
(2) the speaker transforms SAT estimates undo the speakers' distortions: W_s composed with
L (final.mat) and [A_s b_s] is the same map for every speaker (the canonical space is only
defined up to one common transform, so the test compares speakers with each other);
(3) a tri2b model handed raw features fails with a message naming both dimensions and the
missing LDA+MLLT transform.
"""

import logging

import numpy as np
import pytest

from kaldilite.io.tables import read_int_vectors, read_matrices
import synthetic_setup

LEXICON = {"AB": ["a", "b"], "CA": ["c", "a"], "BC": ["b", "c"], "C": ["c"]}
SELF_LOOP = 0.6
DIM = 4
SEED = 5
SPEAKERS = 4
LDA_DIM = 6


def make_lang(tmp):
    return synthetic_setup.make_lang(tmp, LEXICON)


def speaker_maps(rng):
    maps = []
    for s in range(SPEAKERS):
        A = np.eye(DIM) if s == 0 else np.eye(DIM) + 0.2 * rng.standard_normal((DIM, DIM))
        b = np.zeros(DIM) if s == 0 else rng.normal(0, 0.7, DIM)
        maps.append((A, b))
    return maps


def sample_corpus(rng, maps, num_utts=200):
    states = [(p, s) for p in "abc" for s in range(3)]
    means = {st: rng.normal(0, 6.0, DIM) for st in states}
    mixing = np.eye(DIM) + 0.8 * rng.standard_normal((DIM, DIM))
    feats, text, truth = {}, {}, {}
    for i in range(num_utts):
        spk = i % SPEAKERS
        utt = f"spk{spk}-utt{i:03d}"
        words = list(rng.choice(list(LEXICON), size=rng.integers(1, 4)))
        path = []
        for phone in (p for w in words for p in LEXICON[w]):
            for s in range(3):
                path.append((phone, s))
                while rng.random() < SELF_LOOP:
                    path.append((phone, s))
        canonical = np.stack([means[st] for st in path]) + rng.standard_normal((len(path), DIM)) @ mixing.T * 0.25
        A, b = maps[spk]
        feats[utt] = (canonical @ A.T + b).astype(np.float32)
        text[utt], truth[utt] = " ".join(words), path
    return feats, text, truth


def write_data_dir(path, feats, text):
    synthetic_setup.write_data_dir(path, feats, text)


def write_true_alignments(mono_dir, ali_dir, truth, phone_ids):
    import shutil

    from kaldilite.gmm import load_model
    from kaldilite.io.tables import write_int_vectors

    ali_dir.mkdir()
    for name in ("final.mdl", "tree", "phones.txt"):
        shutil.copyfile(mono_dir / name, ali_dir / name)
    tm, _, _, _ = load_model(ali_dir / "final.mdl")
    tids = {}
    for tid in range(1, tm.num_transition_ids + 1):
        key = (int(tm.tid_to_phone[tid]), int(tm.tid_to_hmm_state[tid]), bool(tm.tid_is_self_loop[tid]))
        tids[key] = tid
    alignments = {}
    for utt, path in truth.items():
        ids = [(phone_ids[p], s) for p, s in path]
        alignments[utt] = np.array([tids[(p, s, k + 1 < len(ids) and ids[k + 1] == (p, s))]
                                    for k, (p, s) in enumerate(ids)], np.int32)
    write_int_vectors(sorted(alignments.items()), ali_dir / "ali.1.gz")


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.align import align_si
    from kaldilite.train.lda_mllt import LdaMlltOptions, train_lda_mllt
    from kaldilite.train.mono import MonoOptions, train_mono
    from kaldilite.train.sat import SatOptions, train_sat

    tmp = tmp_path_factory.mktemp("transform_train")
    lang = make_lang(tmp)
    loop_log, loop_logger = _Recorder(), logging.getLogger("kaldilite.train.loop")
    old_level = loop_logger.level
    loop_logger.setLevel(logging.INFO)
    loop_logger.addHandler(loop_log)
    rng = np.random.default_rng(SEED)
    maps = speaker_maps(rng)
    feats, text, truth = sample_corpus(rng, maps)
    write_data_dir(tmp / "data", feats, text)
    plain = FeaturePipeline(cmvn="none", delta_order=0)
    train_mono(tmp / "data", lang, tmp / "mono", MonoOptions(nj=2, num_iters=4, max_iter_inc=2, totgauss=14,
                                                            realign_iters=(1, 2, 3)), pipeline=plain)
    # a flat start on speaker-distorted data can settle in a local optimum (Viterbi training is a
    # local search); what is tested here starts from the previous system's alignments, so give it
    # the generating ones, written with the monophone model's transition-ids
    write_true_alignments(tmp / "mono", tmp / "mono_ali", truth, _phone_ids(lang))
    # splice +-1 (12 dims), LDA to 6
    lda_opts = LdaMlltOptions(nj=2, num_iters=8, max_iter_inc=5, realign_iters=(5,), mllt_iters=(2, 3),
                              splice_left=1, splice_right=1, dim=LDA_DIM, round_num_leaves=False)
    tri2b = train_lda_mllt(16, 48, tmp / "data", lang, tmp / "mono_ali", tmp / "tri2b", lda_opts)
    align_si(tmp / "data", lang, tmp / "tri2b", tmp / "tri2b_ali", nj=2)
    sat_opts = SatOptions(nj=2, num_iters=8, max_iter_inc=5, realign_iters=(5,), fmllr_iters=(2, 4),
                          fmllr_min_count=50, round_num_leaves=False)
    loop_log.messages.append("-- tri3b")
    tri3b = train_sat(16, 48, tmp / "data", lang, tmp / "tri2b_ali", tmp / "tri3b", sat_opts)
    loop_logger.removeHandler(loop_log)
    loop_logger.setLevel(old_level)
    tri2b_log, tri3b_log = "\n".join(loop_log.messages).split("-- tri3b")
    return {"tmp": tmp, "lang": lang, "maps": maps, "truth": truth, "feats": feats, "tri2b": tri2b,
            "tri3b": tri3b, "loop_log": {"tri2b": tri2b_log, "tri3b": tri3b_log}}


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.levelname} {record.getMessage()}")


def _state_accuracy(tm, alignments, truth, phone_ids):
    """Fraction of frames whose (phone, HMM state) equals the generating one."""
    names = {v: k for k, v in phone_ids.items()}
    right = total = 0
    for utt, ali in alignments.items():
        got = [(names[int(tm.tid_to_phone[t])], int(tm.tid_to_hmm_state[t])) for t in ali]
        right += sum(g == w for g, w in zip(got, truth[utt]))
        total += len(truth[utt])
    return right / total


def _phone_ids(lang):
    return {sym: int(i) for sym, i in (line.split() for line in (lang / "phones.txt").read_text().splitlines())}


def test_tri2b_aligns_along_the_generating_states(systems):
    from kaldilite.gmm import load_model

    tmp = systems["tmp"]
    tm, _, pipeline, _ = load_model(tmp / "tri2b" / "final.mdl")
    alignments = {}
    for k in (1, 2):
        alignments.update({u: np.asarray(a) for u, a in read_int_vectors(str(tmp / "tri2b_ali" / f"ali.{k}.gz"))})
    assert len(alignments) == 200
    assert _state_accuracy(tm, alignments, systems["truth"], _phone_ids(systems["lang"])) > 0.97
    assert pipeline.splice_left == pipeline.splice_right == 1 and pipeline.transform.shape == (LDA_DIM, 3 * DIM)


def test_final_mat_is_the_models_transform_and_mllt_raised_its_objective(systems):
    import kaldi_io

    from kaldilite.gmm import load_model

    exp = systems["tmp"] / "tri2b"
    _, _, pipeline, extra = load_model(exp / "final.mdl")
    final_mat = kaldi_io.read_mat(str(exp / "final.mat"))
    np.testing.assert_allclose(final_mat, pipeline.transform, rtol=1e-6, atol=1e-6)
    assert "LDA+MLLT" in extra["transform"]
    for x in (2, 3):
        text = (exp / "log" / f"mupdate.{x}.log").read_text()
        gain = float(text.split("objective improvement ")[1].split()[0])
        assert gain >= 0
    # the final transform is MLLT(3) @ MLLT(2) @ LDA: rows not those of the LDA alone
    lda = kaldi_io.read_mat(str(exp / "0.mat"))
    assert not np.allclose(lda, final_mat, atol=1e-3)


def test_sat_speaker_transforms_undo_the_speaker_distortions(systems):
    from kaldilite.gmm import load_model
    from kaldilite.transform.fmllr import apply_transform

    exp = systems["tmp"] / "tri3b"
    _, _, pipeline, _ = load_model(exp / "final.mdl")  # splice +-1, final.mat
    transforms = {}
    for k in (1, 2):
        transforms.update({spk: np.asarray(w, np.float64) for spk, w in read_matrices(str(exp / f"trans.{k}"))})
    assert sorted(transforms) == [f"spk{s}" for s in range(SPEAKERS)]
    # Each speaker's utterances, adapted, must match what the reference speaker's transform makes
    # of the same utterances undistorted (x = A_s^-1 (y - b_s)): the speaker maps are undone up to
    # the canonical space's own transform. Without adaptation they do not match.
    maps = systems["maps"]
    for s in range(1, SPEAKERS):
        A, b = maps[s]
        adapted, reference, unadapted, plain = [], [], [], []
        for utt, y in systems["feats"].items():
            if not utt.startswith(f"spk{s}-"):
                continue
            x = np.linalg.solve(A, (y - b).T).T
            adapted.append(apply_transform(pipeline.apply(y), transforms[f"spk{s}"]))
            reference.append(apply_transform(pipeline.apply(x), transforms["spk0"]))
            unadapted.append(pipeline.apply(y))
            plain.append(pipeline.apply(x))
        adapted, reference = np.concatenate(adapted), np.concatenate(reference)
        unadapted, plain = np.concatenate(unadapted), np.concatenate(plain)
        spread = np.sqrt(np.mean((reference - reference.mean(0)) ** 2))
        error = np.sqrt(np.mean((adapted - reference) ** 2)) / spread
        before = np.sqrt(np.mean((unadapted - plain) ** 2)) / np.sqrt(np.mean((plain - plain.mean(0)) ** 2))
        # (not exactly 0: one fMLLR on the 6 LDA dimensions cannot invert a per-frame map on all
        # 12 spliced ones; measured: 0.27 -> 0.10, 0.30 -> 0.05, 0.33 -> 0.09)
        assert error < 0.15, f"speaker {s}: relative error {error:.3f} after fMLLR"
        assert before > 2.5 * error, f"speaker {s}: {before:.3f} before fMLLR, {error:.3f} after"


def test_sat_writes_an_alignment_model_and_align_fmllr_follows_the_generating_states(systems, tmp_path):
    from kaldilite.gmm import load_model
    from kaldilite.train.sat import align_fmllr

    tmp = systems["tmp"]
    exp = tmp / "tri3b"
    tm, am, _, extra = load_model(exp / "final.mdl")
    si_tm, si_am, _, si_extra = load_model(exp / "final.alimdl")
    assert extra["speaker_adapted"] and not si_extra["speaker_adapted"]
    assert si_am.num_gauss == am.num_gauss and si_tm.num_transition_ids == tm.num_transition_ids
    result = align_fmllr(tmp / "data", systems["lang"], exp, tmp_path / "ali", nj=2)
    assert result["aligned"] == 200 and result["failed"] == 0
    alignments = {}
    for k in (1, 2):
        alignments.update({u: np.asarray(a) for u, a in read_int_vectors(str(tmp_path / "ali" / f"ali.{k}.gz"))})
    assert _state_accuracy(tm, alignments, systems["truth"], _phone_ids(systems["lang"])) > 0.97
    assert (tmp_path / "ali" / "trans.1").exists() and (tmp_path / "ali" / "final.alimdl").exists()


def test_a_tri2b_model_given_raw_features_names_both_dimensions_and_the_missing_transform(systems):
    from kaldilite.errors import DimensionMismatchError
    from kaldilite.gmm import load_model

    _, am, _, _ = load_model(systems["tmp"] / "tri2b" / "final.mdl")
    raw = next(iter(systems["feats"].values()))  # 4-dim, not spliced, no LDA+MLLT
    with pytest.raises(DimensionMismatchError) as err:
        am.log_likelihoods(raw)
    message = str(err.value)
    assert "expects 6-dim" in message and "got 4" in message and "6 x 12 LDA+MLLT (final.mat)" in message


def test_decode_fmllr_cli_recognizes_the_utterances_in_both_passes(systems, tmp_path):
    """kaldilite mkgraph + decode-fmllr on a word loop over the SAT system: the speaker-independent
    first pass (final.alimdl) and the adapted passes return the spoken words (a handful of the
    415 words of the training data are lost at word boundaries), with a transform per speaker."""
    from click.testing import CliRunner

    from kaldilite.cli import cli

    tmp = systems["tmp"]
    loop_lang = synthetic_setup.word_loop_lang(systems["lang"], LEXICON, tmp_path / "lang_loop")
    runner = CliRunner()
    graph = tmp / "tri3b" / "graph_loop"
    result = runner.invoke(cli, ["mkgraph", str(loop_lang), str(tmp / "tri3b"), str(graph)])
    assert result.exit_code == 0, result.output
    decode_dir = tmp_path / "decode"
    result = runner.invoke(cli, ["decode-fmllr", "--nj", "2", "--acwt", "0.1", "--model-dir", str(tmp / "tri3b"),
                                 str(graph), str(tmp / "data"), str(decode_dir)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("%WER")]
    rates = [float(line.split()[1]) for line in lines]
    assert len(rates) == 2 and rates[1] <= rates[0] <= 1.5, result.output  # SI pass, then adapted
    assert (tmp_path / "decode.si" / "hyp.txt").exists()
    transforms = {}
    for k in (1, 2):
        transforms.update(dict(read_matrices(str(decode_dir / f"trans.{k}"))))
    assert sorted(transforms) == [f"spk{s}" for s in range(SPEAKERS)]


@pytest.mark.parametrize("system, update, iters", [("tri2b", "MLLT", (2, 3)), ("tri3b", "fMLLR", (2, 4))])
def test_iterations_after_a_transform_update_are_not_compared_with_the_previous_likelihood(systems, system, update,
                                                                                           iters):
    lines = systems["loop_log"][system].splitlines()
    exempt = [int(line.split()[2].rstrip(":")) for line in lines if f"features changed by the {update} update" in line]
    assert tuple(exempt) == iters
    dropped = [line for line in lines if "dropped" in line and int(line.split()[2].rstrip(":")) in iters]
    assert dropped == []


def test_decode_fmllr_si_dir_with_the_si_models_own_lattices_gives_the_same_transforms(systems, tmp_path):
    """decode-fmllr --si-dir (decode_fmllr.sh's) takes the first pass's lattices from elsewhere:
    given lattices of final.alimdl decoded by `kaldilite decode` with the SI pass's options, the
    speaker transforms equal those of decode-fmllr's own SI pass (up to the text lattices'
    rounding), and no DECODE_DIR.si is written."""
    from click.testing import CliRunner

    from kaldilite.cli import cli

    tmp = systems["tmp"]
    loop_lang = synthetic_setup.word_loop_lang(systems["lang"], LEXICON, tmp_path / "lang_loop")
    runner = CliRunner()
    graph = tmp_path / "graph_loop"
    assert runner.invoke(cli, ["mkgraph", str(loop_lang), str(tmp / "tri3b"), str(graph)]).exit_code == 0
    common = ["--nj", "1", "--acwt", "0.1"]
    result = runner.invoke(cli, ["decode-fmllr", *common, "--model-dir", str(tmp / "tri3b"), str(graph),
                                 str(tmp / "data"), str(tmp_path / "own")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["decode", *common, "--beam", "10.0", "--lattice-beam", "6.0", "--model",
                                 str(tmp / "tri3b" / "final.alimdl"), str(graph), str(tmp / "data"),
                                 str(tmp_path / "si_lattices")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["decode-fmllr", *common, "--model-dir", str(tmp / "tri3b"), "--si-dir",
                                 str(tmp_path / "si_lattices"), str(graph), str(tmp / "data"), str(tmp_path / "given")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "given.si").exists()
    own, given = (dict(read_matrices(str(tmp_path / d / "trans.1"))) for d in ("own", "given"))
    assert sorted(own) == sorted(given) == [f"spk{s}" for s in range(SPEAKERS)]
    for spk in own:
        np.testing.assert_allclose(given[spk], own[spk], rtol=1e-6, atol=1e-6)  # the transforms move features by ~1
    empty = tmp_path / "no_lattices"
    empty.mkdir()
    result = runner.invoke(cli, ["decode-fmllr", *common, "--model-dir", str(tmp / "tri3b"), "--si-dir", str(empty),
                                 str(graph), str(tmp / "data"), str(tmp_path / "none")])
    assert result.exit_code != 0 and "no lattices in --si-dir" in str(result.exception)
