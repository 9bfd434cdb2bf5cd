"""`kaldilite make-mfcc | make-fbank | compute-cmvn-stats | compute-mfcc-feats | compute-fbank-feats`,
`apply-cmvn-online` and `matrix-sum` (the online decoder's CMVN over a table, and its global stats).

Thin wrappers over `kaldilite.feat.make`, with the arguments of steps/make_mfcc.sh,
steps/make_fbank.sh and steps/compute_cmvn_stats.sh (DATA [LOGDIR [FEATDIR]]) and every option
of compute-mfcc-feats / compute-fbank-feats (`--num-mel-bins=15 --dither=0 ...`), which
override the `--config` file as on Kaldi's command line. The compute-*-feats verbs are the
low-level tools (wav rspecifier in, feature wspecifier out), handy for inspecting features:
`kaldilite compute-mfcc-feats --config conf/mfcc.conf scp:data/train/wav.scp ark,t:- | head`.
"""

import re
import sys

import click

from kaldilite.feat.cmvn import OnlineCmvnOptions
from kaldilite.feat.options import FbankOptions, MfccOptions
from kaldilite.io.config import click_options
from kaldilite.jobs.cli import job_options


def _make_command(kind, options_cls, tool):
    @click.command(f"make-{kind}", context_settings={"show_default": True})
    @click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
    @click.argument("log_dir", required=False, type=click.Path(file_okay=False))
    @click.argument("feat_dir", required=False, type=click.Path(file_okay=False))
    @click.option("--config", f"--{kind}-config", "config", type=click.Path(exists=True, dir_okay=False),
                  help=f"Kaldi config file of {tool} options (e.g. conf/{kind}.conf); command-line options win.")
    @click.option("--nj", type=click.IntRange(min=1), default=4, help="Number of parallel jobs (split by speaker).")
    @job_options
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
        f"utt2dur, utt2num_frames and frame_shift (the config's, in seconds). Utterances that fail are reported in the job logs and skipped.\n\n"
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


_WSPECIFIER = re.compile(r"^(ark|scp)((?:,[a-z]+)*):(.*)$")


def _write_text_matrix(handle, key, matrix):
    """Kaldi's text matrix format (`copy-feats ark:x.ark ark,t:-`)."""
    rows = [" ".join(f"{v:g}" for v in row) for row in matrix]
    body = "\n  ".join(rows)
    handle.write(f"{key}  [\n  {body} ]\n" if rows else f"{key}  [ ]\n")


def write_feature_table(items, wspecifier):
    """Write (key, matrix) items to `ark:X`, `ark,scp:X,Y` or text `ark,t:X` (`-` = stdout)."""
    from kaldilite.errors import InputError
    from kaldilite.io.tables import write_matrices
    from kaldilite.utils import atomic_open

    match = _WSPECIFIER.match(wspecifier)
    if not match:
        raise InputError(f"{wspecifier!r}: expected a Kaldi wspecifier such as ark:feats.ark, "
                         "ark,scp:feats.ark,feats.scp or ark,t:-")
    kinds = [match.group(1)] + [k for k in match.group(2).split(",") if k]
    paths = match.group(3).split(",")
    if kinds[0] != "ark":
        raise InputError(f"{wspecifier!r}: write an archive (ark:... or ark,scp:...), not a bare scp")
    text = "t" in kinds
    with_scp = "scp" in kinds
    if with_scp != (len(paths) == 2) or len(paths) > 2:
        raise InputError(f"{wspecifier!r}: ark,scp needs two file names (ark,scp:x.ark,x.scp); ark needs one")
    if text:
        if with_scp:
            raise InputError(f"{wspecifier!r}: an scp into a text archive is not supported; drop ',t' or ',scp'")
        if paths[0] == "-":
            for key, matrix in items:
                _write_text_matrix(sys.stdout, key, matrix)
            return
        with atomic_open(paths[0]) as out:
            for key, matrix in items:
                _write_text_matrix(out, key, matrix)
        return
    if paths[0] == "-":
        raise InputError(f"{wspecifier!r}: binary archives go to a file; use ark,t:- to print features")
    import os

    write_matrices(items, os.path.abspath(paths[0]) if with_scp else paths[0], paths[1] if with_scp else None)


