"""New command words in a dict dir whose lexicon is lexiconp.txt (pronunciation probabilities).

Independent answers: CMUdict's seven = S EH V AH N (lang/en's phones carry no stress digits, and
neither must the proposal, though lexiconp.txt's probability column ends in a digit), and the
pair check of dict-dir loading (validate_dict_dir.pl's: lexicon.txt and lexiconp.txt agree).
"""

import pytest

from kaldilite.errors import InputError
from kaldilite.lang.dictdir import DictDir
from kaldilite.lang.g2p import dict_phone_set, lexicon_has_stress
from kaldilite.lang.newwords import check_pronunciations
from newcmds_helpers import edited_lang


def with_lexiconp(lang, keep_plain):
    plain = (lang / "lexicon.txt").read_text().splitlines()
    (lang / "lexiconp.txt").write_text("".join(
        f"{f[0]} {0.6 if f[0] == 'no' else 1.0} {' '.join(f[1:])}\n" for f in map(str.split, plain) if f))
    if not keep_plain:
        (lang / "lexicon.txt").unlink()
    return lang


@pytest.mark.parametrize("keep_plain", [False, True])
def test_auto_g2p_appends_to_lexiconp_and_keeps_lexicon_txt_in_step(tmp_path, keep_plain, caplog):
    lang = with_lexiconp(edited_lang(tmp_path / "en", commands_add=["seven"], lexicon_remove=["seven"]), keep_plain)
    assert not lexicon_has_stress(lang / "lexiconp.txt") and not lexicon_has_stress(lang)
    before = (lang / "lexiconp.txt").read_text().splitlines()

    with caplog.at_level("WARNING", logger="kaldilite.lang.newwords"):
        assert check_pronunciations(lang, [lang / "commands.txt"], auto_g2p=True) == ["seven S EH V AH N"]
    # the log names every file the line went into
    files = f"{lang / 'lexicon.txt'} and {lang / 'lexiconp.txt'}" if keep_plain else f"{lang / 'lexiconp.txt'} "
    assert f"added 'seven S EH V AH N' to {files}" in caplog.text
    assert (lang / "lexiconp.txt").read_text().splitlines() == before + ["seven 1.0 S EH V AH N"]
    if keep_plain:
        assert (lang / "lexicon.txt").read_text().splitlines()[-1] == "seven S EH V AH N"
    entries = {(e.word, e.prob, e.phones) for e in DictDir.load(lang).lexicon}  # the pair still agrees
    assert ("seven", 1.0, ("S", "EH", "V", "AH", "N")) in entries and ("no", 0.6, ("N", "OW")) in entries
    assert check_pronunciations(lang, [lang / "commands.txt"]) == []


@pytest.mark.parametrize("keep_plain", [False, True])
def test_a_missing_word_of_a_lexiconp_dict_dir_is_not_sent_to_g2p_appending(tmp_path, keep_plain):
    # `kaldilite g2p` prints `word phones` lines: appended to lexiconp.txt the first phone would be read as
    # the probability, so the fixes offered are --auto-g2p and g2p --add, which write the column (and
    # lexicon.txt too); the same advice as for a lexicon.txt dict dir
    lang = with_lexiconp(edited_lang(tmp_path / "en", commands_add=["seven"], lexicon_remove=["seven"]), keep_plain)
    with pytest.raises(InputError) as err:
        check_pronunciations(lang, [lang / "commands.txt"])
    message = str(err.value)
    assert message.startswith(f"1 grammar word(s) without a pronunciation in {lang / 'lexiconp.txt'}: seven (")
    assert ">>" not in message and "as re-running with --auto-g2p" in message
    assert f"`kaldilite g2p --lexicon {lang} --add seven`" in message
    (lang / "lexiconp.txt").unlink()
    if keep_plain:
        with pytest.raises(InputError) as err:
            check_pronunciations(lang, [lang / "commands.txt"])
        assert str(err.value).split("; ", 1)[1] == message.split("; ", 1)[1]


def test_the_phone_set_of_a_lexiconp_only_dict_dir_is_its_phone_files(tmp_path):
    lang = with_lexiconp(edited_lang(tmp_path / "en"), keep_plain=False)
    declared = {p for name in ("silence_phones.txt", "nonsilence_phones.txt")
                for p in (lang / name).read_text().split()}
    assert dict_phone_set(lang / "lexicon.txt") == dict_phone_set(lang) == declared
    for name in ("silence_phones.txt", "nonsilence_phones.txt"):
        (lang / name).unlink()
    used = {p for line in (lang / "lexiconp.txt").read_text().splitlines() for p in line.split()[2:]}
    assert dict_phone_set(lang) == used and "1.0" not in used


