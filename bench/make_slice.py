"""Build the held-out-speaker slice the commands recipe is tuned on (issue 7): the recipe's models
trained without some training speakers, and those speakers' clips, ready for the slice benches.

Decisions about the DNN and the decoding knobs are never tuned on dev (the reported speakers): they
are tuned on a slice of TRAINING speakers that no model saw. The slice is every --every-th (7th)
training speaker as stage 0 prepares them (data/train/spk2utt), the recorded speakers in sorted id
order and then the noise pseudo-speakers noiseNN (they count as speakers, so the slice has noise
clips as dev has): on the shared
Speech Commands subset 17 speakers + 3 noise pseudo-speakers of 140, 372 utterances (341 commands,
9 fillers, 22 noise clips). Steps, each re-runnable (run.sh's steps are change-driven, so a second
run does only what changed, e.g. after a recipe edit):

 1. the training speakers: `prepare-speech-commands` of the corpus into SLICE_DIR/data/local/all
    (stage 0's preparation), every --every-th into SLICE_DIR/data/local/slice_speakers.txt;
 2. recipes/commands/run.sh --dir SLICE_DIR --heldout-speakers that file --stage 0 --stop-stage 8
    (plus any unrecognized options of this script, e.g. --nnet-reverb false): stage 0 writes the slice
    to data/heldout instead of data/train, so augmentation (and the noise copies' backgrounds), the GMM
    chain, tri3b's alignments and the DNN pair are the recipe's own, trained without it;
 3. the slice's features, with the recipe's confs: data/slice (conf/mfcc.conf, the GMMs') and
    data/hires_slice (conf/mfcc_hires.conf, the DNN's), each with per-speaker CMVN stats;
 4. data/hires_train_aug_rev, a link to the data dir the DNN trained on: the DATA argument of stage 8's
    train-nnet2 call, as exp/nnet2/log/train.log's first line gives it (train_aug_rvb_hires, or
    train_aug_hires without the reverberated copy: run.sh's nnet_reverb; both exist after a build with it);
 5. the leak check (`check_held_out`): no utterance of any training data dir (data/train*, data/noise_train,
    exp/tri3b_ali's alignments) is a slice clip or a copy of one (through utt2uniq and the copy prefixes),
    comes from a slice speaker, or plays a slice clip's audio (wav.scp, the noise copies' utt2noise); the
    script stops with the leaks listed otherwise.

The layout is the one bench/rejection_slice.py and bench/learning_curve_nnet2.py read: data/slice,
data/hires_slice, data/lang, data/lang_test, data/hires_train_aug_rev, exp/tri3b, exp/tri3b_ali,
exp/nnet2 (the shipped DNN pair: conf/nnet2.conf, seeds 0 and 1 averaged) and the rest of run.sh's
work dir (exp/mono .. exp/tri2b, data/dev: dev is decoded by nothing here).

  OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/make_slice.py --slice-dir /tmp/v1/slc
  .venv/bin/python bench/rejection_slice.py --slice-dir /tmp/v1/slc --gmm tri3b --dnn nnet2 \\
      --bonuses 2 --acwts 0.1 --out /tmp/v1/rs --no-report

Cost (2026-11-26, 47e5d91, from scratch): 31 min CPU, 46 min wall on the 2-core machine shared with other jobs
(load 5-9; the DNN pair 16 min of it); the rest seconds. bench/rejection_slice.py at one bonus then: 3.5 min.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_if_changed  # noqa: E402
from learning_curve_nnet2 import source_speaker  # noqa: E402
from rejection_slice import KALDILITE, REPO, commands  # noqa: E402

from kaldilite.corpora.speech_commands import is_noise_speaker  # noqa: E402
from kaldilite.io.datadir import read_key_values  # noqa: E402
from kaldilite.utils import data_root  # noqa: E402

RUN_SH = REPO / "recipes/commands/run.sh"
CONF = REPO / "recipes/commands/conf"


def kaldilite(*args, cwd):
    subprocess.run([KALDILITE, *map(str, args)], check=True, cwd=cwd)


def read_table(path):
    """{key: rest of the line} of a Kaldi table file (read_key_values: a duplicate key is a file:line error),
    {} when it does not exist."""
    return read_key_values(path) if path.is_file() else {}


def every_nth_speaker(spk2utt, every):
    """The speakers of a spk2utt file whose 1-based position is a multiple of `every`, in the order: the recorded
    speakers by sorted id, then the noise pseudo-speakers by sorted id."""
    return sorted(read_table(spk2utt), key=lambda s: (is_noise_speaker(s), s))[every - 1::every]


def choose_speakers(corpus, slice_dir, every, num_speakers=None):
    """SLICE_DIR/data/local/slice_speakers.txt: every `every`-th training speaker of the corpus as stage 0
    prepares it (prepare-speech-commands with run.sh's lexicon, and its --num-speakers when given, into
    data/local/all); none is a one-line error."""
    local = slice_dir / "data/local"
    local.mkdir(parents=True, exist_ok=True)  # (also the cwd of the preparation)
    kaldilite("prepare-speech-commands", "--lexicon", REPO / "lang/en/lexicon.txt",
              *(["--num-speakers", num_speakers] if num_speakers is not None else []), corpus, local / "all",
              cwd=slice_dir)
    speakers = every_nth_speaker(local / "all/train/spk2utt", every)
    if not speakers:
        raise SystemExit(f"{local / 'all/train/spk2utt'}: --every {every} holds out none of its "
                         f"{len(read_table(local / 'all/train/spk2utt'))} speakers; give a smaller --every")
    return write_if_changed(local / "slice_speakers.txt", "".join(f"{s}\n" for s in speakers))


def slice_features(slice_dir, nj):
    """data/slice and data/hires_slice: data/heldout's clips with the GMMs' and the DNN's features and CMVN,
    made afresh every run (seconds), so that they follow an edit of the recipe's confs as the models do."""
    for name, conf in (("slice", CONF / "mfcc.conf"), ("hires_slice", CONF / "mfcc_hires.conf")):
        shutil.rmtree(slice_dir / "data" / name, ignore_errors=True)  # (nothing of an older build left in it)
        kaldilite("data", "subset", "--spk-list", slice_dir / "data/heldout/spk2utt", "data/heldout", f"data/{name}",
                  cwd=slice_dir)
        kaldilite("make-mfcc", "--config", conf, "--nj", nj, f"data/{name}", f"exp/make_mfcc/{name}",
                  f"mfcc_{name}", cwd=slice_dir)
        kaldilite("compute-cmvn-stats", f"data/{name}", f"exp/make_mfcc/{name}", f"mfcc_{name}", cwd=slice_dir)


