"""prepare-lang against Kaldi's file formats, written out by hand from the definitions in
utils/prepare_lang.sh, add_lex_disambig.pl, gen_topo.pl and make_lexicon_fst.py."""

import math

import pytest
from lang_helpers import path_cost, read_table, write_dict_dir

from kaldilite.errors import InputError
from kaldilite.lang import LangDir, prepare_lang
from kaldilite.lang.validate import validate_lang

PHONES = """<eps> 0
SIL 1
SIL_B 2
SIL_E 3
SIL_I 4
SIL_S 5
SPN 6
SPN_B 7
SPN_E 8
SPN_I 9
SPN_S 10
A_B 11
A_E 12
A_I 13
A_S 14
B_B 15
B_E 16
B_I 17
B_S 18
C_B 19
C_E 20
C_I 21
C_S 22
#0 23
#1 24
#2 25
#3 26
"""

WORDS = "<eps> 0\n!SIL 1\n<UNK> 2\nab 3\nabc 4\nc 5\nsee 6\n#0 7\n<s> 8\n</s> 9\n"

TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
11 12 13 14 15 16 17 18 19 20 21 22
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1 2 3 4 5 6 7 8 9 10
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 3 <PdfClass> 3 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>
<State> 5 </State>
</TopologyEntry>
</Topology>
"""

EXPECTED_PHONES_FILES = {
    "silence.txt": "SIL\nSIL_B\nSIL_E\nSIL_I\nSIL_S\nSPN\nSPN_B\nSPN_E\nSPN_I\nSPN_S\n",
    "silence.csl": "1:2:3:4:5:6:7:8:9:10\n",
    "nonsilence.csl": "11:12:13:14:15:16:17:18:19:20:21:22\n",
    "context_indep.int": "".join(f"{i}\n" for i in range(1, 11)),
    "optional_silence.txt": "SIL\n",
    "optional_silence.int": "1\n",
    "disambig.txt": "#0\n#1\n#2\n#3\n",
    "disambig.int": "23\n24\n25\n26\n",
    "wdisambig.txt": "#0\n",
    "wdisambig_phones.int": "23\n",
    "wdisambig_words.int": "7\n",
    "sets.txt": "SIL SIL_B SIL_E SIL_I SIL_S\nSPN SPN_B SPN_E SPN_I SPN_S\nA_B A_E A_I A_S\nB_B B_E B_I B_S\n"
                "C_B C_E C_I C_S\n",
    "sets.int": "1 2 3 4 5\n6 7 8 9 10\n11 12 13 14\n15 16 17 18\n19 20 21 22\n",
    "roots.txt": "shared split SIL SIL_B SIL_E SIL_I SIL_S\nshared split SPN SPN_B SPN_E SPN_I SPN_S\n"
                 "shared split A_B A_E A_I A_S\nshared split B_B B_E B_I B_S\nshared split C_B C_E C_I C_S\n",
    "roots.int": "shared split 1 2 3 4 5\nshared split 6 7 8 9 10\nshared split 11 12 13 14\n"
                 "shared split 15 16 17 18\nshared split 19 20 21 22\n",
    # The word-position lines end in a space: prepare_lang.sh echoes "phone " per phone.
    "extra_questions.txt": "A_B A_E A_I A_S B_B B_E B_I B_S\nA_B B_B C_B \nA_E B_E C_E \nA_I B_I C_I \n"
                           "A_S B_S C_S \nSIL SPN \nSIL_B SPN_B \nSIL_E SPN_E \nSIL_I SPN_I \nSIL_S SPN_S \n",
    "extra_questions.int": "11 12 13 14 15 16 17 18\n11 15 19\n12 16 20\n13 17 21\n14 18 22\n1 6\n2 7\n3 8\n"
                           "4 9\n5 10\n",
    "word_boundary.txt": "SIL nonword\nSIL_B begin\nSIL_E end\nSIL_I internal\nSIL_S singleton\n"
                         "SPN nonword\nSPN_B begin\nSPN_E end\nSPN_I internal\nSPN_S singleton\n"
                         "A_B begin\nA_E end\nA_I internal\nA_S singleton\nB_B begin\nB_E end\nB_I internal\n"
                         "B_S singleton\nC_B begin\nC_E end\nC_I internal\nC_S singleton\n",
    "align_lexicon.txt": "!SIL !SIL SIL_S\n<UNK> <UNK> SPN_S\n<eps> <eps> SIL\nab ab A_B B_E\n"
                         "abc abc A_B B_I C_E\nc c C_S\nsee see C_S\n",
    "align_lexicon.int": "1 1 5\n2 2 10\n0 0 1\n3 3 11 16\n4 4 11 17 20\n5 5 22\n6 6 22\n",
}


@pytest.fixture
def tiny_lang(tmp_path):
    dict_dir = write_dict_dir(tmp_path / "dict")
    return prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang")


def test_symbol_tables_and_topology_match_kaldi_byte_for_byte(tiny_lang):
    assert (tiny_lang / "phones.txt").read_text() == PHONES
    assert (tiny_lang / "words.txt").read_text() == WORDS
    assert (tiny_lang / "topo").read_text() == TOPO
    assert (tiny_lang / "oov.txt").read_text() == "<UNK>\n"
    assert (tiny_lang / "oov.int").read_text() == "2\n"


@pytest.mark.parametrize("name", sorted(EXPECTED_PHONES_FILES))
def test_phones_dir_files_match_kaldi(tiny_lang, name):
    assert (tiny_lang / "phones" / name).read_text() == EXPECTED_PHONES_FILES[name]


def test_lexicon_fst_costs_match_make_lexicon_fst_definition(tiny_lang):
    """Each (phones, words) pair through L has cost: pron costs + -log(0.5) per silence decision."""
    L = LangDir.load(tiny_lang).l_fst()
    p, w = read_table(tiny_lang / "phones.txt"), read_table(tiny_lang / "words.txt")
    half = -math.log(0.5)
    # "ab" alone, no silence: start decision + after-word decision.
    assert path_cost(L, [p["A_B"], p["B_E"]], [w["ab"]]) == pytest.approx(2 * half, abs=1e-5)
    # SIL ab SIL c SIL: silence before, between and after; same number of decisions.
    cost = path_cost(L, [p["SIL"], p["A_B"], p["B_E"], p["SIL"], p["C_S"], p["SIL"]], [w["ab"], w["c"]])
    assert cost == pytest.approx(3 * half, abs=1e-5)
    # A silence phone inside nothing, or a wrong word, has no path.
    assert path_cost(L, [p["A_B"], p["B_E"]], [w["abc"]]) == math.inf
    assert path_cost(L, [p["SIL"], p["SIL"], p["C_S"]], [w["c"]]) == math.inf


def test_l_disambig_distinguishes_homophones_with_hand_assigned_symbols(tiny_lang):
    """add_lex_disambig.pl: c and see share C_S, so they get #1 and #2; #3 marks optional silence."""
    L = LangDir.load(tiny_lang).l_fst(disambig=True)
    p, w = read_table(tiny_lang / "phones.txt"), read_table(tiny_lang / "words.txt")
    assert path_cost(L, [p["C_S"], p["#1"]], [w["c"]]) < math.inf
    assert path_cost(L, [p["C_S"], p["#2"]], [w["see"]]) < math.inf
    assert path_cost(L, [p["C_S"], p["#1"]], [w["see"]]) == math.inf
    assert path_cost(L, [p["SIL"], p["#3"], p["A_B"], p["B_E"]], [w["ab"]]) < math.inf
    assert path_cost(L, [p["SIL"], p["A_B"], p["B_E"]], [w["ab"]]) == math.inf
    # #0 from G passes through (self-loops where words start/end).
    assert path_cost(L, [p["#0"], p["A_B"], p["B_E"], p["#0"]], [w["#0"], w["ab"], w["#0"]]) < math.inf


