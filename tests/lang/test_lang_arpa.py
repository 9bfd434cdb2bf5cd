"""arpa2fst: sentence log-probabilities through G.fst (walking back-off arcs only when the
word has no arc, i.e. ARPA semantics) equal kenlm's for a trigram model with back-offs."""

import math
import random

import pytest
import pywrapfst as fst
from lang_helpers import read_table

from kaldilite.errors import InputError
from kaldilite.lang.arpa import arpa_to_fst

kenlm = pytest.importorskip("kenlm")

VOCAB = ["yes", "no", "up", "down", "left", "right", "on", "off"]


def make_arpa(path, seed=0):
    """A trigram ARPA over n-grams seen in a random corpus (so every prefix/suffix exists),
    with random log10 probabilities and back-offs on the n-grams that have extensions."""
    rng = random.Random(seed)
    corpus = [["<s>"] + [rng.choice(VOCAB[:6]) for _ in range(rng.randint(1, 5))] + ["</s>"] for _ in range(12)]
    grams = {1: set(), 2: set(), 3: set()}
    for sent in corpus:
        for n in (1, 2, 3):
            for i in range(len(sent) - n + 1):
                grams[n].add(tuple(sent[i:i + n]))
    grams[1] |= {(w,) for w in VOCAB} | {("<unk>",)}  # on/off only as unigrams: pure back-off
    has_ext = {g[:-1] for n in (2, 3) for g in grams[n]}
    lines = ["\\data\\"] + [f"ngram {n}={len(grams[n])}" for n in (1, 2, 3)] + [""]
    for n in (1, 2, 3):
        lines.append(f"\\{n}-grams:")
        for g in sorted(grams[n]):
            prob = -99.0 if g == ("<s>",) else round(-rng.uniform(0.05, 2.0), 4)
            backoff = f"\t{round(-rng.uniform(0.0, 1.0), 4)}" if n < 3 and g in has_ext and g[-1] != "</s>" else ""
            lines.append(f"{prob}\t{' '.join(g)}{backoff}")
        lines.append("")
    lines.append("\\end\\")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_words(path):
    syms = ["<eps>"] + sorted(VOCAB) + ["#0", "<s>", "</s>"]
    path.write_text("".join(f"{s} {i}\n" for i, s in enumerate(syms)))
    return path


def sentence_cost(g, word_ids, backoff_label):
    """Cost of a word sequence through G with failure (back-off) semantics, then the final weight."""
    zero = fst.Weight.zero(g.weight_type())
    state, cost = g.start(), 0.0

    def take(state, label):
        for arc in g.arcs(state):
            if arc.ilabel == label:
                return arc
        return None

    for wid in word_ids:
        while True:
            arc = take(state, wid)
            if arc is not None:
                cost += float(arc.weight.to_string())
                state = arc.nextstate
                break
            back = take(state, backoff_label) or take(state, 0)
            assert back is not None, "no back-off arc and no word arc"
            cost += float(back.weight.to_string())
            state = back.nextstate
    while g.final(state) == zero:
        back = take(state, backoff_label) or take(state, 0)
        cost += float(back.weight.to_string())
        state = back.nextstate
    return cost + float(g.final(state).to_string())


def test_sentence_log_probs_match_kenlm(tmp_path):
    arpa = make_arpa(tmp_path / "lm.arpa")
    words_txt = write_words(tmp_path / "words.txt")
    g = arpa_to_fst(arpa, words_txt)
    words = read_table(words_txt)
    model = kenlm.Model(str(arpa))
    rng = random.Random(1)
    sentences = [["yes"], ["on", "off", "on"], ["up", "down", "left", "right"], ["no", "no", "no", "yes", "on"]]
    sentences += [[rng.choice(VOCAB) for _ in range(rng.randint(1, 7))] for _ in range(40)]
    for sent in sentences:
        expected = -model.score(" ".join(sent), bos=True, eos=True) * math.log(10)
        got = sentence_cost(g, [words[w] for w in sent], words["#0"])
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-4), sent


