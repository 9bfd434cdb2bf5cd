"""`decode-online --model` given a directory that is not a bundle (an experiment dir, an empty dir):
one line saying so and how to make a bundle, not a 'missing file, re-run export-model' of a damaged one."""

import pytest


def run_main(args, capsys):
    from kaldilite.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.mark.parametrize("is_exp_dir", [True, False], ids=["exp-dir", "empty-dir"])
def test_a_directory_that_is_not_a_bundle_says_how_to_export_one(tmp_path, capsys, is_exp_dir):
    exp = tmp_path / "nnet2"
    exp.mkdir()
    if is_exp_dir:  # what train-nnet2 leaves: a model, no bundle.json
        (exp / "final.mdl").write_bytes(b"")
        (exp / "tree").write_bytes(b"")
    code, out, err = run_main(["decode-online", "--model", str(exp), "--wav", str(tmp_path / "a.wav")], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "not a model bundle (no bundle.json)" in err and "re-run" not in err
    assert ("an experiment dir" in err) == is_exp_dir
    assert f"kaldilite export-model --mfcc-config CONF {exp if is_exp_dir else 'EXP'} GRAPH OUT_DIR" in err
    assert "stage 11" in err
