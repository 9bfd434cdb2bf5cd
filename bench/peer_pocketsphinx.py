"""Peer baseline for the commands recipe: the same dev audio through pocketsphinx, in one run.

pocketsphinx (PyPI `pocketsphinx` 5.x, its bundled US-English continuous model and CMU
dictionary) decodes every dev utterance of the commands recipe twice:

- `jsgf`: a JSGF grammar of exactly the ten commands (what a pocketsphinx user writes first);
  an empty hypothesis counts as a rejection;
- `kws`: keyword-spotting mode with the ten commands as keyphrases at one threshold
  (`--kws-threshold`, pocketsphinx's own rejection mechanism); the utterance is accepted when
  the spotted keyphrases are one command (repeats allowed), rejected when none or several.

Both are scored by `kaldilite.score.commands` exactly as the recipe scores kaldilite, and the
table goes into BENCHMARKS.md (section `commands`) under kaldilite's RESULTS table of the
same dev set (`recipes/commands/RESULTS`, written by run.sh stage 10). The recipe's OOV eval
set (`data/oov_fsdd`: FSDD digits, none a command, resampled from 8 kHz) is decoded too when it
sits beside the dev dir (or `--oov DIR`), for its false-accept column.

    .venv/bin/python bench/peer_pocketsphinx.py [--data recipes/commands/work/data/dev] [--oov DIR]
"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _report import machine_line, update_section  # noqa: E402

from kaldilite.decode.rejection import REJECTED, Decision  # noqa: E402
from kaldilite.io.audio import read_audio  # noqa: E402
from kaldilite.io.datadir import DataDir  # noqa: E402
from kaldilite.score.commands import score_decisions  # noqa: E402


def read_commands(path):
    return [line.split("\t")[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def make_decoders(commands, kws_threshold, workdir):
    from pocketsphinx import Decoder

    gram = Path(workdir) / "commands.gram"
    gram.write_text("#JSGF V1.0;\ngrammar commands;\npublic <command> = " + " | ".join(commands) + ";\n")
    kws = Path(workdir) / "commands.kws"
    kws.write_text("".join(f"{c} /{kws_threshold}/\n" for c in commands))
    return {
        "jsgf": Decoder(jsgf=str(gram), lm=None, loglevel="FATAL", samprate=16000),
        "kws": Decoder(kws=str(kws), lm=None, loglevel="FATAL", samprate=16000),
    }


def decide(mode, hypothesis, commands):
    words = hypothesis.split() if hypothesis else []
    if mode == "jsgf":
        label = " ".join(words)
        if label in commands:
            return Decision(label, True, 1.0, math.inf, "accepted", tuple(words))
        return Decision(REJECTED, False, 0.0, -math.inf, "no-word", tuple(words))
    spotted = set(words)
    if len(spotted) == 1 and next(iter(spotted)) in commands:
        return Decision(next(iter(spotted)), True, 1.0, math.inf, "accepted", tuple(words))
    return Decision(REJECTED, False, 0.0, -math.inf, "filler" if words else "no-word", tuple(words))


def run(data_dir, commands, kws_threshold):
    """({mode: CommandScores}, {mode: CPU-time RTF}, number of utterances) of one data dir."""
    data = DataDir.load(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        decoders = make_decoders(commands, kws_threshold, tmp)
        decisions = {mode: {} for mode in decoders}
        seconds = {mode: 0.0 for mode in decoders}
        audio_seconds = 0.0
        for utt in data.utterances:
            wave = read_audio(data.wav_scp[utt], 16000)
            pcm = np.clip(np.round(wave), -32768, 32767).astype(np.int16).tobytes()
            audio_seconds += len(wave) / 16000.0
            for mode, decoder in decoders.items():
                start = time.process_time()  # CPU time, as decode-commands reports its RTF
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                hyp = decoder.hyp()
                seconds[mode] += time.process_time() - start
                decisions[mode][utt] = decide(mode, hyp.hypstr if hyp is not None else "", commands)
    scores = {mode: score_decisions(dict(data.text), d, set(commands)) for mode, d in decisions.items()}
    return scores, {mode: s / audio_seconds for mode, s in seconds.items()}, len(data)


def pct(x):
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO / "recipes/commands/work/data/dev"),
                        help="Dev data dir of the commands recipe (run.sh stage 0 writes it).")
    parser.add_argument("--commands", default=str(REPO / "lang/en/commands.txt"))
    parser.add_argument("--results", default=str(REPO / "recipes/commands/RESULTS"),
                        help="kaldilite's RESULTS on the same dev set, shown above pocketsphinx's rows.")
    parser.add_argument("--oov", default=None, help="OOV eval data dir (default: oov_fsdd beside --data, if any).")
    parser.add_argument("--kws-threshold", default="1e-5", help="pocketsphinx keyphrase threshold.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave BENCHMARKS.md alone.")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "wav.scp").is_file():
        sys.exit(f"{args.data}: no data dir; run recipes/commands/run.sh --stop-stage 0 first (or pass --data)")
    commands = read_commands(args.commands)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scores, rtf, n = run(args.data, commands, args.kws_threshold)
    oov_dir = Path(args.oov) if args.oov else Path(args.data).parent / "oov_fsdd"
    oov_scores = run(oov_dir, commands, args.kws_threshold)[0] if (oov_dir / "wav.scp").is_file() else None
    lines = ["| system | command acc % | FA unknown words % | " + ("FA oov_fsdd % | " if oov_scores else "") +
             "FR % | 12-class acc % | FA silence % | RTF |",
             "|---|---|---|---|---|---|---|" + ("---|" if oov_scores else "")]
    names = {"jsgf": "pocketsphinx 5, en-us model, JSGF grammar of the 10 commands",
             "kws": f"pocketsphinx 5, en-us model, keyword spotting (threshold {args.kws_threshold})"}
    for mode, s in scores.items():
        lines.append(f"| {names[mode]} | {pct(s.accuracy)} ({s.correct}/{s.num_commands}) | "
                     f"{pct(s.false_accept_rate)} ({s.unknown_accepted}/{s.num_unknown}) | " +
                     (f"{pct(oov_scores[mode].false_accept_rate)} ({oov_scores[mode].unknown_accepted}/"
                      f"{oov_scores[mode].num_unknown}) | " if oov_scores else "") + f"{pct(s.false_reject_rate)} | "
                     f"{pct(s.twelve_class_accuracy)} | {pct(s.silence_false_accept_rate)} "
                     f"({s.silence_accepted}/{s.num_silence}) | {rtf[mode]:.4f} |")
    peer = "\n".join(lines)
    print(peer)
    ours = Path(args.results).read_text(encoding="utf-8") if Path(args.results).is_file() else "(run recipes/commands/run.sh for kaldilite's rows)\n"
    markdown = (f"## Command words with OOV rejection (recipes/commands)\n\n{machine_line()}; dev set `{args.data}` "
                f"({n} utterances, speakers unseen in training)" +
                (f"; OOV eval set `{oov_dir}`" if oov_scores else "") + ".\n\nkaldilite (recipes/commands/RESULTS):\n\n"
                f"{ours.rstrip()}\n\nPeer, same audio, same scoring (bench/peer_pocketsphinx.py):\n\n{peer}\n")
    if not args.no_write:
        update_section("commands", markdown)


if __name__ == "__main__":
    main()
