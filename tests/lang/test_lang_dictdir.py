"""Dict-dir validation (Kaldi's validate_dict_dir.pl rules) and validate-lang's problem reports."""

import shutil

import pytest
from lang_helpers import write_dict_dir

from kaldilite.errors import InputError
from kaldilite.lang import prepare_lang
from kaldilite.lang.dictdir import DictDir, add_disambig_symbols
from kaldilite.lang.prepare import make_lexicon_fst
from kaldilite.lang.validate import validate_lang


@pytest.mark.parametrize("lexicon, message", [
    ("!SIL SIL\n<UNK> SPN\nab\n", r"lexicon.txt:3: word 'ab' has no phones"),
    ("!SIL SIL\n<UNK> SPN\nab A X\n", r"lexicon.txt:3: phone 'X' \(word 'ab'\) is not in silence_phones.txt"),
    ("!SIL SIL\n<UNK> SPN\nab A B\nab A B\n", r"lexicon.txt:4: duplicated entry ab A B \(first at line 3\)"),
    ("!SIL SIL\n<s> SPN\n", r"lexicon.txt:2: the word '<s>' is reserved"),
])
def test_bad_lexicon_lines_name_file_line_and_fix(tmp_path, lexicon, message):
    write_dict_dir(tmp_path / "dict", lexicon=lexicon)
    with pytest.raises(InputError, match=message):
        DictDir.load(tmp_path / "dict")


def test_bad_pron_prob_in_lexiconp(tmp_path):
    write_dict_dir(tmp_path / "dict", lexicon="!SIL 1.0 SIL\nab 1.5 A B\n", lexicon_name="lexiconp.txt")
    with pytest.raises(InputError, match=r"lexiconp.txt:2: bad pron-prob '1.5'"):
        DictDir.load(tmp_path / "dict")


@pytest.mark.parametrize("files, message", [
    (dict(nonsilence="A\nB\nC\nA\n"), r"nonsilence_phones.txt:4: phone 'A' already declared"),
    (dict(nonsilence="A\nB\nC\nSIL\n"), r"phone 'SIL' already declared at .*silence_phones.txt:1"),
    (dict(optional="SPX\n"), r"'SPX' is not in silence_phones.txt"),
    (dict(nonsilence="A\nB_E\nC\n"), r"phone 'B_E' has a disallowed form"),
    (dict(extra="A Q\n"), r"extra_questions.txt:1: phone 'Q'"),
])
def test_bad_phone_lists(tmp_path, files, message):
    write_dict_dir(tmp_path / "dict", **files)
    with pytest.raises(InputError, match=message):
        DictDir.load(tmp_path / "dict")


def test_bom_and_crlf_in_the_lexicon_are_accepted(tmp_path):
    d = write_dict_dir(tmp_path / "dict")
    (d / "lexicon.txt").write_bytes("\ufeff!SIL SIL\r\n<UNK> SPN\r\nab A B\r\n".encode("utf-8"))
    entries = DictDir.load(d).lexicon
    assert [(e.word, e.phones) for e in entries] == [("!SIL", ("SIL",)), ("<UNK>", ("SPN",)), ("ab", ("A", "B"))]


def test_add_disambig_symbols_follows_add_lex_disambig():
    # Hand-worked: a b is a prefix of a b c; x has two homophones y (after it) and z.
    prons = [("a", "b"), ("a", "b", "c"), ("x",), ("x",), ("x",), ("q",)]
    numbers, max_used = add_disambig_symbols(prons)
    assert numbers == [1, 0, 1, 2, 3, 0]
    assert max_used == 3


@pytest.fixture
def lang(tmp_path):
    return prepare_lang(write_dict_dir(tmp_path / "dict"), "<UNK>", tmp_path / "tmp", tmp_path / "lang")


def test_validate_lang_reports_a_phone_missing_from_topo(lang):
    topo = lang / "topo"
    topo.write_text(topo.read_text().replace("11 12 13", "11 13"))
    problems = [str(p) for p in validate_lang(lang)]
    assert len(problems) == 1 and "topo" in problems[0] and "missing [12]" in problems[0]


