"""The commands recipe end to end on real speech (Speech Commands subset), reduced for CI.

40 training speakers (those with filler recordings first), no augmentation, mono only, all 25
held-out dev speakers: corpus -> MFCC + CMVN -> lang -> grammars -> mono -> graphs -> decode
with lattices -> calibration -> RESULTS. Bounds: a working monophone system gets most commands
right (chance is 10%); the grammar's fillers, garbage loop and silence word must reject noise
clips that the commands-only grammar forces onto commands, and must not output more commands
for the unknown words than the commands-only grammar (which outputs one for every one of them).
"""

import json
from pathlib import Path

import pytest

from recipe_process import run_script

RUN = Path(__file__).resolve().parents[2] / "recipes" / "commands" / "run.sh"
COMMANDS_TXT = Path(__file__).resolve().parents[2] / "lang" / "en" / "commands.txt"


@pytest.mark.slow
def test_reduced_commands_recipe_rejects_what_the_plain_grammar_forces_onto_commands(speech_commands_dir, tmp_path):
    work = tmp_path / "work"
    code, log = run_script(
        ["bash", str(RUN), "--corpus", str(speech_commands_dir), "--num-speakers", "40", "--augment", "false",
         "--train-models", "mono", "--nj", "2", "--dir", str(work)], tmp_path / "run.log",
        # a guard against a hang, not a speed bound: ~2 min of CPU, 9.8 min of wall at load 8-13 (session 14);
        # on it the recipe's whole process group is killed, not only its bash
        timeout=1800,
    )
    assert code == 0, log[-6000:]

    from kaldilite.cli.commands import commands_results_rows

    rows = commands_results_rows(work / "data/dev", [work / "exp/mono"], COMMANDS_TXT)
    calibrated, no_threshold, off = (r["scores"] for r in rows)
    # all 25 dev speakers (360 commands, 9 unknown words); the quick run keeps 18 of the dev noise clips
    assert (off.num_commands, off.num_unknown, off.num_silence) == (360, 9, 18)
    assert off.accuracy > 0.6, off
    assert off.unknown_accepted == off.num_unknown  # a commands-only grammar has nothing else to say
    assert no_threshold.silence_false_accept_rate < 0.2 < off.silence_false_accept_rate
    assert no_threshold.unknown_accepted < off.unknown_accepted
    assert no_threshold.accuracy > 0.6
    # the calibrated rule is stored next to the graph with its dev figures
    rule = json.loads((work / "exp/mono/graph_commands/rejection.json").read_text())
    assert rule["calibration"]["target_false_accept_rate"] == 0.05
    assert rule["calibration"]["false_accept_rate"] <= 0.05
    results = (work / "RESULTS").read_text()
    assert "rejection off" in results and "| mono |" in results
    for path in ("data/lang_commands/G.fst", "exp/mono/graph_commands/HCLG.fst", "exp/mono/decode_dev/measures.jsonl",
                 "exp/mono/decode_dev/scoring_commands/det.png", "exp/mono/decode_dev/scoring_commands/det.txt"):
        assert (work / path).exists(), path
