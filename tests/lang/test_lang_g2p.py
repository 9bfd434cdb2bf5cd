"""g2p: CMUdict lookups, the espeak-ng fallback's mapping (checked against CMUdict, an
independent source), pypinyin initials/finals, make_dict_dir, and the CLI verbs end to end."""

import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError
from kaldilite.lang import LangDir, make_dict_dir
from kaldilite.lang.g2p import cmudict_entries, cmudict_prons, espeak_prons, g2p, lexicon_has_stress, pinyin_prons

ARPABET = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
              .split())


def test_cmudict_strips_stress_and_keeps_two_variants():
    assert cmudict_prons("yes") == [("Y", "EH", "S")]
    assert cmudict_prons("Zero") == [("Z", "IH", "R", "OW"), ("Z", "IY", "R", "OW")]
    assert cmudict_prons("zero", keep_stress=True)[0] == ("Z", "IH1", "R", "OW0")
    assert cmudict_prons("nonexistentwordxyz") == []


def test_cmudict_entries_list_every_word_and_variant():
    hello = [pron for word, pron in cmudict_entries() if word == "hello"]
    assert hello == [("HH", "AH", "L", "OW"), ("HH", "EH", "L", "OW")]  # CMUdict 0.7b: AH0 / EH0, OW1
    assert ("read", ("R", "IY1", "D")) in set(cmudict_entries(keep_stress=True))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
