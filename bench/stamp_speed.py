"""recipes/utils/stamp.sh's fingerprint of a step's data-dir inputs, old code vs new, side by side, with an identity check.

A step's stamp fingerprints each *.scp input by its text and the size and mtime of every file it points
into; the old code (`--old-rev`, default 4c92e60) ran one `stat` process per file, the new one a single
`stat` for all (xargs). Each is sourced into its own bash and computes `_stamp_manifest` of the same
inputs: by default a data dir made here like train_aug (8500 utterances, 4250 distinct wav files, the
features in two archives) and one like dev (406 wavs); with `--work DIR`, a built commands recipe's
data/train_aug, data/dev and data/train_aug_rvb_hires instead (read only). Wall and CPU seconds (the
bash process and its children) of each, alternating `--repeats` times, best kept; the manifests must be
byte-identical (the stamps of existing work dirs stay valid). A from-scratch run.sh fingerprints such
dirs in ~180 steps (~70k files in all), serially in the recipe's shell.
Usage: .venv/bin/python bench/stamp_speed.py [--work /tmp/lead/final] [--repeats 2] [--old-rev 4c92e60]
       [--no-report]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section_if_quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def make_data_dir(path, num_utts, num_wavs):
    """A data dir of `num_utts` utterances over `num_wavs` (empty) wav files, features in two archives."""
    (path / "wav").mkdir(parents=True)
    wav_lines, feat_lines = [], []
    for i in range(num_utts):
        wav = path / "wav" / f"w{i % num_wavs:05d}.wav"
        if i < num_wavs:
            wav.write_bytes(b"")
        utt = f"u{i:05d}"
        # every other utterance a speed-perturbed pipe, as train_aug's sp0.9/sp1.1 copies
        wav_lines.append(f"{utt} {wav}" if i < num_wavs else f"{utt} sox -t wav {wav} -t wav - speed 0.9 |")
        feat_lines.append(f"{utt} {path}/raw_mfcc.{1 + i % 2}.ark:{100 * i}")
    for k in (1, 2):
        (path / f"raw_mfcc.{k}.ark").write_bytes(b"")
    (path / "wav.scp").write_text("\n".join(wav_lines) + "\n")
    (path / "feats.scp").write_text("\n".join(feat_lines) + "\n")
    (path / "utt2spk").write_text("".join(f"u{i:05d} s{i // 20}\n" for i in range(num_utts)))
    return path


def manifest(stamp_sh, work, inputs):
    """(wall s, CPU s, the manifest text) of `_stamp_manifest 2 INPUTS` in WORK with STAMP_SH."""
    script = 'log() { :; }; . "$STAMP_SH"; cd "$WORK"; _stamp_manifest 2 "$@"'
    env = dict(os.environ, STAMP_SH=str(stamp_sh), WORK=str(work), KALDILITE_REPO=str(REPO))
    before, start = os.times(), time.perf_counter()
    out = subprocess.run(["bash", "-c", script, "bash", *inputs], env=env, capture_output=True, text=True,
                         check=True)
    wall, after = time.perf_counter() - start, os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="a built commands recipe dir (default: data dirs made here)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each code, alternating (default 2)")
    parser.add_argument("--old-rev", default="4c92e60", help="git revision of the old stamp.sh (default 4c92e60)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stamp-speed-") as tmp:
        tmp = Path(tmp)
        old_sh = tmp / "stamp_old.sh"
        old_sh.write_text(subprocess.run(["git", "show", f"{args.old_rev}:recipes/utils/stamp.sh"], cwd=REPO,
                                         capture_output=True, text=True, check=True).stdout)
        if args.work:
            work = Path(args.work).resolve()
            inputs = [d for d in ("data/train_aug", "data/dev", "data/train_aug_rvb_hires") if (work / d).is_dir()]
            source = f"{args.work}: {', '.join(inputs)}"
        else:
            work = tmp / "work"
            make_data_dir(work / "data" / "train_aug", 8500, 4250)
            make_data_dir(work / "data" / "dev", 406, 406)
            inputs = ["data/train_aug", "data/dev"]
            source = "data dirs made here like train_aug (8500 utterances, 4250 wav files) and dev (406)"
        files = sum(len({line.split()[-1].rsplit(":", 1)[0] for line in (work / d / "wav.scp").read_text().splitlines()
                         if os.path.isfile(line.split()[-1])}) for d in inputs)
        variants = [(f"old ({args.old_rev}): a stat process per file", old_sh),
                    ("new (working tree): one stat for all", REPO / "recipes" / "utils" / "stamp.sh")]
        best, texts = {}, {}
        for _ in range(args.repeats):
            for name, sh in variants:
                wall, cpu, texts[name] = manifest(sh, work, inputs)
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], wall), min(old[1], cpu))
    identical = texts[variants[0][0]] == texts[variants[1][0]]
    old_wall, old_cpu = best[variants[0][0]]
    lines = [f"{machine_line()}; load average {load_before:.1f} at the start; {source}: {files} wav files "
             f"fingerprinted; best of {args.repeats} runs.", "",
             "| code | wall s | ratio | CPU s | ratio | ms per file (wall) |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {wall:.2f} | {wall / old_wall:.2f} | {cpu:.2f} | {cpu / old_cpu:.2f} | "
              f"{1e3 * wall / max(files, 1):.2f} |" for name, (wall, cpu) in best.items()]
    lines += ["", f"Manifests byte-identical: {'yes' if identical else '**NO**'}."]
    print("\n".join(lines))
    if not identical:
        sys.exit("the old and the new stamp.sh fingerprint the inputs differently")
    if not args.no_report:
        update_section_if_quiet("stamp_speed", "## run.sh's step stamps: data-dir fingerprints, old vs new "
                                "(bench/stamp_speed.py)\n\n" + "\n".join(lines), load_before)


if __name__ == "__main__":
    main()
