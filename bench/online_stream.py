"""Long live streams: is each command decided in the stream as it is when its clip is decoded alone?

Each speaker of a commands recipe's dev set (at least --min-words non-noise clips) says up to
--words of its clips (commands and fillers, in a seeded random order) into one stream, with
--gap seconds (uniform) of Speech Commands background noise before each clip and 1 s after the
last: a user talking to a device for a minute. The stream goes through one `OnlineRecognizer`
(the bundle's conf/online.conf: endpointing, CMVN carried through the stream) in 10 ms chunks;
each result belongs to the clip its start-end overlaps most. Each clip is also decoded alone by a
fresh recognizer (the global CMVN prior only). Reported: how many words are decided the same in
the stream as alone (the command, or rejected), and how many are right in each, per position in
the stream. `--quiet` takes only the quiet background clips (peak < 1000, room tone), else all
(some are machines and music at speech level). `--set OPTION=VALUE` overrides conf/online.conf,
e.g. `--set cmvn-silence-weight=1 --set endpoint.rule1.min-trailing-silence=5` (the settings
before the long-stream fix).

Each pause (and the last 1 s) is one noise clip drawn at random (seeded, as the order and the lengths),
raw, not scaled. The clips are 1 s (the shared subset's; the recipe cuts the full dataset's long
recordings into 1 s clips), so a longer pause loops its clip, each repeat joined with a 50 ms equal-power
cross-fade (`online.pause_noise`): a plain loop steps where the clip's end meets its start, a click the
endpointer could hear as an event. Reading on in the clip's long source recording instead would read
its neighbours, which are training clips (stage 0 gives dev every 5th clip). A recording starts where its
pause stops, as it is (its own room noise, no fade).

The pauses' noise is by default the noise clips of WORK no model trained on (`default_noise_dirs`): the
recipe's stage 0 splits the corpus's _background_noise_ clips into data/noise_train (every clip the
models trained on: the noise copy, the DNN's padded copy) and data/noise_dev (every 5th clip: dev's !SIL
utterances, never trained on, though the rejection threshold is calibrated on dev, these included); a work
dir made with --heldout-speakers (bench/make_slice.py) also has the held-out noise pseudo-speakers' clips,
moved out of noise_train, as !SIL utterances of data/heldout. `--data DIR` takes the clips of another
data dir than WORK/data/dev (e.g. the held-out-speaker slice, bench/make_slice.py's data/slice);
`--noise-dir DIR` (repeatable) takes the pauses' noise from the !SIL clips of those data dirs instead.
The report's header names the noise used. The clips must be at the bundle's sample rate and the data dir
must have a text file (the words are scored, the !SIL clips left out by it): otherwise the bench stops
at once, in one line naming the file and the fix.

Usage: .venv/bin/python bench/online_stream.py --work /tmp/lead/final [--quiet] [--set ...] [--no-report]
(WORK: a built recipes/commands work dir; its exp/nnet2_online bundle and data/dev)
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402
from online import command_set, pause_noise, unseen_noise  # noqa: E402
from online import stream as stream_chunks  # noqa: E402  (10 ms chunks, as bench/online.py feeds them)


def decode(recognizer, wave, rate):
    return stream_chunks(recognizer, wave, rate)[0]


def decision(results):
    accepted = [r.text for r in results if r.accepted]
    return "+".join(accepted) if accepted else "<rejected>"


def stream_clips(data, data_dir, rate, bundle_dir):
    """{speaker: [utt]}: the clips of data dir `data` (at `data_dir`) that are words (not !SIL), by speaker;
    refused in one line when the data dir has no text (the bench scores each word and leaves out the noise
    clips by it; unlabelled audio is what `kaldilite decode-online` decodes) or a clip is not at the
    bundle's rate `rate` (the recognizer would take its samples for `rate` Hz ones)."""
    from kaldilite.io.audio import audio_info

    if data.text is None:
        raise SystemExit(f"{Path(data_dir) / 'text'}: missing; the stream bench scores each clip against its words "
                         "and leaves out the !SIL clips by them: give --data a data dir with a text file "
                         "(`kaldilite decode-online` decodes unlabelled audio)")
    by_speaker = defaultdict(list)
    for utt in sorted(data.wav_scp):
        if utt not in data.text:
            raise SystemExit(f"{Path(data_dir) / 'text'}: no line for {utt} of wav.scp; add its words (or "
                             "`kaldilite fix-data-dir` to drop it)")
        if data.text[utt].strip() == "!SIL":
            continue
        clip_rate = audio_info(data.wav_scp[utt])[0]
        if clip_rate != rate:
            raise SystemExit(f"{data.wav_scp[utt]} ({utt} of {Path(data_dir) / 'wav.scp'}): {clip_rate} Hz, but the "
                             f"bundle {bundle_dir} decodes {rate} Hz audio; give --data a data dir at {rate} Hz "
                             f"(e.g. its wav.scp lines through `sox IN -r {rate} -t wav - |`)")
        by_speaker[data.utt2spk[utt]].append(utt)
    return by_speaker


