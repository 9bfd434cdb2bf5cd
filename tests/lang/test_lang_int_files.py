"""A lang dir's integer files read by Kaldi's rules (kaldilite.lang.langdir.read_int_lines, LangDir.load,
io.symbols.SymbolTable.read, hmm.tree_build.read_questions, train.mono's sets.int), not Python's int(),
which also takes '1_0', other scripts' digits and Unicode spaces.

Which Kaldi reader each file goes through: phones/*.int lists ReadIntegerVectorSimple (`is >> int32`,
junk refused), sets.int / extra_questions.int ReadIntegerVectorVectorSimple (SplitStringToIntegers per
line), *.csl SplitStringToIntegers(":") as --silence-phones, roots.int build-tree's ReadRootsFile
(distinct positive ids), word_boundary.int WordBoundaryInfo (two fields, ConvertStringToInteger, id > 0),
phones.txt / words.txt OpenFst's SymbolTable::ReadText (strtoll over the whole id field, no negative).
Every one of them is strtoll's grammar on a field: an optional sign and ASCII digits.

The independent answer for a real lang dir is its .txt twin (phone names) mapped through phones.txt.
"""

import shutil

import pytest
from lang_helpers import write_dict_dir

from kaldilite.errors import InputError
from kaldilite.io.symbols import SymbolTable
from kaldilite.lang import prepare_lang
from kaldilite.lang.langdir import LangDir, read_int_lines, read_phone_list


@pytest.fixture(scope="module")
def lang_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lang")
    return prepare_lang(write_dict_dir(tmp / "dict"), "<UNK>", tmp / "tmp", tmp / "lang")


def _txt_ids(lang_dir, name):
    """Each line of phones/NAME.txt, phone names mapped through phones.txt (other words kept)."""
    phones = {}
    for line in (lang_dir / "phones.txt").read_text().splitlines():
        symbol, index = line.split(" ")
        phones[symbol] = index
    return [[int(phones[f]) if f in phones else f for f in line.split()]
            for line in (lang_dir / "phones" / f"{name}.txt").read_text().splitlines()]


def test_a_prepared_lang_dir_loads_as_its_txt_twins_say(lang_dir):
    lang = LangDir.load(lang_dir)
    for name, ids in (("silence", lang.silence_phones), ("nonsilence", lang.nonsilence_phones),
                      ("disambig", lang.disambig_phones), ("context_indep", lang.context_indep_phones)):
        assert [[i] for i in ids] == _txt_ids(lang_dir, name)
        assert read_phone_list(lang_dir / "phones" / f"{name}.csl", "fix") == ids
    assert [[lang.optional_silence]] == _txt_ids(lang_dir, "optional_silence")
    assert [[shared, split] + ids for shared, split, ids in
            [("shared" if s else "not-shared", "split" if p else "not-split", i) for s, p, i in lang.roots]] \
        == _txt_ids(lang_dir, "roots")
    assert sorted([p, k] for p, k in lang.word_boundary.items()) == sorted(_txt_ids(lang_dir, "word_boundary"))
    assert read_int_lines(lang_dir / "phones" / "sets.int") == _txt_ids(lang_dir, "sets")
    assert read_int_lines(lang_dir / "phones" / "extra_questions.int") == _txt_ids(lang_dir, "extra_questions")
    assert len(lang.silence_phones) == 10 and len(lang.word_boundary) == 22  # 2 silences x 5 forms, 3 phones x 4


def test_strtolls_grammar_is_what_each_list_takes(tmp_path):
    cases = {"1 +2\n\t3 \n\n": [[1, 2], [3], []], "5\n": [[5]], "-4": [[-4]], "2147483647": [[2 ** 31 - 1]]}
    for text, expected in cases.items():
        (tmp_path / "a.int").write_text(text)
        assert read_int_lines(tmp_path / "a.int") == expected
    (tmp_path / "a.csl").write_text(" 1:+2:3\n")
    assert read_phone_list(tmp_path / "a.csl", "fix") == [1, 2, 3]


