"""Corpus verbs: `download-fsdd`, `prepare-fsdd` (recipes' stage 0)."""

import click


@click.command("download-fsdd")
@click.option("--source", type=click.Path(), default=None,
              help="Local FSDD folder (with recordings/) or archive; default: $KALDILITE_DATA/fsdd, else download.")
@click.argument("target", type=click.Path())
def download_fsdd_cmd(source, target):
    """Make the Free Spoken Digit Dataset available and print its folder.

    Uses --source when given, else the shared copy under $KALDILITE_DATA, else downloads the
    public archive into TARGET once (a marker file makes re-runs free).

    e.g.: kaldilite download-fsdd --source ~/corpora/fsdd downloads
    """
    from kaldilite.corpora.fsdd import download_fsdd
    from kaldilite.utils import data_root

    if source is None and data_root() is not None and (data_root() / "fsdd" / "recordings").is_dir():
        source = data_root() / "fsdd"
    click.echo(str(download_fsdd(target, source)))


@click.command("prepare-fsdd")
@click.option("--split", type=click.Choice(["independent", "dependent"]), default="independent", show_default=True,
              help="independent: test speakers theo+yweweler; dependent: takes 0-4 test.")
@click.option("--train-takes", type=int, default=None, help="Keep only this many takes per speaker and digit in train.")
@click.option("--test-takes", type=int, default=None, help="Keep only this many takes per speaker and digit in test.")
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path())
def prepare_fsdd_cmd(split, train_takes, test_takes, corpus_dir, out_dir):
    """Write OUT_DIR/train and OUT_DIR/test Kaldi data dirs from FSDD.

    e.g.: kaldilite prepare-fsdd --split dependent downloads/fsdd data
    """
    from kaldilite.corpora.fsdd import prepare_fsdd

    parts = prepare_fsdd(corpus_dir, out_dir, split, train_takes, test_takes)
    for name, data in parts.items():
        click.echo(f"{out_dir}/{name}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers", err=True)


COMMANDS = [download_fsdd_cmd, prepare_fsdd_cmd]
