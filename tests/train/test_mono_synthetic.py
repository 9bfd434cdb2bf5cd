"""Monophone training on data sampled from a known HMM-GMM: the right answer is known by construction.

Three "phones" a, b, c, each Kaldi's 3-state left-to-right HMM with known self-loop
probabilities, each state emitting from its own Gaussian with known mean and variance.
Utterances of one to three words are sampled from that model and `train_mono` runs its real
code path on them (prepare-lang output, feats.scp, split data dir, parallel jobs, flat start,
EM with realignment on a schedule). Training must recover the Gaussians and the transition
probabilities, and forced alignment with the trained model must return the generating state
sequence.

The lang dir is built without optional silence (`sil_prob=0`) and the data contain none.
Viterbi training from a flat start is a local search (as Kaldi's): on synthetic data whose
states are many standard deviations apart, a bad first alignment can leave a phone's states
rotated for good, and an optional silence that nothing trains first soaks up speech frames.
Real recordings, whose silence is distinct and sits at the edges, do not behave like that; so
this corpus is one where the generating model is reachable, and the seed is fixed.
"""

import sys

import numpy as np
import pytest

from kaldilite.io.tables import read_int_vectors
import synthetic_setup

LEXICON = {"AB": ["a", "b"], "CA": ["c", "a"], "BC": ["b", "c"], "C": ["c"]}
SELF_LOOP = {"a": [0.7, 0.75, 0.7], "b": [0.75, 0.7, 0.8], "c": [0.8, 0.75, 0.7]}
DIM = 4
SEED = 7


def make_lang(tmp):
    return synthetic_setup.make_lang(tmp, LEXICON)


def phone_table(lang):
    return {sym: int(idx) for sym, idx in (line.split() for line in (lang / "phones.txt").read_text().splitlines())}


def sample_corpus(rng, num_utts=160):
    """Features, transcripts and the true (phone, hmm_state) per frame, from the known model."""
    states = [(p, s) for p in SELF_LOOP for s in range(3)]
    means = {st: rng.normal(0, 4.0, DIM) for st in states}
    variances = {st: rng.uniform(0.5, 1.5, DIM) for st in states}
    feats, text, truth = {}, {}, {}
    for i in range(num_utts):
        utt = f"spk{i % 4}-utt{i:03d}"
        words = list(rng.choice(list(LEXICON), size=rng.integers(1, 4)))
        path = []
        for phone in (p for w in words for p in LEXICON[w]):
            for s in range(3):
                path.append((phone, s))
                while rng.random() < SELF_LOOP[phone][s]:
                    path.append((phone, s))
        x = np.stack([means[st] + rng.standard_normal(DIM) * np.sqrt(variances[st]) for st in path])
        feats[utt], text[utt], truth[utt] = x.astype(np.float32), " ".join(words), path
    return feats, text, truth, means, variances


