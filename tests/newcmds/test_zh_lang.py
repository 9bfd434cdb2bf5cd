"""The Mandarin dict dir (lang/zh) through the commands recipe's stage 3.

No Mandarin acoustic model exists yet (that is a later recipe), so the model is a flat-start
monophone system on lang/zh's phone set (what `train-mono` writes as 0.mdl before any data):
stage 3 only needs its transition model and tree. The independent answer is the command list
itself: the output language of L o G and of the final HCLG must be exactly the commands.
"""

import subprocess

import numpy as np
import pywrapfst as fst

from newcmds_helpers import REPO, edited_lang, recipe_options

LANG_ZH = REPO / "lang" / "zh"


def flat_start_mono(lang_dir, exp_dir, dim=39):
    """A mono model and tree on a lang dir's phone set, as gmm-init-mono makes them (unit Gaussians)."""
    from kaldilite.gmm import AmDiagGmm, save_model
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree
    from kaldilite.train.mono import mono_pipeline

    sets = [[int(x) for x in line.split()] for line in (lang_dir / "phones/sets.int").read_text().splitlines()]
    topo = Topology.read(lang_dir / "topo")
    tree = monophone_tree(sets, topo)
    tm = TransitionModel(topo, tree)
    am = AmDiagGmm.init_single(tree.num_pdfs, np.zeros(dim), np.ones(dim))
    exp_dir.mkdir(parents=True)
    save_model(exp_dir / "final.mdl", tm, am, mono_pipeline(), extra={"raw_feature_dim": dim // 3, "type": "mono"})
    tree.write(exp_dir / "tree")


def output_language(f, words_txt, max_len=8):
    """The set of word sequences an FST outputs (epsilon-free, acyclic after removing epsilons)."""
    symbols = {int(i): w for w, i in (line.split() for line in words_txt.read_text().splitlines())}
    f = f.copy().project("output").rmepsilon()
    f = fst.determinize(f)
    zero = fst.Weight.zero(f.weight_type())
    found = set()

    def walk(state, prefix):
        assert len(prefix) <= max_len, f"cycle in the output language after {prefix}"
        if f.final(state) != zero:
            found.add(tuple(symbols[label] for label in prefix))
        for arc in f.arcs(state):
            walk(arc.nextstate, prefix + (arc.olabel,))

    walk(f.start(), ())
    return found


def commands_of(path):
    return {tuple(line.split("\t")[0].split()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def build_zh_system(tmp_path, lang):
    work = tmp_path / "work"
    subprocess.run([str(REPO / ".venv/bin/kaldilite"), "prepare-lang", str(lang), "<UNK>",
                    str(work / "data/local/lang_tmp"), str(work / "data/lang")], check=True, capture_output=True)
    flat_start_mono(work / "data/lang", work / "exp/mono")
    return work


def run_stage_3(work, lang):
    return subprocess.run(["bash", str(REPO / "recipes/commands/run.sh"), *recipe_options(), "--stage", "3",
                           "--stop-stage", "3", "--dict-dir", str(lang), "--dir", str(work)],
                          capture_output=True, text=True, timeout=600)


def test_stage_3_builds_mandarin_graphs_whose_output_is_exactly_the_commands(tmp_path):
    work = build_zh_system(tmp_path, LANG_ZH)
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
    work = build_zh_system(tmp_path, LANG_ZH)
    lang = edited_lang(tmp_path / "zh", source=LANG_ZH, commands_add=["关闭 音乐", "打开 空气"])
    out = run_stage_3(work, lang)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    graph = work / "exp/mono/graph_commands_norej"
    assert output_language(fst.Fst.read(str(graph / "HCLG.fst")), graph / "words.txt") == commands_of(
        lang / "commands.txt")


def test_a_mandarin_word_with_an_untrained_phone_is_refused_naming_word_line_and_phone(tmp_path):
    work = build_zh_system(tmp_path, LANG_ZH)
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
