"""make-mfcc runs numpy's OpenBLAS with one thread (kaldilite.cli's single-threaded BLAS verbs).

Its jobs run one per core, and 40-bin MFCC's mel-bank product is large enough for OpenBLAS to
start its threads: on the commands recipe's 2 cores that cost 4-5x the CPU (threads spinning
against the other job), for archives identical byte for byte. Checked here: the process that ran
make-mfcc ends with one thread (numpy alone starts one per core), and the archive is the one a
process told OPENBLAS_NUM_THREADS=4 writes.
"""

import os
import subprocess
import sys

import pytest


def fresh_python(code, env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def make_mfcc_code(data, out):
    return ("import os, sys\n"
            "from kaldilite.cli import main\n"
            "sys.argv = ['kaldilite', 'make-mfcc', '--num-mel-bins', '40', '--num-ceps', '40', '--nj', '1', "
            f"{str(data)!r}, {str(out / 'log')!r}, {str(out / 'mfcc')!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None)\n"
            "print('THREADS', len(os.listdir('/proc/self/task')))\n")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts no threads anyway")
def test_make_mfcc_uses_one_blas_thread_and_writes_the_same_features(speech_commands_dir, tmp_path):
    wavs = sorted((speech_commands_dir / "down").glob("*.wav"))[:3]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    archives = []
    for name, extra in (("default", {}), ("four", {"OPENBLAS_NUM_THREADS": "4"})):
        data = tmp_path / name / "data"
        data.mkdir(parents=True)
        (data / "wav.scp").write_text("".join(f"{w.stem} {w}\n" for w in wavs))
        (data / "utt2spk").write_text("".join(f"{w.stem} jackson\n" for w in wavs))
        (data / "spk2utt").write_text("jackson " + " ".join(w.stem for w in wavs) + "\n")
        out = fresh_python(make_mfcc_code(data, tmp_path / name), {**env, **extra})
        if name == "default":
            assert out.splitlines()[-1] == "THREADS 1"
        archives.append(next((tmp_path / name / "mfcc").glob("*.ark")).read_bytes())
    assert archives[0] == archives[1]
