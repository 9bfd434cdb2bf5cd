"""recipes/commands/run.sh makes stage 8's DNN training data (nnet_train_data: train_aug's hires features, the
reverberated copy and its features, their combination) in the background while the GMM stages 4-7 train, at nice
19, and stage 8 waits for it; a run from --stage 8 makes it there; --stop-stage 7 or --train-models without nnet2
does not make it; a failure of the background job stops the run at stage 8 naming its log; a run that fails
before stage 8 ends the background job.

run.sh's stages 4-8 run here for real (bash, stamp.sh, its own functions) in a stand-in checkout whose `kaldilite`
is a stub that appends one line per command to a log (verb, its niceness, start and end times, arguments) and
writes the files the next steps read. The independent answer is that log: what ran, when, and at which priority.
"""

import os
import shutil
import stat
import subprocess
import time

from stamp_helpers import REPO

STUB = r"""#!/usr/bin/env bash
# a stand-in kaldilite: one log line per command (verb, niceness, start, end, args); writes what run.sh reads next
set -euo pipefail
verb=$1
start=$(date +%s.%N)
last=${!#}
data=
for a in "$@"; do case $a in data/*) data=$a; break ;; esac; done
if [ $verb = train-sat ] && [ -n "${KL_EXPECT_BACKGROUND:-}" ]; then
  # stage 7 ends only once the background job has begun its hires features
  for i in $(seq 300); do [ -f "$KL_LOG.hires_started" ] && break; sleep 0.1; done
fi
[ "${KL_FAIL:-}" != "$verb" ] || { echo "stub kaldilite $verb: failed on purpose" >&2; exit 3; }
case $verb in
  train-*) mkdir -p $last; echo model > $last/final.mdl ;;
  align|align-fmllr) mkdir -p $last; echo ali > $last/ali.1.gz ;;
  make-mfcc)
    case $data in *_hires) ps -o pgid= $$ | tr -d ' ' > "$KL_LOG.hires_pgid"; touch "$KL_LOG.hires_started" ;; esac
    sleep "${KL_MFCC_SECONDS:-0.2}"
    echo "$data-utt $data.ark:1" > $data/feats.scp; echo "stub make-mfcc: done for $data" ;;
  compute-cmvn-stats) echo "spk $data-cmvn.ark:1" > $data/cmvn.scp ;;
  reverberate-data-dir) mkdir -p $last; sed 's/^/rev1-/' "${@: -2:1}"/utt2spk > $last/utt2spk
    sed 's/^/rev1-/' "${@: -2:1}"/wav.scp > $last/wav.scp ;;
  data)
    case $2 in
      subset) mkdir -p $last; cp "${@: -2:1}"/* $last/ ;;
      combine) mkdir -p $3; for p in "${@:4}"; do cat $p/feats.scp; done > $3/feats.scp ;;
    esac ;;
esac
echo "$verb $(nice) $start $(date +%s.%N) $*" >> "$KL_LOG"
"""


def make_checkout(root):
    """A stand-in repository: run.sh, recipes/utils, the recipe's confs, lang/en; the stub kaldilite in bin/."""
    (root / "kaldilite").mkdir(parents=True)
    (root / "kaldilite" / "__init__.py").write_text('__version__ = "9.9"\n')
    shutil.copytree(REPO / "recipes" / "utils", root / "recipes" / "utils")
    (root / "recipes" / "commands").mkdir()
    shutil.copy(REPO / "recipes" / "commands" / "run.sh", root / "recipes" / "commands" / "run.sh")
    (root / "recipes" / "commands" / "conf").symlink_to(REPO / "recipes" / "commands" / "conf")
    (root / "lang").mkdir()
    (root / "lang" / "en").symlink_to(REPO / "lang" / "en")
    (root / "bin").mkdir()
    (root / "bin" / "kaldilite").write_text(STUB)
    (root / "bin" / "kaldilite").chmod(stat.S_IRWXU)
    return root


def make_work_dir(work, gmms=False):
    """A work dir as stages 0-3 leave it (train_aug with its speed-1.0 part, the training lang); `gmms`: tri3b too."""
    aug = work / "data" / "train_aug"
    aug.mkdir(parents=True)
    utts = [f"{p}-s{s}-yes-0" for p in ("sp0.9", "sp1.0", "sp1.1") for s in (1, 2)]
    (aug / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in utts))
    (aug / "utt2spk").write_text("".join(f"{u} {u.rsplit('-', 2)[0]}\n" for u in utts))
    (aug / "text").write_text("".join(f"{u} yes\n" for u in utts))
    (work / "data" / "lang").mkdir()
    (work / "data" / "lang" / "phones.txt").write_text("<eps> 0\n")
    if gmms:
        (work / "exp" / "tri3b").mkdir(parents=True)
        (work / "exp" / "tri3b" / "final.mdl").write_text("model\n")


def run(root, work, *options, env=None, timeout=120):
    """run.sh OPTIONS in WORK: (the completed process, [(verb, niceness, start, end, args)] from the stub's log)."""
    log = root / "kaldilite.log"
    for f in (log, root / "kaldilite.log.hires_started", root / "kaldilite.log.hires_pgid"):
        f.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", KL_LOG=str(log),
               KALDILITE_DATA=str(root / "no_data"), **(env or {}))
    env.pop("KALDILITE_FORCE", None)
    out = subprocess.run(["bash", str(root / "recipes" / "commands" / "run.sh"), "--dir", str(work), *options],
                         env=env, capture_output=True, text=True, timeout=timeout)
    lines = log.read_text().splitlines() if log.exists() else []
    calls = []
    for line in lines:
        verb, nice, start, end, args = line.split(" ", 4)
        calls.append((verb, int(nice), float(start), float(end), args))
    return out, calls


