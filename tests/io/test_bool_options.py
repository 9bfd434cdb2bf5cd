"""Boolean options read by Kaldi's rule (ParseOptions::ToBool in src/util/parse-options.cc: the value,
trimmed of C white space and lower-cased by C's tolower, is true for "true", "t", "1" or "" and false for
"false", "f" or "0"; anything else is an error). click's BOOL also takes yes/no, y/n and on/off: every
verb's boolean option taking a value gets the Kaldi type (kaldilite.cli.kaldi_number_types). The table
below is ToBool's, by hand."""

import click
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli, kaldi_number_types
from kaldilite.io.config import convert_string_to_bool

TRUE = ["true", "TRUE", "True", "t", "T", "1", "", " true", "t\t"]
FALSE = ["false", "FALSE", "f", "F", "0", "\vfalse\n"]
REFUSED = ["yes", "no", "on", "off", "y", "n", "YES", "tru", "2", "-1", "true false", "\u00a0true", "\u0661",
           "\uff54rue"]  # (fullwidth t: Python's lower() keeps it non-ASCII)


def test_convert_string_to_bool_is_kaldis_to_bool():
    assert [convert_string_to_bool(text) for text in TRUE] == [True] * len(TRUE)
    assert [convert_string_to_bool(text) for text in FALSE] == [False] * len(FALSE)
    for text in REFUSED:
        with pytest.raises(ValueError):
            convert_string_to_bool(text)


def _command():
    @click.command()
    @click.option("--binary", type=click.BOOL, default=True)
    @click.option("--inferred", default=False)  # click infers BOOL from the default
    @click.option("--flag/--no-flag", default=False)
    def command(binary, inferred, flag):
        click.echo(f"{binary} {inferred} {flag}")

    return kaldi_number_types(command)


@pytest.mark.parametrize("text, value", [(t, True) for t in TRUE] + [(f, False) for f in FALSE])
def test_a_bool_option_takes_what_kaldi_takes(text, value):
    out = CliRunner().invoke(_command(), [f"--binary={text}", f"--inferred={text}", "--flag"])
    assert out.exit_code == 0, out.output
    assert out.output.split() == [str(value), str(value), "True"]


@pytest.mark.parametrize("text", REFUSED)
def test_a_bool_option_refuses_what_kaldi_refuses(text):
    out = CliRunner().invoke(_command(), [f"--binary={text}"])
    assert out.exit_code == 2 and "is not true or false as Kaldi reads it" in out.output


def test_a_verbs_bool_option_is_kaldis():
    out = CliRunner().invoke(cli, ["matrix-sum", "--binary=yes", "scp:x.scp", "out.mat"])
    assert out.exit_code == 2 and "'yes' is not true or false as Kaldi reads it" in out.output
