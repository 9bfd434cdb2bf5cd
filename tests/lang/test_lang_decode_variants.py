"""The commands recipe's decoding-only pronunciation variants (run.sh --decode-lexicon-extra).

Stage 3 (lang, grammars; no models needed) is run on a work dir holding only a training lang.
Independent answers: the decoding lexicon is lang/en's lines plus exactly the variant lines of
words lang/en has (read off the conf file by hand here), the training lang is untouched, and
`--decode-lexicon-extra ''` gives lang/en's lexicon as it is.
"""

import os
import shutil
import subprocess
from pathlib import Path

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
    return [line for line in (work / "data/local/dict_test/lexicon.txt").read_text().splitlines() if line.strip()]


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
