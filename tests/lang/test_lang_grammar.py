"""make-grammar: L_disambig o G maps exactly the allowed pronunciations to exactly the allowed
words (brute-force enumeration against the lexicon), G is stochastic with the documented item
probabilities, the garbage loop costs are as designed, and bad command files fail clearly."""

import itertools
import math

import pytest
import pywrapfst as fst
from lang_helpers import enumerate_paths, path_cost, read_table, weight, write_dict_dir

from kaldilite.errors import InputError
from kaldilite.lang import LangDir, prepare_lang
from kaldilite.lang.grammar import make_grammar
from kaldilite.lang.validate import validate_lang

LEXICON = """!SIL SIL
<UNK> SPN
ab A B
abc A B C
c C
see C
ba B A
bab B A B
"""
HALF = -math.log(0.5)


@pytest.fixture
def base_lang(tmp_path):
    dict_dir = write_dict_dir(tmp_path / "dict", lexicon=LEXICON)
    return prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang")


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def strip_disambig(labels, disambig):
    return tuple(x for x in labels if x not in disambig)


def expected_pairs(items, prons, phone_id, word_id):
    """Brute force: every item, every pronunciation choice, optional SIL at each of n+1 gaps."""
    out = {}
    sil = phone_id["SIL"]
    for words, item_cost in items:
        choices = [prons[w] for w in words]
        for pron_choice in itertools.product(*choices):
            for sils in itertools.product((False, True), repeat=len(words) + 1):
                seq = []
                for k, pron in enumerate(pron_choice):
                    if sils[k]:
                        seq.append(sil)
                    seq.extend(phone_id[x] for x in pron)
                if sils[-1]:
                    seq.append(sil)
                cost = item_cost + HALF * (len(words) + 1)
                out[(tuple(seq), tuple(word_id[w] for w in words))] = cost
    return out


def lg_paths(lang_dir):
    lang = LangDir.load(lang_dir)
    lg = fst.compose(lang.l_fst(disambig=True).arcsort(sort_type="olabel"), lang.g_fst().arcsort())
    det = fst.determinize(lg)
    assert det.properties(fst.I_DETERMINISTIC, True) & fst.I_DETERMINISTIC
    disambig = set(lang.disambig_phones)
    paths = {}
    for ins, outs, cost in enumerate_paths(det):
        key = (strip_disambig(ins, disambig), outs)
        assert key not in paths, "two paths for one (pronunciation, words) pair"
        paths[key] = cost
    return paths


def test_lg_maps_exactly_the_lexicon_pronunciations_to_the_allowed_items(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "ab\nc see\t2\nbab\n")
    fillers = write(tmp_path / "fillers.txt", "ba\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", fillers=fillers)
    assert validate_lang(out) == []
    p, w = read_table(out / "phones.txt"), read_table(out / "words.txt")
    prons = {"ab": [("A_B", "B_E")], "c": [("C_S",)], "see": [("C_S",)], "ba": [("B_B", "A_E")],
             "bab": [("B_B", "A_I", "B_E")]}
    # Weights 1, 2, 1 for commands and 1 for the filler: probabilities 1/5, 2/5, 1/5, 1/5.
    items = [(("ab",), -math.log(1 / 5)), (("c", "see"), -math.log(2 / 5)), (("bab",), -math.log(1 / 5)),
             (("ba",), -math.log(1 / 5))]
    expected = expected_pairs(items, prons, p, w)
    got = lg_paths(out)
    assert set(got) == set(expected)
    for key, cost in expected.items():
        assert got[key] == pytest.approx(cost, abs=1e-4)
    assert LangDir.load(out).filler_words() == {"ba"}
    assert (out / "words" / "fillers.int").read_text() == f"{w['ba']}\n"


def test_homophone_commands_stay_determinizable_and_distinct(base_lang, tmp_path):
    """c and see are both C_S: only the #1/#2 on L_disambig make L o G functional."""
    out = make_grammar(write(tmp_path / "c.txt", "c\nsee\n"), base_lang, tmp_path / "lang_cmd")
    lang = LangDir.load(out)
    p, w = read_table(out / "phones.txt"), read_table(out / "words.txt")
    lg = fst.compose(lang.l_fst(disambig=True).arcsort(sort_type="olabel"), lang.g_fst().arcsort())
    det = fst.determinize(lg)
    assert path_cost(det, [p["C_S"], p["#1"]], [w["c"]]) == pytest.approx(-math.log(0.5) + 2 * HALF, abs=1e-4)
    assert path_cost(det, [p["C_S"], p["#2"]], [w["see"]]) == pytest.approx(-math.log(0.5) + 2 * HALF, abs=1e-4)
    # Without the disambiguation symbols the transducer is not functional: one input, two outputs.
    plain = fst.compose(lang.l_fst().arcsort(sort_type="olabel"), lang.g_fst().arcsort())
    outputs = {outs for ins, outs, _ in enumerate_paths(plain) if ins == (p["C_S"],)}
    assert outputs == {(w["c"],), (w["see"],)}