@pytest.mark.parametrize("bad", ["1_0", "\u0663", "3.0", "+-3", "0x3", "2147483648", "3\u00a04"])
@pytest.mark.parametrize("name, line", [("silence.int", 1), ("nonsilence.int", 2), ("disambig.int", 1),
                                        ("context_indep.int", 1), ("optional_silence.int", 1),
                                        ("sets.int", 2), ("extra_questions.int", 1)])
def test_every_list_refuses_what_int_took(lang_dir, tmp_path, name, line, bad):
    from kaldilite.hmm.tree_build import read_questions
    from kaldilite.train.mono import _phone_sets

    broken = tmp_path / "lang"
    shutil.copytree(lang_dir, broken)
    path = broken / "phones" / name
    lines = path.read_text().split("\n")
    lines[line - 1] = bad if name != "sets.int" else f"{lines[line - 1]} {bad}"
    path.write_text("\n".join(lines))
    read = {"sets.int": lambda: _phone_sets(LangDir.load(broken)),
            "extra_questions.int": lambda: read_questions(path)}.get(name, lambda: LangDir.load(broken))
    with pytest.raises(InputError) as refused:
        read()
    assert str(refused.value).startswith(f"{path}:{line}: expected integers, found {bad!r}; re-run prepare-lang")


@pytest.mark.parametrize("text, error", [
    ("1:2::3", "found ''"), ("1:2:", "found ''"), ("1:\u0663", "found '\u0663'"), ("1 2", "found '1 2'"),
    ("1:2_0", "found '2_0'"),
])
def test_csl_refuses_what_kaldis_option_parsing_refuses(tmp_path, text, error):
    (tmp_path / "silence.csl").write_text(text + "\n")
    with pytest.raises(InputError) as refused:
        read_phone_list(tmp_path / "silence.csl", "re-run `kaldilite export-model`")
    assert str(refused.value) == (f"{tmp_path / 'silence.csl'}:1: expected colon-separated integers, {error}; "
                                  "re-run `kaldilite export-model`")


@pytest.mark.parametrize("file, edit, message", [
    ("roots.int", lambda t: t.replace(" 1", " 1_0", 1), "expected '[not-]shared [not-]split phone-id...' with "
                                                          "distinct positive integer ids"),
    ("roots.int", lambda t: t.replace(" 1", " 0", 1), "distinct positive integer ids"),
    ("roots.int", lambda t: t.replace(" 1", " 1 1", 1), "distinct positive integer ids"),
    ("roots.int", lambda t: t.replace(" 1", " \u0661", 1), "distinct positive integer ids"),
    ("word_boundary.int", lambda t: t.replace("1 ", "\u0661 ", 1), "expected 'phone-id nonword|begin|singleton|"
                                                                   "end|internal' with a positive integer id"),
    ("word_boundary.int", lambda t: t.replace("1 ", "1_0 ", 1), "with a positive integer id"),
    ("word_boundary.int", lambda t: t.replace(" nonword", "", 1), "with a positive integer id"),  # was IndexError
    ("word_boundary.int", lambda t: t.replace(" nonword", " word", 1), "with a positive integer id"),
])
def test_roots_and_word_boundary_refuse_a_bad_first_line(lang_dir, tmp_path, file, edit, message):
    broken = tmp_path / "lang"
    shutil.copytree(lang_dir, broken)
    path = broken / "phones" / file
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError) as refused:
        LangDir.load(broken)
    assert str(refused.value).startswith(f"{path}:1: {message}") or f"{path}:1: " in str(refused.value)
    assert message in str(refused.value) and str(refused.value).endswith("; re-run prepare-lang")


@pytest.mark.parametrize("bad", ["1_0", "\u0663", "\u00b2", "--3", "3.0"])
def test_symbol_tables_take_strtolls_ids_only(lang_dir, tmp_path, bad):
    """'²' passed str.isdigit() and then crashed int(); '٣' read as 3."""
    path = tmp_path / "phones.txt"
    lines = (lang_dir / "phones.txt").read_text().split("\n")
    lines[2] = lines[2].split(" ")[0] + " " + bad
    path.write_text("\n".join(lines))
    with pytest.raises(InputError) as refused:
        SymbolTable.read(path)
    assert str(refused.value).startswith(f"{path}:3: expected 'symbol id', got")
    (tmp_path / "plus.txt").write_text("<eps> 0\na +1\n")  # strtoll takes the sign, as OpenFst does
    assert SymbolTable.read(tmp_path / "plus.txt").id("a") == 1


