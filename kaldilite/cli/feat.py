"""`kaldilite make-mfcc | make-fbank | compute-cmvn-stats`: Kaldi's feature steps.

Thin wrappers over `kaldilite.feat.make`, with the arguments of steps/make_mfcc.sh,
steps/make_fbank.sh and steps/compute_cmvn_stats.sh (DATA [LOGDIR [FEATDIR]]) and every option
of compute-mfcc-feats / compute-fbank-feats (`--num-mel-bins=15 --dither=0 ...`), which
override the `--config` file as on Kaldi's command line.
"""

import click

from kaldilite.feat.options import FbankOptions, MfccOptions
from kaldilite.io.config import click_options


def _make_command(kind, options_cls, tool):
    @click.command(f"make-{kind}", context_settings={"show_default": True})
    @click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
    @click.argument("log_dir", required=False, type=click.Path(file_okay=False))
    @click.argument("feat_dir", required=False, type=click.Path(file_okay=False))
    @click.option("--config", f"--{kind}-config", "config", type=click.Path(exists=True, dir_okay=False),
                  help=f"Kaldi config file of {tool} options (e.g. conf/{kind}.conf); command-line options win.")
    @click.option("--nj", type=click.IntRange(min=1), default=4, help="Number of parallel jobs (split by speaker).")
    @click.option("--channel", type=int, default=-1, help="Channel to extract (-1: expect mono, 0: left, 1: right).")
    @click_options(options_cls)
    def command(data_dir, log_dir, feat_dir, config, nj, channel, **kwargs):
        from kaldilite.feat.make import make_features
        from kaldilite.io.config import options_from_click

        opts = options_from_click(options_cls, config, kwargs)
        counts = make_features(data_dir, log_dir, feat_dir, kind=kind, opts=opts, nj=nj, channel=channel)
        click.echo(f"make-{kind}: done {counts['done']} out of {counts['utterances']} utterances "
                   f"({counts['failed']} failed) for {data_dir}", err=True)

    command.help = (
        f"Compute {kind.upper()} features for a data dir, like steps/make_{kind}.sh + {tool}.\n\n"
        f"Splits DATA_DIR by speaker into --nj jobs, writes FEAT_DIR/raw_{kind}_<name>.JOB.ark/.scp "
        f"(default FEAT_DIR: DATA_DIR/data; logs in LOG_DIR, default DATA_DIR/log) and DATA_DIR/feats.scp, "
        f"utt2dur and utt2num_frames. Utterances that fail are reported in the job logs and skipped.\n\n"
        f"\b\ne.g.: kaldilite make-{kind} --config conf/{kind}.conf --nj 4 data/train exp/make_{kind}/train {kind}")
    return command


make_mfcc = _make_command("mfcc", MfccOptions, "compute-mfcc-feats")
make_fbank = _make_command("fbank", FbankOptions, "compute-fbank-feats")


@click.command("compute-cmvn-stats")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("log_dir", required=False, type=click.Path(file_okay=False))
@click.argument("cmvn_dir", required=False, type=click.Path(file_okay=False))
def compute_cmvn_stats_cmd(data_dir, log_dir, cmvn_dir):
    """Per-speaker CMVN stats for a data dir with features, like steps/compute_cmvn_stats.sh.

    Writes CMVN_DIR/cmvn_<name>.ark/.scp (default CMVN_DIR: DATA_DIR/data) and DATA_DIR/cmvn.scp.

    \b
    e.g.: kaldilite compute-cmvn-stats data/train exp/make_mfcc/train mfcc
    """
    from kaldilite.feat.make import compute_cmvn_stats

    count = compute_cmvn_stats(data_dir, log_dir, cmvn_dir)
    click.echo(f"compute-cmvn-stats: stats for {count} speakers of {data_dir}", err=True)


COMMANDS = [make_mfcc, make_fbank, compute_cmvn_stats_cmd]
