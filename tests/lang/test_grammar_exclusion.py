"""make-grammar --garbage-excludes-commands: a garbage loop that cannot spell a command.

The independent answer is brute force: every garbage string up to four phones over the toy lang's
three phones is scored through G by composition (`path_cost`), with and without the exclusion.
With it, exactly the commands' own base-phone strings (every pronunciation; a multi-word command
the concatenation) are gone and every other string keeps the plain loop's cost to the last digit.
"""

import itertools
import math

import pytest
import pywrapfst as fst
from lang_helpers import path_cost, read_table, write_dict_dir

from kaldilite.errors import InputError
from kaldilite.lang import LangDir, prepare_lang
from kaldilite.lang.grammar import NOISE_WORD, make_grammar
from kaldilite.lang.validate import validate_lang

LEXICON = """!SIL SIL
<UNK> SPN
ab A B
c C
see C
either A C
either B C A
ba B A
"""
COMMANDS = "ab\neither c\nsee\n"
# the commands' base-phone strings, by hand: ab; either c (two pronunciations); see
FORBIDDEN = {("A", "B"), ("A", "C", "C"), ("B", "C", "A", "C"), ("C",)}
PHONES = ("A", "B", "C")


@pytest.fixture(scope="module")
def lang(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xc")
    return prepare_lang(write_dict_dir(tmp / "dict", lexicon=LEXICON), "<UNK>", tmp / "tmp", tmp / "lang")


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def grammar(lang, tmp_path, name, commands=COMMANDS, excludes=True, **options):
    out = make_grammar(write(tmp_path / f"{name}.txt", commands), lang, tmp_path / name, garbage=True,
                       garbage_cost=0.5, garbage_loop_prob=0.7, garbage_phone_bonus=0.4,
                       garbage_excludes_commands=excludes, **options)
    return LangDir.load(out).g_fst(), read_table(out / "words.txt"), out


def garbage_strings(max_len=4):
    for n in range(1, max_len + 1):
        yield from itertools.product(PHONES, repeat=n)


def ids(words, string):
    return [words[f"<gbg_{p}>"] for p in string]


def test_the_loop_accepts_every_garbage_string_but_the_commands_at_the_plain_cost(lang, tmp_path):
    g_plain, w, _ = grammar(lang, tmp_path, "plain", excludes=False)
    g_xc, w_xc, out = grammar(lang, tmp_path, "xc")
    assert w == w_xc
    assert g_xc.properties(fst.I_DETERMINISTIC | fst.NO_EPSILONS, True) == fst.I_DETERMINISTIC | fst.NO_EPSILONS
    rejected = set()
    for string in garbage_strings():
        plain, excluded = path_cost(g_plain, ids(w, string), ids(w, string)), path_cost(g_xc, ids(w, string),
                                                                                       ids(w, string))
        assert plain < math.inf
        if excluded == math.inf:
            rejected.add(string)
        else:
            assert excluded == pytest.approx(plain, abs=1e-5), string
    assert rejected == FORBIDDEN
    for command in (["ab"], ["either", "c"], ["see"]):  # the commands themselves are untouched
        cmd = [w[x] for x in command]
        assert path_cost(g_xc, cmd, cmd) == pytest.approx(path_cost(g_plain, cmd, cmd), abs=1e-6)
    assert validate_lang(out) == []  # includes determinizing L_disambig o G


def test_a_held_out_grammar_forbids_only_its_own_commands(lang, tmp_path):
    """The protocol's leave-one-command-out grammar: `ab` is not in it, so the loop still spells A B."""
    g, w, _ = grammar(lang, tmp_path, "minus_ab", commands="either c\nsee\n")
    rejected = {s for s in garbage_strings() if path_cost(g, ids(w, s), ids(w, s)) == math.inf}
    assert rejected == FORBIDDEN - {("A", "B")}


def test_lg_can_no_longer_read_a_command_s_phones_as_garbage(lang, tmp_path):
    """Through L_disambig o G: the singleton phones A_S B_S came out as <gbg_A> <gbg_B> (the loop
    spelling `ab`); with the exclusion no path of LG maps them to garbage at all."""
    for excludes, reachable in ((False, True), (True, False)):
        _, w, out = grammar(lang, tmp_path, f"lg_{excludes}", excludes=excludes)
        langdir, p = LangDir.load(out), read_table(out / "phones.txt")
        lg = fst.compose(langdir.l_fst(disambig=False).arcsort(sort_type="olabel"), langdir.g_fst().arcsort())
        cost = path_cost(lg, [p["A_S"], p["B_S"]], [w["<gbg_A>"], w["<gbg_B>"]])
        assert (cost < math.inf) == reachable
        # a longer string through the same phones stays garbage either way
        assert path_cost(lg, [p["A_S"], p["B_S"], p["A_S"]], [w["<gbg_A>"], w["<gbg_B>"], w["<gbg_A>"]]) < math.inf


def test_sequences_keep_every_other_word_string_at_its_plain_cost(lang, tmp_path):
    """--allow-sequence: brute force over all word strings of up to three words (commands, filler,
    garbage): a string is dropped exactly when one of its maximal garbage runs spells a command."""
    fillers = write(tmp_path / "fillers.txt", "ba\n")
    g_plain, w, _ = grammar(lang, tmp_path, "seq_plain", excludes=False, allow_sequence=True, fillers=fillers)
    g_xc, _, out = grammar(lang, tmp_path, "seq_xc", allow_sequence=True, fillers=fillers)
    vocabulary = ["ab", "either", "c", "see", "ba"] + [f"<gbg_{p}>" for p in PHONES]
    checked = 0
    for n in range(1, 4):
        for string in itertools.product(vocabulary, repeat=n):
            labels = [w[x] for x in string]
            plain = path_cost(g_plain, labels, labels)
            if plain == math.inf:
                continue
            runs = [tuple(x[5:-1] for x in run) for is_garbage, run in
                    itertools.groupby(string, key=lambda x: x.startswith("<gbg_")) if is_garbage for run in [list(run)]]
            expected = math.inf if any(r in FORBIDDEN for r in runs) else plain
            assert path_cost(g_xc, labels, labels) == pytest.approx(expected, abs=1e-5), string
            checked += 1
    assert checked > 100
    assert validate_lang(out) == []


def test_edge_noise_still_wraps_commands_and_never_spells_them_as_garbage(lang, tmp_path):
    g_plain, w, _ = grammar(lang, tmp_path, "en_plain", excludes=False, edge_noise_prob=0.2)
    g_xc, _, out = grammar(lang, tmp_path, "en_xc", edge_noise_prob=0.2)
    for words in (["ab"], [NOISE_WORD, "ab"], ["see", NOISE_WORD], [NOISE_WORD, "either", "c", NOISE_WORD]):
        labels = [w[x] for x in words]
        assert path_cost(g_xc, labels, labels) == pytest.approx(path_cost(g_plain, labels, labels), abs=1e-6)
    rejected = {s for s in garbage_strings(3) if path_cost(g_xc, ids(w, s), ids(w, s)) == math.inf}
    assert rejected == {s for s in FORBIDDEN if len(s) <= 3}
    assert validate_lang(out) == []


def test_mkgraph_builds_hclg_from_an_excluding_grammar(lang, tmp_path):
    """The full HCLG (a monophone model over the lang's phones) builds and determinizes; the
    excluded grammar's graph is larger by the trie states."""
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree

    langdir = LangDir.load(lang)
    topo = Topology.read(lang / "topo")
    tree = monophone_tree(langdir.roots, topo)
    tm = TransitionModel(topo, tree)
    states = {}
    for excludes in (False, True):
        _, _, out = grammar(lang, tmp_path, f"g_{excludes}", excludes=excludes)
        mkgraph(out, tmp_path / f"graph_{excludes}", tm, tree)
        hclg = fst.Fst.read(str(tmp_path / f"graph_{excludes}" / "HCLG.fst"))
        states[excludes] = sum(1 for _ in hclg.states())  # a ConstFst: no num_states() in pywrapfst
    assert states[True] > states[False]


def test_the_flag_needs_a_garbage_loop_and_the_verb_passes_it(lang, tmp_path):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    with pytest.raises(InputError, match="no garbage loop to restrict; add --garbage true"):
        make_grammar(write(tmp_path / "c.txt", COMMANDS), lang, tmp_path / "bad", garbage_excludes_commands=True)
    result = CliRunner().invoke(cli, ["make-grammar", "--garbage", "true", "--garbage-excludes-commands", "true",
                                      str(write(tmp_path / "c.txt", COMMANDS)), str(lang), str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    g, w = LangDir.load(tmp_path / "cli").g_fst(), read_table(tmp_path / "cli" / "words.txt")
    assert path_cost(g, ids(w, ("A", "B")), ids(w, ("A", "B"))) == math.inf
    assert path_cost(g, ids(w, ("B", "A")), ids(w, ("B", "A"))) < math.inf