def test_make_grammars_missing_word_fix_works_on_a_lexiconp_dict_dir(tmp_path):
    # the lang dir does not know which file its dict dir's lexicon was: the message says how prepare-lang
    # chose (lexiconp.txt first) and offers check-pronunciations --auto-g2p, which, followed, fixes it
    from click.testing import CliRunner

    from kaldilite.cli import cli
    from kaldilite.lang.grammar import make_grammar
    from kaldilite.lang.prepare import prepare_lang

    dict_dir = with_lexiconp(edited_lang(tmp_path / "en", commands_add=["seven"], lexicon_remove=["seven"]), False)
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    with pytest.raises(InputError) as err:
        make_grammar(dict_dir / "commands.txt", lang, tmp_path / "lang_commands")
    message = str(err.value)
    assert "seven (" in message and "lexiconp.txt if the dict dir has one, else lexicon.txt" in message
    command = message.split("`")[1].replace("DICT_DIR", str(dict_dir)).split()
    assert command[:3] == ["kaldilite", "check-pronunciations", "--auto-g2p"]
    assert CliRunner().invoke(cli, command[1:]).exit_code == 0
    assert (dict_dir / "lexiconp.txt").read_text().splitlines()[-1] == "seven 1.0 S EH V AH N"
    lang = prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp2", tmp_path / "lang2")
    make_grammar(dict_dir / "commands.txt", lang, tmp_path / "lang_commands")
    assert (tmp_path / "lang_commands" / "G.fst").is_file()


@pytest.mark.parametrize("lexicon_name", ["lexiconp.txt", "lexicon.txt", "both"])
def test_the_g2p_hint_for_a_known_lexicon_followed_in_a_shell_gives_a_valid_dict_dir(tmp_path, lexicon_name):
    # g2p prints `word phones`: appended to a lexiconp.txt the first phone would be read as the probability
    # (or the load fails); the hint's command, run as printed, must leave a dict dir that loads with the
    # word, probability 1.0, lexicon.txt and lexiconp.txt in step (the independent answer: DictDir.load,
    # whose pair check is validate_dict_dir.pl's, and CMUdict's seven)
    import os
    import subprocess
    import sys
    from pathlib import Path

    from kaldilite.lang.g2p import g2p_hint

    lang = edited_lang(tmp_path / "en", lexicon_remove=["seven"])
    if lexicon_name != "lexicon.txt":
        lang = with_lexiconp(lang, keep_plain=lexicon_name == "both")
    hint = g2p_hint(["seven"], lang / ("lexiconp.txt" if lexicon_name == "both" else lexicon_name))
    command = hint.split("`")[1]
    assert command == f"kaldilite g2p --lexicon {lang} --add seven"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(command, shell=True, check=True, env=env, timeout=60, capture_output=True)
    entries = {(e.word, e.prob, e.phones) for e in DictDir.load(lang).lexicon}
    assert ("seven", 1.0, ("S", "EH", "V", "AH", "N")) in entries
    if lexicon_name != "lexiconp.txt":
        assert (lang / "lexicon.txt").read_text().splitlines()[-1] == "seven S EH V AH N"
    subprocess.run(command, shell=True, check=True, env=env, timeout=60, capture_output=True)  # known now: no-op
    assert sum(e.word == "seven" for e in DictDir.load(lang).lexicon) == 1


def test_g2p_add_substitutes_phones_as_auto_g2p_and_refuses_a_word_it_cannot_write(tmp_path):
    from click.testing import CliRunner

    from kaldilite.cli import cli

    lang = edited_lang(tmp_path / "en", lexicon_remove=["seven"])
    before = (lang / "lexicon.txt").read_text()
    # pypinyin's phones (d a3 k ai1) are none of lang/en's: refused, and seven is not added either
    result = CliRunner().invoke(cli, ["g2p", "--lexicon", str(lang), "--add", "seven", "打开"])
    assert result.exit_code != 0 and "'打开'" in str(result.exception) and "nothing was added" in str(result.exception)
    assert (lang / "lexicon.txt").read_text() == before
    # lang/en has no CH: kitchen gets the substitute check-pronunciations --auto-g2p gives it
    result = CliRunner().invoke(cli, ["g2p", "--lexicon", str(lang), "--add", "kitchen"])
    assert result.exit_code == 0, result.output
    check_pronunciations_added = (lang / "lexicon.txt").read_text()[len(before):].splitlines()
    assert check_pronunciations_added and all(line.split()[0] == "kitchen" and "CH" not in line.split()
                                              for line in check_pronunciations_added)
    assert set(check_pronunciations_added[0].split()[1:]) <= dict_phone_set(lang)
    # --max-variants as without --add: CMUdict's read is R EH D and R IY D
    before = (lang / "lexicon.txt").read_text()
    result = CliRunner().invoke(cli, ["g2p", "--lexicon", str(lang), "--max-variants", "1", "--add", "read"])
    assert result.exit_code == 0 and (lang / "lexicon.txt").read_text()[len(before):].splitlines() == ["read R EH D"]
