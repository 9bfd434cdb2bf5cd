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
    out = run_recipe(work, "--stage", "3", "--stop-stage", "3", "--dict-dir", str(lang))
    assert "happy" in (work / "data/lang_commands/words.txt").read_text()
    live = work / (work / "exp/online_bundle").read_text().strip()
    def live_fillers():
        return (live / "words" / "fillers.txt").read_text().split()

    assert "happy" in live_fillers()  # the live bundle is a copy: happy still means rejected there ...
    assert "keeps the grammar it was exported with" in out.stdout  # ... and the user is told so
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

    assert "happy" not in live_fillers()  # stage 11 re-exported it: happy is a command live too
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


def fsdd_words_at_16k(fsdd_dir, digit, word, out_dir, takes=10):
    """FSDD recordings of `digit` (8 kHz), takes 0..takes-1 of every speaker, as 16 kHz wavs.

    FSDD clips are cut tightly around the word (0.4-0.7 s); the Speech Commands clips the models
    were trained on are 1 s with room noise around the word, and per-speaker CMVN over speech-only
    frames would shift every mean. So each clip is centred in 1 s of low-level noise (the level of
    FSDD's own floor) before resampling: nine goes from 3/60 to 41/60 recognized with it.
    """
    import numpy as np
    import soundfile

    from kaldilite.io.audio import read_audio, resample

    rng = np.random.default_rng(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    recordings = []
    for path in sorted(fsdd_dir.glob(f"{digit}_*.wav")):
        _, speaker, take = path.stem.split("_")
        if int(take) >= takes:
            continue
        wave = read_audio(str(path))
        pad = max(0, 8000 - len(wave))
        wave = np.concatenate([rng.normal(0, 3.0, pad // 2), wave, rng.normal(0, 3.0, pad - pad // 2)])
        wave = resample(wave, 8000, 16000)
        wav = out_dir / f"{speaker}_{word}_{int(take):02d}.wav"
        soundfile.write(str(wav), wave.clip(-32768, 32767).round().astype("int16"), 16000, subtype="PCM_16")
        recordings.append((speaker, f"{word}-{int(take):02d}", word, wav))
    return recordings


def test_seven_and_nine_words_in_neither_list_need_their_pronunciations_then_only_stage_3(commands_system, fsdd_dir,
                                                                                          tmp_path):
    work = copy_system(commands_system, tmp_path / "work")
    lang = edited_lang(tmp_path / "en", commands_add=["seven", "nine"], lexicon_remove=["seven", "nine"])
    acc_before = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    trained = mtimes(work, TRAINING_OUTPUTS)

    # reported before anything runs: file:line, the word, the line g2p proposes, the way out
    out = run_recipe(work, "--stage", "3", "--dict-dir", str(lang), check=False)
    assert out.returncode != 0
    assert "commands.txt:11" in out.stderr and "seven S EH V AH N" in out.stderr and "--auto-g2p" in out.stderr
    assert "commands.txt:12" in out.stderr and "nine N AY N" in out.stderr
    assert "Stage 3" not in out.stdout

    out = run_recipe(work, "--stage", "3", "--dict-dir", str(lang), "--auto-g2p", "true")
    assert {"seven S EH V AH N", "nine N AY N"} <= set((lang / "lexicon.txt").read_text().splitlines())
    assert "auto-g2p" in out.stderr
    assert mtimes(work, TRAINING_OUTPUTS) == trained
    graph = work / "exp/mono/graph_commands_norej"
    assert {("seven",), ("nine",)} <= output_language(fst.Fst.read(str(graph / "HCLG.fst")), graph / "words.txt")

    results = {}
    for digit, word in ((7, "seven"), (9, "nine")):
        data = make_data_dir(tmp_path / f"fsdd_{word}", fsdd_words_at_16k(fsdd_dir, digit, word, tmp_path / "wav"))
        decisions = decode_data_dir(work, data)
        assert len(decisions) == 60
        results[word] = (sum(g == word for g, _ in decisions.values()), sum(d == word for _, d in decisions.values()))
    # seven is not bounded (see BOUNDS): the claims for it are the pronunciation and the graph above
    assert results["nine"][0] >= BOUNDS["nine"], results
    acc_after = command_accuracy(work, work / "exp/mono/decode_dev", OLD_COMMANDS)
    assert acc_after[0] >= acc_before[0] - BOUNDS["old_commands_drop"], (acc_before, acc_after)
    print(f"of 60 (grammar, threshold): {results}; old commands {acc_before} -> {acc_after}")


# Measured on the session system (mono, 20 speakers, no augmentation; deterministic) with the
# recipe's grammar (garbage phone bonus 2.0): happy 6/15 by the grammar decision (before the edit
# 0: it was a filler), old commands 142/247 before and after. FSDD at 16 kHz: nine (N AY N, phones
# of `no`, `right`, `on`) 34/60 (22/60 past the calibrated threshold; 41/60 with garbage bonus 0).
# seven 0/60: its V is trained only on the few `marvin` recordings of the subset and its /s/ lies
# mostly above the 4 kHz that 8 kHz audio keeps, so the sevens come out as `down` (the full tri2b
# system: also 0/60, BENCHMARKS.md): not bounded.
# The nine count depends on which of many equally good mono models training lands on (2026-11-26,
# the same data and edit): the 34 above came with the decoder's old min_active rule and --nj 2; the
# same model trained with --nj 1 (another summation order) gives 26, and with Gaussian-splitting seed
# (MonoOptions.seed) 1, 2, 3 (--nj 1) 20, 19, 22; with min_active as Kaldi's (other training
# alignments; dev commands 157/247 vs 156) 18, and with seeds 1, 2, 3 (--nj 1) 21, 20, 23.
# happy moves the same way (2026-11-26, u4, /tmp/u4/happy.py: the session system's mono, and mono
# retrained on its data/train_mono with MonoOptions(nj, seed), each decoding the 15 clips with the
# happy-edited grammar): 4/15 with today's recipe model (--nj 2, seed 0; the 6 above was the old
# min_active rule's model); --nj 1 seeds 0-5: 5, 6, 6, 6, 7, 6; --nj 2 seeds 1-3: 5, 6, 7. Median 6,
# minimum 4: the recipe's own model sat exactly on the old bound.
# Bounds: below every model measured by a margin of a few recordings (a platform's BLAS may move a
# borderline decision or two); nine was 0/60 and happy 0/15 before the edit (not commands then), so
# any count above 0 shows the edit reached the graph.
BOUNDS = {"happy": 2, "old_commands_drop": 4, "nine": 14}
