"""Re-running the commands recipe re-runs exactly the steps whose inputs or options changed.

The held-out commands decode (stage 9) was stamped as a shell-function call, so a changed
--lattice-beam (or beam, acwt, SAT options) left its stale measures in place. The independent
answer: the command line each step records, the outputs' mtimes, and the decode-commands lines
the recipe prints.
"""

import re

import pytest

from newcmds_helpers import copy_system, run_recipe

# stage 9 with the out-of-vocabulary sets (the held-out commands need oov_eval), kept small
STAGE_9 = ("--stage", "9", "--stop-stage", "9", "--oov-eval", "true", "--oov-takes", "1", "--oov-synth-voices", "0")
HELDOUT = "exp/mono/decode_heldout_commands"


def decoded_dirs(out):
    return re.findall(r"^decode-commands: .* -> (\S+)/measures\.jsonl$", out.stdout, flags=re.M)


@pytest.mark.slow
def test_a_changed_lattice_beam_re_runs_the_held_out_decode_and_nothing_else(commands_system, speech_commands_dir,
                                                                              fsdd_dir, tmp_path):
    work = copy_system(commands_system, tmp_path / "work")
    run_recipe(work, *STAGE_9, corpus=speech_commands_dir)
    num_commands = len([c for c in (work / "data/local/heldout").glob("commands_minus_*.txt")])
    assert num_commands == 10
    assert f"({num_commands} held-out grammars)" in (work / HELDOUT / "rtf").read_text()
    grammar_stamps = {p: p.read_text() for p in work.glob("data/lang_commands_minus_*/.stamp")}
    graph_stamps = {p: p.read_text() for p in work.glob("exp/mono/graph_commands_minus_*/.stamp")}
    assert len(grammar_stamps) == len(graph_stamps) == num_commands
    before = (work / HELDOUT / "measures.jsonl").stat().st_mtime_ns

    out = run_recipe(work, *STAGE_9, "--lattice-beam", "8.0", corpus=speech_commands_dir)
    redone = decoded_dirs(out)
    parts = sorted(d for d in redone if d.startswith(f"{HELDOUT}/parts/"))
    assert len(parts) == num_commands, out.stdout[-3000:]
    assert "--lattice-beam 8.0" in (work / HELDOUT / ".stamp").read_text()
    assert (work / HELDOUT / "measures.jsonl").stat().st_mtime_ns > before
    # the dev decodes use the lattice beam too; the grammars and graphs do not
    assert "exp/mono/decode_dev" in redone
    assert {p: p.read_text() for p in grammar_stamps} == grammar_stamps
    assert {p: p.read_text() for p in graph_stamps} == graph_stamps

    again = run_recipe(work, *STAGE_9, "--lattice-beam", "8.0", corpus=speech_commands_dir)
    assert decoded_dirs(again) == []
