"""recipes/utils/parse_options.sh follows Kaldi's conventions: --foo-bar sets foo_bar."""

import subprocess
from pathlib import Path

import pytest

PARSER = Path(__file__).resolve().parents[1] / "recipes" / "utils" / "parse_options.sh"

SCRIPT = """
stage=0
use_gpu=false
train_set=train
help_message="usage: demo"
. {parser}
echo "stage=$stage use_gpu=$use_gpu train_set=$train_set rest=$*"
"""


def run(tmp_path, *args):
    script = tmp_path / "demo.sh"
    script.write_text(SCRIPT.format(parser=PARSER))
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_options_set_variables_with_dashes_turned_to_underscores(tmp_path):
    out = run(tmp_path, "--stage", "3", "--train-set=dev", "--use-gpu", "true", "a", "b")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=3 use_gpu=true train_set=dev rest=a b"


def test_config_file_is_read_first_and_command_line_wins(tmp_path):
    conf = tmp_path / "my.conf"
    conf.write_text("stage=5\ntrain_set=other\n")
    out = run(tmp_path, "--stage", "7", "--config", str(conf))
    assert out.stdout.strip() == "stage=7 use_gpu=false train_set=other rest="


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no-such-thing", "1"], "unknown option --no-such-thing"),
        (["--use-gpu", "yes"], "takes true or false"),
        (["--stage"], "needs a value"),
    ],
)
def test_bad_options_fail_with_one_clear_line(tmp_path, args, message):
    out = run(tmp_path, *args)
    assert out.returncode != 0
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_prints_the_recipe_message(tmp_path):
    out = run(tmp_path, "--help")
    assert out.returncode == 0 and out.stdout.strip() == "usage: demo"