def test_position_independent_lexicon_disambiguates_prefixes(tmp_path):
    dict_dir = write_dict_dir(tmp_path / "dict")
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang", position_dependent_phones=False)
    p, w = read_table(lang / "phones.txt"), read_table(lang / "words.txt")
    assert list(p) == ["<eps>", "SIL", "SPN", "A", "B", "C", "#0", "#1", "#2", "#3"]
    assert not (lang / "phones" / "word_boundary.txt").exists()
    L = LangDir.load(lang).l_fst(disambig=True)
    # ab (A B) is a prefix of abc (A B C): ab gets #1; c/see get #1/#2.
    assert path_cost(L, [p["A"], p["B"], p["#1"]], [w["ab"]]) < math.inf
    assert path_cost(L, [p["A"], p["B"], p["C"]], [w["abc"]]) < math.inf
    assert path_cost(L, [p["C"], p["#2"]], [w["see"]]) < math.inf
    assert validate_lang(lang) == []


def test_sil_prob_zero_gives_a_single_loop_state(tmp_path):
    lang = prepare_lang(write_dict_dir(tmp_path / "dict"), "<UNK>", tmp_path / "tmp", tmp_path / "lang", sil_prob=0.0)
    L = LangDir.load(lang).l_fst()
    p, w = read_table(lang / "phones.txt"), read_table(lang / "words.txt")
    assert path_cost(L, [p["A_B"], p["B_E"], p["C_S"]], [w["ab"], w["c"]]) == pytest.approx(0.0)
    assert path_cost(L, [p["SIL"], p["C_S"]], [w["c"]]) == math.inf