def measure(work, bundle_name, words, min_words, gap, quiet, overrides, seed=0, data_dir=None, noise_dirs=()):
    from kaldilite.io.audio import read_audio
    from kaldilite.io.datadir import DataDir
    from kaldilite.online.bundle import ModelBundle
    from kaldilite.online.recognizer import OnlineRecognizer
    from kaldilite.train.gmm_steps import single_threaded_blas

    work = Path(work)
    bundle = ModelBundle.load(work / "exp" / bundle_name, overrides=overrides or None)
    rate = bundle.sample_rate
    data_dir = data_dir or work / "data/dev"
    data = DataDir.load(data_dir)
    by_speaker = stream_clips(data, data_dir, rate, work / "exp" / bundle_name)
    commands = command_set()
    rng = np.random.default_rng(seed)
    noises, noise_words = unseen_noise(work, rate, quiet, noise_dirs)
    rows, audio, cpu = [], 0.0, time.process_time()
    with single_threaded_blas():
        for speaker, utts in sorted(by_speaker.items()):
            if len(utts) < min_words:
                continue
            utts = [utts[i] for i in rng.permutation(len(utts))[:words]]
            parts, spans, pos = [], [], 0
            for utt in utts:
                pause = pause_noise(noises[int(rng.integers(len(noises)))], int(rng.uniform(*gap) * rate), rate)
                wave = read_audio(data.wav_scp[utt])
                parts += [pause.astype(np.float32), wave]
                spans.append((utt, (pos + len(pause)) / rate, (pos + len(pause) + len(wave)) / rate))
                pos += len(pause) + len(wave)
            parts.append(pause_noise(noises[int(rng.integers(len(noises)))], rate, rate).astype(np.float32))
            stream = np.concatenate(parts)
            audio += len(stream) / rate
            results = decode(OnlineRecognizer(bundle, source_name=speaker), stream, rate)
            owner = []
            for r in results:
                overlaps = [min(r.end, hi) - max(r.start, lo) for _, lo, hi in spans]
                owner.append(int(np.argmax(overlaps)) if max(overlaps) > 0 else -1)
            for k, (utt, _, _) in enumerate(spans):
                alone = decision(decode(OnlineRecognizer(bundle, source_name=utt), read_audio(data.wav_scp[utt]), rate))
                ref = " ".join(data.text[utt].split())
                rows.append({"utt": utt, "position": k, "ref": ref if ref in commands else "<rejected>", "alone": alone,
                             "stream": decision([r for r, o in zip(results, owner) if o == k])})
    return rows, time.process_time() - cpu, audio, noise_words


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a built recipes/commands work dir")
    parser.add_argument("--bundle", default="nnet2_online", help="bundle dir under WORK/exp")
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--min-words", type=int, default=6)
    parser.add_argument("--gap", type=float, nargs=2, default=(0.5, 1.5))
    parser.add_argument("--quiet", action="store_true", help="only quiet background clips (room tone)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE")
    parser.add_argument("--data", default=None, help="the clips' data dir (default: WORK/data/dev)")
    parser.add_argument("--noise-dir", action="append", default=[],
                        help="a data dir whose !SIL clips are the pauses' noise (repeatable; default: WORK's noise "
                             "clips no model trained on, data/noise_dev and data/heldout's)")
    parser.add_argument("--rows", default=None, help="also write each word's row (JSON lines) here, to pair two runs")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    rows, cpu, audio, noise_words = measure(args.work, args.bundle, args.words, args.min_words, tuple(args.gap),
                                            args.quiet, overrides, data_dir=args.data, noise_dirs=args.noise_dir)
    if args.rows:
        import json

        Path(args.rows).write_text("".join(json.dumps(r) + "\n" for r in rows))
    n = len(rows)
    same = sum(r["stream"] == r["alone"] for r in rows)
    right = {key: sum(r[key] == r["ref"] for r in rows) for key in ("stream", "alone")}
    by_position = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        counts = by_position[r["position"]]
        counts[0] += 1
        counts[1] += r["stream"] == r["ref"]
        counts[2] += r["alone"] == r["ref"]
    text = "\n".join([
        "## Long live streams: each command in the stream vs alone (`bench/online_stream.py`)",
        "",
        f"{Path(args.work) / 'exp' / args.bundle}, {args.data or 'dev'} speakers with >= {args.min_words} clips, up to "
        f"{args.words} clips each joined by {args.gap[0]:g}-{args.gap[1]:g} s of background noise: "
        f"{noise_words}; "
        f"overrides: {' '.join(args.set) or 'none'}. " + machine_line(),
        "",
        f"Decided as alone: {same}/{n} ({100 * same / n:.1f}%). Right in the stream {right['stream']}/{n} "
        f"({100 * right['stream'] / n:.1f}%), alone {right['alone']}/{n} ({100 * right['alone'] / n:.1f}%). "
        f"RTF {cpu / audio:.4f} (CPU, stream and alone decodes over the stream's audio).",
        "",
        "| position | words | right in the stream | right alone |",
        "| --- | --- | --- | --- |",
        *[f"| {k + 1} | {c[0]} | {c[1]} | {c[2]} |" for k, c in sorted(by_position.items())],
    ])
    print(text)
    if not args.no_report:
        update_section("online-stream" + ("-quiet" if args.quiet else ""), text)


if __name__ == "__main__":
    main()