def dnn_train_dir(slice_dir):
    """The data dir run.sh's stage 8 trained exp/nnet2 on: the DATA argument of its train-nnet2 call, as the first
    line of exp/nnet2/log/train.log gives it ("# kaldilite train-nnet2 [options] DATA LANG ALI_DIR EXP_DIR",
    relative to SLICE_DIR, where run.sh runs). Not which candidate exists: a build with the reverberated copy
    leaves data/train_aug_hires beside data/train_aug_rvb_hires, and a stale one may be left by another build."""
    log = slice_dir / "exp/nnet2/log/train.log"
    if not log.is_file():
        raise SystemExit(f"{log}: missing; did run.sh's stage 8 train exp/nnet2?")
    with open(log, encoding="utf-8") as handle:
        first = handle.readline().rstrip("\n")
    words = shlex.split(first[2:]) if first.startswith("# ") else []
    if words[:2] != ["kaldilite", "train-nnet2"] or len(words) < 6:
        raise SystemExit(f"{log}:1: not a train-nnet2 command line ({first!r}); re-run run.sh's stage 8")
    data = slice_dir / words[-4]  # (an absolute DATA stays itself)
    if not (data / "feats.scp").is_file():
        raise SystemExit(f"{log}:1: exp/nnet2 trained on {words[-4]}, which has no feats.scp now; re-run run.sh's "
                         "stage 8")
    return data


def link_dnn_data(slice_dir):
    """data/hires_train_aug_rev -> the data dir run.sh's stage 8 trained the DNN on (`dnn_train_dir`)."""
    link = slice_dir / "data/hires_train_aug_rev"
    target = dnn_train_dir(slice_dir)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))
    return link


