"""`kaldilite run-many`: command lines run in a few warm worker processes, each as `kaldilite` would run it.

Checked against the same commands run one by one as their own `kaldilite` processes: the same
outputs and exit codes; a worker runs several commands in itself (fewer processes than commands);
a line that does not parse is a one-line error naming the file and line.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaldilite.cli.run import read_command_lines, shell_words
from kaldilite.errors import InputError

KALDILITE = str(Path(sys.executable).parent / "kaldilite")


def _data_dir(path, num_utts=5):
    path.mkdir()
    utts = [f"spk{k % 2}-u{k}" for k in range(num_utts)]
    (path / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in utts))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (path / "text").write_text("".join(f"{u} word{k}\n" for k, u in enumerate(utts)))
    return path


def test_run_many_gives_each_command_what_it_gives_alone_in_fewer_processes(tmp_path):
    src = _data_dir(tmp_path / "src")
    def subsets(name):
        return [f"data subset --first {src} {n} {tmp_path / name}{n}" for n in range(1, 5)] + [
            "data subset --first /nonexistent/dir 1 x"]  # an error: its exit code, the others unaffected

    lines = subsets("many")
    commands = tmp_path / "commands"
    # a comment, a blank line and one line with the leading 'kaldilite'
    commands.write_text("# subsets\n\n" + "kaldilite " + lines[0] + "\n" + "\n".join(lines[1:]) + "\n")
    out = subprocess.run([KALDILITE, "run-many", "--nj", "2", "--status", str(tmp_path / "status"), str(commands)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "1 of 5 commands failed (lines 7 of" in out.stderr, out.stderr
    # the project's one-line error, naming the failed command line (the recipe's batch file is a temporary)
    assert out.stderr.splitlines()[-1].startswith("kaldilite run-many: error: 1 of 5 commands failed")
    assert "the first: kaldilite data subset --first /nonexistent/dir 1 x;" in out.stderr.splitlines()[-1]
    alone = [subprocess.run([KALDILITE, *line.split()], capture_output=True, text=True) for line in subsets("alone")]
    assert (tmp_path / "status").read_text().split("\n")[:-1] == [
        f"{line} {a.returncode}" for line, a in zip((3, 4, 5, 6, 7), alone)]
    for n in range(1, 5):
        for name in ("utt2spk", "text", "wav.scp", "spk2utt"):
            assert (tmp_path / f"many{n}" / name).read_bytes() == (tmp_path / f"alone{n}" / name).read_bytes()
    assert alone[-1].returncode != 0 and alone[-1].stderr.splitlines()[-1] in out.stderr


def test_each_command_logs_as_it_would_alone(tmp_path):
    # 9d40a91: a worker kept the logging its first command (or run-many's own -v) set up, so a
    # command's -v showed nothing (logging.basicConfig is a no-op once the root has a handler)
    src = _data_dir(tmp_path / "src")
    lines = [f"-v data subset --first {src} 1 {tmp_path}/{{}}1", f"data subset --first {src} 2 {tmp_path}/{{}}2",
             f"-vv data subset --first {src} 3 {tmp_path}/{{}}3"]
    alone = "".join(subprocess.run([KALDILITE, *line.format("a").split()], capture_output=True, text=True,
                                   check=True).stderr for line in lines)
    commands = tmp_path / "commands"
    commands.write_text("".join(line.format("m") + "\n" for line in lines))
    many = subprocess.run([KALDILITE, "run-many", str(commands)], capture_output=True, text=True, check=True)
    assert "INFO" in alone and many.stderr == alone.replace(f"{tmp_path}/a", f"{tmp_path}/m")


def _record(argv):  # stands in for a verb: which process ran it, and when (module level: pickled to the pool)
    import time

    Path(argv[0]).write_text(f"{os.getpid()} {time.monotonic()} {time.monotonic()}")
    time.sleep(0.2)
    Path(argv[0]).write_text(Path(argv[0]).read_text().rsplit(" ", 1)[0] + f" {time.monotonic()}")
    return 3 if argv[0].endswith("5") else 0


def test_each_worker_runs_several_commands_in_itself_and_the_first_runs_alone(tmp_path, monkeypatch):
    import kaldilite.cli.run as run_module

    monkeypatch.setattr(run_module, "_run_one", _record)  # the workers are forked: they see it
    commands = [(k + 1, [str(tmp_path / f"c{k}")]) for k in range(6)]
    codes = run_module.run_many(commands, nj=2)
    assert codes == [0, 0, 0, 0, 0, 3]
    runs = [tuple(float(v) for v in (tmp_path / f"c{k}").read_text().split()) for k in range(6)]
    pids = {int(pid) for pid, _, _ in runs}
    # 6 commands in at most 2 worker processes (on a busy machine the first worker may take them all)
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    first_end = runs[0][2]
    assert all(start >= first_end for _, start, _ in runs[1:])  # nothing started before the first ended


def _jobs_of_its_own(argv):  # stands in for a verb run with --nj 2: it forks a pool of its own
    from kaldilite.parallel import run_jobs

    return sum(run_jobs(pow, [(2, 3), (3, 2)], argv[0], "pow", nj=2))


def test_a_command_may_run_jobs_of_its_own(tmp_path, monkeypatch):
    # 9d40a91's workers were daemonic processes, which may not have children: any command with --nj 2
    # (a pool of its own) failed in run-many with "daemonic processes are not allowed to have children"
    import kaldilite.cli.run as run_module

    monkeypatch.setattr(run_module, "_run_one", _jobs_of_its_own)
    commands = [(k + 1, [str(tmp_path / f"log{k}")]) for k in range(3)]
    assert run_module.run_many(commands, nj=2) == [2 ** 3 + 3 ** 2] * 3
    assert all((tmp_path / f"log{k}" / "pow.2.log").is_file() for k in range(3))  # the jobs' logs


# arguments as a recipe may hold them: printf %q quotes them (stamp.sh's batches), run-many must read them back
_TRICKY = ["a#b", "#x", "", "é", "two\nlines", "tab\tx", "bell\a", "~home", "sp ace", "it's", 'say "hi"',
           "back\\slash", "$HOME", "`date`", "a;b|c", "--opt=x#1", "ü\n"]


def test_command_lines_are_read_back_as_bash_quoted_them(tmp_path):
    # the independent answer: bash's own quoting (printf %q, as step_batch_begin queues a step); shlex.split
    # (9d40a91) cut a#b to a, dropping the rest of the line, and read $'two\nlines' as $two\nlines
    quoted = subprocess.run(["bash", "-c", 'printf "%q " mkgraph "$@"; echo; printf "%q " "$@"; echo " # a comment"',
                             "--", *_TRICKY], capture_output=True, text=True, check=True).stdout
    commands = tmp_path / "commands"
    commands.write_text("# a comment line\n" + quoted)
    assert read_command_lines(str(commands)) == [(2, ["mkgraph", *_TRICKY]), (3, _TRICKY)]
    assert shell_words("a\\ #b \"x\\\"y\" 'c'd # e") == ["a #b", 'x"y', "cd"]


def test_a_line_that_does_not_parse_names_the_file_and_line(tmp_path):
    commands = tmp_path / "commands"
    commands.write_text("mkgraph a b c\nmkgraph 'unterminated\n")
    with pytest.raises(InputError, match=r"commands:2: cannot split the command line"):
        read_command_lines(str(commands))
