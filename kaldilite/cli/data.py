"""`kaldilite data validate|fix|subset|combine|split`: Kaldi's data-dir utilities.

Thin wrappers over `kaldilite.io.datadir`, with the arguments and flags of Kaldi's
`utils/validate_data_dir.sh`, `fix_data_dir.sh`, `subset_data_dir.sh`, `combine_data.sh` and
`split_data.sh`. The Kaldi script names (`kaldilite fix-data-dir ...`) work as hidden aliases.
"""

import logging
import sys

import click

log = logging.getLogger("kaldilite.cli.data")


@click.group("data")
def data_group():
    """Validate, fix, subset, combine and split Kaldi data directories."""


@data_group.command("validate")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--no-feats", is_flag=True, help="feats.scp is optional (checked when present).")
@click.option("--no-text", is_flag=True, help="text is optional (checked when present).")
@click.option("--no-wav", is_flag=True, help="wav.scp is optional (checked when present).")
@click.option("--no-spk-sort", is_flag=True, help="Do not require utt2spk to be sorted by speaker too.")
@click.option("--non-print", is_flag=True, help="Allow non-printable characters in text.")
@click.option("--no-audio-check", is_flag=True, help="Do not open the audio files named in wav.scp.")
@click.option("--sample-frequency", type=float, default=None,
              help="Also require every audio file to have this sample rate (Hz).")
def validate_cmd(data_dir, no_feats, no_text, no_wav, no_spk_sort, non_print, no_audio_check, sample_frequency):
    """Check a data dir like utils/validate_data_dir.sh; print every problem as file:line.

    Exits 1 when there is any error (warnings alone pass).

    \b
    e.g.: kaldilite data validate --no-feats data/train
    """
    from kaldilite.io.datadir import count_summary, validate_data_dir

    problems = validate_data_dir(data_dir, no_feats=no_feats, no_text=no_text, no_wav=no_wav,
                                 no_spk_sort=no_spk_sort, non_print=non_print,
                                 check_audio=not no_audio_check, sample_frequency=sample_frequency)
    for problem in problems:
        click.echo(str(problem))
    errors = [p for p in problems if not p.warning]
    if errors:
        click.echo(f"{data_dir}: {len(errors)} problem(s); 'kaldilite data fix {data_dir}' repairs "
                   "sorting and inconsistent utterance lists", err=True)
        sys.exit(1)
    num_utts, num_speakers = count_summary(data_dir)
    click.echo(f"{data_dir}: ok ({num_utts} utterances, {num_speakers} speakers)")


@data_group.command("fix")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--utt-extra-files", default="", metavar="'FILE ...'",
              help="More utterance-indexed files of DATA_DIR to sort and filter (space-separated names).")
def fix_cmd(data_dir, utt_extra_files):
    """Sort the files and keep only utterances present in all of them (utils/fix_data_dir.sh).

    The old files are kept in DATA_DIR/.backup.

    \b
    e.g.: kaldilite data fix data/train
    """
    from kaldilite.io.datadir import fix_data_dir

    report = fix_data_dir(data_dir, utt_extra_files=utt_extra_files)
    kept, before = report["utt2spk"][1], report["utt2spk"][0]
    click.echo(f"{data_dir}: kept {kept} of {before} utterances" if kept != before
               else f"{data_dir}: kept all {kept} utterances")
    for name, (n_before, n_after) in report.items():
        if n_before and n_before != n_after:
            click.echo(f"  {name}: {n_before} -> {n_after} lines")