def test_g_is_stochastic_and_deterministic_with_shared_prefixes(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "ab c\t3\nab\nab see c\nc\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", allow_sequence=False)
    g = LangDir.load(out).g_fst()
    assert g.properties(fst.I_DETERMINISTIC, True) & fst.I_DETERMINISTIC
    for state in g.states():
        total = sum(math.exp(-weight(a.weight)) for a in g.arcs(state)) + math.exp(-weight(g.final(state)))
        assert total == pytest.approx(1.0, abs=1e-6)
    w = read_table(out / "words.txt")
    by_words = {outs: math.exp(-cost) for _, outs, cost in enumerate_paths(g)}
    assert by_words == pytest.approx({(w["ab"], w["c"]): 0.5, (w["ab"],): 1 / 6,
                                      (w["ab"], w["see"], w["c"]): 1 / 6, (w["c"],): 1 / 6})


def test_garbage_loop_costs_and_filler_marking(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "ab\nc\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", garbage=True, garbage_cost=1.0,
                       garbage_loop_prob=0.6)
    assert validate_lang(out) == []
    lang = LangDir.load(out)
    w, p = read_table(out / "words.txt"), read_table(out / "phones.txt")
    garbage = {"<gbg_A>", "<gbg_B>", "<gbg_C>"}
    assert lang.filler_words() == garbage
    assert ("<gbg_B>", ["B_S"]) in lang.lexicon
    # P(garbage) = e^-1 / (2 + e^-1); a garbage string of length L over N=3 phones has
    # probability P(garbage) * (1/3) * (0.6/3)^(L-1) * 0.4.
    pg = math.exp(-1.0) / (2 + math.exp(-1.0))
    g = lang.g_fst()
    for seq in (["<gbg_A>"], ["<gbg_B>", "<gbg_C>", "<gbg_B>"]):
        expected = -math.log(pg / 3 * (0.6 / 3) ** (len(seq) - 1) * 0.4)
        ids = [w[x] for x in seq]
        assert path_cost(g, ids, ids) == pytest.approx(expected, abs=1e-4)
    assert path_cost(g, [w["ab"]], [w["ab"]]) == pytest.approx(-math.log(1 / (2 + math.exp(-1.0))), abs=1e-4)
    # Through L_disambig o G: the phones B_S C_S (any speech) come out as two garbage words.
    lg = fst.determinize(fst.compose(lang.l_fst(disambig=True).arcsort(sort_type="olabel"), g.arcsort()))
    # C_S is shared by c, see and <gbg_C> (lexicon order), so <gbg_C> is C_S #3 in L_disambig.
    assert path_cost(lg, [p["B_S"], p["C_S"], p["#1"]], [w["<gbg_B>"], w["<gbg_C>"]]) == math.inf
    assert path_cost(lg, [p["B_S"], p["C_S"], p["#3"]], [w["<gbg_B>"], w["<gbg_C>"]]) < math.inf
    cost = path_cost(lg, [p["B_S"], p["A_S"]], [w["<gbg_B>"], w["<gbg_A>"]])
    assert cost == pytest.approx(-math.log(pg / 3 * 0.6 / 3 * 0.4) + 3 * HALF, abs=1e-4)


def test_allow_sequence_repeats_items_with_stop_probability_one_half(base_lang, tmp_path):
    out = make_grammar(write(tmp_path / "c.txt", "ab\nc\n"), base_lang, tmp_path / "lang_cmd", allow_sequence=True)
    g = LangDir.load(out).g_fst()
    w = read_table(out / "words.txt")
    seq = [w["ab"], w["c"], w["ab"]]
    assert path_cost(g, seq, seq) == pytest.approx(-math.log(0.5 ** 3 * 0.5 * 0.5 * 0.5), abs=1e-5)
    for state in g.states():
        total = sum(math.exp(-weight(a.weight)) for a in g.arcs(state)) + math.exp(-weight(g.final(state)))
        assert total == pytest.approx(1.0, abs=1e-6)


