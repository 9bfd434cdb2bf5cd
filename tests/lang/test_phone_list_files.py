"""`read_phone_list`: phones/*.int and phones/*.csl (the two forms prepare-lang writes of one list)
read to the same ids; a missing file or a non-integer field is a one-line error naming the file."""

import pytest
from lang_helpers import write_dict_dir

from kaldilite.errors import InputError, MissingFileError
from kaldilite.lang import prepare_lang
from kaldilite.lang.langdir import LangDir, read_phone_list


def test_int_and_csl_forms_of_a_prepared_lang_dir_give_its_silence_phones(tmp_path):
    lang_dir = prepare_lang(write_dict_dir(tmp_path / "dict"), "<UNK>", tmp_path / "tmp", tmp_path / "lang")
    lang = LangDir.load(lang_dir)
    phones = lang_dir / "phones"
    assert len(lang.silence_phones) > 1
    assert read_phone_list(phones / "silence.int", "fix") == lang.silence_phones
    assert read_phone_list(phones / "silence.csl", "fix") == lang.silence_phones
    assert ":".join(map(str, lang.silence_phones)) == (phones / "silence.csl").read_text().strip()


def test_hand_written_lists(tmp_path):
    (tmp_path / "a.csl").write_text("1:2:3:4:5\n")
    (tmp_path / "a.int").write_text("1\n2\n3\n4\n5\n")
    assert read_phone_list(tmp_path / "a.csl", "fix") == read_phone_list(tmp_path / "a.int", "fix") == [1, 2, 3, 4, 5]
    (tmp_path / "bad.csl").write_text("1:SIL:3\n")
    with pytest.raises(InputError, match=r"bad.csl:1: expected colon-separated integers, found 'SIL'"):
        read_phone_list(tmp_path / "bad.csl", "fix")
    with pytest.raises(MissingFileError, match=r"none.int: missing; rebuild it"):
        read_phone_list(tmp_path / "none.int", "rebuild it")