@pytest.mark.parametrize("word", "sheila marvin kitchen thought judge cheap measure sing yes house bird".split())
def test_espeak_fallback_agrees_with_cmudict_on_common_words(word):
    assert espeak_prons(word)[0] in cmudict_prons(word, max_variants=0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_out_of_cmudict_word_falls_back_to_espeak_phones_in_arpabet():
    prons, source = g2p("kaldilite")
    assert source == "espeak-ng"
    assert prons and set(prons[0]) <= ARPABET and prons[0][0] == "K"


def test_mandarin_words_use_pypinyin_initials_and_tone3_finals():
    assert pinyin_prons("打开") == [("d", "a3", "k", "ai1")]
    assert g2p("空调") == ([("k", "ong1", "t", "iao2")], "pypinyin")
    assert pinyin_prons("爱") == [("ai4",)]  # zero initial: the final alone
    assert pinyin_prons("要绿吧") == [("y", "ao4", "l", "v4", "b", "a5")]  # y/w kept as initials, ü as v, neutral 5


def test_make_dict_dir_writes_a_kaldi_dict_dir(tmp_path):
    out = make_dict_dir(["yes", "zero", "go"], tmp_path / "dict")
    assert (out / "lexicon.txt").read_text() == (
        "!SIL SIL\n<UNK> SPN\ngo G OW\nyes Y EH S\nzero Z IH R OW\nzero Z IY R OW\n")
    assert (out / "silence_phones.txt").read_text() == "SIL\nSPN\n"
    assert (out / "optional_silence.txt").read_text() == "SIL\n"
    assert (out / "nonsilence_phones.txt").read_text() == "EH\nG\nIH\nIY\nOW\nR\nS\nY\nZ\n"
    assert (out / "extra_questions.txt").read_text() == ""


def test_make_dict_dir_lists_every_missing_word_with_the_g2p_command(tmp_path):
    with pytest.raises(InputError) as err:
        make_dict_dir(["yes", "kaldilitex", "zzyzxq"], tmp_path / "dict")
    assert "2 word(s) not in CMUdict: kaldilitex zzyzxq" in str(err.value)
    assert "kaldilite g2p kaldilitex zzyzxq" in str(err.value)


def test_lexicon_has_stress(tmp_path):
    (tmp_path / "a.txt").write_text("yes Y EH1 S\n")
    (tmp_path / "b.txt").write_text("yes Y EH S\n")
    assert lexicon_has_stress(tmp_path / "a.txt") and not lexicon_has_stress(tmp_path / "b.txt")


def test_cli_prepare_make_grammar_validate_and_g2p(tmp_path):
    runner = CliRunner()
    dict_dir = make_dict_dir(["yes", "no", "cat", "dog"], tmp_path / "dict")
    res = runner.invoke(cli, ["prepare-lang", str(dict_dir), "<UNK>", str(tmp_path / "tmp"), str(tmp_path / "lang")])
    assert res.exit_code == 0, res.output
    (tmp_path / "commands.txt").write_text("yes\nno\n")
    (tmp_path / "fillers.txt").write_text("cat\ndog\n")
    res = runner.invoke(cli, ["make-grammar", "--fillers", str(tmp_path / "fillers.txt"), "--garbage", "true",
                              "--garbage-cost", "2", str(tmp_path / "commands.txt"), str(tmp_path / "lang"),
                              str(tmp_path / "lang_cmd")])
    assert res.exit_code == 0, res.output
    fillers = LangDir.load(tmp_path / "lang_cmd").filler_words()
    assert {"cat", "dog", "<gbg_K>", "<gbg_EH>"} <= fillers and "yes" not in fillers
    res = runner.invoke(cli, ["validate-lang", str(tmp_path / "lang_cmd")])
    assert res.exit_code == 0, res.output
    (tmp_path / "lang_cmd" / "phones" / "nonsilence.int").write_text("999\n")
    res = runner.invoke(cli, ["validate-lang", str(tmp_path / "lang_cmd")])
    assert res.exit_code == 1 and "nonsilence.int: does not match nonsilence.txt" in res.output
    res = runner.invoke(cli, ["g2p", "yes", "打开"])
    assert res.exit_code == 0 and res.output == "yes Y EH S\n打开 d a3 k ai1\n"


def test_cli_user_error_is_one_line_without_traceback(tmp_path):
    make_dict_dir(["yes"], tmp_path / "dict")
    (tmp_path / "dict" / "lexicon.txt").write_text("!SIL SIL\n<UNK> SPN\nyes\n")
    proc = subprocess.run([sys.executable, "-m", "kaldilite", "prepare-lang", str(tmp_path / "dict"), "<UNK>",
                           str(tmp_path / "tmp"), str(tmp_path / "lang")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"kaldilite prepare-lang: error: {tmp_path / 'dict' / 'lexicon.txt'}:3: word 'yes' has no phones; "
        f"add its pronunciation"]


def test_make_dict_dir_from_an_existing_lexicon_copies_its_entries(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "lexicon.txt").write_text("!SIL SIL\n<UNK> SPN\nlamp L AE M P\non AA N\non AO N\noff AO F\n")
    (src / "silence_phones.txt").write_text("SIL\nSPN\nNSN\n")
    (src / "optional_silence.txt").write_text("SIL\n")
    out = make_dict_dir(["on", "lamp"], tmp_path / "dict", source=src / "lexicon.txt")
    assert (out / "lexicon.txt").read_text() == "!SIL SIL\n<UNK> SPN\nlamp L AE M P\non AA N\non AO N\n"
    assert (out / "nonsilence_phones.txt").read_text() == "AA\nAE\nAO\nL\nM\nN\nP\n"
    assert (out / "silence_phones.txt").read_text() == "SIL\nSPN\n"
    with pytest.raises(InputError, match=r"1 word\(s\) not in .*lexicon.txt: kitchen; .*kaldilite g2p") as err:
        make_dict_dir(["on", "kitchen"], tmp_path / "dict2", source=src / "lexicon.txt")
    assert f"`kaldilite g2p --lexicon {src} --add kitchen` appends the proposed lines" in str(err.value)


def test_cli_prepare_dict_reads_a_commands_file(tmp_path):
    (tmp_path / "commands.txt").write_text("\ufeff# lights\r\nturn on\t2\r\nturn off\r\n")
    res = CliRunner().invoke(cli, ["prepare-dict", str(tmp_path / "commands.txt"), str(tmp_path / "dict")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "dict" / "lexicon.txt").read_text() == (
        "!SIL SIL\n<UNK> SPN\noff AO F\non AA N\non AO N\nturn T ER N\n")


def test_restrict_to_phone_set_substitutes_missing_phones():
    from kaldilite.lang.g2p import restrict_to_phone_set

    phones = {"K", "IH", "T", "SH", "AH", "N", "D", "Z", "AO", "IY", "B"}
    assert restrict_to_phone_set(("K", "IH", "CH", "AH", "N"), phones) == (
        ("K", "IH", "T", "SH", "AH", "N"), [("CH", ("T", "SH"))])
    assert restrict_to_phone_set(("B", "OY"), phones) == (("B", "AO", "IY"), [("OY", ("AO", "IY"))])
    assert restrict_to_phone_set(("Q",), phones) == (("Q",), [("Q", None)])


def test_cli_g2p_keeps_new_words_inside_the_dict_dir_phone_set():
    from pathlib import Path

    en = Path(__file__).resolve().parents[2] / "lang" / "en"
    res = CliRunner().invoke(cli, ["g2p", "--lexicon", str(en), "kitchen", "yes"])
    assert res.exit_code == 0, res.output
    # CMUdict: kitchen K IH1 CH AH0 N; lang/en has no CH (no training word uses it): T SH.
    assert res.stdout == "kitchen K IH T SH AH N\nyes Y EH S\n"
    assert "CH is not in the phone set" in res.stderr
