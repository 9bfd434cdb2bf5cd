"""check-pronunciations --model-dir: grammar words using phones the model had no training data for.

Independent answers: a flat-start model whose per-pdf occupancies are written by hand, with the
pdfs of a phone found through the tree (not through the transition model the check walks); and
for real systems, the phones of the training transcripts counted through the lexicon (a phone
no training word uses can have no frames; one used hundreds of times has at least that many).
"""

import collections
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.hmm import ContextDependency, Topology
from kaldilite.lang.newwords import warn_untrained_words
from newcmds_helpers import LANG_EN, build_flat_start_system

LEAD_FINAL = Path("/tmp/lead/final")  # a full commands build (tri3b), when this machine has one


def _phone_pdfs(lang_dir, tree, base):
    """pdfs of every word-position variant of `base`, from the monophone tree itself."""
    ids = {name: int(i) for name, i in (line.split() for line in (lang_dir / "phones.txt").read_text().splitlines())}
    topo = Topology.read(lang_dir / "topo")
    return {name: {tree.compute((ids[name],), c) for c in range(topo.num_pdf_classes(ids[name]))}
            for name in ids if name.rsplit("_", 1)[0] == base}


def _flat_system_with_occs(tmp_path, occs_of_phone):
    """A flat-start mono system on lang/en whose final.occs gives every pdf 1000 frames except the
    pdfs of the phones in `occs_of_phone` ({base phone: frames of each of its pdfs})."""
    lang = tmp_path / "en"
    shutil.copytree(LANG_EN, lang)
    work = build_flat_start_system(tmp_path, lang)
    exp, lang_dir = work / "exp/mono", work / "data/lang"
    tree = ContextDependency.read(exp / "tree")
    occs = np.full(tree.num_pdfs, 1000.0)
    for base, frames in occs_of_phone.items():
        for pdfs in _phone_pdfs(lang_dir, tree, base).values():
            occs[sorted(pdfs)] = frames
    (exp / "final.occs").write_text(" [ " + " ".join(f"{o:g}" for o in occs) + " ]\n")
    shutil.copy(lang_dir / "phones.txt", exp / "phones.txt")
    return lang, exp


def _check(lang, exp, *grammar_files):
    runner = CliRunner()
    return runner.invoke(cli, ["check-pronunciations", "--model-dir", str(exp), str(lang),
                               *[str(f) for f in grammar_files]], catch_exceptions=False)


def test_the_word_using_a_phone_without_frames_is_warned_about_naming_that_phone(tmp_path, caplog):
    # Y occurs only in 'yes' among the commands and fillers; K only in 'cat', W only in 'wow'
    lang, exp = _flat_system_with_occs(tmp_path, {"Y": 0.0, "K": 9.5, "W": 10.0})
    with caplog.at_level(logging.WARNING):
        result = _check(lang, exp, lang / "commands.txt", lang / "fillers.txt")
    assert result.exit_code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # W has exactly the minimum (10 frames): trained
    yes, cat = warnings
    assert yes.startswith(f"{lang / 'commands.txt'}:1: 'yes' uses phone(s) Y that ") and "Y 0" in yes
    assert "kaldilite record" in yes and "retrain" in yes and "\n" not in yes
    assert cat.startswith(f"{lang / 'fillers.txt'}:3: 'cat' uses phone(s) K that ") and "K 10" in cat  # 9.5 -> 10


def test_a_dnn_dir_without_occupancies_is_refused_with_the_fix(tmp_path):
    lang, exp = _flat_system_with_occs(tmp_path, {})
    (exp / "final.occs").unlink()
    result = CliRunner().invoke(cli, ["check-pronunciations", "--model-dir", str(exp), str(lang),
                                      str(lang / "commands.txt")])
    message = str(result.exception)
    assert result.exit_code != 0 and "final.occs: not found" in message and "exp/tri3b" in message


def _transcript_phone_counts(text_file, lexicon_file):
    """{phone: occurrences in the transcripts} counting only phones every pronunciation of the word has."""
    prons = collections.defaultdict(list)
    for line in Path(lexicon_file).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            prons[fields[0]].append(set(fields[1:]))
    counts = collections.Counter()
    for line in Path(text_file).read_text(encoding="utf-8").splitlines():
        for word in line.split()[1:]:
            if prons[word]:
                counts.update(set.intersection(*prons[word]))
    return counts


def _check_against_transcripts(work, system, caplog):
    digits = "zero one two three four five six seven eight nine".split()
    lexicon = LANG_EN / "lexicon.txt"
    counts = _transcript_phone_counts(work / "data/train/text", lexicon)
    nonsilence = set(LANG_EN.joinpath("nonsilence_phones.txt").read_text().split())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = _check(LANG_EN, work / "exp" / system, LANG_EN / "commands.txt", LANG_EN / "fillers.txt")
    assert result.exit_code == 0
    summary = [r.getMessage() for r in caplog.records if "phones with under" in r.getMessage()][0]
    flagged = set(summary.split("training frames: ")[1].split(";")[0].split()) & nonsilence
    never = {p for p in nonsilence if counts[p] == 0}
    assert never <= flagged  # no training word uses them: no frames
    assert not flagged & {p for p in nonsilence if counts[p] >= 50}  # used often: trained
    return flagged, never, digits


@pytest.mark.skipif(not (LEAD_FINAL / "exp/tri3b/final.occs").is_file(), reason="no full commands build here")
def test_the_full_build_reports_the_digit_only_phones_and_none_of_the_commands(caplog, tmp_path):
    work = LEAD_FINAL
    flagged, never, digits = _check_against_transcripts(work, "tri3b", caplog)
    assert flagged == never == {"EY", "TH", "UW", "Z"}
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]  # the ten commands and the fillers
    grammar = tmp_path / "digits.txt"
    grammar.write_text("\n".join(digits) + "\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        found = warn_untrained_words(LANG_EN, [grammar], {p: 0.0 for p in flagged}, "exp/tri3b")
    assert found == {"zero": ["Z"], "two": ["UW"], "three": ["TH"], "eight": ["EY"]}


def test_the_session_system_flags_the_phones_its_transcripts_never_use(commands_system, caplog):
    flagged, never, _ = _check_against_transcripts(commands_system, "mono", caplog)
    assert {"EY", "TH", "UW", "Z"} <= never
