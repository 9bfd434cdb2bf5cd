"""check-pronunciations --model-dir: grammar words using phones the model had no training data for.

Independent answers: a flat-start model whose per-pdf occupancies are written by hand, with the
pdfs of a phone found through the tree (not through the transition model the check walks); and
for the session's commands system, the phones of its training transcripts counted through the
lexicon (a phone no training word uses can have no frames; each aligned use of a phone gives each
of its HMM states a frame). A triphone model's several pdfs per HMM state: hand-made tuples.
"""

import collections
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError
from kaldilite.hmm import ContextDependency, Topology
from kaldilite.lang.newwords import untrained_phones
from newcmds_helpers import LANG_EN, build_flat_start_system


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


def test_occupancies_that_are_not_a_text_vector_are_refused_naming_the_file(tmp_path):
    lang, exp = _flat_system_with_occs(tmp_path, {})
    (exp / "final.occs").write_text(" [ 1 2 3\n")  # truncated: no closing bracket
    result = CliRunner().invoke(cli, ["check-pronunciations", "--model-dir", str(exp), str(lang),
                                      str(lang / "commands.txt")])
    assert isinstance(result.exception, InputError)
    assert f"{exp / 'final.occs'}: not a Kaldi text vector of occupancies" in str(result.exception)


def test_a_state_s_frames_are_summed_over_its_pdfs_and_the_least_trained_state_counts():
    # as in a triphone model: AA's state 0 has one pdf per word position, its state 1 one per context
    names = {1: "SIL", 2: "AA_B", 3: "AA_E", 4: "K_S"}
    tuples = [(1, 0, 6, 6), (2, 0, 0, 0), (3, 0, 1, 1), (2, 1, 2, 2), (3, 1, 3, 3), (2, 1, 7, 7),
              (4, 0, 4, 4), (4, 1, 5, 5)]
    occs = [6.0, 6.0, 4.0, 3.0, 100.0, 10.0, 3.0, 2.0]  # AA: state 0 has 6 + 6, state 1 has 4 + 3 + 2
    assert untrained_phones(tuples, occs, names, {"SIL", "AA", "K"}) == {"AA": 9.0, "SIL": 3.0}
    assert untrained_phones(tuples, occs, names, {"SIL", "AA", "K"}, min_count=3.0) == {}
    with pytest.raises(InputError, match="final.occs belongs to another model"):
        untrained_phones(tuples, occs[:7], names, {"SIL", "AA", "K"})


def _lexicon_prons(lexicon_file):
    """{word: [set of phones of each pronunciation]}."""
    prons = collections.defaultdict(list)
    for line in Path(lexicon_file).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            prons[fields[0]].append(set(fields[1:]))
    return prons


def _transcript_phone_counts(text_file, prons):
    """{phone: occurrences in the transcripts} counting only phones every pronunciation of the word has."""
    counts = collections.Counter()
    for line in Path(text_file).read_text(encoding="utf-8").splitlines():
        for word in line.split()[1:]:
            if prons[word]:
                counts.update(set.intersection(*prons[word]))
    return counts


def test_the_session_system_warns_about_the_words_using_phones_its_transcripts_never_use(commands_system, caplog,
                                                                                           tmp_path):
    prons = _lexicon_prons(LANG_EN / "lexicon.txt")
    counts = _transcript_phone_counts(commands_system / "data/train/text", prons)
    nonsilence = set(LANG_EN.joinpath("nonsilence_phones.txt").read_text().split())
    never = {p for p in nonsilence if counts[p] == 0}
    # each aligned occurrence gives every HMM state of the phone at least one frame: 20 occurrences
    # are 20 frames or more (twice the 10 of --min-count, a margin for utterances that failed to align)
    often = {p for p in nonsilence if counts[p] >= 20}
    assert {"EY", "TH", "UW", "Z"} <= never  # the Speech Commands words never use them (only the digits do)
    digits = tmp_path / "digits.txt"
    digits.write_text("zero one two three four five six seven eight nine\n".replace(" ", "\n"))
    grammars = [LANG_EN / "commands.txt", LANG_EN / "fillers.txt", digits]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = _check(LANG_EN, commands_system / "exp/mono", *grammars)
    assert result.exit_code == 0
    summary = [r.getMessage() for r in caplog.records if "phones with under" in r.getMessage()][0]
    flagged = set(summary.split("training frames: ")[1].split(";")[0].split()) & nonsilence
    assert never <= flagged  # no training word uses them: no frames
    assert not flagged & often  # used often: trained
    warned = {}
    for record in caplog.records:
        if record.levelno == logging.WARNING:
            match = re.match(r"(.+:\d+): '(.+)' uses phone\(s\) (.+?) that ", record.getMessage())
            assert match, record.getMessage()
            warned[match[2]] = set(match[3].split())
    words = [w for g in grammars for w in g.read_text().split()]
    for word in words:
        phones = set.union(*prons[word])
        if phones & never:
            assert phones & never <= warned.get(word, set()), (word, warned)
        if phones <= often | {"SIL"}:
            assert word not in warned, (word, warned[word])
    for word, phones in warned.items():
        assert phones <= flagged and phones <= set.union(*prons[word])
    assert {"zero", "two", "three", "eight"} <= set(warned) and not {"yes", "no", "stop", "go"} & set(warned)
