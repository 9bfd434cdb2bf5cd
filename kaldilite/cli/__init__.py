"""The `kaldilite` command: one click group, one thin verb per Kaldi tool it replaces.

Every module in this package (corpus, data, feat, lang, train, decode, score, ...) defines its
verbs and lists them in a module-level `COMMANDS`; the group picks up every such module, so a
new area adds a file here and nothing else. Verbs import the library inside their body so that
`kaldilite --help` stays fast. User errors (`KaldiliteError`) print one line and exit 1.

Modules are imported when a verb is looked up, and only the one whose source names the verb in
its `click.command("verb")` decorator (all of them when none does, e.g. for a computed name, and
for `--help`): building every verb's click options costs ~20 ms of CPU per run (click parses
~400 option declarations and looks up their translations), a fifth of what a small step such
as `mkgraph` needs in all.
"""

import gc
import importlib
import logging
import os
import pkgutil
import re
import sys
from pathlib import Path

import click

from kaldilite import __version__
from kaldilite.errors import KaldiliteError

_MODULES = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
_loaded_modules = set()

# Verbs whose process needs no BLAS thread pool (mkgraph does no dense linear algebra; the
# others run their jobs with one BLAS thread each anyway, and their own algebra is on small
# matrices): they start numpy without OpenBLAS's worker threads (unless the user set
# OPENBLAS_NUM_THREADS), which saves ~12 ms of numpy's import (a tenth of `mkgraph`) and the
# threads' spinning on the cores the jobs use (FSDD SI, --nj 2, busy machine: train-mono
# 16.1 -> 13.8 s CPU, train-deltas 13.8 -> 12.4, train-lda-mllt 23.3 -> 20.8, train-sat
# 22.6 -> 20.4; the same final.mdl, byte for byte).
_SINGLE_THREADED_BLAS_VERBS = frozenset({"mkgraph", "align", "decode", "train-mono", "train-deltas",
                                         "train-lda-mllt", "train-sat"})


def _load(module_name):
    if module_name not in _loaded_modules:
        _loaded_modules.add(module_name)
        module = importlib.import_module(f"kaldilite.cli.{module_name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


def _modules_naming(verb):
    """The modules whose source declares `verb` by name in a click command or group decorator."""
    declared = re.compile(r"""\.(?:command|group)\(\s*["']%s["']""" % re.escape(verb))
    found = []
    for module_name in _MODULES:
        try:
            source = (Path(__path__[0]) / f"{module_name}.py").read_text(encoding="utf-8")
        except OSError:  # installed without sources: fall back to loading every module
            continue
        if declared.search(source):
            found.append(module_name)
    return found


class _LazyGroup(click.Group):
    """A click group that imports its verbs' modules only when it needs them (see the module doc)."""

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is None:
            for module_name in _modules_naming(cmd_name):
                _load(module_name)
            command = super().get_command(ctx, cmd_name)
        if command is None:
            for module_name in _MODULES:
                _load(module_name)
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx):
        for module_name in _MODULES:
            _load(module_name)
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kaldilite")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose):
    """Kaldi-style speech recognition for command words, in Python."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s (%(name)s) %(message)s", stream=sys.stderr)


def main(argv=None):
    """Entry point: run the group, turning user errors into one line on stderr and exit 1."""
    args = sys.argv[1:] if argv is None else list(argv)
    verb = next((a for a in args if not a.startswith("-")), "")
    # A run starts by creating its long-lived objects (the modules of numpy, click, OpenFst,
    # numba: 100k and more); with CPython's default threshold (700 allocations) the collector
    # scans them over and over meanwhile (align's start-up: 2 full and 250 young collections,
    # 40 ms of its serial part). Collect young objects every 20000 allocations instead.
    gc.set_threshold(20000, 20, 20)
    if verb in _SINGLE_THREADED_BLAS_VERBS and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        cli.main(args=args, prog_name="kaldilite", standalone_mode=False)
    except KaldiliteError as exc:
        click.echo(f"kaldilite {verb}: error: {exc}".replace("  ", " "), err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    # The interpreter's exit garbage-collects every object still alive (numpy's, click's, the
    # OpenFst bindings', numba's: 100k and more), several passes while it tears modules down:
    # 25-40 ms, a quarter of a short verb such as `mkgraph`. The verb has closed its outputs, so
    # the collector is told to skip them (cyclic garbage is then left to the operating system,
    # which frees the memory anyway); reference counting still finalizes everything else.
    gc.freeze()
    sys.exit(0)


if __name__ == "__main__":
    main()