def _compute_feats_command(kind, options_cls, tool):
    @click.command(tool, context_settings={"show_default": True})
    @click.argument("wav_rspecifier")
    @click.argument("feats_wspecifier")
    @click.option("--config", type=click.Path(exists=True, dir_okay=False),
                  help="Kaldi config file of options; command-line options win.")
    @click.option("--channel", type=int, default=-1, help="Channel to extract (-1: expect mono, 0: left, 1: right).")
    @click_options(options_cls)
    def command(wav_rspecifier, feats_wspecifier, config, channel, **kwargs):
        from kaldilite.errors import KaldiliteError
        from kaldilite.feat.make import KINDS, utterance_seed
        from kaldilite.io.audio import read_audio
        from kaldilite.io.config import options_from_click
        from kaldilite.io.tables import parse_rspecifier, read_scp

        opts = options_from_click(options_cls, config, kwargs)
        opts.check()
        _, compute = KINDS[kind]
        frame = opts.frame_opts
        table_kind, path = parse_rspecifier(wav_rspecifier)
        if table_kind != "scp":
            raise click.UsageError(f"{wav_rspecifier}: wave archives are not supported; give scp:wav.scp")
        counts = {"done": 0, "total": 0}

        def features():
            for number, utt, spec in read_scp(path):
                counts["total"] += 1
                try:
                    wave = read_audio(spec, frame.sample_frequency, allow_downsample=frame.allow_downsample,
                                      allow_upsample=frame.allow_upsample, channel=None if channel < 0 else channel)
                    feats = compute(wave, opts, seed=utterance_seed(frame.dither_seed, utt))
                except KaldiliteError as exc:
                    click.echo(f"WARNING ({tool}) failed to compute features for utterance {utt}: {exc}", err=True)
                    continue
                counts["done"] += 1
                yield utt, feats

        write_feature_table(features(), feats_wspecifier)
        click.echo(f"LOG ({tool}) Done {counts['done']} out of {counts['total']} utterances.", err=True)
        if counts["done"] == 0:
            sys.exit(1)

    command.help = (f"Compute {kind.upper()} features for each utterance of a wav.scp, like Kaldi's {tool}.\n\n"
                    f"Utterances that fail are reported and skipped; exits 1 if none succeeded.\n\n"
                    f"\b\ne.g.: kaldilite {tool} --config conf/{kind}.conf scp:data/train/wav.scp "
                    f"ark,scp:{kind}.ark,{kind}.scp")
    return command


compute_mfcc_feats = _compute_feats_command("mfcc", MfccOptions, "compute-mfcc-feats")
compute_fbank_feats = _compute_feats_command("fbank", FbankOptions, "compute-fbank-feats")

def _read_spk2utt(rspecifier):
    """speaker -> [utt, ...] of a Kaldi text table `ark:spk2utt` (or a bare path), in file order."""
    from kaldilite.errors import InputError, MissingFileError
    from kaldilite.io.datadir import read_entries
    from kaldilite.io.tables import parse_rspecifier

    kind, path = parse_rspecifier(rspecifier)
    if kind != "ark":
        raise InputError(f"--spk2utt={rspecifier}: expected a text table such as ark:data/train/spk2utt")
    try:
        entries = read_entries(path)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such spk2utt file; utils/utt2spk_to_spk2utt.pl makes it from utt2spk") \
            from None
    spk2utt = {}
    for entry in entries:
        if not entry.value or entry.key in spk2utt:
            raise InputError(f"{path}:{entry.line}: expected 'speaker utt1 utt2 ...' with each speaker once")
        spk2utt[entry.key] = entry.value.split()
    return spk2utt