DATA_VERBS = ("make-mfcc", "compute-cmvn-stats", "reverberate-data-dir", "data")


def data_calls(calls):
    return [c for c in calls if c[0] in DATA_VERBS]


def one(calls, verb):
    found = [c for c in calls if c[0] == verb]
    assert len(found) == 1, (verb, calls)
    return found[0]


def test_stage_8s_data_is_made_in_the_background_of_stages_4_to_7_at_nice_19(tmp_path):
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    out, calls = run(root, work, "--stage", "4", "--stop-stage", "8", env={"KL_EXPECT_BACKGROUND": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = data_calls(calls)
    # each of the data steps once: nothing again in stage 8 (its stamps up to date)
    assert sorted((c[0], next(w for w in c[4].split() if w.startswith("data/"))) for c in data) == [
        ("compute-cmvn-stats", "data/train_aug_hires"), ("compute-cmvn-stats", "data/train_rvb_hires"),
        ("data", "data/.train_rvb.list"), ("data", "data/train_aug_rvb_hires"), ("make-mfcc", "data/train_aug_hires"),
        ("make-mfcc", "data/train_rvb_hires"), ("reverberate-data-dir", "data/.train_sp1.0")]
    sat, ali, nnet = one(calls, "train-sat"), one(calls, "align-fmllr"), one(calls, "train-nnet2")
    hires = [c for c in data if c[0] == "make-mfcc" and "data/train_aug_hires" in c[4]][0]
    assert hires[2] < sat[3] < ali[2]  # begun during stage 7, before stage 8's alignment
    assert {c[1] for c in data} == {19}  # the lowest priority ...
    base = os.nice(0)
    assert {c[1] for c in calls if c not in data} == {base}  # ... the GMMs and the DNN at the run's
    assert nnet[2] > max(c[3] for c in data)  # the DNN trains on the finished data
    assert out.stdout.count("stub make-mfcc: done for") == 2  # the background log is in the run's output
    for stamp in ("exp/make_mfcc_hires/train_aug/.stamp_cmvn", "data/train_rvb/.stamp", "data/train_aug_rvb_hires/.stamp"):
        assert (work / stamp).exists(), stamp

    out, calls = run(root, work, "--stage", "4", "--stop-stage", "8")
    assert out.returncode == 0 and calls == []  # nothing changed: every step up to date, in the background too


def test_a_run_from_stage_8_makes_the_data_itself_and_one_without_the_dnn_does_not(tmp_path):
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work, gmms=True)
    out, calls = run(root, work, "--stage", "8", "--stop-stage", "8")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = data_calls(calls)
    assert len(data) == 7 and {c[1] for c in data} == {os.nice(0)}  # in the foreground, after the alignment
    assert min(c[2] for c in data) > one(calls, "align-fmllr")[3]
    assert not (work / "exp" / "nnet2_data.log").exists()

    for n, options in enumerate((("--stop-stage", "7"), ("--stop-stage", "8", "--train-models", "mono tri1 tri2b tri3b"))):
        other = tmp_path / f"work{n}"
        make_work_dir(other)
        out, calls = run(root, other, "--stage", "4", *options)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert [c[0] for c in calls] == ["train-mono", "align", "train-deltas", "align", "train-lda-mllt", "align",
                                         "train-sat"], options
        assert not (other / "exp" / "nnet2_data.log").exists()


def test_a_failed_background_job_stops_the_run_at_stage_8_naming_its_log(tmp_path):
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    out, calls = run(root, work, "--stage", "4", "--stop-stage", "8",
                     env={"KL_EXPECT_BACKGROUND": "1", "KL_FAIL": "reverberate-data-dir"})
    assert out.returncode != 0
    assert "exp/nnet2_data.log" in out.stderr.splitlines()[-1]
    assert "stub kaldilite reverberate-data-dir: failed on purpose" in out.stdout  # the log, printed
    assert "train-sat" in [c[0] for c in calls] and "train-nnet2" not in [c[0] for c in calls]
    assert not (work / "data" / "train_rvb" / ".stamp").exists()


def test_a_run_failing_before_stage_8_ends_the_background_job(tmp_path):
    root = make_checkout(tmp_path / "repo")
    work = tmp_path / "work"
    make_work_dir(work)
    began = time.monotonic()
    out, calls = run(root, work, "--stage", "4", "--stop-stage", "8", timeout=50,
                     env={"KL_EXPECT_BACKGROUND": "1", "KL_FAIL": "train-sat", "KL_MFCC_SECONDS": "60"})
    assert out.returncode != 0 and time.monotonic() - began < 50
    pgid = int((root / "kaldilite.log.hires_pgid").read_text())
    assert pgid != os.getpgrp()  # its own process group (the one run.sh's EXIT trap ends), never this test's
    for _ in range(50):  # the stub's make-mfcc and its sleep: gone with their process group
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pgid, 9)
        raise AssertionError("the background job outlived the run")
    assert "make-mfcc" not in [c[0] for c in calls]
    assert not (work / "exp" / "make_mfcc_hires" / "train_aug" / ".stamp_mfcc").exists()
