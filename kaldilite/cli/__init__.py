"""The `kaldilite` command: one click group, one thin verb per Kaldi tool it replaces.

Every module in this package (corpus, data, feat, lang, train, decode, score, ...) defines its
verbs and lists them in a module-level `COMMANDS`; the group picks up every such module, so a
new area adds a file here and nothing else. Verbs import the library inside their body so that
`kaldilite --help` stays fast. User errors (`KaldiliteError`) print one line and exit 1.
"""

import importlib
import logging
import pkgutil
import sys

import click

from kaldilite import __version__
from kaldilite.errors import KaldiliteError



@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kaldilite")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose):
    """Kaldi-style speech recognition for command words, in Python."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s (%(name)s) %(message)s", stream=sys.stderr)


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"kaldilite.cli.{_info.name}")
    for _command in getattr(_module, "COMMANDS", ()):
        cli.add_command(_command)


def main(argv=None):
    """Entry point: run the group, turning user errors into one line on stderr and exit 1."""
    args = sys.argv[1:] if argv is None else list(argv)
    verb = next((a for a in args if not a.startswith("-")), "")
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
    sys.exit(0)


if __name__ == "__main__":
    main()
