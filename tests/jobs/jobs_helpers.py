"""Helpers shared by the job-backend tests: real steps run through a backend, and their outputs."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
KALDILITE = [sys.executable, "-m", "kaldilite"]
MFCC_CONF = REPO / "recipes" / "digits" / "conf" / "mfcc.conf"


def copy_data_dir(src, dst):
    """The Kaldi files of a data dir (not its features or splits), so each run starts clean."""
    dst = Path(dst)
    dst.mkdir(parents=True)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        shutil.copyfile(Path(src) / name, dst / name)
    return dst


def kaldilite(*args, cwd=None, env=None, check=True):
    """Run the kaldilite command as a recipe would (a subprocess); returns CompletedProcess."""
    proc = subprocess.run(KALDILITE + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})), timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"kaldilite {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def make_mfcc(data_dir, nj, *, cmd="local", extra=()):
    """make-mfcc (digits recipe config) with --nj/--cmd; returns (seconds, CompletedProcess)."""
    data_dir = Path(data_dir)
    start = time.perf_counter()
    proc = kaldilite("make-mfcc", "--config", MFCC_CONF, "--nj", nj, "--cmd", cmd, *extra, data_dir,
                     data_dir / "log", data_dir / "mfcc", check=False)
    return time.perf_counter() - start, proc


def features_by_utt(data_dir):
    """{utt: float32 matrix} from a data dir's feats.scp."""
    from kaldilite.io.tables import read_matrices

    return {utt: np.asarray(feats) for utt, feats in read_matrices(str(Path(data_dir) / "feats.scp"))}


def assert_same_features_byte_for_byte(a, b):
    assert sorted(a) == sorted(b)
    for utt in a:
        assert a[utt].dtype == b[utt].dtype and a[utt].shape == b[utt].shape, utt
        assert a[utt].tobytes() == b[utt].tobytes(), f"{utt}: features differ"


def train_mono_briefly(data_dir, lang_dir, exp_dir, nj):
    """train_mono up to 2.mdl: gmm-init-mono, equal alignment + accumulation (iteration 0),
    estimate, Viterbi realignment + accumulation (iteration 1), estimate; every step through
    run_jobs with the current backend."""
    from kaldilite.train.mono import MonoOptions, train_mono

    return train_mono(data_dir, lang_dir, exp_dir, MonoOptions(nj=nj, num_iters=2, totgauss=300))


def load_gmm(path):
    from kaldilite.gmm import load_model

    tm, am, _, _ = load_model(path)
    return tm, am


def alignments(exp_dir):
    from kaldilite.io.tables import read_int_vectors

    result = {}
    for path in sorted(Path(exp_dir).glob("ali.*.gz")):
        result.update((utt, np.asarray(ali)) for utt, ali in read_int_vectors(str(path)))
    return result


def assert_same_model(path_a, path_b, rtol=1e-6, atol=1e-8):
    """Two GMM-HMMs estimated from the same statistics (summed in another order): equal within float noise."""
    tm_a, am_a = load_gmm(path_a)
    tm_b, am_b = load_gmm(path_b)
    np.testing.assert_array_equal(am_a.pdf_offsets, am_b.pdf_offsets)
    for name in ("means", "variances", "log_weights"):
        np.testing.assert_allclose(getattr(am_a, name), getattr(am_b, name), rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_allclose(tm_a.log_probs[1:], tm_b.log_probs[1:], rtol=rtol, atol=atol)


def corrupt_one_split_then_resume(train_dir, work_dir, fsdd_recordings, cmd):
    """make-mfcc --nj 4 where every file of one speaker (so of one job) is corrupt: the step must
    fail naming that job's log; after the files are repaired, --resume runs only that job and the
    features equal a clean run's. Returns a dict of what happened, for the caller's asserts."""
    work_dir = Path(work_dir)
    data = copy_data_dir(train_dir, work_dir / "data")
    speakers = sorted({line.split()[1] for line in (data / "utt2spk").read_text().splitlines()})
    assert len(speakers) == 4
    victim = speakers[2]                       # split_data_dir gives speaker k its own split k
    broken = work_dir / "audio"
    broken.mkdir()
    lines = []
    for line in (data / "wav.scp").read_text().splitlines():
        utt, path = line.split(maxsplit=1)
        if utt.split("_")[0] == victim or f"_{victim}_" in path:
            target = broken / Path(path).name
            target.write_bytes(b"RIFF....WAVEfmt this is not audio")
            path = str(target)
        lines.append(f"{utt} {path}\n")
    (data / "wav.scp").write_text("".join(lines))
    log_dir = work_dir / "exp" / "make_mfcc"
    _, failed = make_mfcc_with_logs(data, log_dir, cmd)
    logs_before = {k: (log_dir / f"make_mfcc_data.{k}.log").read_text() for k in (1, 2, 3, 4)}
    for target in broken.iterdir():            # repair: the real recordings, at the same paths
        shutil.copyfile(Path(fsdd_recordings) / target.name, target)
    _, resumed = make_mfcc_with_logs(data, log_dir, cmd, "--resume")
    logs_after = {k: (log_dir / f"make_mfcc_data.{k}.log").read_text() for k in (1, 2, 3, 4)}
    return {"victim_job": 3, "failed": failed, "resumed": resumed, "logs_before": logs_before,
            "logs_after": logs_after, "data": data, "log_dir": log_dir}


def make_mfcc_with_logs(data_dir, log_dir, cmd, *extra):
    start = time.perf_counter()
    proc = kaldilite("make-mfcc", "--config", MFCC_CONF, "--nj", 4, "--cmd", cmd, *extra, data_dir, log_dir,
                     Path(log_dir).parent / "mfcc", check=False)
    return time.perf_counter() - start, proc


def check_corrupt_split_story(story, clean_features):
    """The asserts shared by the local and the Slurm version of corrupt_one_split_then_resume."""
    failed, resumed, log_dir = story["failed"], story["resumed"], story["log_dir"]
    log3 = log_dir / "make_mfcc_data.3.log"
    assert failed.returncode == 1
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"kaldilite make-mfcc: error: make_mfcc_data: job 3 of 4 failed; see {log3}: ")
    assert "no utterance gave features" in error
    assert story["logs_before"][3].splitlines()[-1].startswith("# Ended (code 1)")
    assert resumed.returncode == 0, resumed.stderr
    for k in (1, 2, 4):                         # not run again: their logs are untouched
        assert story["logs_after"][k] == story["logs_before"][k]
    assert story["logs_after"][3] != story["logs_before"][3]
    assert story["logs_after"][3].splitlines()[-1].startswith("# Ended (code 0)")
    assert_same_features_byte_for_byte(features_by_utt(story["data"]), clean_features)
    assert not list((log_dir.parent / "q").glob("make_mfcc_data.*.status"))   # records go once all succeeded
