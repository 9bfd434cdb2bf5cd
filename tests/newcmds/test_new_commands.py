"""New command words without retraining: the commands recipe's stage 3 on a trained system.

The promise (issue #9): edit lang/en (commands.txt, fillers.txt, lexicon.txt), re-run
`run.sh --stage 3`, and the new command works; the acoustic model is not retrained. The
independent answers: the recordings' own words (Speech Commands `happy`, FSDD `7`), the dev
accuracy of the old commands before the edit, and the stamps and mtimes of features and models
(which must not change).
"""

import re

import pywrapfst as fst

from newcmds_helpers import (command_accuracy, copy_system, decode_data_dir, edited_lang, make_data_dir,
                             output_language, run_recipe)

OLD_COMMANDS = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
TRAINING_OUTPUTS = ("data/train_aug/feats.scp", "data/dev/feats.scp", "data/lang/phones.txt", "exp/mono/final.mdl",
                    "exp/mono/.stamp", "exp/make_mfcc/train_aug/.stamp_mfcc")


def mtimes(work, paths):
    return {p: (work / p).stat().st_mtime_ns for p in paths}


def stamps(work):
    return {str(p.relative_to(work)): p.read_text() for p in work.rglob(".stamp*")}


def test_a_rerun_with_nothing_changed_runs_nothing(commands_system, speech_commands_dir, tmp_path):
    work = copy_system(commands_system, tmp_path / "work")
    before, files = stamps(work), mtimes(work, TRAINING_OUTPUTS + ("exp/mono/graph_commands/HCLG.fst", "RESULTS"))
    out = run_recipe(work, corpus=speech_commands_dir)
    ran = [line for line in out.stdout.splitlines() if re.match(r"(make-mfcc|mkgraph|decode-commands|calibrate)", line)]
    assert ran == []
    assert stamps(work) == before
    assert mtimes(work, files) == files
    assert out.stdout.count("up to date") >= 15


def test_happy_moved_from_fillers_to_commands_is_recognized_after_stage_3(commands_system, speech_commands_dir,
                                                                          tmp_path):
    work = copy_system(commands_system, tmp_path / "work")
    lang = edited_lang(tmp_path / "en", commands_add=["happy"], fillers_remove=["happy"])
    happy = make_data_dir(tmp_path / "happy", [(p.stem.split("_")[0], f"happy-{p.stem.split('_')[-1]}", "happy", p)
                                               for p in sorted((speech_commands_dir / "happy").glob("*.wav"))])
    before_happy = decode_data_dir(work, happy)  # the old graph: happy is a filler, so never a command
    acc_before = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    trained = mtimes(work, TRAINING_OUTPUTS)
    decoded = mtimes(work, ["exp/mono/decode_dev/measures.jsonl"])

    # --stop-stage 3: lang, grammars and graphs only
    run_recipe(work, "--stage", "3", "--stop-stage", "3", "--dict-dir", str(lang))
    assert "happy" in (work / "data/lang_commands/words.txt").read_text()
    assert "happy" not in (work / "data/lang_commands/words/fillers.txt").read_text().split()
    assert mtimes(work, TRAINING_OUTPUTS) == trained
    assert mtimes(work, ["exp/mono/decode_dev/measures.jsonl"]) == decoded

    # --stage 3: ... then decode, calibrate, score; still no training
    out = run_recipe(work, "--stage", "3", "--dict-dir", str(lang))
    assert "train-mono" not in out.stdout and "Stage 4" in out.stdout
    assert mtimes(work, TRAINING_OUTPUTS) == trained
    assert mtimes(work, ["exp/mono/decode_dev/measures.jsonl"]) != decoded
    assert (work / "exp/mono/graph_commands/rejection.json").stat().st_mtime_ns > decoded[
        "exp/mono/decode_dev/measures.jsonl"]  # recalibrated with happy as a command

    after_happy = decode_data_dir(work, happy)
    n = len(after_happy)
    assert n == 15
    assert sum(grammar == "happy" for grammar, _ in before_happy.values()) == 0
    recognized = sum(grammar == "happy" for grammar, _ in after_happy.values())
    with_threshold = sum(decided == "happy" for _, decided in after_happy.values())
    assert recognized >= BOUNDS["happy"], (recognized, n)
    acc_after = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    assert acc_after[1] == acc_before[1]
    assert acc_after[0] >= acc_before[0] - BOUNDS["old_commands_drop"], (acc_before, acc_after)
    print(f"happy: {recognized}/{n} (with threshold {with_threshold}); old commands {acc_before} -> {acc_after}")


