"""The Mandarin dict dir (lang/zh) through the commands recipe's stage 3.

No Mandarin acoustic model exists yet (that is a later recipe), so the model is a flat-start
monophone system on lang/zh's phone set (what `train-mono` writes as 0.mdl before any data):
stage 3 only needs its transition model and tree. The independent answer is the command list
itself: the output language of L o G and of the final HCLG must be exactly the commands.
"""

import pywrapfst as fst

from newcmds_helpers import REPO, build_flat_start_system, commands_of, edited_lang, output_language, run_stage_3

LANG_ZH = REPO / "lang" / "zh"


def test_stage_3_builds_mandarin_graphs_whose_output_is_exactly_the_commands(tmp_path):
    work = build_flat_start_system(tmp_path, LANG_ZH)
    out = run_stage_3(work, LANG_ZH)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    commands = commands_of(LANG_ZH / "commands.txt")
    assert ("打开", "空调") in commands and ("关闭", "空调") in commands

    lang = work / "data/lang_commands_norej"
    lg = fst.compose(fst.Fst.read(str(lang / "L_disambig.fst")).arcsort("olabel"), fst.Fst.read(str(lang / "G.fst")))
    assert output_language(lg, lang / "words.txt") == commands
    graph = work / "exp/mono/graph_commands_norej"
    assert output_language(fst.Fst.read(str(graph / "HCLG.fst")), graph / "words.txt") == commands

    # the grammar with rejection knows the fillers as such, and its graph was built too
    fillers = (work / "data/lang_commands/words/fillers.txt").read_text(encoding="utf-8").split()
    assert {"你好", "空气", "电话"} <= set(fillers)
    assert (work / "exp/mono/graph_commands/HCLG.fst").stat().st_size > 0


def test_a_new_mandarin_command_of_known_phones_needs_only_stage_3(tmp_path):
    work = build_flat_start_system(tmp_path, LANG_ZH)
    lang = edited_lang(tmp_path / "zh", source=LANG_ZH, commands_add=["关闭 音乐", "打开 空气"])
    out = run_stage_3(work, lang)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    graph = work / "exp/mono/graph_commands_norej"
    assert output_language(fst.Fst.read(str(graph / "HCLG.fst")), graph / "words.txt") == commands_of(
        lang / "commands.txt")


def test_a_mandarin_word_with_an_untrained_phone_is_refused_naming_word_line_and_phone(tmp_path):
    work = build_flat_start_system(tmp_path, LANG_ZH)
    # 窗户 chuang1 h u4: neither `ch` nor `uang1` is in the trained phone set
    lang = edited_lang(tmp_path / "zh", source=LANG_ZH, commands_add=["打开 窗户"])
    out = run_stage_3(work, lang)
    assert out.returncode != 0
    assert "commands.txt:11" in out.stderr and "窗户" in out.stderr and "outside the trained phone set" in out.stderr
    # written by hand with an unknown phone: the lexicon line is named
    with open(lang / "lexicon.txt", "a", encoding="utf-8") as handle:
        handle.write("窗户 ch uang1 h u4\n")
    out = run_stage_3(work, lang)
    assert out.returncode != 0
    assert f"lexicon.txt:{len((lang / 'lexicon.txt').read_text(encoding='utf-8').splitlines())}" in out.stderr
    assert "'ch'" in out.stderr and "retrain" in out.stderr
    assert not (work / "exp/mono/graph_commands").exists()
