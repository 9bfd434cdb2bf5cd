"""Kaldi config files and command-line overrides for option dataclasses (kaldilite.io.config)."""

import click
import pytest
from click.testing import CliRunner

from kaldilite.errors import InputError, MissingFileError
from kaldilite.feat import FbankOptions, MfccOptions
from kaldilite.io.config import click_options, options_from_click, options_to_config_lines, read_config


def write(tmp_path, text, name="mfcc.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_file_sets_nested_fields_with_comments_blank_lines_and_kaldi_spellings(tmp_path):
    path = write(tmp_path, """# MFCC for 8 kHz telephone speech
--sample-frequency=8000   # rate of FSDD

--num-mel-bins=15
--use_energy=false
--snip-edges=F
--high-freq=-200
--window-type=hamming
--raw-energy
""")
    opts = read_config(path, MfccOptions)
    assert opts.frame_opts.sample_frequency == 8000.0
    assert opts.mel_opts.num_mel_bins == 15 and opts.mel_opts.high_freq == -200.0
    assert opts.use_energy is False and opts.raw_energy is True
    assert opts.frame_opts.snip_edges is False and opts.frame_opts.window_type == "hamming"
    # Untouched options keep Kaldi's defaults.
    assert opts.num_ceps == 13 and opts.frame_opts.dither == 1.0 and opts.cepstral_lifter == 22.0


def test_overrides_beat_the_file(tmp_path):
    path = write(tmp_path, "--num-ceps=10\n--dither=0\n")
    opts = read_config(path, MfccOptions, overrides={"num-ceps": 20, "num_mel_bins": "30", "snip-edges": "false"})
    assert opts.num_ceps == 20 and opts.mel_opts.num_mel_bins == 30 and opts.frame_opts.dither == 0.0
    assert opts.frame_opts.snip_edges is False


def test_unknown_option_names_file_line_and_the_close_match(tmp_path):
    path = write(tmp_path, "--sample-frequency=8000\n\n--num-mel-bin=23\n")
    with pytest.raises(InputError) as error:
        read_config(path, MfccOptions)
    message = str(error.value)
    assert message.startswith(f"{path}:3: unknown option --num-mel-bin for MfccOptions (did you mean --num-mel-bins?)")
    assert "known options:" in message and "--cepstral-lifter" in message


def test_option_of_another_tool_is_unknown(tmp_path):
    path = write(tmp_path, "--use-log-fbank=true\n")
    with pytest.raises(InputError, match=r":1: unknown option --use-log-fbank for MfccOptions"):
        read_config(path, MfccOptions)
    assert read_config(path, FbankOptions).use_log_fbank is True


@pytest.mark.parametrize("line, expected", [
    ("--num-ceps=13.5", "expected an integer"),
    ("--dither=lots", "expected a number"),
    ("--use-energy=yes", "expected true or false"),
])
def test_malformed_value_names_line_and_expected_type(tmp_path, line, expected):
    path = write(tmp_path, "# header\n" + line + "\n")
    with pytest.raises(InputError, match=rf"{path.name}:2: bad value .* for --.*: {expected}"):
        read_config(path, MfccOptions)


def test_lines_without_dashes_and_missing_files_are_errors(tmp_path):
    with pytest.raises(InputError, match=r":1: 'num-ceps=13' is not of the form --name=value"):
        read_config(write(tmp_path, "num-ceps=13\n"), MfccOptions)
    with pytest.raises(MissingFileError, match="config file not found"):
        read_config(tmp_path / "absent.conf", MfccOptions)


def test_config_lines_round_trip(tmp_path):
    opts = MfccOptions()
    opts.frame_opts.sample_frequency = 8000
    opts.mel_opts.high_freq = -123.5
    opts.use_energy = False
    lines = options_to_config_lines(opts)
    assert "--sample-frequency=8000" in lines and "--high-freq=-123.5" in lines and "--use-energy=false" in lines
    assert read_config(write(tmp_path, "\n".join(lines)), MfccOptions) == opts
    assert options_to_config_lines(opts, only_changed=True) == [
        "--sample-frequency=8000", "--high-freq=-123.5", "--use-energy=false"]


def test_click_options_override_the_config_like_kaldi_command_lines(tmp_path):
    path = write(tmp_path, "--num-ceps=10\n--sample-frequency=8000\n")
    captured = {}

    @click.command()
    @click.option("--config", type=click.Path())
    @click_options(MfccOptions)
    @click.argument("data")
    def verb(config, data, **kwargs):
        captured["opts"] = options_from_click(MfccOptions, config, kwargs)
        captured["rest"] = (data, kwargs)

    result = CliRunner().invoke(verb, ["--config", str(path), "--num-ceps=20", "--snip-edges=false", "data/train"])
    assert result.exit_code == 0, result.output
    opts = captured["opts"]
    assert opts.num_ceps == 20 and opts.frame_opts.sample_frequency == 8000 and opts.frame_opts.snip_edges is False
    assert captured["rest"] == ("data/train", {})
    help_text = CliRunner().invoke(verb, ["--help"]).output
    assert "--num-mel-bins" in help_text and "[default: 23]" in help_text


def test_kaldi_options_we_do_not_implement_are_refused_unless_at_their_default(tmp_path):
    assert read_config(write(tmp_path, "--vtln-map=\n--subtract-mean=false\n"), MfccOptions) == MfccOptions()
    with pytest.raises(InputError, match=r"mfcc.conf:2: --vtln-map=ark:warps.ark is not supported \(per-utterance VTLN"):
        read_config(write(tmp_path, "--dither=0\n--vtln-map=ark:warps.ark\n"), MfccOptions)
    with pytest.raises(InputError, match="--subtract-mean=true is not supported"):
        read_config(None, FbankOptions, overrides={"subtract-mean": "true"})
