"""Phone n-grams for the garbage loop: the Witten-Bell estimator against hand-computed counts and
an independent estimator written here, the ARPA file it writes read back by arpa2fst, and
make-grammar --garbage-phone-lm's G against a hand-computed back-off bigram over a 3-phone toy."""

import itertools
import math
import random
from collections import Counter

import pytest
import pywrapfst as fst
from lang_helpers import path_cost, read_table, weight, write_dict_dir

from kaldilite.errors import InputError
from kaldilite.lang import LangDir, prepare_lang
from kaldilite.lang.arpa import arpa_to_fst
from kaldilite.lang.grammar import make_grammar
from kaldilite.lang.phone_lm import NgramModel, dictionary_pronunciations, witten_bell
from kaldilite.lang.validate import validate_lang


def test_witten_bell_bigram_matches_the_hand_computed_counts():
    # <s> A B </s>, <s> A </s>: unigrams A 2, B 1, </s> 2 of 5; after <s>: A twice (c 2, T 1); after A:
    # B, </s> (c 2, T 2); after B: </s> (c 1, T 1). P(w | h) = (c(h, w) + T(h) P(w)) / (c(h) + T(h)).
    model = witten_bell([("A", "B"), ("A",)], order=2)
    expected = {("<s>", "A"): (2 + 0.4) / 3, ("<s>", "B"): 0.2 / 3, ("<s>", "</s>"): 0.4 / 3,
                ("A", "A"): 2 * 0.4 / 4, ("A", "B"): (1 + 2 * 0.2) / 4, ("A", "</s>"): (1 + 2 * 0.4) / 4,
                ("B", "A"): 0.4 / 2, ("B", "B"): 0.2 / 2, ("B", "</s>"): (1 + 0.4) / 2}
    for (history, token), p in expected.items():
        assert model.prob((history,), token) == pytest.approx(p, abs=1e-12), (history, token)
    assert sorted(model.vocabulary()) == ["</s>", "A", "B"]


def independent_witten_bell(sentences, order):
    """P(token | history) straight from the recursive definition over raw counts (no ARPA back-off)."""
    counts = Counter()
    for s in sentences:
        padded = ("<s>",) + s + ("</s>",)
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                counts[padded[i:i + n]] += 1
    vocab = sorted({t for s in sentences for t in s} | {"</s>"})
    unigram_total = sum(counts[(t,)] for t in vocab)

    def prob(history, token):
        if not history:
            return counts[(token,)] / unigram_total
        followers = {t: counts[history + (t,)] for t in vocab if counts[history + (t,)]}
        if not followers:
            return prob(history[1:], token)
        c, t = sum(followers.values()), len(followers)
        return (followers.get(token, 0) + t * prob(history[1:], token)) / (c + t)

    return prob, vocab


@pytest.mark.parametrize("order", [1, 2, 3])
def test_witten_bell_equals_an_independent_estimator_and_sums_to_one(order, tmp_path):
    rng = random.Random(order)
    sentences = [tuple(rng.choice("ABCD") for _ in range(rng.randint(1, 5))) for _ in range(40)]
    model = witten_bell(sentences, order)
    model.write(tmp_path / "lm.arpa")
    reread = NgramModel.read(tmp_path / "lm.arpa")  # the ARPA file's 6 decimals of log10
    reference, vocab = independent_witten_bell(sentences, order)
    histories = [()] + [h for n in range(1, order) for h in itertools.product(["<s>", *vocab[:-1]], repeat=n)
                        if "<s>" not in h[1:]]
    for history in histories:
        for m, tolerance in ((model, 1e-12), (reread, 1e-5)):
            assert sum(m.prob(history, t) for t in vocab) == pytest.approx(1.0, abs=tolerance)
        for token in vocab:
            assert model.prob(history, token) == pytest.approx(reference(history, token), abs=1e-12)
            assert reread.prob(history, token) == pytest.approx(reference(history, token), rel=1e-5)


def test_the_arpa_file_reads_in_arpa2fst_with_the_same_sentence_probabilities(tmp_path):
    sentences = [("A", "B"), ("A",), ("B", "B", "C"), ("C", "A")]
    model = witten_bell(sentences, order=3)
    model.write(tmp_path / "lm.arpa")
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nA 1\nB 2\nC 3\n#0 4\n<s> 5\n</s> 6\n")
    g = arpa_to_fst(tmp_path / "lm.arpa", words)
    ids = {"A": 1, "B": 2, "C": 3}
    for sentence in (("A",), ("A", "B"), ("C", "C", "B", "A")):
        history, expected = ("<s>",), 0.0
        for token in sentence + ("</s>",):
            expected -= math.log(model.prob(history, token))
            history += (token,)
        labels = [ids[t] for t in sentence]
        # arpa2fst's back-off arcs read #0 (input) and write nothing: the best path takes them where needed
        g_no_disambig = g.copy()
        g_no_disambig.relabel_pairs(ipairs=[(4, 0)])
        assert path_cost(g_no_disambig, labels, labels) == pytest.approx(expected, abs=1e-4), sentence


