"""The rejection rule on real recorded speech: FSDD digits, the digits recipe's monophone model.

Five digits (zero..four) are the commands, a garbage phone loop catches anything else, and the
other five digits are out-of-vocabulary. The transcripts are the independent answer: commands
must mostly come out right, OOV digits must mostly be rejected -- far more often than with the
rule switched off, where they are forced onto commands (the failure rejection exists to fix).
The system comes from the `digits_system` session fixture (tests/conftest.py).
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["zero", "one", "two", "three", "four"]


@pytest.fixture(scope="module")
def decisions(digits_system, tmp_path_factory):
    digits = digits_system
    from kaldilite.decode.rejection import Recognizer, RecognizerOptions, RejectionRule, read_fillers
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.lang.grammar import make_grammar

    tmp = tmp_path_factory.mktemp("reject")
    (tmp / "commands.txt").write_text("\n".join(COMMANDS) + "\n")
    make_grammar(tmp / "commands.txt", digits / "data" / "lang", tmp / "lang", garbage=True)
    tm, am, pipeline, _ = load_model(digits / "exp" / "mono" / "final.mdl")
    graph = mkgraph(tmp / "lang", tmp / "graph", tm, ContextDependency.read(digits / "exp" / "mono" / "tree"))
    words, fillers = SymbolTable.read(tmp / "graph" / "words.txt"), read_fillers(tmp / "graph")
    text = dict(DataDir.load(digits / "data" / "test").text)
    opts = RecognizerOptions(acoustic_scale=0.083333, exact_llr=True)
    recognizer = Recognizer(graph, tm.tid_to_pdf, words, fillers, RejectionRule(), opts)
    out = {}
    for i, (utt, feats) in enumerate(load_features(digits / "data" / "test", pipeline)):
        if i % 3 == 0:  # a third of the 1000 test utterances keeps this test at a few seconds
            out[utt] = (text[utt], recognizer.recognize(am.log_likelihoods(feats)))
    return out


def rates(decisions, rule):
    commands = [(ref, rule.decide_measures(d.measures, d.num_frames)) for ref, d in decisions.values()
                if ref in COMMANDS]
    oov = [rule.decide_measures(d.measures, d.num_frames) for ref, d in decisions.values() if ref not in COMMANDS]
    accuracy = sum(d.label == ref for ref, d in commands) / len(commands)
    false_accepts = sum(d.accepted for d in oov) / len(oov)
    return accuracy, false_accepts


def test_commands_are_recognized_and_oov_digits_mostly_rejected(decisions):
    from kaldilite.decode.rejection import RejectionRule

    accuracy, false_accepts = rates(decisions, RejectionRule())
    forced_accuracy, forced_false_accepts = rates(decisions, RejectionRule(enabled=False))
    assert accuracy >= 0.85  # 93% on the whole test set
    assert false_accepts <= 0.25  # 13% on the whole test set
    assert forced_false_accepts >= 2 * false_accepts  # 46% with the rule off
    assert forced_accuracy >= accuracy


def test_the_exact_likelihood_ratio_ranks_commands_above_oov_words(decisions):
    """At a threshold letting <= 5% of OOV digits through, most commands still pass (79% on the
    whole set); the label posterior, saturated at 1 for many OOV words, does worse."""
    from kaldilite.decode.rejection import RejectionRule

    llrs = sorted({d.measures.llr for _, d in decisions.values() if d.measures.llr is not None})
    for threshold in llrs:
        accuracy, false_accepts = rates(decisions, RejectionRule(score="llr", threshold=threshold))
        if false_accepts <= 0.05:
            break
    assert false_accepts <= 0.05 and accuracy >= 0.6
    clipped = sum(d.measures.llr_clipped for _, d in decisions.values())
    assert clipped <= 0.01 * len(decisions), clipped  # only if even the retry beam found no complete path
