"""Helpers for the new-commands tests: running the commands recipe, editing lang/en copies,
decoding word recordings with a system's graphs.

"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "recipes" / "commands" / "run.sh"
LANG_EN = REPO / "lang" / "en"
MFCC_CONF = REPO / "recipes" / "commands" / "conf" / "mfcc.conf"


def recipe_options():
    """The options the session system was built with; a re-run must repeat them (they are part of
    the steps' command lines, hence of their stamps)."""
    options = ["--num-speakers", "20", "--augment", "false", "--train-models", "mono", "--nj", "2"]
    if "\noov_eval=" in RUN.read_text():  # the FSDD out-of-vocabulary eval set is not needed here
        options += ["--oov-eval", "false"]
    return options


def run_recipe(work, *args, corpus=None, check=True):
    """Run the commands recipe into `work`; returns the CompletedProcess (stdout + stderr)."""
    cmd = ["bash", str(RUN), *recipe_options(), "--dir", str(work), *args]
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
    for cmd in (["make-mfcc", "--config", str(MFCC_CONF), "--nj", "1", str(data_dir), str(work / f"exp/make_mfcc/{name}"),
                 str(work / "mfcc")],
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