def fsdd_sevens_at_16k(fsdd_dir, out_dir, takes=10):
    """FSDD's `7` recordings (8 kHz), takes 0..takes-1 of every speaker, resampled to 16 kHz wavs."""
    import soundfile

    from kaldilite.io.audio import read_audio, resample

    out_dir.mkdir(parents=True)
    recordings = []
    for path in sorted(fsdd_dir.glob("7_*.wav")):
        _, speaker, take = path.stem.split("_")
        if int(take) >= takes:
            continue
        wave = resample(read_audio(str(path)), 8000, 16000)
        wav = out_dir / f"{speaker}_{int(take):02d}.wav"
        soundfile.write(str(wav), wave.clip(-32768, 32767).round().astype("int16"), 16000, subtype="PCM_16")
        recordings.append((speaker, f"seven-{int(take):02d}", "seven", wav))
    return recordings


def test_seven_a_word_in_neither_list_needs_its_pronunciation_then_only_stage_3(commands_system, fsdd_dir, tmp_path):
    work = copy_system(commands_system, tmp_path / "work")
    lang = edited_lang(tmp_path / "en", commands_add=["seven"], lexicon_remove=["seven"])
    acc_before = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    trained = mtimes(work, TRAINING_OUTPUTS)

    # reported before anything runs: file:line, the word, the line g2p proposes, the way out
    out = run_recipe(work, "--stage", "3", "--dict-dir", str(lang), check=False)
    assert out.returncode != 0
    assert "commands.txt:11" in out.stderr and "seven S EH V AH N" in out.stderr and "--auto-g2p" in out.stderr
    assert "Stage 3" not in out.stdout

    out = run_recipe(work, "--stage", "3", "--dict-dir", str(lang), "--auto-g2p", "true")
    assert "seven S EH V AH N" in (lang / "lexicon.txt").read_text().splitlines()
    assert "auto-g2p" in out.stderr
    assert mtimes(work, TRAINING_OUTPUTS) == trained

    graph = work / "exp/mono/graph_commands_norej"
    assert ("seven",) in output_language(fst.Fst.read(str(graph / "HCLG.fst")), graph / "words.txt")
    sevens = make_data_dir(tmp_path / "sevens", fsdd_sevens_at_16k(fsdd_dir, tmp_path / "wav"))
    decisions = decode_data_dir(work, sevens)
    n = len(decisions)
    recognized = sum(grammar == "seven" for grammar, _ in decisions.values())
    with_threshold = sum(decided == "seven" for _, decided in decisions.values())
    assert n == 60
    assert recognized >= BOUNDS["seven"], (recognized, n)
    acc_after = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    assert acc_after[0] >= acc_before[0] - BOUNDS["old_commands_drop"], (acc_before, acc_after)
    print(f"seven: {recognized}/{n} (with threshold {with_threshold}); old commands {acc_before} -> {acc_after}")


# Measured on the session system (mono, 20 speakers, no augmentation; deterministic): happy 7/15 by
# the grammar decision (before the edit 0: it was a filler), old commands 168/247 before and after;
# seven 1/60 (the FSDD sevens mostly come out as `down`, silence or fillers: 8 kHz audio has none of
# the /s/ energy above 4 kHz that the 16 kHz models learned), old commands 168 -> 167/247. The
# bounds leave a margin of two recordings; BENCHMARKS.md (bench/stage3.py) has the full models.
BOUNDS = {"happy": 5, "old_commands_drop": 3, "seven": 1}