def check_held_out(slice_dir, slice_data="data/slice"):
    """The leaks of SLICE_DATA's clips into the training data of SLICE_DIR (a list of one-line
    descriptions; empty when there are none): every data dir data/train* and data/noise_train (each
    utterance's source through utt2uniq; its speaker with the copy prefixes stripped; the audio its wav.scp
    entry and, for a noise copy, its background (utt2noise) play) and exp/tri3b_ali's utterances. No
    slice utterances is a one-line error (nothing to check), not a leak."""
    data = slice_dir / slice_data
    slice_utts = read_table(data / "utt2spk")
    if not slice_utts:
        raise SystemExit(f"{data}/utt2spk: no slice utterances; build the slice first (bench/make_slice.py "
                         f"--slice-dir {slice_dir} without --check-only)")
    slice_speakers = set(slice_utts.values())
    wav = read_table(data / "wav.scp").values()
    # a slice clip's audio: its file (a token of any entry that plays it: the file itself, a sox pipe of a speed
    # copy); a chunk of a long noise file: its sox ... trim pipe (a part of the entries that play it)
    slice_files = {s.strip() for s in wav if not s.rstrip().endswith("|")}
    slice_pipes = {s.rstrip().rstrip("|").strip() for s in wav if s.rstrip().endswith("|")}
    leaks = []
    train_dirs = sorted({p.resolve() for p in (slice_dir / "data").glob("train*") if (p / "utt2spk").is_file()}
                        | {p.resolve() for p in [slice_dir / "data/noise_train"] if (p / "utt2spk").is_file()})
    for d in train_dirs:
        uniq = read_table(d / "utt2uniq")
        for utt, spk in read_table(d / "utt2spk").items():
            if uniq.get(utt, utt) in slice_utts or source_speaker(utt) in slice_utts:  # (source_speaker: prefixes off)
                leaks.append(f"{d}: {utt} is a slice clip or a copy of one")
            elif source_speaker(spk) in slice_speakers:
                leaks.append(f"{d}: {utt} is of the slice speaker {source_speaker(spk)}")
        # what each utterance plays: its wav.scp entry; a noise copy's background too (utt2noise: entry, offset, SNR)
        for name in ("wav.scp", "utt2noise"):
            for utt, spec in read_table(d / name).items():
                if set(spec.split()) & slice_files or any(p in spec for p in slice_pipes):
                    leaks.append(f"{d}/{name}: {utt} plays slice audio ({spec})")
    ali_dir = slice_dir / "exp/tri3b_ali"
    if any(ali_dir.glob("ali.*.gz")):
        from kaldilite.io.tables import read_alignment_dir

        for utt in read_alignment_dir(ali_dir):
            if source_speaker(utt) in slice_utts:  # (an utterance id with the copy prefixes stripped: its source's)
                leaks.append(f"{ali_dir}: {utt} (a slice clip) is aligned")
    return leaks


def summary(slice_dir):
    """One line: the slice's speakers and utterances per kind (commands, fillers, noise clips)."""
    text = read_table(slice_dir / "data/slice/text")
    spk = read_table(slice_dir / "data/slice/utt2spk")
    cmds = set(commands())
    kinds = [("commands", lambda t: t in cmds), ("fillers", lambda t: t not in cmds and t != "!SIL"),
             ("noise clips", lambda t: t == "!SIL")]
    speakers = set(spk.values())
    noise = {s for s in speakers if is_noise_speaker(s)}
    return (f"{slice_dir}/data/slice: {len(speakers) - len(noise)} speakers + {len(noise)} noise pseudo-speakers, "
            f"{len(text)} utterances: " + ", ".join(f"{sum(map(f, text.values()))} {k}" for k, f in kinds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Other options are passed to run.sh (e.g. --nnet-reverb false).")
    parser.add_argument("--slice-dir", required=True, type=Path, help="run.sh's work dir for the slice build.")
    parser.add_argument("--every", type=int, default=7, help="Hold out every N-th training speaker (sorted ids, the noise pseudo-speakers last).")
    parser.add_argument("--corpus", type=Path,
                        help="The Speech Commands folder (default: $KALDILITE_DATA/speech_commands, as run.sh).")
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--num-speakers", type=int,
                        help="Keep only this many speakers per part (run.sh's --num-speakers, quick builds): the slice "
                             "is chosen among them.")
    parser.add_argument("--check-only", action="store_true", help="Only the leak check and the summary.")
    args, run_sh_options = parser.parse_known_args()
    if args.every < 1:
        parser.error(f"--every {args.every}: give a count >= 1")
    if args.num_speakers is not None and args.num_speakers < 1:
        parser.error(f"--num-speakers {args.num_speakers}: give a count >= 1")
    if args.corpus is None and not args.check_only:
        if data_root() is None:
            parser.error("no shared data here: set KALDILITE_DATA or give --corpus")
        args.corpus = data_root() / "speech_commands"
    slice_dir = args.slice_dir.resolve()
    if not args.check_only:
        slice_dir.mkdir(parents=True, exist_ok=True)
        listing = choose_speakers(args.corpus.resolve(), slice_dir, args.every, args.num_speakers)
        num_speakers = ["--num-speakers", str(args.num_speakers)] if args.num_speakers is not None else []
        subprocess.run(["bash", RUN_SH, "--dir", slice_dir, "--corpus", args.corpus.resolve(), "--nj", str(args.nj),
                        "--heldout-speakers", listing, *num_speakers, "--stage", "0", "--stop-stage", "8",
                        *run_sh_options], check=True)
        slice_features(slice_dir, args.nj)
        link_dnn_data(slice_dir)
    leaks = check_held_out(slice_dir)
    if leaks:
        raise SystemExit(f"{slice_dir}: the slice leaks into training ({len(leaks)}); the first ones:\n"
                         + "\n".join(leaks[:20]))
    print(summary(slice_dir))
    print(f"{slice_dir}: no slice clip, speaker or audio in any training data dir or tri3b's alignments")


if __name__ == "__main__":
    main()
