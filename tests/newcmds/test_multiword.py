"""Multi-word commands and commands that share words, through the commands recipe's stage 3.

On lang/en's phone set with a flat-start monophone model (stage 3 needs only the transition
model and tree), `turn on the light` / `turn off the light` are added beside the single-word
`on` and `off`; their new words come from `--auto-g2p`. The independent answer is the command
list: the final graph's output language must be exactly it, and the grammar with rejection must
still know the fillers.
"""

import pywrapfst as fst

from newcmds_helpers import LANG_EN, build_flat_start_system, commands_of, edited_lang, output_language, run_stage_3

NEW = ["turn on the light", "turn off the light", "go up"]


def test_multi_word_commands_sharing_words_get_exactly_their_paths_in_the_graph(tmp_path):
    work = build_flat_start_system(tmp_path, LANG_EN)
    lang = edited_lang(tmp_path / "en", commands_add=NEW)
    out = run_stage_3(work, lang)
    assert out.returncode != 0 and "turn (" in out.stderr and "light (" in out.stderr  # no pronunciation yet

    out = run_stage_3(work, lang, "--auto-g2p", "true")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lexicon = (lang / "lexicon.txt").read_text().splitlines()
    assert {"turn T ER N", "light L AY T"} <= set(lexicon) and any(ln.startswith("the ") for ln in lexicon)
    commands = commands_of(lang / "commands.txt")
    assert len(commands) == 13 and ("on",) in commands and ("turn", "on", "the", "light") in commands
    g = work / "exp/mono/graph_commands_norej"
    assert output_language(fst.Fst.read(str(g / "HCLG.fst")), g / "words.txt") == commands
    fillers = set((work / "data/lang_commands/words/fillers.txt").read_text().split())
    assert {"happy", "marvin", "!SIL"} <= fillers and not fillers & {"turn", "light", "on"}