def test_dictionary_pronunciations_rewrite_phones_outside_the_set(tmp_path):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("sing S IH NG\nsing S IH NG\nthe DH AH\nxx OY\n")
    prons = dictionary_pronunciations(lexicon, phone_set={"S", "IH", "N", "G", "D", "AH", "AO", "IY"})
    assert prons == [("S", "IH", "N", "G"), ("D", "AH"), ("AO", "IY")]  # NG -> N G, DH -> D, OY -> AO IY
    assert dictionary_pronunciations(lexicon) == [("S", "IH", "NG"), ("DH", "AH"), ("OY",)]


# ---- make-grammar --garbage-phone-lm over the toy lang's phones A B C ----

LEXICON = "!SIL SIL\n<UNK> SPN\nab A B\nsee C\n"
# A back-off bigram by hand (probabilities, not log10). Unigrams A .3 B .3 C .2 </s> .2.
# <s>: A .6, B .2 seen, the rest .2 over C + </s> (unigram mass .4): bow .5, so P(C|<s>) = P(</s>|<s>) = .1.
# A: B .5, </s> .3 seen, .2 over A + C (mass .5): bow .4. B: A .4 seen, .6 over B C </s> (mass .7): bow 6/7.
# C: no bigrams, no back-off weight: the unigrams.
TOY_ARPA = {("A",): (0.3, None), ("B",): (0.3, None), ("C",): (0.2, None), ("</s>",): (0.2, None),
            ("<s>",): (None, 0.5), ("<s>", "A"): (0.6, None), ("<s>", "B"): (0.2, None),
            ("A", "B"): (0.5, None), ("A", "</s>"): (0.3, None), ("B", "A"): (0.4, None)}
TOY_BOW = {"A": 0.4, "B": 6 / 7}
BIGRAM = {("<s>", "A"): 0.6, ("<s>", "B"): 0.2, ("<s>", "C"): 0.1, ("<s>", "</s>"): 0.1,
          ("A", "A"): 0.12, ("A", "B"): 0.5, ("A", "C"): 0.08, ("A", "</s>"): 0.3,
          ("B", "A"): 0.4, ("B", "B"): 6 / 7 * 0.3, ("B", "C"): 6 / 7 * 0.2, ("B", "</s>"): 6 / 7 * 0.2,
          ("C", "A"): 0.3, ("C", "B"): 0.3, ("C", "C"): 0.2, ("C", "</s>"): 0.2}


def write_toy_arpa(path):
    lines = ["\\data\\", "ngram 1=5", "ngram 2=5", "", "\\1-grams:"]
    for order in (1, 2):
        if order == 2:
            lines += ["", "\\2-grams:"]
        for ngram, (p, _) in TOY_ARPA.items():
            if len(ngram) == order:
                bow = 0.5 if ngram == ("<s>",) else TOY_BOW.get(ngram[0]) if order == 1 else None
                fields = [f"{math.log10(p):.10f}" if p else "-99", " ".join(ngram)] + (
                    [f"{math.log10(bow):.10f}"] if bow else [])
                lines.append("\t".join(fields))
    path.write_text("\n".join(lines + ["", "\\end\\", ""]))
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plm")
    lang = prepare_lang(write_dict_dir(tmp / "dict", lexicon=LEXICON), "<UNK>", tmp / "tmp", tmp / "lang")
    commands = tmp / "commands.txt"
    commands.write_text("ab\nsee\n")
    return lang, commands, write_toy_arpa(tmp / "toy.arpa")