@data_group.command("subset")
@click.argument("args", nargs=-1, required=True, metavar="SRC_DIR [NUM] DEST_DIR")
@click.option("--first", "mode", flag_value="first", help="The first NUM utterances.")
@click.option("--last", "mode", flag_value="last", help="The last NUM utterances.")
@click.option("--per-spk", "mode", flag_value="per_spk", help="NUM utterances per speaker.")
@click.option("--speakers", "mode", flag_value="speakers", help="Random whole speakers, about NUM utterances.")
@click.option("--shortest", "mode", flag_value="shortest", help="The NUM shortest utterances.")
@click.option("--utt-list", type=click.Path(exists=True, dir_okay=False), help="Keep the utterances listed in this file.")
@click.option("--spk-list", type=click.Path(exists=True, dir_okay=False), help="Keep the speakers listed in this file.")
def subset_cmd(args, mode, utt_list, spk_list):
    """Copy a subset of SRC_DIR to DEST_DIR (utils/subset_data_dir.sh).

    Arguments: SRC_DIR NUM DEST_DIR, or SRC_DIR DEST_DIR with --utt-list/--spk-list.
    Without an option NUM utterances are taken evenly spread through the sorted list.

    \b
    e.g.: kaldilite data subset data/train 500 data/train_500
          kaldilite data subset --spk-list spk.list data/train data/train_spk
    """
    from kaldilite.io.datadir import subset_data_dir

    lists = utt_list is not None or spk_list is not None
    if lists and mode:
        raise click.UsageError("--utt-list/--spk-list cannot be combined with --first/--last/--per-spk/--speakers/--shortest")
    if lists:
        if len(args) != 2:
            raise click.UsageError("with --utt-list or --spk-list give SRC_DIR DEST_DIR")
        src, dest = args
        subset_data_dir(src, dest, utt_list=utt_list, spk_list=spk_list)
    else:
        if len(args) != 3:
            raise click.UsageError("give SRC_DIR NUM DEST_DIR")
        src, num, dest = args
        try:
            num = int(num)
        except ValueError:
            raise click.UsageError(f"NUM must be an integer, got {num!r}") from None
        subset_data_dir(src, dest, num, **({mode: True} if mode else {}))
    from kaldilite.io.datadir import count_summary

    num_utts, num_speakers = count_summary(dest)
    click.echo(f"{dest}: {num_utts} utterances, {num_speakers} speakers")


@data_group.command("combine")
@click.argument("dest_dir", type=click.Path(file_okay=False))
@click.argument("src_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--extra-files", default="", metavar="'FILE ...'",
              help="More utterance-indexed files to combine, by the same rule (space-separated names).")
def combine_cmd(dest_dir, src_dirs, extra_files):
    """Combine data dirs into DEST_DIR (utils/combine_data.sh).

    A file some SRC_DIR lacks is left out, with a warning naming it; but utt2uniq (as Kaldi: a
    SRC_DIR without it maps each utterance to itself) and utt2pad (a SRC_DIR without it has no
    padded utterance) are combined from those that have them.

    \b
    e.g.: kaldilite data combine data/train_all data/train_fsdd data/train_sc
    """
    from kaldilite.io.datadir import combine_data_dirs, count_summary

    combine_data_dirs(dest_dir, src_dirs, extra_files=extra_files)
    num_utts, num_speakers = count_summary(dest_dir)
    click.echo(f"{dest_dir}: {num_utts} utterances, {num_speakers} speakers")


@data_group.command("split")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("num_to_split", type=click.IntRange(min=1))
@click.option("--per-utt", is_flag=True, help="Ignore speakers (output in splitNutt).")
def split_cmd(data_dir, num_to_split, per_utt):
    """Split DATA_DIR into DATA_DIR/splitN/1..N by speaker (utils/split_data.sh).

    Reuses an existing split that is newer than the data dir.

    \b
    e.g.: kaldilite data split data/train 4
    """
    from kaldilite.io.datadir import split_data_dir

    for part in split_data_dir(data_dir, num_to_split, per_utt=per_utt):
        click.echo(str(part))


def _kaldi_alias(command, kaldi_name):
    """The same verb under the name of the Kaldi script it replaces (hidden from --help)."""
    return click.Command(kaldi_name, callback=command.callback, params=command.params, help=command.help,
                         hidden=True, context_settings=command.context_settings)


COMMANDS = [
    data_group,
    _kaldi_alias(validate_cmd, "validate-data-dir"),
    _kaldi_alias(fix_cmd, "fix-data-dir"),
    _kaldi_alias(subset_cmd, "subset-data-dir"),
    _kaldi_alias(combine_cmd, "combine-data"),
    _kaldi_alias(split_cmd, "split-data"),
]
