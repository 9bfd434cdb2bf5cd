"""The commands recipe's per-model garbage phone bonus (run.sh tri3b_garbage_phone_bonus), through stage 3.

On lang/en's phone set with flat-start models (stage 3 needs only a transition model and a tree),
copied as exp/tri3b and exp/nnet2 beside exp/mono. The independent answers: make-grammar run by hand
with each bonus (the recipe's grammars must be exactly those), and mkgraph's provenance record
(which lang dir and which model each graph was built from).
"""

import filecmp
import shutil
import subprocess

from newcmds_helpers import LANG_EN, REPO, build_flat_start_system, run_stage_3

MODELS = ["--train-models", "mono tri3b nnet2"]


def graph_record(graph_dir):
    from kaldilite.graph.provenance import read_graph_record

    return read_graph_record(graph_dir)


def test_tri3b_gets_its_own_grammar_and_the_dnn_keeps_the_recipes(tmp_path):
    work = build_flat_start_system(tmp_path, LANG_EN)
    for m in ("tri3b", "nnet2"):  # the DNN decodes tri3b's tree: its graphs come from exp/tri3b's model
        shutil.copytree(work / "exp/mono", work / f"exp/{m}")
    out = run_stage_3(work, LANG_EN, *MODELS, "--garbage-phone-bonus", "2.0", "--tri3b-garbage-phone-bonus", "1.0")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]

    for bonus, lang in (("2.0", "lang_commands"), ("1.0", "lang_commands_gb1.0")):
        by_hand = tmp_path / f"by_hand_{bonus}"
        subprocess.run([str(REPO / ".venv/bin/kaldilite"), "make-grammar", "--fillers",
                        str(work / "data/local/fillers_and_silence.txt"), "--garbage", "true", "--garbage-cost", "0.0",
                        "--garbage-phone-bonus", bonus, "--edge-noise-prob", "0.1", str(LANG_EN / "commands.txt"),
                        str(work / "data/lang_test"), str(by_hand)], check=True, capture_output=True)
        assert filecmp.cmp(by_hand / "G.fst", work / "data" / lang / "G.fst", shallow=False), lang
    assert not filecmp.cmp(work / "data/lang_commands/G.fst", work / "data/lang_commands_gb1.0/G.fst", shallow=False)

    expected = {"mono": ("lang_commands", "mono"), "tri3b": ("lang_commands_gb1.0", "tri3b"),
                "nnet2": ("lang_commands", "tri3b")}
    for m, (lang, model) in expected.items():
        record = graph_record(work / f"exp/{m}/graph_commands")
        assert record["lang"].endswith(f"data/{lang}") and record["model"].endswith(f"exp/{model}/final.mdl"), (m, record)
        norej = graph_record(work / f"exp/{m}/graph_commands_norej")
        assert norej["lang"].endswith("data/lang_commands_norej"), (m, norej)  # no garbage there: one grammar

    # one bonus for all: one grammar, and the DNN's graphs are tri3b's again (copied)
    out = run_stage_3(work, LANG_EN, *MODELS, "--garbage-phone-bonus", "2.0", "--tri3b-garbage-phone-bonus", "2.0")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert graph_record(work / "exp/tri3b/graph_commands")["lang"].endswith("data/lang_commands")
    assert filecmp.cmp(work / "exp/tri3b/graph_commands/HCLG.fst", work / "exp/nnet2/graph_commands/HCLG.fst",
                       shallow=False)