def test_commands_file_with_bom_crlf_comments_and_blank_lines_is_accepted(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "\ufeff# my commands\r\nab\r\n\r\nc\t3\r\n", encoding="utf-8")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd")
    g = LangDir.load(out).g_fst()
    w = read_table(out / "words.txt")
    assert path_cost(g, [w["c"]], [w["c"]]) == pytest.approx(-math.log(3 / 4), abs=1e-5)


@pytest.mark.parametrize("text, message", [
    ("", "no commands"),
    ("# only a comment\n\n", "no commands"),
    ("ab\nab\n", "repeats line 1"),
    ("ab\t-1\n", "bad weight"),
    ("ab\tx\n", "bad weight"),
    ("ab\t1_0\n", "bad weight '1_0'"),         # float() read 10; Kaldi's rule for a number does not
    ("ab\t\u0662\n", "bad weight '\u0662'"),  # float() read 2
])
def test_bad_command_files_fail_with_file_and_line(base_lang, tmp_path, text, message):
    commands = write(tmp_path / "commands.txt", text)
    with pytest.raises(InputError, match=message) as err:
        make_grammar(commands, base_lang, tmp_path / "out")
    assert str(commands) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_words_missing_from_the_lexicon_are_all_listed_with_lines_and_the_g2p_fix(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "ab\nturn on\nc lamp\n")
    fillers = write(tmp_path / "fillers.txt", "ba\nkitchen\n")
    with pytest.raises(InputError) as err:
        make_grammar(commands, base_lang, tmp_path / "out", fillers=fillers)
    msg = str(err.value)
    assert "3 word(s)" not in msg and "4 word(s)" in msg
    assert f"turn ({commands}:2)" in msg and f"on ({commands}:2)" in msg and f"lamp ({commands}:3)" in msg
    assert f"kitchen ({fillers}:2)" in msg
    assert f"kaldilite check-pronunciations --auto-g2p DICT_DIR {commands} {fillers}" in msg


def test_a_filler_that_is_also_a_command_is_rejected(base_lang, tmp_path):
    with pytest.raises(InputError, match="also a command"):
        make_grammar(write(tmp_path / "c.txt", "ab\n"), base_lang, tmp_path / "out",
                     fillers=write(tmp_path / "f.txt", "ab\n"))


def test_output_dir_is_replaced_whole_and_other_dirs_are_never_clobbered(base_lang, tmp_path):
    commands = write(tmp_path / "c.txt", "ab\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", garbage=True)
    assert "<gbg_A>" in read_table(out / "words.txt")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", garbage=False)
    assert "<gbg_A>" not in read_table(out / "words.txt") and LangDir.load(out).filler_words() == set()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "wav.scp").write_text("u1 a.wav\n")
    with pytest.raises(InputError, match="is not a lang dir; refusing"):
        make_grammar(commands, base_lang, precious)
    assert (precious / "wav.scp").read_text() == "u1 a.wav\n"


def test_mandarin_commands_end_to_end_through_pypinyin_dict_dir(tmp_path):
    """打开 空调 / 关闭 空调 with a pypinyin dict dir: L o G yields exactly their pronunciations."""
    from kaldilite.lang import make_dict_dir

    commands = write(tmp_path / "commands.txt", "打开 空调\n关闭 空调\n")
    dict_dir = make_dict_dir(["打开", "关闭", "空调"], tmp_path / "dict", source="pypinyin")
    # Tone variants share a line (one tree root); one extra question per tone.
    assert "ai1" in (dict_dir / "nonsilence_phones.txt").read_text().split()
    assert (dict_dir / "extra_questions.txt").read_text().splitlines()[0].split()[0].endswith("1")
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    out = make_grammar(commands, lang, tmp_path / "lang_cmd")
    assert validate_lang(out) == []
    p, w = read_table(out / "phones.txt"), read_table(out / "words.txt")
    prons = {"打开": [("d_B", "a3_I", "k_I", "ai1_E")], "关闭": [("g_B", "uan1_I", "b_I", "i4_E")],
             "空调": [("k_B", "ong1_I", "t_I", "iao2_E")]}
    items = [(("打开", "空调"), -math.log(0.5)), (("关闭", "空调"), -math.log(0.5))]
    expected = expected_pairs(items, prons, p, w)
    got = lg_paths(out)
    assert set(got) == set(expected)