def test_validate_lang_reports_a_bad_list_instead_of_crashing(lang_dir, tmp_path):
    from kaldilite.lang.validate import validate_lang

    broken = tmp_path / "lang"
    shutil.copytree(lang_dir, broken)
    (broken / "phones" / "disambig.int").write_text("1_0\n")
    (broken / "words.txt").write_text((broken / "words.txt").read_text().replace(" 1\n", " \u00b2\n", 1))
    # a <ForPhones> id int() took ('1_0' read 10) or crashed on (a word: a ValueError traceback)
    (broken / "topo").write_text((broken / "topo").read_text().replace("<ForPhones>\n", "<ForPhones>\n1_0 ", 1))
    problems = [str(p) for p in validate_lang(broken, check_determinizable=False)]
    assert f"{broken / 'phones' / 'disambig.int'}: does not match disambig.txt through phones.txt" in problems
    assert any(p.startswith(f"{broken / 'words.txt'}:2: expected 'symbol id'") for p in problems), problems
    assert f"{broken / 'topo'}: <ForPhones> holds '1_0', not a phone id; re-run prepare-lang" in problems, problems


@pytest.mark.parametrize("old, new, error", [
    ("<ForPhones>\n", "<ForPhones>\n1_0 ", "expected a phone id, got '1_0'"),
    ("<State> 0", "<State> \u0660", "expected an integer, got '\u0660'"),
    ("<PdfClass> 0", "<PdfClass> 0_0", "expected an integer, got '0_0'"),
    ("<Transition> 0 0.75", "<Transition> 0 nan", "expected a probability, got 'nan'"),
    ("<Transition> 0 0.75", "<Transition> 0 inf", "expected a probability, got 'inf'"),
    ("<Transition> 0 0.75", "<Transition> 0 0.7_5", "expected a probability, got '0.7_5'"),
])
def test_topo_numbers_follow_hmm_topology_read(lang_dir, old, new, error):
    """HmmTopology::Read: phone ids by ConvertStringToInteger, states and pdf classes and transition
    probabilities by `stream >>` (no inf or nan words)."""
    from kaldilite.hmm.topology import Topology

    text = (lang_dir / "topo").read_text()
    assert Topology.from_text(text, "topo").phones == sorted(LangDir.load(lang_dir).silence_phones
                                                             + LangDir.load(lang_dir).nonsilence_phones)
    assert old in text
    with pytest.raises(InputError) as refused:
        Topology.from_text(text.replace(old, new, 1), "topo")
    assert error in str(refused.value) and str(refused.value).startswith("topo:")


@pytest.mark.parametrize("bad", ["1_0", "\u0661.0", "nan", "inf", "0", ""])
def test_lexiconp_probabilities(lang_dir, tmp_path, bad):
    """phones/lexiconp.txt (make-grammar's pronunciations): a probability is a positive number by the
    same rule; a bad one was a ValueError (or IndexError) traceback."""
    from kaldilite.lang.grammar import read_lang_lexicon

    broken = tmp_path / "lang"
    shutil.copytree(lang_dir, broken)
    path = broken / "phones" / "lexiconp.txt"
    lines = path.read_text().split("\n")
    good = read_lang_lexicon(broken)
    assert [(w, p) for w, p, _ in good] == [(line.split()[0], float(line.split()[1])) for line in lines if line]
    fields = lines[1].split()
    lines[1] = " ".join([fields[0], bad] + fields[2:]) if bad else fields[0]
    path.write_text("\n".join(lines))
    with pytest.raises(InputError) as refused:
        read_lang_lexicon(broken)
    assert str(refused.value).startswith(f"{path}:2: expected 'word prob phone...' with a positive number")