@pytest.mark.parametrize("phones", [None, ("A", "B")])
def test_garbage_paths_cost_the_hand_computed_bigram_plus_the_bonus(toy, tmp_path, phones):
    lang, commands, arpa = toy
    model = NgramModel.read(arpa)
    for (h, t), p in BIGRAM.items():
        assert model.prob((h,), t) == pytest.approx(p, abs=1e-9)
    options = {}
    if phones:
        (tmp_path / "phones.txt").write_text(" ".join(phones) + "\n")
        options["garbage_phones"] = tmp_path / "phones.txt"
    bonus, garbage_cost = 0.7, 0.5
    out = make_grammar(commands, lang, tmp_path / "g", garbage=True, garbage_cost=garbage_cost,
                       garbage_phone_bonus=bonus, garbage_phone_lm=arpa, **options)
    g, w = LangDir.load(out).g_fst(), read_table(out / "words.txt")
    assert g.properties(fst.I_DETERMINISTIC | fst.NO_EPSILONS, True) == fst.I_DETERMINISTIC | fst.NO_EPSILONS
    p_garbage = math.exp(-garbage_cost) / (2 + math.exp(-garbage_cost))
    allowed = phones or ("A", "B", "C")

    def conditional(history, token):  # the bigram restricted to the garbage phones (+ </s> after a phone)
        ends = () if history == "<s>" else ("</s>",)
        return BIGRAM[(history, token)] / sum(BIGRAM[(history, t)] for t in allowed + ends)

    for n in (1, 2, 3):
        for string in itertools.product(("A", "B", "C"), repeat=n):
            labels = [w[f"<gbg_{p}>"] for p in string if f"<gbg_{p}>" in w]
            if len(labels) < n:
                continue  # a phone outside --garbage-phones has no garbage word
            if not set(string) <= set(allowed):
                assert path_cost(g, labels, labels) == math.inf
                continue
            prob = p_garbage
            for history, token in zip(("<s>",) + string, string + ("</s>",)):
                prob *= conditional(history, token)
            assert path_cost(g, labels, labels) == pytest.approx(-math.log(prob) - n * bonus, abs=1e-4), string
    assert path_cost(g, [w["ab"]], [w["ab"]]) == pytest.approx(-math.log(1 / (2 + math.exp(-0.5))), abs=1e-5)
    assert validate_lang(out) == []  # includes determinizing L_disambig o G


@pytest.mark.parametrize("sequence", [False, True])
def test_without_a_bonus_g_is_stochastic(toy, tmp_path, sequence):
    lang, commands, arpa = toy
    out = make_grammar(commands, lang, tmp_path / "g", garbage=True, garbage_cost=0.3, garbage_phone_lm=arpa,
                       allow_sequence=sequence, edge_noise_prob=0.1)
    g = LangDir.load(out).g_fst()
    for state in g.states():
        total = sum(math.exp(-weight(a.weight)) for a in g.arcs(state)) + math.exp(-weight(g.final(state)))
        assert total == pytest.approx(1.0, abs=1e-5)
    assert validate_lang(out) == []


def test_bad_combinations_are_refused(toy, tmp_path):
    lang, commands, arpa = toy
    with pytest.raises(InputError, match="no garbage loop to model; add --garbage true"):
        make_grammar(commands, lang, tmp_path / "a", garbage_phone_lm=arpa)
    with pytest.raises(InputError, match="not supported; choose one"):
        make_grammar(commands, lang, tmp_path / "b", garbage=True, garbage_excludes_commands=True,
                     garbage_phone_lm=arpa)
    small = tmp_path / "ab.arpa"
    witten_bell([("A", "B")], 2).write(small)
    with pytest.raises(InputError, match=r"garbage phone\(s\) C not in the phone model"):
        make_grammar(commands, lang, tmp_path / "c", garbage=True, garbage_phone_lm=small)


def test_the_verbs_estimate_and_use_a_phone_model(toy, tmp_path):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    lang, commands, _ = toy
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("ab A B\nba B A\nabc A B C\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["make-phone-lm", "--lexicon", str(lexicon), "--ngram-order", "3",
                                 str(tmp_path / "lm.arpa")])
    assert result.exit_code == 0, result.output
    model = NgramModel.read(tmp_path / "lm.arpa")
    assert model.order == 3
    assert model.prob(("<s>", "A"), "B") == pytest.approx(
        witten_bell([("A", "B"), ("B", "A"), ("A", "B", "C")], 3).prob(("<s>", "A"), "B"), rel=1e-5)
    result = runner.invoke(cli, ["make-grammar", "--garbage", "true", "--garbage-phone-lm", str(tmp_path / "lm.arpa"),
                                 str(commands), str(lang), str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    g, w = LangDir.load(tmp_path / "g").g_fst(), read_table(tmp_path / "g" / "words.txt")
    ab = [w["<gbg_A>"], w["<gbg_B>"]]
    p = math.exp(0) / 3 * model.prob(("<s>",), "A") / (1 - model.prob(("<s>",), "</s>")) \
        * model.prob(("<s>", "A"), "B") * model.prob(("A", "B"), "</s>")
    assert path_cost(g, ab, ab) == pytest.approx(-math.log(p), abs=1e-4)


def test_mkgraph_builds_hclg_from_a_phone_lm_grammar(toy, tmp_path):
    """The full HCLG (a monophone model over the toy phones) determinizes with the n-gram loop."""
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree

    lang, commands, arpa = toy
    langdir = LangDir.load(lang)
    topo = Topology.read(lang / "topo")
    tree = monophone_tree(langdir.roots, topo)
    out = make_grammar(commands, lang, tmp_path / "g", garbage=True, garbage_phone_bonus=0.7, garbage_phone_lm=arpa,
                       edge_noise_prob=0.1)
    mkgraph(out, tmp_path / "graph", TransitionModel(topo, tree), tree)
    assert (tmp_path / "graph" / "HCLG.fst").is_file()