@pytest.mark.parametrize("sequence", [False, True])
def test_g_with_fillers_garbage_and_prefix_items_is_stochastic_and_lg_determinizes(base_lang, tmp_path, sequence):
    commands = write(tmp_path / "c.txt", "ab c\nab\t2\nc see ab\n")
    fillers = write(tmp_path / "f.txt", "ba\nbab\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", fillers=fillers, garbage=True,
                       garbage_cost=0.5, allow_sequence=sequence)
    g = LangDir.load(out).g_fst()
    for state in g.states():
        total = sum(math.exp(-weight(a.weight)) for a in g.arcs(state)) + math.exp(-weight(g.final(state)))
        assert total == pytest.approx(1.0, abs=1e-6)
    assert validate_lang(out) == []  # includes determinizing L_disambig o G


def test_a_weight_separated_by_spaces_is_explained(base_lang, tmp_path):
    with pytest.raises(InputError, match=r"'2.0' looks like a weight: separate it from the words with a TAB"):
        make_grammar(write(tmp_path / "c.txt", "ab 2.0\n"), base_lang, tmp_path / "out")


def test_garbage_words_use_plain_phones_without_word_positions(tmp_path):
    dict_dir = write_dict_dir(tmp_path / "dict", lexicon=LEXICON)
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang", position_dependent_phones=False)
    out = make_grammar(write(tmp_path / "c.txt", "ab\n"), lang, tmp_path / "lang_cmd", garbage=True)
    loaded = LangDir.load(out)
    assert {w: p for w, p in loaded.lexicon if w.startswith("<gbg_")} == {
        "<gbg_A>": ["A"], "<gbg_B>": ["B"], "<gbg_C>": ["C"]}
    assert validate_lang(out) == []
    # phones.txt keeps every real phone id of the source lang dir.
    src, new = read_table(lang / "phones.txt"), read_table(out / "phones.txt")
    assert {p: i for p, i in new.items() if not p.startswith("#")} == {p: i for p, i in src.items()
                                                                        if not p.startswith("#")}


def test_make_grammar_accepts_a_kaldi_made_lang_dir_without_lexiconp(base_lang, tmp_path):
    """Kaldi's prepare_lang.sh keeps lexiconp.txt only in its tmp dir: fall back to align_lexicon."""
    commands = write(tmp_path / "c.txt", "ab\nc see\n")
    ours = make_grammar(commands, base_lang, tmp_path / "ours", garbage=True)
    (base_lang / "phones" / "lexiconp.txt").unlink()
    kaldi_like = make_grammar(commands, base_lang, tmp_path / "kaldi_like", garbage=True)
    assert (kaldi_like / "words.txt").read_text() == (ours / "words.txt").read_text()
    assert (kaldi_like / "phones.txt").read_text() == (ours / "phones.txt").read_text()
    a, b = LangDir.load(ours), LangDir.load(kaldi_like)
    assert sorted(a.lexicon) == sorted(b.lexicon)
    assert validate_lang(kaldi_like) == []


def test_mkgraph_accepts_a_grammar_lang_whose_garbage_adds_disambiguation_symbols(base_lang, tmp_path):
    """<gbg_C> is a third C_S homophone, so the grammar lang has #0..#4 where the training lang
    has #0..#3: same phones, compatible with the model (Kaldi's check_phones_compatible.sh)."""
    from kaldilite.cli.decode import _check_same_phones

    out = make_grammar(write(tmp_path / "c.txt", "ab\n"), base_lang, tmp_path / "lang_cmd", garbage=True)
    assert "#4" in read_table(out / "phones.txt") and "#4" not in read_table(base_lang / "phones.txt")
    _check_same_phones(out / "phones.txt", base_lang / "phones.txt")
    other = prepare_lang(write_dict_dir(tmp_path / "d2", lexicon=LEXICON, nonsilence="A\nC\nB\n"), "<UNK>",
                         tmp_path / "t2", tmp_path / "l2")
    with pytest.raises(InputError, match="differs from"):
        _check_same_phones(other / "phones.txt", base_lang / "phones.txt")


