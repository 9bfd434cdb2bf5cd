"""`kaldilite run-many`: many short kaldilite command lines in a few warm processes.

A recipe stage such as the commands recipe's stage 9 runs dozens of independent short steps (a
decode of 35 utterances, a graph). As separate processes each pays the interpreter, numpy/scipy/
numba imports and the loading of every compiled decoder function: ~1.5 s of CPU for a
decode-commands of one utterance, more than the decoding of a held-out set. `run-many` reads the
command lines (one per line, shell-quoted as a recipe writes them, with or without the leading
`kaldilite`), starts at most --nj worker processes, and each worker runs its share one after
the other in itself, through the same entry point as the `kaldilite` command (`kaldilite.cli.
run_verb`): one start-up per worker instead of one per command. Each command's output goes to
this process's stdout/stderr as it would alone; its exit code is what it would have exited with.
As run.pl with --max-jobs-run, nothing orders the commands: they must not read each other's outputs.

The first command runs alone (the others are handed to the workers once it has ended): on a fresh
install it fills numba's on-disk cache once, which concurrent first commands would each compile (~10 s
of CPU for a decode). The workers are those of the project's local job pool (a ProcessPoolExecutor
forked from this process, as kaldilite.parallel's), so a command may run --nj jobs of its own; Ctrl-C
stops them all. Unlike run.pl there are no per-command logs: each command writes where it would alone.
"""

import re
import shlex
import sys

import click

from kaldilite.errors import InputError, KaldiliteError


def read_command_lines(path):
    """[(line number, argv without 'kaldilite')] of a commands file ('-': stdin); blank lines and
    #-comments skipped; a line that does not parse is an InputError naming the file and line."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    commands = []
    with handle:
        for number, line in enumerate(handle, 1):
            try:
                argv = shell_words(line)
            except ValueError as exc:
                raise InputError(f"{path}:{number}: cannot split the command line ({exc}); quote it as a shell "
                                 "would (printf '%q ')") from None
            if argv and argv[0] == "kaldilite":
                argv = argv[1:]
            if argv:
                commands.append((number, argv))
    return commands


# bash's $'...' escapes (what `printf %q` writes for an argument with control characters)
_ANSI_C_ESCAPES = {"a": b"\a", "b": b"\b", "e": b"\x1b", "E": b"\x1b", "f": b"\f", "n": b"\n", "r": b"\r",
                   "t": b"\t", "v": b"\v", "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}


def shell_words(line):
    """The words of one command line as bash splits a simple command: '...', "...", backslashes,
    $'...' (ANSI-C quoting: octal, hex and letter escapes) and a # that starts a word beginning a
    comment; no expansions ($VAR, `...` and ~ stay as written). shlex.split(comments=True) cuts a word at a
    # inside it (a#b -> a) and reads $'a\\tb' as $a\\tb. ValueError for an unclosed quote."""
    words, word, in_word, i, end = [], [], False, 0, len(line)
    while i < end:
        c = line[i]
        if c in " \t\r\n":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        if c == "#" and not in_word:
            break
        in_word = True
        if c == "\\":
            word.append(line[i + 1:i + 2].replace("\n", ""))  # backslash-newline continues the line
            i += 2
        elif c == "'":
            close = line.find("'", i + 1)
            if close < 0:
                raise ValueError("no closing quotation")
            word.append(line[i + 1:close])
            i = close + 1
        elif c == '"':
            i += 1
            while i < end and line[i] != '"':
                if line[i] == "\\" and i + 1 < end and line[i + 1] in '"\\$`\n':
                    word.append(line[i + 1].replace("\n", ""))
                    i += 2
                else:
                    word.append(line[i])
                    i += 1
            if i >= end:
                raise ValueError("no closing quotation")
            i += 1
        elif line.startswith("$'", i):
            value, i = _ansi_c_quoted(line, i + 2)
            word.append(value)
        else:
            word.append(c)
            i += 1
    if in_word:
        words.append("".join(word))
    return words