def test_g_has_backoff_arcs_on_hash0_and_no_bos_eos_labels(tmp_path):
    arpa = make_arpa(tmp_path / "lm.arpa")
    words_txt = write_words(tmp_path / "words.txt")
    words = read_table(words_txt)
    g = arpa_to_fst(arpa, words_txt)
    labels = {(a.ilabel, a.olabel) for s in g.states() for a in g.arcs(s)}
    assert (words["#0"], 0) in labels
    assert not {words["<s>"], words["</s>"], 0} & {i for i, _ in labels}
    assert all(i == o for i, o in labels if i != words["#0"])


def test_arpa_without_bos_is_an_error(tmp_path):
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\tyes\n-1.0\t</s>\n\n\\end\\\n")
    with pytest.raises(InputError, match="no <s> unigram"):
        arpa_to_fst(arpa, write_words(tmp_path / "words.txt"))


def test_cli_arpa2fst_skips_ngrams_with_words_outside_words_txt(tmp_path):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    arpa = make_arpa(tmp_path / "lm.arpa")
    words_txt = tmp_path / "words.txt"
    syms = ["<eps>"] + sorted(VOCAB)[1:] + ["#0", "<s>", "</s>"]  # drop "down"
    words_txt.write_text("".join(f"{s} {i}\n" for i, s in enumerate(syms)))
    res = CliRunner().invoke(cli, ["arpa2fst", "--disambig-symbol=#0", f"--read-symbol-table={words_txt}",
                                   str(arpa), str(tmp_path / "G.fst")])
    assert res.exit_code == 0, res.output
    g = fst.Fst.read(str(tmp_path / "G.fst"))
    words = read_table(words_txt)
    model = kenlm.Model(str(arpa))
    # Sentences without "down" only use n-grams that survive, so they still score as in kenlm.
    for sent in (["yes", "no"], ["up", "left", "right", "on"], ["off"]):
        expected = -model.score(" ".join(sent), bos=True, eos=True) * math.log(10)
        assert sentence_cost(g, [words[w] for w in sent], words["#0"]) == pytest.approx(expected, rel=1e-5, abs=1e-4)
    assert "down" not in words


@pytest.mark.parametrize("body, error", [
    ("ngram 1=2\n\n\\1-grams:\n-1_0\t<s>\n-1.0\t</s>\n", ":5: bad number in '-1_0\\t<s>'"),
    ("ngram 1=2\n\n\\1-grams:\n-1.0\t<s>\t\u0660\n-1.0\t</s>\n", ":5: bad number in '-1.0\\t<s>\\t\u0660'"),
    ("ngram 1=2\n\n\\1-grams:\n-1.0\t<s>\tnan\n-1.0\t</s>\n", ":5: bad number in '-1.0\\t<s>\\tnan'"),
    ("ngram 1=\u0662\n\n\\1-grams:\n-1.0\t<s>\n", ":2: expected 'ngram N=count', found 'ngram 1=\u0662'"),
    ("ngram 1=2\n\n\\1_0-grams:\n", ":4: bad section header '\\\\1_0-grams:'"),
])
def test_arpa_numbers_follow_arpa2fsts_rule(tmp_path, body, error):
    """ArpaFileParser reads counts with ConvertStringToInteger and log-probs/back-offs with
    ConvertStringToReal: '-inf' is a log-probability (of a word never predicted), '1_0' is not."""
    from kaldilite.lang.arpa import read_arpa

    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\n" + body + "\n\\end\\\n")
    with pytest.raises(InputError) as refused:
        list(read_arpa(arpa))
    assert str(refused.value) == f"{arpa}{error}"
    arpa.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-inf\t<s>\t-0.5\n-1.0\t</s>\n\n\\end\\\n")
    assert [(g, p, b) for _, g, p, b, _ in read_arpa(arpa)] == [(("<s>",), -math.inf, -0.5), (("</s>",), -1.0, 0.0)]