def test_garbage_phone_bonus_lowers_each_garbage_phone_by_the_bonus(base_lang, tmp_path):
    commands = write(tmp_path / "commands.txt", "ab\nc\n")
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", garbage=True, garbage_cost=1.0,
                       garbage_loop_prob=0.6, garbage_phone_bonus=0.7)
    assert validate_lang(out) == []
    g = LangDir.load(out).g_fst()
    w = read_table(out / "words.txt")
    # hand-computed: entry P(garbage)/3, two loop phones 0.6/3 each, exit 0.4; three phones, 3 x 0.7 off
    pg = math.exp(-1.0) / (2 + math.exp(-1.0))
    ids = [w["<gbg_B>"], w["<gbg_C>"], w["<gbg_A>"]]
    expected = -math.log(pg / 3) - math.log(0.6 / 3) * 2 - math.log(0.4) - 3 * 0.7
    assert path_cost(g, ids, ids) == pytest.approx(expected, abs=1e-4)
    # commands are untouched by the bonus
    assert path_cost(g, [w["ab"]], [w["ab"]]) == pytest.approx(-math.log(1 / (2 + math.exp(-1.0))), abs=1e-4)
    # at most log(N / q) = log(3 / 0.6): beyond, a loop arc would cost less than nothing
    assert make_grammar(commands, base_lang, tmp_path / "lang_max", garbage=True, garbage_loop_prob=0.6,
                        garbage_phone_bonus=math.log(5.0))
    with pytest.raises(InputError, match="garbage-phone-bonus 1.7.*at most 1.609"):
        make_grammar(commands, base_lang, tmp_path / "lang_bad", garbage=True, garbage_loop_prob=0.6,
                     garbage_phone_bonus=1.7)


def test_edge_noise_allows_one_noise_word_on_each_side_of_commands_only(base_lang, tmp_path):
    """Brute force over every word string of length <= 4 (commands, filler, <noise>, garbage words): G
    accepts exactly the items, each command also with one <noise> before and/or after it at the
    documented probabilities, and the garbage strings; never <noise> alone, twice in a row, or
    around a filler. Through L_disambig o G, <noise> is any one phone."""
    from kaldilite.decode.confidence import NON_COMMAND_WORDS
    from kaldilite.lang.grammar import NOISE_WORD

    assert NOISE_WORD in NON_COMMAND_WORDS  # the rule leaves it out of labels, on the command side
    commands = write(tmp_path / "commands.txt", "ab\nc\t2\n")
    fillers = write(tmp_path / "fillers.txt", "ba\n")
    p = 0.1
    out = make_grammar(commands, base_lang, tmp_path / "lang_cmd", fillers=fillers, garbage=True,
                       garbage_cost=1.0, garbage_loop_prob=0.6, edge_noise_prob=p)
    assert validate_lang(out) == []
    lang = LangDir.load(out)
    assert sorted(pron for word, pron in lang.lexicon if word == NOISE_WORD) == [["A_S"], ["B_S"], ["C_S"]]
    assert NOISE_WORD not in lang.filler_words()
    w = read_table(out / "words.txt")
    g = lang.g_fst()
    garbage = ["<gbg_A>", "<gbg_B>", "<gbg_C>"]
    total = 1 + 2 + 1 + math.exp(-1.0)  # commands ab (1), c (2), filler ba (1), garbage
    expected = {("ba",): -math.log(1 / total)}
    for command, weight_ in ((("ab",), 1), (("c",), 2)):
        for before, after in itertools.product((False, True), repeat=2):
            words = (NOISE_WORD,) * before + command + (NOISE_WORD,) * after
            expected[words] = -math.log(weight_ / total * (p if before else 1 - p) * (p if after else 1 - p))
    pg = math.exp(-1.0) / total
    for length in range(1, 5):
        for words in itertools.product(["ab", "c", "ba", NOISE_WORD] + garbage, repeat=length):
            if all(x in garbage for x in words):
                want = -math.log(pg / 3 * (0.6 / 3) ** (length - 1) * 0.4)
            else:
                want = expected.get(words, math.inf)
            ids = [w[x] for x in words]
            assert path_cost(g, ids, ids) == pytest.approx(want, abs=1e-4), words
    # L_disambig o G determinizes (mkgraph), and <noise> spells one phone: A_S then ab = A_B B_E.
    ph = read_table(out / "phones.txt")
    lg = fst.determinize(fst.compose(lang.l_fst(disambig=True).arcsort(sort_type="olabel"), g.arcsort()))
    disambig = [ph[s] for s in ph if s.startswith("#")]
    best = min(path_cost(lg, [ph["A_S"], d, ph["A_B"], ph["B_E"]], [w[NOISE_WORD], w["ab"]]) for d in disambig)
    assert best == pytest.approx(expected[(NOISE_WORD, "ab")] + 3 * HALF, abs=1e-4)
    # p = 0 is the grammar without edge noise, byte for byte
    plain = make_grammar(commands, base_lang, tmp_path / "plain", fillers=fillers, garbage=True, garbage_cost=1.0,
                         garbage_loop_prob=0.6)
    zero = make_grammar(commands, base_lang, tmp_path / "zero", fillers=fillers, garbage=True, garbage_cost=1.0,
                        garbage_loop_prob=0.6, edge_noise_prob=0.0)
    assert (plain / "G.fst").read_bytes() == (zero / "G.fst").read_bytes()
    assert (plain / "words.txt").read_text() == (zero / "words.txt").read_text()