@click.command("apply-cmvn-online", context_settings={"show_default": True})
@click.argument("global_stats")
@click.argument("feats_rspecifier")
@click.argument("feats_wspecifier")
@click.option("--spk2utt", "spk2utt_rspecifier",
              help="Speaker to utterance-list map (ark:data/train/spk2utt): each speaker's utterances in this "
                   "order, each starting from the stats of the ones before; without it every utterance starts "
                   "from the global stats alone.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="Kaldi config file of OnlineCmvn options (e.g. a bundle's conf/online_cmvn.conf); "
                   "command-line options win.")
@click_options(OnlineCmvnOptions)
def apply_cmvn_online_cmd(global_stats, feats_rspecifier, feats_wspecifier, spk2utt_rspecifier, config, **kwargs):
    """Apply online CMVN to features as the online decoder does (Kaldi's apply-cmvn-online).

    The normalization of decode-online (OnlineCmvn: a --cmn-window sliding window topped up at
    the start with the speaker's earlier utterances and the global stats), for a whole table of
    features at once. GLOBAL_STATS: the prior, e.g. a bundle's global_cmvn.stats or the training
    data's cmvn.scp summed (`kaldilite matrix-sum --binary=false scp:data/train/cmvn.scp global_cmvn.stats`).

    \b
    e.g.: kaldilite apply-cmvn-online --spk2utt=ark:data/dev/spk2utt exp/nnet2_online/global_cmvn.stats \\
            scp:data/dev/feats.scp ark,scp:cmvn_online.ark,cmvn_online.scp
    """
    from kaldilite.feat.cmvn import apply_cmvn_online
    from kaldilite.io.config import options_from_click
    from kaldilite.io.tables import read_matrices, read_matrix, read_matrix_dict

    opts = options_from_click(OnlineCmvnOptions, config, kwargs)
    opts.check()
    stats = read_matrix(global_stats)
    counts = {"utterances": 0, "frames": 0}
    if spk2utt_rspecifier:
        normalized = apply_cmvn_online(read_matrix_dict(feats_rspecifier), stats, opts,
                                       _read_spk2utt(spk2utt_rspecifier))
    else:
        normalized = apply_cmvn_online(read_matrices(feats_rspecifier), stats, opts)

    def counted():
        for utt, feats in normalized:
            counts["utterances"] += 1
            counts["frames"] += len(feats)
            yield utt, feats

    write_feature_table(counted(), feats_wspecifier)
    click.echo(f"LOG (apply-cmvn-online) Applied online CMVN to {counts['utterances']} files, or "
               f"{counts['frames']} frames.", err=True)
    if counts["utterances"] == 0:
        sys.exit(1)


@click.command("matrix-sum")
@click.argument("matrix_rspecifier")
@click.argument("matrix_wxfilename")
@click.option("--binary", type=click.BOOL, default=True, show_default=True, help="Write in binary mode.")
def matrix_sum_cmd(matrix_rspecifier, matrix_wxfilename, binary):
    """Sum all matrices of a table into one matrix file (Kaldi's matrix-sum, table-to-matrix form).

    The usual use: the global CMVN stats, the online-CMVN prior, from a data dir's per-speaker stats.

    \b
    e.g.: kaldilite matrix-sum --binary=false scp:data/train/cmvn.scp exp/nnet2_online_cmvn/global_cmvn.stats
    """
    from kaldilite.io.tables import sum_matrices, write_matrix

    total, count = sum_matrices(matrix_rspecifier, "they cannot be summed: give a table of one shape")
    write_matrix(matrix_wxfilename, total, binary=binary)  # float64: Kaldi's matrix-sum writes doubles
    click.echo(f"LOG (matrix-sum) Summed {count} matrices of dimension {total.shape[0]} by {total.shape[1]}", err=True)


COMMANDS = [make_mfcc, make_fbank, compute_cmvn_stats_cmd, compute_mfcc_feats, compute_fbank_feats,
            apply_cmvn_online_cmd, matrix_sum_cmd]
