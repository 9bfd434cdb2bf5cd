"""Triphone training on data whose phone sounds depend on the left neighbour: the tree must find it.

Phones a, b, c are 3-state HMMs with Gaussian states; phone `a` sounds one way after `b` and
another way after anything else (c, or the utterance start), while b and c do not depend on
context. The source alignments are the generating state paths (what a perfect monophone system
would give); `train_deltas` builds the tree from them and trains on it (realigning once with its
own model): `a`'s states must be split on "is the left phone b?" with the leaf Gaussians at the
two generating means, and b's and c's must not be split by context.
"""

import numpy as np
import pytest

import synthetic_setup

LEXICON = {"BA": ["b", "a"], "CA": ["c", "a"], "AB": ["a", "b"], "C": ["c"], "AC": ["a", "c"]}
DIM = 4
SEED = 11


def make_lang(tmp):
    return synthetic_setup.make_lang(tmp, LEXICON)


def sample_corpus(rng, num_utts=160):
    """Features, transcripts and the true (phone, state) per frame; state means keyed (phone,
    state, after_b), after_b only ever True for a."""
    keys = [("a", s, ab) for s in range(3) for ab in (True, False)] + [(p, s, False) for p in "bc" for s in range(3)]
    means = {}
    for k in keys:  # well apart (>= 8 standard deviations of the noise)
        mean = rng.normal(0, 4.0, DIM)
        while any(np.linalg.norm(mean - m) < 6.4 for m in means.values()):
            mean = rng.normal(0, 4.0, DIM)
        means[k] = mean
    feats, text, truth = {}, {}, {}
    for i in range(num_utts):
        utt = f"spk{i % 4}-utt{i:03d}"
        words = list(rng.choice(list(LEXICON), size=rng.integers(1, 4)))
        phones = [p for w in words for p in LEXICON[w]]
        frames, path = [], []
        for k, phone in enumerate(phones):
            after_b = phone == "a" and k > 0 and phones[k - 1] == "b"
            for s in range(3):
                frames.append(means[(phone, s, after_b)])
                path.append((phone, s))
                while rng.random() < 0.6:
                    frames.append(means[(phone, s, after_b)])
                    path.append((phone, s))
        x = np.stack(frames) + rng.standard_normal((len(frames), DIM)) * 0.8
        feats[utt], text[utt], truth[utt] = x.astype(np.float32), " ".join(words), path
    return feats, text, truth, means