def test_edge_noise_uses_the_lexicons_own_noise_word_and_checks_its_probability(tmp_path):
    lang = prepare_lang(write_dict_dir(tmp_path / "dict", lexicon=LEXICON + "<noise> SPN\n"), "<UNK>",
                        tmp_path / "tmp", tmp_path / "lang")
    commands = write(tmp_path / "commands.txt", "ab\n")
    out = make_grammar(commands, lang, tmp_path / "lang_cmd", edge_noise_prob=0.2)
    assert [pron for word, pron in LangDir.load(out).lexicon if word == "<noise>"] == [["SPN_S"]]
    for bad in (-0.1, 1.0):
        with pytest.raises(InputError, match="edge-noise-prob"):
            make_grammar(commands, lang, tmp_path / "bad", edge_noise_prob=bad)


def test_make_grammar_verb_passes_edge_noise_prob(base_lang, tmp_path):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    commands = write(tmp_path / "commands.txt", "ab\n")
    result = CliRunner().invoke(cli, ["make-grammar", "--edge-noise-prob", "0.1", str(commands), str(base_lang),
                                      str(tmp_path / "lang_cmd")])
    assert result.exit_code == 0, result.output
    g = LangDir.load(tmp_path / "lang_cmd").g_fst()
    w = read_table(tmp_path / "lang_cmd" / "words.txt")
    assert path_cost(g, [w["<noise>"], w["ab"]], [w["<noise>"], w["ab"]]) == pytest.approx(-math.log(0.09), abs=1e-4)


def test_garbage_phones_restrict_the_garbage_loop_and_noise_words(base_lang, tmp_path):
    """--garbage-phones: only the listed phones get garbage words and <noise> pronunciations (a model
    trained on words without some phones has no data for them: list the phones of the training
    words), and the loop's probabilities are over those N phones (hand-computed, N = 2)."""
    from click.testing import CliRunner

    from kaldilite.cli import cli
    from kaldilite.lang.grammar import NOISE_WORD

    commands = write(tmp_path / "commands.txt", "ab\nc\n")
    phones = write(tmp_path / "garbage_phones.txt", "# trained phones\nC A\n")
    result = CliRunner().invoke(cli, ["make-grammar", "--garbage", "true", "--garbage-cost", "1.0",
                                      "--garbage-loop-prob", "0.6", "--edge-noise-prob", "0.1",
                                      "--garbage-phones", str(phones), str(commands), str(base_lang),
                                      str(tmp_path / "lang_cmd")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "lang_cmd"
    assert validate_lang(out) == []
    lang = LangDir.load(out)
    assert lang.filler_words() == {"<gbg_A>", "<gbg_C>"}
    assert "<gbg_B>" not in read_table(out / "words.txt")
    assert sorted(pron for word, pron in lang.lexicon if word == NOISE_WORD) == [["A_S"], ["C_S"]]
    w, g = read_table(out / "words.txt"), lang.g_fst()
    pg = math.exp(-1.0) / (2 + math.exp(-1.0))
    ids = [w["<gbg_C>"], w["<gbg_A>"]]
    assert path_cost(g, ids, ids) == pytest.approx(-math.log(pg / 2 * 0.6 / 2 * 0.4), abs=1e-4)
    # the bonus bound follows the number of garbage phones: log(2 / 0.6)
    with pytest.raises(InputError, match="at most 1.204"):
        make_grammar(commands, base_lang, tmp_path / "bad", garbage=True, garbage_loop_prob=0.6,
                     garbage_phone_bonus=1.3, garbage_phones=phones)
    for text in ("A SIL\n", "A D\n", "# nothing\n"):
        with pytest.raises(InputError, match="garbage_phones.txt"):
            make_grammar(commands, base_lang, tmp_path / "bad", garbage=True,
                         garbage_phones=write(tmp_path / "garbage_phones.txt", text))
