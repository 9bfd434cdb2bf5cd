"""Helpers for the new-commands tests: running the commands recipe, editing lang/en copies,
decoding word recordings with a system's graphs.

"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pywrapfst as fst

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "recipes" / "commands" / "run.sh"
LANG_EN = REPO / "lang" / "en"
MFCC_CONF = REPO / "recipes" / "commands" / "conf" / "mfcc.conf"


def recipe_options():
    """The options the session system was built with; a re-run must repeat them (they are part of
    the steps' command lines, hence of their stamps)."""
    # the FSDD out-of-vocabulary eval set is not needed here
    return ["--num-speakers", "20", "--augment", "false", "--train-models", "mono", "--nj", "2", "--oov-eval", "false"]


def recipe_command(*args):
    """argv running run.sh with `args`. Through `source`, which reads the whole script before running
    it: bash reads a script file as it goes, so an edit of run.sh during a long run (several
    engineers share the checkout) would otherwise change the run half-way."""
    return ["bash", "-c", 'source "$0" "$@"', str(RUN), *args]


def run_recipe(work, *args, corpus=None, check=True):
    """Run the commands recipe into `work`; returns the CompletedProcess (stdout + stderr)."""
    cmd = recipe_command(*recipe_options(), "--dir", str(work), *args)
    if corpus is not None:
        cmd += ["--corpus", str(corpus)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if check and out.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def copy_system(system, dest):
    shutil.copytree(system, dest, symlinks=True, copy_function=shutil.copy2)  # copy2 keeps mtimes
    return dest


def edited_lang(dest, commands_add=(), fillers_remove=(), lexicon_remove=(), source=LANG_EN):
    """A copy of a dict dir (lang/en) with commands added, fillers removed and lexicon words removed."""
    shutil.copytree(source, dest)

    def edit(name, keep, add=()):
        lines = [ln for ln in (dest / name).read_text(encoding="utf-8").splitlines() if ln.strip() and keep(ln)]
        (dest / name).write_text("\n".join(lines + list(add)) + "\n", encoding="utf-8")

    edit("commands.txt", lambda ln: True, commands_add)
    edit("fillers.txt", lambda ln: ln.strip() not in fillers_remove)
    edit("lexicon.txt", lambda ln: ln.split()[0] not in lexicon_remove)
    return dest


def make_data_dir(out, recordings):
    """A Kaldi data dir for [(speaker, utt_suffix, word, wav_path)] (utt id = speaker-suffix)."""
    from kaldilite.io.datadir import DataDir

    utts = {f"{spk}-{suffix}": (spk, word, str(path)) for spk, suffix, word, path in recordings}
    DataDir(wav_scp={u: v[2] for u, v in utts.items()}, text={u: v[1] for u, v in utts.items()},
            utt2spk={u: v[0] for u, v in utts.items()}).save(out)
    return out


def decode_data_dir(work, data_dir, graph="graph_commands", model="mono"):
    """MFCC + CMVN as the recipe makes them, then decode-commands with one of the system's graphs;
    returns {utt: (grammar decision words, decision with the graph's calibrated rule)}."""
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import read_measures

    name = Path(data_dir).name
    for cmd in (["make-mfcc", "--config", str(MFCC_CONF), "--nj", "1", str(data_dir),
                 str(work / f"exp/make_mfcc/{name}"), str(work / "mfcc")],
                ["compute-cmvn-stats", str(data_dir), str(work / f"exp/make_mfcc/{name}"), str(work / "mfcc")],
                ["decode-commands", "--nj", "1", "--beam", "13.0", "--lattice-beam", "10.0", "--acwt", "0.1",
                 str(work / f"exp/{model}/{graph}"), str(data_dir), str(work / f"exp/{model}/decode_{name}_{graph}")]):
        out = subprocess.run([str(REPO / ".venv/bin/kaldilite"), *cmd], capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        assert out.returncode == 0, out.stderr[-2000:]
    rule = RejectionRule.for_graph(work / f"exp/{model}/{graph}")
    measures = read_measures(work / f"exp/{model}/decode_{name}_{graph}/measures.jsonl")
    return {utt: (" ".join(m.label), rule.decide_measures(m, n).label) for utt, (m, n) in measures.items()}


def command_accuracy(work, decode_dir, commands):
    """Dev command utterances (reference in `commands`) whose grammar decision is that command:
    (correct, total), the "fillers + garbage in the grammar, no threshold" row of RESULTS."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import read_measures

    text = DataDir.load(work / "data/dev").text
    measures = read_measures(Path(decode_dir) / "measures.jsonl")
    refs = {u: t for u, t in text.items() if t in commands}
    return sum(" ".join(measures[u][0].label) == t for u, t in refs.items()), len(refs)


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
    f = fst.convert(f, "vector").project("output").rmepsilon()  # a mutable copy (HCLG.fst is a ConstFst)
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
    lines = path.read_text(encoding="utf-8").splitlines()
    return {tuple(line.split("\t")[0].split()) for line in lines if line.strip()}


def build_flat_start_system(tmp_path, lang):
    """A work dir with the training lang of dict dir `lang` and a flat-start mono model on it."""
    work = tmp_path / "work"
    subprocess.run([str(REPO / ".venv/bin/kaldilite"), "prepare-lang", str(lang), "<UNK>",
                    str(work / "data/local/lang_tmp"), str(work / "data/lang")], check=True, capture_output=True)
    flat_start_mono(work / "data/lang", work / "exp/mono")
    return work


def run_stage_3(work, lang, *args):
    """`run.sh --stage 3 --stop-stage 3` with dict dir `lang`; the CompletedProcess."""
    return subprocess.run(recipe_command(*recipe_options(), "--stage", "3", "--stop-stage", "3", "--dict-dir",
                                         str(lang), "--dir", str(work), *args), capture_output=True, text=True,
                          timeout=600)
