"""check-pronunciations: the gate before a stage-3 rebuild, on copies of lang/en.

Independent answers: CMUdict's entries (seven = S EH V AH N; kitchen has CH, which lang/en
lacks, so the proposal must use the phones it has) and hand-written broken lexicon lines.
"""

import logging

import pytest

from kaldilite.errors import InputError
from kaldilite.lang.g2p import dict_phone_set
from kaldilite.lang.newwords import check_pronunciations
from newcmds_helpers import edited_lang


def test_missing_words_are_listed_with_file_line_and_the_proposed_line(tmp_path, caplog):
    lang = edited_lang(tmp_path / "en", commands_add=["seven", "open the kitchen"], lexicon_remove=["seven"])
    with caplog.at_level(logging.WARNING), pytest.raises(InputError) as error:
        check_pronunciations(lang, [lang / "commands.txt", lang / "fillers.txt"])
    message = str(error.value)
    assert "seven (" in message and "commands.txt:11" in message and "commands.txt:12" in message
    assert "--auto-g2p" in message and len(message.splitlines()) == 1
    # both spellings: the verb's flag and the recipe's option, which takes a value (run.sh --auto-g2p alone
    # would swallow the next option as its value)
    assert "check-pronunciations" in message and "./run.sh --auto-g2p true" in message
    assert "seven S EH V AH N" in caplog.text
    kitchen = [r.getMessage() for r in caplog.records if "'kitchen'" in r.getMessage()][0]
    proposed = kitchen.split("proposes: ")[1].split(" | ")[0].split()[1:]
    assert "CH" not in proposed and set(proposed) <= dict_phone_set(lang / "lexicon.txt")


def test_auto_g2p_appends_the_proposals_and_logs_each(tmp_path, caplog):
    lang = edited_lang(tmp_path / "en", commands_add=["seven"], lexicon_remove=["seven"])
    before = (lang / "lexicon.txt").read_text().splitlines()
    with caplog.at_level(logging.WARNING):
        added = check_pronunciations(lang, [lang / "commands.txt"], auto_g2p=True)
    assert added == ["seven S EH V AH N"]
    assert (lang / "lexicon.txt").read_text().splitlines() == before + added
    assert "auto-g2p" in caplog.text and "commands.txt:11" in caplog.text
    assert check_pronunciations(lang, [lang / "commands.txt"]) == []  # now complete


def test_a_lexicon_phone_outside_the_trained_set_names_the_line(tmp_path):
    lang = edited_lang(tmp_path / "en", commands_add=["kitchen"])
    with open(lang / "lexicon.txt", "a") as handle:
        handle.write("kitchen K IH CH AH N\n")
    n = len((lang / "lexicon.txt").read_text().splitlines())
    with pytest.raises(InputError, match=rf"lexicon.txt:{n}: phone 'CH' of 'kitchen' .* retrain"):
        check_pronunciations(lang, [lang / "commands.txt"])