def test_pron_probs_from_lexiconp_become_costs(tmp_path):
    lex = "!SIL 1.0 SIL\n<UNK> 1.0 SPN\nab 0.25 A B\nab 1.0 A C\n"
    dict_dir = write_dict_dir(tmp_path / "dict", lexicon=lex, lexicon_name="lexiconp.txt")
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang", sil_prob=0.0)
    L = LangDir.load(lang).l_fst()
    p, w = read_table(lang / "phones.txt"), read_table(lang / "words.txt")
    assert path_cost(L, [p["A_B"], p["B_E"]], [w["ab"]]) == pytest.approx(-math.log(0.25), abs=1e-5)
    assert path_cost(L, [p["A_B"], p["C_E"]], [w["ab"]]) == pytest.approx(0.0, abs=1e-6)


def test_langdir_load_exposes_interface_7(tiny_lang):
    lang = LangDir.load(tiny_lang)
    assert lang.silence_phones == list(range(1, 11))
    assert lang.nonsilence_phones == list(range(11, 23))
    assert lang.disambig_phones == [23, 24, 25, 26]
    assert lang.context_indep_phones == list(range(1, 11))
    assert lang.optional_silence == 1
    assert lang.roots[2] == (True, True, [11, 12, 13, 14])
    assert lang.word_boundary[11] == "begin" and lang.word_boundary[1] == "nonword"
    assert lang.word_boundary[22] == "singleton"
    assert lang.oov_word == "<UNK>"
    assert lang.topo_path == tiny_lang / "topo"
    assert ("abc", ["A_B", "B_I", "C_E"]) in lang.lexicon and len(lang.lexicon) == 6
    assert lang.phones.id("C_S") == 22 and lang.words.symbol(6) == "see"
    assert lang.filler_words() == set()
    assert validate_lang(tiny_lang) == []


def test_share_silence_phones_puts_all_silence_in_one_unsplit_root(tmp_path):
    lang = prepare_lang(write_dict_dir(tmp_path / "dict"), "<UNK>", tmp_path / "tmp", tmp_path / "lang",
                        share_silence_phones=True, num_sil_states=3)
    roots = (lang / "phones" / "roots.txt").read_text().splitlines()
    assert roots[0] == "not-shared not-split SIL SIL_B SIL_E SIL_I SIL_S SPN SPN_B SPN_E SPN_I SPN_S"
    assert roots[1] == "shared split A_B A_E A_I A_S"
    assert "<Transition> 0 0.5 <Transition> 1 0.5 </State>" in (lang / "topo").read_text()


def test_oov_word_must_be_in_the_lexicon(tmp_path):
    with pytest.raises(InputError, match="OOV word '<SPOKEN_NOISE>'"):
        prepare_lang(write_dict_dir(tmp_path / "dict"), "<SPOKEN_NOISE>", tmp_path / "tmp", tmp_path / "lang")


def test_english_dict_dir_in_the_repo_prepares_and_validates(tmp_path):
    from pathlib import Path

    en = Path(__file__).resolve().parents[2] / "lang" / "en"
    lang = prepare_lang(en, "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    assert validate_lang(lang) == []
    words = read_table(lang / "words.txt")
    for word in "yes no up down left right on off stop go bed bird cat dog house tree happy wow marvin sheila".split():
        assert word in words
    for digit in "zero one two three four five six seven eight nine".split():
        assert digit in words


def test_transcript_words_missing_from_the_lexicon_are_all_listed(tiny_lang, tmp_path):
    text = tmp_path / "text"
    text.write_text("utt1 ab c\nutt2 ab zebra c\nutt3 yak zebra\n")
    with pytest.raises(InputError) as err:
        LangDir.load(tiny_lang).check_transcripts(text)
    msg = str(err.value)
    assert msg.startswith("2 word(s) not in")
    assert f"zebra ({text}:2), yak ({text}:3)" in msg
    assert "kaldilite g2p --lexicon DICT_DIR --add yak zebra" in msg and "lexiconp.txt" in msg
    text.write_text("utt1 ab c\nutt2 see\n")
    LangDir.load(tiny_lang).check_transcripts(text)  # all known: no error
