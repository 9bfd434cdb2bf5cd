"""make-denlats + train-mmi end to end on data from a known generating model the GMMs cannot fit.

Phones a, b, c are 3-state HMMs whose states emit from Gaussians with one shared, strongly
correlated covariance; the monophone system models them with diagonal Gaussians (a wrong model,
which is where MMI has something to gain over ML). The real code paths run through the CLI:
train-mono (Python), align, mkgraph on a word loop, make-denlats, train-mmi --boost 0.1.

Known answers: the MMI objective logged per iteration rises every iteration (EBW with
Kaldi's E = 2 and tau = 400); the transition model is left as it was (train_mmi.sh updates only
the Gaussians and weights); and the MMI model decodes unseen utterances of the same generating
model with fewer word errors than the ML model it started from (the discriminative criterion
fixes confusions the wrong ML model makes: 20 -> 6 errors in 789 words). An alignment dir
without alignments is refused with one line naming it.
"""

import numpy as np
import pytest

import synthetic_setup

LEXICON = {"AB": ["a", "b"], "CA": ["c", "a"], "BC": ["b", "c"], "C": ["c"], "BA": ["b", "a"]}
DIM = 4
SEED = 11
TRAIN_UTTS = 160  # of 560 sampled: the other 400 are the test set


def sample_corpus(rng, num_utts=560):
    states = [(p, s) for p in "abc" for s in range(3)]
    means = {st: rng.normal(0, 1.6, DIM) for st in states}
    mixing = np.eye(DIM) + 0.9 * rng.standard_normal((DIM, DIM))
    feats, text = {}, {}
    for i in range(num_utts):
        utt = f"spk{i % 4}-utt{i:03d}"
        words = list(rng.choice(list(LEXICON), size=rng.integers(1, 4)))
        path = []
        for phone in (p for w in words for p in LEXICON[w]):
            for s in range(3):
                path.append((phone, s))
                while rng.random() < 0.6:
                    path.append((phone, s))
        noise = rng.standard_normal((len(path), DIM)) @ mixing.T * 0.45
        feats[utt] = (np.stack([means[st] for st in path]) + noise).astype(np.float32)
        text[utt] = " ".join(words)
    return feats, text


@pytest.fixture(scope="module")
def mmi(tmp_path_factory):
    from click.testing import CliRunner

    from kaldilite.cli import cli
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.align import align_si
    from kaldilite.train.mono import MonoOptions, train_mono

    tmp = tmp_path_factory.mktemp("mmi")
    lang = synthetic_setup.make_lang(tmp, LEXICON)
    feats, text = sample_corpus(np.random.default_rng(SEED))
    train = sorted(feats)[:TRAIN_UTTS]
    synthetic_setup.write_data_dir(tmp / "data", {u: feats[u] for u in train}, text)
    train_mono(tmp / "data", lang, tmp / "mono", MonoOptions(nj=2, num_iters=6, max_iter_inc=3, totgauss=18,
                                                            realign_iters=(1, 2, 3, 4)),
               pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    align_si(tmp / "data", lang, tmp / "mono", tmp / "mono_ali", nj=2)
    loop = synthetic_setup.word_loop_lang(lang, LEXICON, tmp / "lang_loop")
    runner = CliRunner()
    graph = tmp / "mono" / "graph_loop"
    for args in (["mkgraph", str(loop), str(tmp / "mono"), str(graph)],
                 ["make-denlats", "--nj", "2", str(tmp / "data"), str(lang), str(graph), str(tmp / "mono_ali"),
                  str(tmp / "denlats")],
                 ["train-mmi", "--nj", "2", "--boost", "0.1", "--num-iters", "3", str(tmp / "data"), str(lang),
                  str(tmp / "mono_ali"), str(tmp / "denlats"), str(tmp / "mmi")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    test = sorted(feats)[TRAIN_UTTS:]
    return {"tmp": tmp, "lang": lang, "graph": graph, "feats": {u: feats[u] for u in test},
            "text": {u: text[u] for u in test}, "output": result.output}


def test_the_mmi_objective_rises_every_iteration(mmi):
    objf = [float(line.split()[1]) for line in (mmi["tmp"] / "mmi" / "objf").read_text().splitlines()]
    assert len(objf) == 3
    assert all(later > earlier for earlier, later in zip(objf, objf[1:])), objf
    assert "MMI objective per frame by iteration" in mmi["output"]
    for x in range(3):
        assert (mmi["tmp"] / "mmi" / "log" / f"update.{x}.log").is_file()


def test_mmi_keeps_the_transitions_and_changes_the_gaussians(mmi):
    from kaldilite.gmm import load_model

    tm0, am0, _, _ = load_model(mmi["tmp"] / "mmi" / "0.mdl")
    tm, am, pipeline, extra = load_model(mmi["tmp"] / "mmi" / "final.mdl")
    np.testing.assert_array_equal(tm.log_probs, tm0.log_probs)
    assert am.means.shape == am0.means.shape and not np.allclose(am.means, am0.means)
    assert np.all(am.variances > 0)
    assert extra["mmi"]["boost"] == 0.1 and extra["mmi"]["iteration"] == 3


def _word_errors(model_path, graph_dir, feats, text):
    from kaldilite.decode.batch import decode_utterances
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.gmm import load_model
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.score.wer import compute_wer

    tm, am, _, _ = load_model(model_path)
    words = SymbolTable.read(graph_dir / "words.txt")
    results = decode_utterances(load_graph(graph_dir), tm.tid_to_pdf, am.log_likelihoods, sorted(feats.items()),
                                DecoderOptions(beam=15.0, acoustic_scale=0.1))
    hyps = {u: " ".join(words.symbol(w) for w in r.words) for u, r in results}
    return compute_wer(dict(sorted(text.items())), hyps)


def test_the_mmi_model_makes_fewer_word_errors_than_the_ml_model_on_unseen_utterances(mmi):
    ml = _word_errors(mmi["tmp"] / "mmi" / "0.mdl", mmi["graph"], mmi["feats"], mmi["text"])
    disc = _word_errors(mmi["tmp"] / "mmi" / "final.mdl", mmi["graph"], mmi["feats"], mmi["text"])
    assert ml.errors > 0
    assert disc.errors < ml.errors, (ml, disc)


def test_train_mmi_refuses_an_alignment_dir_without_alignments(mmi, tmp_path):
    import shutil

    from click.testing import CliRunner

    from kaldilite.cli import cli

    ali = tmp_path / "ali"
    ali.mkdir()
    for name in ("final.mdl", "tree"):
        shutil.copyfile(mmi["tmp"] / "mono_ali" / name, ali / name)
    result = CliRunner().invoke(cli, ["train-mmi", str(mmi["tmp"] / "data"), str(mmi["lang"]), str(ali),
                                      str(mmi["tmp"] / "denlats"), str(tmp_path / "exp")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "no ali.*.gz alignments" in message and str(ali) in message and "\n" not in message
