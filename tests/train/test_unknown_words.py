"""Words of a data dir's `text` that the lang lacks: training and alignment map them to the OOV word
(Kaldi's sym2int.pl --map-oov), and the user is told once, on the console, before any job: the text
file and line, each word with its first line, and the `kaldilite g2p` line that fixes it (the jobs'
logs only said "2 words not in the lexicon were mapped to <UNK>")."""

import logging

import numpy as np

import synthetic_setup
from kaldilite.lang import LangDir
from kaldilite.train.gmm_steps import warn_unknown_words


def test_unknown_transcript_words_are_named_with_their_first_line_and_the_fix(tmp_path, caplog):
    lang = LangDir.load(synthetic_setup.make_lang(tmp_path, {"ab": ["a", "b"], "ca": ["c", "a"]}))
    text = {"s1-1": "ab ca", "s1-2": "ab lamp", "s1-3": "turn ab lamp", "s2-1": "ca"}
    synthetic_setup.write_data_dir(tmp_path / "data", {u: np.zeros((5, 2), np.float32) for u in text}, text)
    with caplog.at_level(logging.WARNING):
        assert warn_unknown_words(tmp_path / "data", lang) == ["lamp", "turn"]
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"{tmp_path / 'data' / 'text'}:2: 2 word(s) not in {lang.path}/words.txt")
    assert "mapped to <UNK>: lamp (line 2), turn (line 3);" in message
    assert ("`kaldilite g2p --lexicon DICT_DIR --add lamp turn` appends the proposed lines to DICT_DIR's "
            "lexicon.txt / lexiconp.txt") in message
    assert "\n" not in message


def test_a_text_of_known_words_says_nothing(tmp_path, caplog):
    lang = LangDir.load(synthetic_setup.make_lang(tmp_path, {"ab": ["a", "b"]}))
    synthetic_setup.write_data_dir(tmp_path / "data", {"s1-1": np.zeros((5, 2), np.float32)}, {"s1-1": "ab ab"})
    with caplog.at_level(logging.WARNING):
        assert warn_unknown_words(tmp_path / "data", lang) == []
    assert caplog.records == []
