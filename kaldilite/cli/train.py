"""Training verbs: `train-mono` (steps/train_mono.sh) and `align` (steps/align_si.sh)."""

import click

from kaldilite.cli import progress_logging
from kaldilite.jobs.cli import job_options

# their per-iteration INFO lines are the user's progress report (train_mono.sh prints "Pass N")
_PROGRESS_LOGGERS = ("kaldilite.train.mono", "kaldilite.train.loop", "kaldilite.train.deltas")


@click.command("train-mono")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--num-iters", default=40, show_default=True, help="Number of training iterations.")
@click.option("--max-iter-inc", default=30, show_default=True, help="Last iteration to increase #Gauss on.")
@click.option("--totgauss", default=1000, show_default=True, help="Target number of Gaussians.")
@click.option("--boost-silence", default=1.0, show_default=True,
              help="Factor by which to boost silence likelihoods in alignment.")
@click.option("--power", default=0.25, show_default=True,
              help="Exponent of occupancy that sets each pdf's share of Gaussians.")
@click.option("--realign-iters", default=" ".join(map(str, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20,
                                                             23, 26, 29, 32, 35, 38))),
              show_default=True, help="Iterations on which to realign.")
@click.option("--initial-beam", default=6.0, show_default=True, help="Alignment beam on the first realignment.")
@click.option("--beam", "regular_beam", default=10.0, show_default=True, help="Alignment beam afterwards.")
@click.option("--retry-beam", default=40.0, show_default=True, help="Beam for utterances that fail to align.")
@click.option("--norm-vars", default=False, type=bool, show_default=True, help="Variance-normalise in CMVN.")
@click.option("--align-transition-probs", type=click.Choice(["model", "topology"]), default="model",
              show_default=True,
              help="Transition probabilities used when realigning: the current model's (Kaldi) or the "
                   "topology's initial ones compiled into the training graphs.")
@click.option("--stage", default=-4, show_default=True,
              help="Resume from this stage (-3 init, -2 graphs, N iteration).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="Kaldi-style config (--option=value lines) read before the command line.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
@click.pass_context
def train_mono_cmd(ctx, data, lang, exp, config, **kwargs):
    """Flat-start monophone GMM-HMM training (like steps/train_mono.sh).

    \b
    Usage: kaldilite train-mono [options] <data-dir> <lang-dir> <exp-dir>
     e.g.: kaldilite train-mono --nj 2 --totgauss 1000 data/train data/lang exp/mono
    """
    from kaldilite.io.config import click_values_with_configs, iteration_list
    from kaldilite.train.mono import MonoOptions, train_mono

    values = click_values_with_configs(ctx, [config] if config else [], kwargs)
    values["realign_iters"] = iteration_list(values["realign_iters"], "realign-iters")
    progress_logging(*_PROGRESS_LOGGERS)
    result = train_mono(data, lang, exp, MonoOptions(**values))
    hist = result["history"]
    click.echo(f"train-mono: done in {result['seconds']:.1f} s; final avg log-likelihood per frame "
               f"{hist[-1]['avg_loglike']:.4f} with {hist[-1]['num_gauss']} Gaussians -> {result['final_model']}")


@click.command("align")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--beam", default=10.0, show_default=True, help="Alignment beam.")
@click.option("--retry-beam", default=40.0, show_default=True, help="Beam for utterances that fail to align.")
@click.option("--boost-silence", default=1.0, show_default=True, help="Factor to boost silence likelihoods.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(file_okay=False))
def align_cmd(data, lang, src, ali_dir, nj, beam, retry_beam, boost_silence):
    """Align a data dir with a trained GMM model (like steps/align_si.sh).

    \b
    Usage: kaldilite align [options] <data-dir> <lang-dir> <src-dir> <align-dir>
     e.g.: kaldilite align --nj 2 data/train data/lang exp/mono exp/mono_ali
    """
    from kaldilite.train.align import align_si

    progress_logging(*_PROGRESS_LOGGERS)
    result = align_si(data, lang, src, ali_dir, nj=nj, beam=beam, retry_beam=retry_beam,
                      boost_silence=boost_silence)
    click.echo(f"align: aligned {result['aligned']} utterances, {result['failed']} failed -> {ali_dir}")


COMMANDS = [train_mono_cmd, align_cmd]