def test_validate_lang_reports_inconsistent_int_files_and_unknown_words(lang):
    (lang / "phones" / "silence.int").write_text("1\n2\n")
    (lang / "words").mkdir()
    (lang / "words" / "fillers.txt").write_text("ab\nzebra\n")
    problems = [str(p) for p in validate_lang(lang)]
    assert f"{lang / 'phones' / 'silence.int'}: does not match silence.txt through phones.txt" in problems
    assert f"{lang / 'words' / 'fillers.txt'}:2: filler word 'zebra' is not in words.txt" in problems
    assert len(problems) == 2


def test_validate_lang_catches_homophones_without_disambiguation(lang):
    """An L_disambig written without #k (e.g. by a broken script) is reported, not decoded wrongly."""
    words = {ln.split()[0]: int(ln.split()[1]) for ln in (lang / "words.txt").read_text().splitlines()}
    phones = {ln.split()[0]: int(ln.split()[1]) for ln in (lang / "phones.txt").read_text().splitlines()}
    entries = [(words["c"], 1.0, [phones["C_S"]]), (words["see"], 1.0, [phones["C_S"]]),
               (words["ab"], 1.0, [phones["A_B"], phones["B_E"]])]
    bad = make_lexicon_fst(entries, 0.5, phones["SIL"], sil_disambig=phones["#3"])
    bad.write(str(lang / "L_disambig.fst"))
    problems = [str(p) for p in validate_lang(lang)]
    assert any("words c see share a pronunciation" in p for p in problems)


def test_validate_lang_missing_files(lang):
    shutil.rmtree(lang / "phones")
    (lang / "L.fst").unlink()
    problems = [str(p) for p in validate_lang(lang)]
    assert f"{lang / 'L.fst'}: missing" in problems
    assert any("silence.txt: missing" in p for p in problems)


def test_validate_lang_checks_g_labels_and_sorting(lang):
    import pywrapfst as fst

    words = {ln.split()[0]: int(ln.split()[1]) for ln in (lang / "words.txt").read_text().splitlines()}
    g = fst.VectorFst()
    g.add_states(2)
    g.set_start(0)
    g.set_final(1)
    g.add_arc(0, fst.Arc(words["see"], words["see"], 0.0, 1))
    g.add_arc(0, fst.Arc(words["ab"], words["ab"], 0.0, 1))
    g.add_arc(0, fst.Arc(words["</s>"], words["</s>"], 0.0, 1))
    g.write(str(lang / "G.fst"))
    problems = [str(p) for p in validate_lang(lang)]
    assert f"{lang / 'G.fst'}: 1 arcs carry <s> or </s> (they must be the start state and final weights)" in problems
    assert any("not sorted on input labels" in p for p in problems)


def test_validate_lang_checks_word_boundary(lang):
    wb = lang / "phones" / "word_boundary.txt"
    wb.write_text(wb.read_text().replace("A_B begin", "A_B middle"))
    problems = [str(p) for p in validate_lang(lang)]
    assert any("word_boundary.txt:11: expected 'phone begin|end|internal|singleton|nonword'" in p for p in problems)


def test_arpa_g_in_a_lang_dir_validates(lang, tmp_path):
    from kaldilite.lang.arpa import arpa_to_fst
    from kaldilite.lang.fsts import write_fst

    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=5\nngram 2=3\n\n\\1-grams:\n-1.0\t</s>\n-99\t<s>\t-0.3\n-0.5\tab\t-0.2\n"
                    "-0.7\tc\t-0.1\n-0.9\tsee\n\n\\2-grams:\n-0.2\t<s> ab\n-0.3\tab c\n-0.1\tc </s>\n\n\\end\\\n")
    write_fst(arpa_to_fst(arpa, lang / "words.txt"), lang / "G.fst")
    assert validate_lang(lang) == []


