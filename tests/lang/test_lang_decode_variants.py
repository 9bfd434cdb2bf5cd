"""The commands recipe's decoding-only pronunciation variants (run.sh --decode-lexicon-extra).

Stage 3 (lang, grammars; no models needed) is run on a work dir holding only a training lang
(or only a training transcript, with stage 2).
Independent answers: the decoding lexicon is lang/en's lines plus exactly the variant lines of
words lang/en has (read off the conf file by hand here), the training lang is untouched, and
`--decode-lexicon-extra ''` gives lang/en's lexicon as it is.
"""

import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import pywrapfst as fst
from lang_helpers import path_cost, read_table

from kaldilite.lang import prepare_lang

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "recipes" / "commands" / "run.sh"
LANG_EN = REPO / "lang" / "en"
EXTRA = REPO / "recipes" / "commands" / "conf" / "lexicon_decode_extra.txt"


def stage3(work, dict_dir, *args):
    # `source` reads run.sh whole before running it (others may edit the shared checkout meanwhile)
    cmd = ["bash", "-c", 'source "$0" "$@"', str(RUN), "--stage", "3", "--stop-stage", "3", "--dir", str(work),
           "--dict-dir", str(dict_dir), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout + out.stderr
    lexicon = work / "data/local/dict_test/lexicon.txt"
    return [line for line in lexicon.read_text().splitlines() if line.strip()] if lexicon.exists() else None


def test_decoding_lexicon_adds_the_variants_of_known_words_only(tmp_path):
    extra = [" ".join(line.split()) for line in EXTRA.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "left L EH F" in extra and "stop S T AA" in extra
    dict_dir = tmp_path / "en"
    shutil.copytree(LANG_EN, dict_dir)
    lexicon = (dict_dir / "lexicon.txt").read_text().splitlines()
    # a user lexicon without 'stop' (no variant for it), already listing one variant (not repeated)
    lexicon = [line for line in lexicon if line.split()[0] != "stop"] + ["left L EH F"]
    (dict_dir / "lexicon.txt").write_text("\n".join(lexicon) + "\n")
    (dict_dir / "commands.txt").write_text("yes\nleft\nright\n")
    work = tmp_path / "work"
    prepare_lang(dict_dir, "<UNK>", tmp_path / "tmp", work / "data/lang")  # stands in for stage 2
    train_lexicon = (work / "data/lang/phones/align_lexicon.txt").read_text()

    merged = stage3(work, dict_dir)
    expected = lexicon + [v for v in extra if v.split()[0] != "stop" and v != "left L EH F"]
    assert merged == expected
    assert "stop S T AA" not in merged
    decoding = (work / "data/lang_test/phones/align_lexicon.txt").read_text().splitlines()
    assert "right right R_B AY_E" in decoding and "right right R_B AY_I T_E" in decoding
    assert (work / "data/lang/phones/align_lexicon.txt").read_text() == train_lexicon

    assert stage3(work, dict_dir, "--decode-lexicon-extra", "") == lexicon


def test_a_dict_dir_with_lexiconp_gives_its_pron_probs_to_both_langs(tmp_path):
    """As Kaldi's prepare_lang.sh: lexiconp.txt, when present, is the lexicon of stage 2 (training
    lang) and stage 3 (decoding lang, grammars); its probabilities become L.fst costs -log(p), and
    the decoding-only variants join it with prob 1.0."""
    dict_dir = tmp_path / "en"
    shutil.copytree(LANG_EN, dict_dir)
    plain = (dict_dir / "lexicon.txt").read_text().splitlines()
    (dict_dir / "lexicon.txt").unlink()
    (dict_dir / "lexiconp.txt").write_text(
        "".join(f"{f[0]} {0.6 if f[0] == 'no' else 1.0} {' '.join(f[1:])}\n" for f in map(str.split, plain) if f))
    (dict_dir / "commands.txt").write_text("no\ngo\nright\n")
    work = tmp_path / "work"
    (work / "data/train_aug").mkdir(parents=True)
    (work / "data/train_aug/text").write_text("u1 no\nu2 go\nu3 right\n")
    stage3(work, dict_dir, "--stage", "2")  # later options win: stages 2 and 3

    train = (work / "data/local/dict_train/lexiconp.txt").read_text().splitlines()
    assert sorted(train) == ["!SIL 1.0 SIL", "<UNK> 1.0 SPN", "go 1.0 G OW", "no 0.6 N OW", "right 1.0 R AY T"]
    decoding = (work / "data/local/dict_test/lexiconp.txt").read_text().splitlines()
    assert "no 0.6 N OW" in decoding and "right 1.0 R AY" in decoding and "stop 1.0 S T AA" in decoding
    assert not (work / "data/local/dict_test/lexicon.txt").exists()
    # sil_prob 0.5: a word between no-silence choices costs -log(0.5) twice, plus -log(p) of its pron
    for lang in ("data/lang", "data/lang_commands"):
        L = fst.Fst.read(str(work / lang / "L.fst"))
        p, w = read_table(work / lang / "phones.txt"), read_table(work / lang / "words.txt")
        assert path_cost(L, [p["N_B"], p["OW_E"]], [w["no"]]) == pytest.approx(2 * math.log(2) - math.log(0.6), abs=1e-4)
        assert path_cost(L, [p["G_B"], p["OW_E"]], [w["go"]]) == pytest.approx(2 * math.log(2), abs=1e-4)