def write_data_dir(path, feats, text):
    synthetic_setup.write_data_dir(path, feats, text)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.mono import MonoOptions, train_mono

    tmp = tmp_path_factory.mktemp("mono")
    lang = make_lang(tmp)
    feats, text, truth, means, variances = sample_corpus(np.random.default_rng(SEED))
    write_data_dir(tmp / "data", feats, text)
    opts = MonoOptions(nj=2, num_iters=12, max_iter_inc=8, totgauss=14, realign_iters=(1, 2, 3, 5, 8, 10))
    result = train_mono(tmp / "data", lang, tmp / "exp", opts, pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    return tmp, lang, result, truth, means, variances, phone_table(lang)


def test_training_recovers_the_generating_gaussians(trained):
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency

    tmp, _, result, _, means, variances, phone_ids = trained
    _, am, _, _ = load_model(tmp / "exp" / "final.mdl")
    tree = ContextDependency.read(tmp / "exp" / "tree")
    assert am.num_gauss == am.num_pdfs == 14  # SIL's 5 pdfs, untouched, plus 3 x 3
    for (phone, state), mean in means.items():
        g = am.pdf_offsets[tree.pdfs_for((phone_ids[phone],))[state]]
        np.testing.assert_allclose(am.means[g], mean, atol=0.15, err_msg=f"{phone} state {state}")
        np.testing.assert_allclose(am.variances[g], variances[(phone, state)], rtol=0.2, err_msg=f"{phone} {state}")
    # EM: the likelihood per frame rises from the flat start and never falls once settled
    likes = [h["avg_loglike"] for h in result["history"]]
    assert likes[-1] > likes[0] + 2.0
    assert all(b >= a - 1e-3 for a, b in zip(likes[4:], likes[5:]))


def test_training_recovers_the_transition_probabilities(trained):
    from kaldilite.gmm import load_model

    tmp, _, _, _, _, _, phone_ids = trained
    tm, _, _, _ = load_model(tmp / "exp" / "final.mdl")
    for phone, probs in SELF_LOOP.items():
        for state, p in enumerate(probs):
            loops = np.flatnonzero((tm.tid_to_phone == phone_ids[phone]) & (tm.tid_to_hmm_state == state)
                                   & tm.tid_is_self_loop)
            assert len(loops) == 1
            assert np.exp(tm.log_probs[loops[0]]) == pytest.approx(p, abs=0.04), f"{phone} state {state}"


def test_forced_alignment_returns_the_generating_state_path(trained):
    from kaldilite.gmm import load_model
    from kaldilite.train.align import align_si

    tmp, lang, _, truth, _, _, phone_ids = trained
    result = align_si(tmp / "data", lang, tmp / "exp", tmp / "ali", nj=2)
    assert result["failed"] == 0 and result["aligned"] == len(truth)
    tm, _, _, _ = load_model(tmp / "ali" / "final.mdl")
    id_to_phone = {v: k for k, v in phone_ids.items()}
    correct = total = exact_phones = 0
    for job in (1, 2):
        for utt, ali in read_int_vectors(str(tmp / "ali" / f"ali.{job}.gz")):
            got = [(id_to_phone[tm.tid_to_phone[t]], int(tm.tid_to_hmm_state[t])) for t in ali]
            assert len(got) == len(truth[utt])
            correct += sum(g == t for g, t in zip(got, truth[utt]))
            total += len(got)
            # ali-to-phones --write-lengths: phone instances start where the state index restarts
            expected = []
            for k, (phone, state) in enumerate(truth[utt]):
                if k == 0 or state < truth[utt][k - 1][1] or phone != truth[utt][k - 1][0]:
                    expected.append([phone, 0])
                expected[-1][1] += 1
            if got == truth[utt]:
                assert [(id_to_phone[p], n) for p, n in tm.alignment_to_phones(ali)] == [tuple(e) for e in expected]
                exact_phones += 1
    assert correct / total > 0.995
    assert exact_phones > 0.8 * len(truth)


def test_training_writes_a_kaldi_style_experiment_dir(trained):
    exp = trained[0] / "exp"
    for name in ("0.mdl", "12.mdl", "final.mdl", "tree", "ali.1.gz", "ali.2.gz", "phones.txt", "num_jobs",
                 "log/update.0.log", "log/init.log", "fsts.1.npz"):
        assert (exp / name).exists(), name
    assert (exp / "final.mdl").resolve() == (exp / "12.mdl").resolve()
    assert not list(exp.glob("*.acc")) and not (exp / "5.mdl").exists() and not (exp / "feats.1.npz").exists()
    assert "avg like per frame" in (exp / "log" / "update.11.log").read_text()


def test_the_model_does_not_depend_on_the_number_of_jobs(trained, tmp_path):
    """Per-job statistics are summed before one estimate and the flat start is seeded per
    utterance, so --nj 1 gives the same model as --nj 2."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm import load_model
    from kaldilite.train.mono import MonoOptions, train_mono

    tmp, lang = trained[0], trained[1]
    opts = MonoOptions(nj=1, num_iters=12, max_iter_inc=8, totgauss=14, realign_iters=(1, 2, 3, 5, 8, 10))
    train_mono(tmp / "data", lang, tmp_path / "exp1", opts, pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    tm1, am1, _, _ = load_model(tmp_path / "exp1" / "final.mdl")
    tm2, am2, _, _ = load_model(tmp / "exp" / "final.mdl")
    np.testing.assert_allclose(am1.means, am2.means, rtol=1e-9)
    np.testing.assert_allclose(am1.variances, am2.variances, rtol=1e-9)
    np.testing.assert_allclose(tm1.log_probs, tm2.log_probs, rtol=1e-9)


def test_train_mono_cli_reports_a_missing_feats_scp_in_one_line(tmp_path):
    import subprocess

    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2spk").write_text("s1-u1 s1\n")
    lang = tmp_path / "lang"
    lang.mkdir()
    proc = subprocess.run([sys.executable, "-m", "kaldilite", "train-mono", str(data), str(lang),
                           str(tmp_path / "exp")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"kaldilite train-mono: error: {data / 'feats.scp'}: missing; compute features first (kaldilite make-mfcc)"]


def test_decoding_with_the_trained_model_returns_the_spoken_words(trained, tmp_path):
    """HCLG over a word loop (any word, any number of times) built from the trained model: the
    beam decoder recovers each utterance's words, and its best path is the generating one."""
    from kaldilite.decode import decoder
    from kaldilite.gmm import load_model
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.io.tables import read_matrices

    tmp, lang, _, truth, _, _, phone_ids = trained
    loop_lang = synthetic_setup.word_loop_lang(lang, LEXICON, tmp_path / "lang_loop")
    words = SymbolTable.read(loop_lang / "words.txt")

    tm, am, _, _ = load_model(tmp / "exp" / "final.mdl")
    graph = mkgraph(loop_lang, tmp_path / "graph", tm, ContextDependency.read(tmp / "exp" / "tree"))
    text = dict(line.split(" ", 1) for line in (tmp / "data" / "text").read_text().splitlines())
    errors = same_path = 0
    for utt, feats in read_matrices(str(tmp / "data" / "feats.scp")):
        result = decoder.decode_utterance(graph, am.log_likelihoods(feats), tm.tid_to_pdf)
        assert result.reached_final
        errors += [words.symbol(w) for w in result.words] != text[utt].split()
        got = [(int(tm.tid_to_phone[t]), int(tm.tid_to_hmm_state[t])) for t in result.alignment]
        same_path += got == [(phone_ids[p], s) for p, s in truth[utt]]
    assert errors == 0
    assert same_path > 0.8 * len(truth)


def test_train_mono_cli_runs_the_kaldi_mono_recipe_features(trained, tmp_path):
    """The verb as a recipe calls it: per-speaker CMVN + deltas from cmvn.scp, --nj, --totgauss."""
    import shutil
    import subprocess

    from kaldilite.gmm import load_model

    tmp, lang = trained[0], trained[1]
    data = tmp_path / "data"
    shutil.copytree(tmp / "data", data, ignore=shutil.ignore_patterns("split*"))
    kaldilite = [sys.executable, "-m", "kaldilite"]
    subprocess.run(kaldilite + ["compute-cmvn-stats", str(data)], check=True, capture_output=True)
    proc = subprocess.run(kaldilite + ["train-mono", "--nj", "2", "--num-iters", "6", "--max-iter-inc", "4",
                                       "--totgauss", "30", str(data), str(lang), str(tmp_path / "exp")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "iteration 5: avg log-likelihood per frame" in proc.stderr
    assert proc.stdout.startswith("train-mono: done in")
    _, am, pipeline, _ = load_model(tmp_path / "exp" / "final.mdl")
    assert am.dim == 3 * DIM and pipeline.cmvn == "speaker" and pipeline.delta_order == 2
    assert am.num_gauss == 14 + 4 * ((30 - 14) // 4)


def test_topology_transition_probs_are_compiled_into_the_graphs_and_still_reestimated(trained, tmp_path):
    """--align-transition-probs topology: the training graphs carry the topology's initial
    probabilities (prepare-lang's 0.75 self-loop / 0.25 forward for these phones), scaled as
    train_mono.sh scales them (transition 1.0, self-loop 0.1), and keep them for every
    realignment; the model's transitions are still re-estimated, so training recovers the
    generating self-loop probabilities, not 0.75."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm import load_model
    from kaldilite.train.gmm_steps import load_graphs
    from kaldilite.train.mono import MonoOptions, train_mono

    tmp, lang, _, _, _, _, phone_ids = trained
    opts = MonoOptions(nj=2, num_iters=12, max_iter_inc=8, totgauss=14, realign_iters=(1, 2, 3, 5, 8, 10),
                       align_transition_probs="topology")
    train_mono(tmp / "data", lang, tmp_path / "exp", opts, pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    tm, _, _, _ = load_model(tmp_path / "exp" / "final.mdl")
    self_loop_cost, forward_cost = -0.1 * np.log(0.75), -0.1 * np.log(0.25)  # 3-state phone: one forward arc
    for job in (1, 2):
        for graph in load_graphs(tmp_path / "exp" / f"fsts.{job}.npz").values():
            src = graph.arc_sources()
            emitting = graph.arc_ilabel != 0
            loops = emitting & (graph.arc_next == src)
            np.testing.assert_allclose(graph.arc_weight[loops], self_loop_cost, rtol=1e-5)
            np.testing.assert_allclose(graph.arc_weight[emitting & ~loops], forward_cost, rtol=1e-5)
    for phone, probs in SELF_LOOP.items():
        for state, p in enumerate(probs):
            loop = np.flatnonzero((tm.tid_to_phone == phone_ids[phone]) & (tm.tid_to_hmm_state == state)
                                  & tm.tid_is_self_loop)[0]
            assert np.exp(tm.log_probs[loop]) == pytest.approx(p, abs=0.04), f"{phone} state {state}"
    # the default (Kaldi) graphs carry no transition costs at all
    default = load_graphs(tmp / "exp" / "fsts.1.npz")
    assert all(not np.any(g.arc_weight[g.arc_ilabel != 0]) for g in default.values())


def test_train_mono_cli_rejects_an_unknown_align_transition_probs():
    from click.testing import CliRunner

    from kaldilite.cli import cli

    result = CliRunner().invoke(cli, ["train-mono", "--align-transition-probs", "frozen", ".", ".", "x"])
    assert result.exit_code != 0 and "frozen" in result.output