def test_validate_lang_reports_an_lg_that_does_not_determinize(tmp_path):
    from kaldilite.lang.fsts import add_disambig_self_loops
    from kaldilite.lang.grammar import make_grammar

    lang = prepare_lang(write_dict_dir(tmp_path / "dict"), "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    (tmp_path / "c.txt").write_text("c\nsee\nab\n")
    out = make_grammar(tmp_path / "c.txt", lang, tmp_path / "lang_cmd", allow_sequence=True)
    words = {ln.split()[0]: int(ln.split()[1]) for ln in (out / "words.txt").read_text().splitlines()}
    phones = {ln.split()[0]: int(ln.split()[1]) for ln in (out / "phones.txt").read_text().splitlines()}
    entries = [(words["c"], 1.0, [phones["C_S"]]), (words["see"], 1.0, [phones["C_S"]]),
               (words["ab"], 1.0, [phones["A_B"], phones["B_E"]])]
    bad = make_lexicon_fst(entries, 0.5, phones["SIL"], sil_disambig=phones["#3"])
    add_disambig_self_loops(bad, [phones["#0"]], [words["#0"]])
    bad.arcsort(sort_type="olabel")
    bad.write(str(out / "L_disambig.fst"))
    problems = [str(p) for p in validate_lang(out)]
    assert any(p.startswith(f"{out / 'G.fst'}: L_disambig o G does not determinize") for p in problems)


def test_variants_sharing_a_root_need_an_extra_question(tmp_path):
    lexicon = "!SIL SIL\n<UNK> SPN\nab A1 B\nba B A2\n"
    write_dict_dir(tmp_path / "d1", lexicon=lexicon, nonsilence="A1 A2\nB\n", extra="")
    with pytest.raises(InputError, match=r"nonsilence_phones.txt:1: phones A1 and A2 share a tree root"):
        DictDir.load(tmp_path / "d1")
    write_dict_dir(tmp_path / "d2", lexicon=lexicon, nonsilence="A1 A2\nB\n", extra="A1\nA2\n")
    assert DictDir.load(tmp_path / "d2").nonsilence_phones == [["A1", "A2"], ["B"]]


def test_lexicon_and_lexiconp_that_agree_load_with_the_probabilities(tmp_path):
    dict_dir = write_dict_dir(tmp_path / "dict", lexicon="!SIL 1.0 SIL\nab 0.5 A B\nab 1.0 A C\n",
                              lexicon_name="lexiconp.txt")
    (dict_dir / "lexicon.txt").write_text("!SIL SIL\nab A B\n\nab A C\n", encoding="utf-8")
    lexicon = DictDir.load(dict_dir).lexicon
    assert [(e.word, e.prob, e.phones) for e in lexicon] == [
        ("!SIL", 1.0, ("SIL",)), ("ab", 0.5, ("A", "B")), ("ab", 1.0, ("A", "C"))]


@pytest.mark.parametrize("plain, message", [
    ("!SIL SIL\nab A C\nab A B\n", r"lexicon.txt:2: ab A C differs from .*lexiconp.txt:2: ab A B"),
    ("!SIL SIL\nab A B\n", r"lexicon.txt: 2 pronunciations but .*lexiconp.txt has 3"),
    ("!SIL SIL\nab A B\nab A C\nc C\n", r"lexicon.txt: 4 pronunciations but .*lexiconp.txt has 3"),
])
def test_lexicon_that_disagrees_with_lexiconp_names_the_line(tmp_path, plain, message):
    """validate_dict_dir.pl's pair check: an edit to the ignored lexicon.txt must not pass silently."""
    dict_dir = write_dict_dir(tmp_path / "dict", lexicon="!SIL 1.0 SIL\nab 0.5 A B\nab 1.0 A C\n",
                              lexicon_name="lexiconp.txt")
    (dict_dir / "lexicon.txt").write_text(plain, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        DictDir.load(dict_dir)
