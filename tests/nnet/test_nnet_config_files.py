"""train-nnet2 --config is repeatable, as Kaldi's --config: files are read in order, a later one
overriding an earlier one, and the command line overrides them all. The commands recipe relies on
it: conf/nnet2_fmllr.conf holds only what differs from conf/nnet2.conf and run.sh passes both."""

from click.testing import CliRunner

from kaldilite.cli import cli


class _Captured(Exception):
    pass


def _options_of(tmp_path, monkeypatch, *args):
    """The Nnet2Options train-nnet2 would train with (training itself replaced by a capture)."""
    import kaldilite.nnet.train

    def capture(data, lang, ali_dir, exp, opts, **_):  # (realigner=...: train-nnet2 --realign-epochs)
        raise _Captured(opts)

    monkeypatch.setattr(kaldilite.nnet.train, "train_nnet2", capture)
    dirs = [tmp_path / name for name in ("data", "lang", "ali", "exp")]
    for d in dirs[:3]:
        d.mkdir(exist_ok=True)
    result = CliRunner().invoke(cli, ["train-nnet2", *args, *map(str, dirs)])
    assert isinstance(result.exception, _Captured), result.output
    return result.exception.args[0]


def test_later_config_files_override_earlier_ones_and_the_command_line_overrides_both(tmp_path, monkeypatch):
    shared, differs = tmp_path / "nnet2.conf", tmp_path / "nnet2_fmllr.conf"
    shared.write_text("# the shared schedule\n--num-epochs=4\n--minibatch-size=64\n--seed=0\n")
    differs.write_text("# only what differs\n--num-epochs=6\n")
    opts = _options_of(tmp_path, monkeypatch, "--config", str(shared))
    assert (opts.num_epochs, opts.minibatch_size, opts.seed) == (4, 64, 0)
    opts = _options_of(tmp_path, monkeypatch, "--config", str(shared), "--config", str(differs))
    assert (opts.num_epochs, opts.minibatch_size, opts.seed) == (6, 64, 0)
    opts = _options_of(tmp_path, monkeypatch, "--config", str(shared), "--config", str(differs), "--seed", "3",
                       "--num-epochs", "2")
    assert (opts.num_epochs, opts.minibatch_size, opts.seed) == (2, 64, 3)


def test_an_option_the_verb_lacks_is_refused_naming_file_line_and_verb(tmp_path, monkeypatch):
    from kaldilite.errors import InputError

    shared, typo = tmp_path / "nnet2.conf", tmp_path / "typo.conf"
    shared.write_text("--num-epochs=4\n")
    typo.write_text("# comment\n\n--num-epoch=6\n")
    import kaldilite.nnet.train

    monkeypatch.setattr(kaldilite.nnet.train, "train_nnet2", lambda *args: None)
    dirs = [tmp_path / name for name in ("data", "lang", "ali", "exp")]
    for d in dirs[:3]:
        d.mkdir()
    result = CliRunner().invoke(cli, ["train-nnet2", "--config", str(shared), "--config", str(typo), *map(str, dirs)])
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == f"{typo}:3: unknown option --num-epoch for train-nnet2"


def test_train_mono_reads_its_config_through_the_same_reader(tmp_path, monkeypatch):
    import kaldilite.train.mono

    def capture(data, lang, exp, opts):
        raise _Captured(opts)

    monkeypatch.setattr(kaldilite.train.mono, "train_mono", capture)
    conf = tmp_path / "mono.conf"
    conf.write_text("--totgauss=321\n--num-iters=7  # comment\n")
    dirs = [tmp_path / name for name in ("data", "lang", "exp")]
    for d in dirs[:2]:
        d.mkdir()
    result = CliRunner().invoke(cli, ["train-mono", "--config", str(conf), "--num-iters", "9", *map(str, dirs)])
    assert isinstance(result.exception, _Captured), result.output
    opts = result.exception.args[0]
    assert (opts.totgauss, opts.num_iters) == (321, 9)
