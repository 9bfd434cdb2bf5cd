"""i-vector verbs: `train-diag-ubm`, `train-ivector-extractor`, `extract-ivectors-online` (steps/online/nnet2/)."""

import click

from kaldilite.cli import progress_logging
from kaldilite.jobs.cli import job_options

_PROGRESS_LOGGERS = ("kaldilite.ivector.ubm", "kaldilite.ivector.extractor", "kaldilite.ivector.train")


@click.command("train-diag-ubm")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--online-cmvn", default=True, type=bool, show_default=True,
              help="Online CMVN (from the data's global cmvn.scp stats) before splicing, as the online decoder.")
@click.option("--splice-context", default=3, show_default=True, help="Frames of left and right context spliced.")
@click.option("--pca-dim", default=40, show_default=True,
              help="Dimension of the PCA of the spliced frames (get_pca_transform.sh); 0 keeps them all.")
@click.option("--subsample", default=2, show_default=True, help="Use every n-th frame.")
@click.option("--num-frames", default=500000, show_default=True, help="Frames kept in memory for initialization.")
@click.option("--num-iters", default=4, show_default=True, help="EM iterations over all frames.")
@click.option("--num-iters-init", default=20, show_default=True, help="EM iterations of the initialization.")
@click.option("--initial-gauss-proportion", default=0.5, show_default=True,
              help="Proportion of the Gaussians to start with (then split).")
@click.option("--min-gaussian-weight", default=1e-4, show_default=True, help="Gaussians lighter than this are removed.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the initialization.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("num_gauss", type=click.IntRange(min=1))
@click.argument("exp", type=click.Path(file_okay=False))
def train_diag_ubm_cmd(data, num_gauss, exp, **kwargs):
    """Train the diagonal UBM of an i-vector extractor (steps/online/nnet2/train_diag_ubm.sh).

    Also estimates the PCA of the spliced frames (get_pca_transform.sh); EXP/final.dubm holds the UBM
    and its whole feature pipeline.

    \b
    Usage: kaldilite train-diag-ubm [options] <data-dir> <num-gauss> <exp-dir>
     e.g.: kaldilite train-diag-ubm --nj 2 data/train_hires 256 exp/nnet2_online/diag_ubm
    """
    from kaldilite.ivector.train import train_diag_ubm_dir

    progress_logging(*_PROGRESS_LOGGERS)
    result = train_diag_ubm_dir(data, num_gauss, exp, **kwargs)
    click.echo(f"train-diag-ubm: {result['num_gauss']} Gaussians on {result['num_frames']} frames, final "
               f"log-likelihood per frame {result['history'][-1]:.4f} -> {result['final_model']}")


@click.command("train-ivector-extractor")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--ivector-dim", default=100, show_default=True, help="Dimension of the extracted i-vector.")
@click.option("--num-iters", default=10, show_default=True, help="EM iterations.")
@click.option("--num-gselect", default=5, show_default=True, help="Gaussians selected per frame by the diagonal UBM.")
@click.option("--min-post", default=0.025, show_default=True, help="Posteriors below this are pruned.")
@click.option("--posterior-scale", default=0.1, show_default=True,
              help="Scale on the posteriors (frames are not independent).")
@click.option("--subsample", default=2, show_default=True, help="Use every n-th frame (posteriors scaled up by n).")
@click.option("--gaussian-min-count", default=100.0, show_default=True,
              help="Gaussians with less (scaled) count keep their parameters.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the initial projections.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("ubm_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
def train_ivector_extractor_cmd(data, ubm_dir, exp, **kwargs):
    """Train an i-vector extractor on a diagonal UBM (steps/online/nnet2/train_ivector_extractor.sh).

    \b
    Usage: kaldilite train-ivector-extractor [options] <data-dir> <diag-ubm-dir> <exp-dir>
     e.g.: kaldilite train-ivector-extractor --ivector-dim 50 data/train_hires exp/nnet2_online/diag_ubm \\
             exp/nnet2_online/extractor
    """
    from kaldilite.ivector.train import train_ivector_extractor_dir

    progress_logging(*_PROGRESS_LOGGERS)
    result = train_ivector_extractor_dir(data, ubm_dir, exp, **kwargs)
    click.echo(f"train-ivector-extractor: {result['num_utts']} utterances, log-likelihood per frame "
               f"{result['history'][0]:.4f} -> {result['history'][-1]:.4f} -> {result['final_model']}")


@click.command("extract-ivectors-online")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--ivector-period", default=10, show_default=True, help="Frames between i-vector estimates.")
@click.option("--num-gselect", type=int, default=None, help="Gaussians selected per frame [the extractor's].")
@click.option("--min-post", type=float, default=None, help="Posteriors below this are pruned [the extractor's].")
@click.option("--posterior-scale", type=float, default=None, help="Scale on the posteriors [the extractor's].")
@click.option("--max-count", default=0.0, show_default=True,
              help="If > 0, the data weighs at most this (scaled) count against the prior.")
@click.option("--max-remembered-frames", default=1000.0, show_default=True,
              help="Frames' worth of a speaker's stats carried to his next utterance.")
@click.option("--utts-per-spk-max", default=0, show_default=True, type=click.IntRange(min=0),
              help="If > 0, each speaker's utterances are first cut into pseudo-speakers of at most this many "
              "(utils/data/modify_speaker_info.sh; Kaldi's online nnet2 recipes extract the training data's "
              "i-vectors with 2, so that the network learns from i-vectors as noisy as a new speaker's).")
@click.option("--frame-weights-rspecifier", default=None,
              help="Per-utterance frame weights (a vector archive, e.g. ark:weights.ark or scp:weights.scp) scaling "
              "each frame's statistics, as ivector-extract-online2's option: the batch twin of decode-online's "
              "--ivector-silence-weighting.silence-weight. Every utterance needs its weights.")
@click.option("--length-tolerance", default=0, show_default=True, type=click.IntRange(min=0),
              help="Frames by which a weight vector may differ from its utterance's length (missing frames weigh 0).")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("extractor_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def extract_ivectors_online_cmd(data, extractor_dir, out_dir, **kwargs):
    """Extract online i-vectors, carried through each speaker's utterances (extract_ivectors_online.sh).

    Writes OUT_DIR/ivector_online.scp: per utterance a matrix with one i-vector per --ivector-period frames,
    OUT_DIR/ivector_period and OUT_DIR/final.ie.id (the extractor's md5: train-nnet2 --online-ivector-dir
    records it, and decoding refuses i-vectors of another extractor).

    \b
    Usage: kaldilite extract-ivectors-online [options] <data-dir> <extractor-dir> <ivector-dir>
     e.g.: kaldilite extract-ivectors-online --nj 2 data/dev_hires exp/nnet2_online/extractor \\
             exp/nnet2_online/ivectors_dev
           kaldilite extract-ivectors-online --utts-per-spk-max 2 data/train_hires exp/nnet2_online/extractor \\
             exp/nnet2_online/ivectors_train
    """
    from kaldilite.ivector.train import extract_ivectors_online_dir

    progress_logging(*_PROGRESS_LOGGERS)
    result = extract_ivectors_online_dir(data, extractor_dir, out_dir, **kwargs)
    click.echo(f"extract-ivectors-online: i-vectors of {result['num_utts']} utterances -> {result['scp']}")


COMMANDS = [train_diag_ubm_cmd, train_ivector_extractor_cmd, extract_ivectors_online_cmd]