def write_true_alignments(ali_dir, lang, truth):
    """An alignment dir as `kaldilite align` makes it, from the generating state paths: a monophone
    model (its Gaussians are never used) and the true transition-ids."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm import AmDiagGmm, save_model
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.lang import LangDir

    langdir = LangDir.load(lang)
    topo = Topology.read(langdir.topo_path)
    tree = monophone_tree([p for _, _, p in langdir.roots], topo)
    tm = TransitionModel(topo, tree)
    ids = {langdir.phones.symbol(p): p for p in topo.phones}
    alignments = {}
    for utt, path in truth.items():
        tids = []
        for t, (phone, state) in enumerate(path):
            arcs = tm.hmm_arcs(ids[phone], tree.pdfs_for((ids[phone],)))[state]
            stays = t + 1 < len(path) and path[t + 1] == (phone, state)  # instances never repeat a state
            tids.append(next(tid for tid, dest in arcs if (dest == state) == stays))
        alignments[utt] = tids
    ali_dir.mkdir()
    save_model(ali_dir / "final.mdl", tm, AmDiagGmm.init_single(tree.num_pdfs, np.zeros(DIM), np.ones(DIM)),
               FeaturePipeline(cmvn="none", delta_order=0))
    tree.write(ali_dir / "tree")
    write_int_vectors(sorted(alignments.items()), ali_dir / "ali.1.gz")


def write_data_dir(path, feats, text):
    synthetic_setup.write_data_dir(path, feats, text)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.deltas import DeltasOptions, train_deltas

    tmp = tmp_path_factory.mktemp("deltas")
    lang = make_lang(tmp)
    feats, text, truth, means = sample_corpus(np.random.default_rng(SEED))
    write_data_dir(tmp / "data", feats, text)
    write_true_alignments(tmp / "mono_ali", lang, truth)
    # Every split here gains far more than --thresh, so the default clustering threshold (the
    # smallest split made) would merge states of a phone that are merely close; no clustering.
    opts = DeltasOptions(nj=2, num_iters=6, max_iter_inc=4, realign_iters=(3,), cluster_thresh=0,
                         round_num_leaves=False)
    plain = FeaturePipeline(cmvn="none", delta_order=0)
    result = train_deltas(100, 100, tmp / "data", lang, tmp / "mono_ali", tmp / "tri1", opts, pipeline=plain)
    phone_ids = {sym: int(i) for sym, i in (line.split() for line in (lang / "phones.txt").read_text().splitlines())}
    return tmp, result, means, phone_ids


def test_tree_splits_a_on_its_left_neighbour_and_nothing_else(trained):
    from kaldilite.hmm import ContextDependency

    tmp, _, _, ids = trained
    tree = ContextDependency.read(tmp / "tri1" / "tree")
    a, b, c, sil = ids["a"], ids["b"], ids["c"], ids["SIL"]
    for state in range(3):
        after_b = {tree.compute((b, a, right), state) for right in (0, b, c)}
        other = {tree.compute((left, a, right), state) for left in (0, a, c) for right in (0, b, c)}
        assert len(after_b) == 1 and len(other) == 1 and after_b != other, f"a state {state}"
        for phone in (b, c):
            assert len({tree.compute((left, phone, right), state)
                        for left in (0, a, b, c) for right in (0, a, b, c)}) == 1
    # 2 x 3 pdfs for a, 3 each for b and c, SIL's own (not split)
    assert tree.num_pdfs == 6 + 6 + len(set(tree.pdfs_for((0, sil, 0))))


def test_leaf_gaussians_are_the_generating_contextual_means(trained):
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency

    tmp, _, means, ids = trained
    _, am, _, _ = load_model(tmp / "tri1" / "final.mdl")
    tree = ContextDependency.read(tmp / "tri1" / "tree")
    a, b, c = ids["a"], ids["b"], ids["c"]
    for (phone, state, after_b), mean in means.items():
        left = b if after_b else c
        pdf = tree.compute((left, ids[phone], 0), state)
        lo, hi = am.pdf_offsets[pdf], am.pdf_offsets[pdf + 1]
        weights = np.exp(am.log_weights[lo:hi])
        np.testing.assert_allclose(weights @ am.means[lo:hi], mean, atol=0.25, err_msg=f"{phone} {state} {after_b}")
    del a


def test_training_writes_a_kaldi_style_experiment_dir(trained):
    tmp, result, _, _ = trained
    exp = tmp / "tri1"
    for name in ("tree", "final.mdl", "questions.int", "ali.1.gz", "ali.2.gz", "num_jobs", "phones.txt",
                 "log/build_tree.log", "log/acc_tree.1.log", "log/convert.1.log", "log/update.5.log"):
        assert (exp / name).exists(), name
    assert (exp / "final.mdl").resolve() == (exp / "6.mdl").resolve()
    likes = [h["avg_loglike"] for h in result["history"]]
    assert all(b >= a - 1e-3 for a, b in zip(likes, likes[1:]))


def test_convert_ali_cli_keeps_every_phone_sequence(trained):
    from click.testing import CliRunner

    from kaldilite.cli import cli
    from kaldilite.gmm import load_model
    from kaldilite.io.tables import read_int_vectors

    tmp = trained[0]
    out = tmp / "converted.ali.gz"
    result = CliRunner().invoke(cli, ["convert-ali", str(tmp / "mono_ali/final.mdl"), str(tmp / "tri1/final.mdl"),
                                      str(tmp / "tri1/tree"), str(tmp / "mono_ali/ali.1.gz"), str(out)])
    assert result.exit_code == 0, result.output
    assert "succeeded for 160 alignments, failed for 0" in result.output
    old_tm, _, _, _ = load_model(tmp / "mono_ali/final.mdl")
    new_tm, _, _, _ = load_model(tmp / "tri1/final.mdl")
    source = dict(read_int_vectors(str(tmp / "mono_ali/ali.1.gz")))
    for utt, ali in read_int_vectors(str(out)):
        assert new_tm.alignment_to_phones(ali) == old_tm.alignment_to_phones(source[utt])


def test_train_deltas_cli_names_a_missing_alignment_dir_in_one_line(trained, tmp_path, capsys):
    from kaldilite.cli import main

    tmp = trained[0]
    empty = tmp_path / "not_aligned"
    empty.mkdir()
    with pytest.raises(SystemExit) as stopped:
        main(["train-deltas", "--nj", "2", "100", "1000", str(tmp / "data"), str(tmp / "lang"), str(empty),
              str(tmp_path / "tri1")])
    assert stopped.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "not_aligned/final.mdl: missing" in lines[0] and "kaldilite align" in lines[0]