def _ansi_c_quoted(line, i):
    """The value of a $'...' whose body starts at line[i] -> (value, index after the closing quote)."""
    value = bytearray()
    while i < len(line) and line[i] != "'":
        if line[i] != "\\" or i + 1 >= len(line):
            value += line[i].encode("utf-8", "surrogateescape")
            i += 1
            continue
        c = line[i + 1]
        octal = re.match(r"[0-7]{1,3}", line[i + 1:i + 4])
        hexa = re.match(r"x([0-9a-fA-F]{1,2})", line[i + 1:i + 4])
        if octal:
            value.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        elif hexa:
            value.append(int(hexa.group(1), 16))
            i += 1 + len(hexa.group())
        else:
            value += _ANSI_C_ESCAPES.get(c, b"\\" + c.encode("utf-8", "surrogateescape"))
            i += 2
    if i >= len(line):
        raise ValueError("no closing quotation")
    return value.decode("utf-8", "surrogateescape"), i + 1


def _run_one(argv):
    """One command in this process -> its exit code (a crash is a traceback on stderr and 1; Ctrl-C
    is raised, so that the worker stops instead of going on with its next command)."""
    import traceback

    from kaldilite.cli import run_verb

    sys.argv = ["kaldilite", *argv]  # what job logs quote as the command line
    _fresh_logging()
    try:
        code = run_verb(argv)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:  # a library's sys.exit: its code, as the process would have exited
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 -- as the interpreter would report it, then the next command
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _fresh_logging():
    """Logging as a fresh `kaldilite` process starts (root at WARNING, no handler, every logger's level
    unset; no module sets one at import), so that the command's own -v decides what it shows (its cli()
    configures the root) and nothing an earlier command, or run-many's own -v, set carries over."""
    import logging

    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)


def run_many(commands, nj):
    """Run `commands` ([(line, argv)]) in at most `nj` forked workers of the project's process pool
    (a ProcessPoolExecutor, as kaldilite.parallel's local jobs: its workers may start pools of their
    own, for a command's --nj); returns their exit codes in order. Ctrl-C stops the workers at once."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from kaldilite.parallel import stop_pool

    if not commands:
        return []
    pool = ProcessPoolExecutor(min(nj, len(commands)), mp_context=multiprocessing.get_context("fork"))
    try:
        first = pool.submit(_run_one, commands[0][1])
        codes = [first.result()]  # alone: the others are queued once it has ended
        futures = [pool.submit(_run_one, argv) for _, argv in commands[1:]]
        codes += [future.result() for future in futures]
    except BrokenProcessPool:
        stop_pool(pool)
        raise KaldiliteError("run-many: a worker process died without reporting (killed, out of memory?); "
                             "see the output above") from None
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown()
    return codes


@click.command("run-many")
@click.option("--nj", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (commands running at once), each running its commands one after the other.")
@click.option("--status", "status_path", type=click.Path(dir_okay=False),
              help="Write each command's 'LINE EXIT_CODE' here (line numbers of COMMANDS_FILE).")
@click.argument("commands_file", type=click.Path(allow_dash=True, dir_okay=False))
def run_many_cmd(nj, status_path, commands_file):
    """Run the kaldilite command lines of COMMANDS_FILE, at most N at a time in N warm worker processes.

    One command per line, shell-quoted, with or without the leading `kaldilite` ('-': stdin); blank
    lines and # comments are skipped. Each worker loads the libraries and the compiled code once and
    runs its commands one after the other, which saves each command's start-up (~1.5 s of CPU for a
    decode-commands). The commands must be independent (nothing orders them); the first runs alone.
    Exit status 1 when any command failed (--status lists every command's).

    \b
    Usage: kaldilite run-many [options] <commands-file>
     e.g.: printf '%s\\n' 'mkgraph data/lang_a exp/tri1 exp/tri1/graph_a' \\
             'mkgraph data/lang_b exp/tri1 exp/tri1/graph_b' | kaldilite run-many --nj 2 -
    """
    from kaldilite.utils import atomic_open

    commands = read_command_lines(commands_file)
    codes = run_many(commands, nj)
    if status_path:
        with atomic_open(status_path) as out:
            out.writelines(f"{line} {code}\n" for (line, _), code in zip(commands, codes))
    failed = [(line, argv) for (line, argv), code in zip(commands, codes) if code != 0]
    if failed:  # one line, as `kaldilite` reports an error: which lines, and the first one's command
        lines = " ".join(str(line) for line, _ in failed[:20]) + (" ..." if len(failed) > 20 else "")
        raise KaldiliteError(f"{len(failed)} of {len(commands)} commands failed (lines {lines} of {commands_file}); "
                             f"the first: kaldilite {shlex.join(failed[0][1])}; their errors are above")


COMMANDS = [run_many_cmd]
