"""recipes/utils/stamp.sh: a *.scp input counts by its text and by the size and mtime of every regular
file it points into (each once, in byte order; pipes, missing files and directories skipped).

The independent answer is the checksum computed here in Python from the files' os.lstat (what
`stat` without -L reports) and the stamp format: sha1 of (the sha1sum line of the location-free
scp text, then one "path size mtime" line per archive), paths under the work dir written @work@.
A wav.scp of thousands of files (train_aug's: 4250) is fingerprinted by one `stat` process, not one each
(counted by a `stat` on PATH that logs its calls), and the sum is a command that succeeds whatever the scp's
last entry is (a pipe here), so that `sum=$(_stamp_file_sum ...)` is safe under set -e.
"""

import hashlib
import os
import shutil
import subprocess

from stamp_helpers import PRELUDE, STAMP_SH, make_checkout


def expected_sum(work, scp_text, archives):
    def norm(text):
        return text.replace(f"{work}/", "@work@/")

    lines = f"{hashlib.sha1(norm(scp_text).encode()).hexdigest()}  -\n"
    for path in sorted(set(archives), key=lambda p: p.encode()):
        st = os.lstat(path)
        lines += norm(f"{path} {st.st_size} {int(st.st_mtime)}\n")
    return hashlib.sha1(lines.encode()).hexdigest()


def test_scp_sum_counts_each_existing_archive_once(tmp_path):
    checkout = make_checkout(tmp_path / "repo", {})
    work = (tmp_path / "work").resolve()
    (work / "data").mkdir(parents=True)
    (work / "wav").mkdir()
    names = [f"u{i:04d}" for i in range(300)]
    for i, name in enumerate(names):
        (work / "wav" / f"{name}.wav").write_bytes(b"x" * i)
        os.utime(work / "wav" / f"{name}.wav", (1_700_000_000 + i, 1_700_000_000 + 7 * i))
    rows = [f"{name} {work}/wav/{name}.wav" for name in names]
    rows += [f"a{k} {work}/wav/u0003.wav:{100 * k}" for k in range(3)]  # ark offsets: one file
    rows += ["p1 sox x.wav -t wav - speed 0.9 |", f"m1 {work}/wav/missing.wav", f"d1 {work}/wav"]
    scp_text = "\n".join(rows) + "\n"
    (work / "data" / "wav.scp").write_text(scp_text)
    script = PRELUDE + 'sum=$(_stamp_file_sum data/wav.scp 2)\necho "$sum"\n'  # (set -e: its status counts)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "stat").write_text(f'#!/bin/sh\necho call >> {tmp_path}/stat_calls\nexec {shutil.which("stat")} "$@"\n')
    (shim / "stat").chmod(0o755)
    env = dict(os.environ, WORK=str(work), KALDILITE_REPO=str(checkout), STAMP_SH=str(STAMP_SH),
               PATH=f"{shim}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    archives = [str(work / "wav" / f"{name}.wav") for name in names]
    assert out.stdout.strip() == expected_sum(str(work), scp_text, archives)
    assert (tmp_path / "stat_calls").read_text() == "call\n"  # one stat for the 300 archives
