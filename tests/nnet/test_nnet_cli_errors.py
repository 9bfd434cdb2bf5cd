"""train-nnet2's option errors as a user sees them: one line, the verb named once.

`kaldilite.cli.main` prefixes every user error with "kaldilite VERB: error:"; the library's
messages (Nnet2Options.check, SpecAugment) must therefore not name the verb again.
"""

import pytest

from kaldilite.cli import main


@pytest.mark.parametrize("option, message", [
    (["--num-epochs", "0"], "--num-epochs, --samples-per-iter and --minibatch-size must be positive"),
    (["--spec-augment-freq-max-proportion", "1.5"], "--spec-augment-freq-max-proportion must be in [0, 1), got 1.5"),
], ids=["training", "spec_augment"])
def test_train_nnet2_option_error_is_one_line_with_one_prefix(tmp_path, capsys, option, message):
    for name in ("data", "lang", "ali"):
        (tmp_path / name).mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["train-nnet2", *option, str(tmp_path / "data"), str(tmp_path / "lang"), str(tmp_path / "ali"),
              str(tmp_path / "exp")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"kaldilite train-nnet2: error: {message}\n"
