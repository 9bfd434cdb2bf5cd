"""Every verb's `--help` shows its usage examples as written: an `e.g.:` block, one example per line.

Click re-flows a help paragraph unless it starts with a `\\b` line, and a bare backslash at a line's
end inside a docstring joins the next line to it; either one runs two examples together into one
line a user cannot copy (decode-commands did both). The examples are compared with the docstring.
"""

import click
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli


def _verbs(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _verbs(command, prefix + (name,))
        else:
            yield prefix + (name,), command


VERBS = dict(_verbs())


@pytest.mark.parametrize("verb", sorted(VERBS), ids=" ".join)
def test_the_help_shows_each_example_on_a_line_of_its_own(verb):
    help_text = CliRunner().invoke(cli, [*verb, "--help"], terminal_width=1000).output
    assert "e.g." in help_text, f"{' '.join(verb)} --help has no e.g. example"
    shown = [line.strip() for line in help_text.splitlines()]
    for line in shown:
        assert line.count("kaldilite ") <= 1, \
            f"two examples run together in `kaldilite {' '.join(verb)} --help`: {line}"
    # each docstring line that starts an example is a line of the help as it was written
    doc_lines = [line.strip().removeprefix("e.g.:").strip() for line in (VERBS[verb].help or "").splitlines()]
    for example in (line for line in doc_lines if line.startswith("kaldilite ")):
        assert any(line.removeprefix("e.g.:").strip() == example.replace("\\\\", "\\") for line in shown), \
            f"`kaldilite {' '.join(verb)} --help` re-flowed the example {example!r}"
