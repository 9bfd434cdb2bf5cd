"""Discriminative training verbs: `make-denlats` (steps/make_denlats.sh), `train-mmi` (steps/train_mmi.sh) and
`train-nnet2-discriminative` (steps/nnet2/train_discriminative2.sh).

Thin wrappers over kaldilite.train.mmi, with the scripts' options and defaults.
"""

import click

from kaldilite.cli import progress_logging
from kaldilite.jobs.cli import job_options
from kaldilite.utils.click_options import decoder_options

_PROGRESS_LOGGERS = ("kaldilite.train.mmi",)


@click.command("make-denlats")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Decode with this model of ALI_DIR's tree instead of ALI_DIR/final.mdl, e.g. an nnet2 DNN's "
                   "final.mdl (steps/nnet2/make_denlats.sh) for train-nnet2-discriminative.")
@job_options
@decoder_options(beam=13.0, max_active=5000, min_active=None, acwt=0.1, lattice_beam=7.0,  # make_denlats.sh's
                 acwt_help="Acoustic scale of the decoding.", lattice_beam_help="Lattice beam (links kept within it).")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("graph", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("denlat_dir", type=click.Path(file_okay=False))
def make_denlats_cmd(data, lang, graph, ali_dir, denlat_dir, **kwargs):
    """Denominator lattices of the training data for MMI (steps/make_denlats.sh).

    Decodes DATA with ALI_DIR's model (and its fMLLR transforms trans.*, if any), or with --model
    (an nnet2 DNN reads DATA's features through its own pipeline: DATA is then the DNN's data dir,
    e.g. data/train_aug_hires), through GRAPH's HCLG (for command recognition: the recognition
    grammar, graph_commands) and keeps the state-level lattices in DENLAT_DIR/denlat.JOB.npz.

    \b
    Usage: kaldilite make-denlats [options] <data-dir> <lang-dir> <graph-dir> <ali-dir> <denlat-dir>
     e.g.: kaldilite make-denlats --nj 2 data/train_aug data/lang exp/tri3b/graph_commands \\
               exp/tri3b_ali exp/tri3b_denlats
    """
    from kaldilite.train.mmi import DenlatOptions, make_denlats

    progress_logging(*_PROGRESS_LOGGERS)
    model = kwargs.pop("model")
    result = make_denlats(data, lang, graph, ali_dir, denlat_dir, DenlatOptions(**kwargs), model=model)
    click.echo(f"make-denlats: {result['utterances']} lattices, {result['failed']} failed, "
               f"{result['links'] / max(result['frames'], 1):.1f} links per frame in {result['seconds']:.1f} s "
               f"-> {denlat_dir}")
    if not result["utterances"]:
        raise click.ClickException("make-denlats: no lattice was made")


@click.command("train-mmi")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--num-iters", default=4, show_default=True, help="Number of EBW iterations.")
@click.option("--boost", default=0.0, show_default=True,
              help="Boosting factor b of boosted MMI (lattice-boost-ali --b); Kaldi's recipes use 0.1.")
@click.option("--acwt", default=0.1, show_default=True, help="Acoustic scale of the lattice forward-backward.")
@click.option("--tau", default=400.0, show_default=True,
              help="I-smoothing constant towards the current model (gmm-est-gaussians-ebw --tau).")
@click.option("--weight-tau", default=10.0, show_default=True, help="Smoothing of the weight update.")
@click.option("--E", "E", default=2.0, show_default=True, help="EBW learning-rate constant (D >= E x den count).")
@click.option("--update-weights/--no-update-weights", default=True, show_default=True,
              help="Update the mixture weights (gmm-est-weights-ebw).")
@click.option("--stage", default=0, show_default=True, help="Resume from this iteration.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("denlat_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
def train_mmi_cmd(data, lang, ali_dir, denlat_dir, exp, **kwargs):
    """(Boosted) MMI training of a GMM system with extended Baum-Welch (steps/train_mmi.sh).

    Numerator: ALI_DIR's alignments; denominator: DENLAT_DIR's lattices (make-denlats), rescored
    with the current model every iteration. A SAT system stays one: EXP gets final.alimdl and
    is decoded with decode-fmllr / decode-commands as ALI_DIR's system is.

    \b
    Usage: kaldilite train-mmi [options] <data-dir> <lang-dir> <ali-dir> <denlat-dir> <exp-dir>
     e.g.: kaldilite train-mmi --boost 0.1 --nj 2 data/train_aug data/lang exp/tri3b_ali \\
               exp/tri3b_denlats exp/tri3b_mmi_b0.1
    """
    from kaldilite.train.mmi import MmiOptions, train_mmi

    progress_logging(*_PROGRESS_LOGGERS)
    result = train_mmi(data, lang, ali_dir, denlat_dir, exp, MmiOptions(**kwargs))
    objf = " ".join(f"{v:.4f}" for v in result["objf"])
    click.echo(f"train-mmi: done in {result['seconds']:.1f} s; MMI objective per frame by iteration: {objf} "
               f"-> {exp}/final.mdl")


@click.command("train-nnet2-discriminative")
@click.option("--criterion", default="mmi", show_default=True, type=click.Choice(["mmi", "smbr"]),
              help="Objective: mmi, or smbr (expected frame accuracy; Kaldi's default). Kaldi's mpfe is not "
                   "implemented.")
@click.option("--one-silence-class", default=True, show_default=True, type=bool,
              help="sMBR: a silence frame recognized as any silence pdf counts as right.")
@click.option("--num-epochs", default=4, show_default=True, help="Passes over the training data.")
@click.option("--learning-rate", default=2e-5, show_default=True, help="Constant learning rate.")
@click.option("--update", default="sgd", show_default=True, type=click.Choice(["sgd", "rms"]),
              help="sgd: nnet2's SGD on the minibatch's summed gradient; rms: train-nnet2 --update rms's "
                   "RMS-normalized step (the commands recipe's DNN is trained with it).")
@click.option("--momentum", default=0.0, show_default=True, help="Momentum (sgd) or Adam's beta1 (rms).")
@click.option("--max-change", default=2.0, show_default=True,
              help="Largest parameter change of a component in one minibatch (Frobenius norm).")
@click.option("--acwt", "--acoustic-scale", "acwt", default=0.1, show_default=True,
              help="Acoustic scale of the lattice forward-backward.")
@click.option("--boost", default=0.0, show_default=True, help="Boosting factor of boosted MMI (lattice-boost-ali --b).")
@click.option("--drop-frames", default=False, show_default=True, type=bool,
              help="MMI: no gradient on frames whose numerator pdf is missing from the lattice.")
@click.option("--frames-per-minibatch", default=512, show_default=True,
              help="Whole utterances are gathered into minibatches of at least this many frames.")
@click.option("--xent-regularize", default=0.0, show_default=True,
              help="Add this times the cross-entropy objective of the alignment (nnet3's --xent-regularize).")
@click.option("--spec-augment-freq-max-proportion", default=0.0, show_default=True,
              help="SpecAugment frequency masks on the training minibatches, as train-nnet2's option (0: off).")
@click.option("--num-utts-subset", default=100, show_default=True,
              help="Utterances held out to log the objective each epoch (not trained on).")
@click.option("--seed", default=0, show_default=True, help="Random seed (utterance order, held-out subset).")
@click.option("--copy-ali-prefixes", default=None,
              help="train-nnet2's option: COPY=SOURCE utterance-id prefixes whose copies take their source's "
                   "alignment as numerator. Default: as SRC_MODEL was trained (the option it recorded).")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("denlat_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("src_model", type=click.Path(exists=True, dir_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
def train_nnet2_discriminative_cmd(data, lang, ali_dir, denlat_dir, src_model, exp, **kwargs):
    """Sequence-discriminative (MMI or sMBR) training of an nnet2 DNN (steps/nnet2/train_discriminative2.sh).

    Starts from SRC_MODEL (train-nnet2's final.mdl, trained on ALI_DIR's alignments of DATA: the
    numerator) with DENLAT_DIR's lattices (make-denlats --model SRC_MODEL: the denominator) and
    writes EXP/final.mdl, an nnet2 model decode-commands and the online decoder read as they read
    SRC_MODEL.

    \b
    Usage: kaldilite train-nnet2-discriminative [options] <data-dir> <lang-dir> <ali-dir> <denlat-dir> \\
               <src-model> <exp-dir>
     e.g.: kaldilite train-nnet2-discriminative data/train_aug_hires data/lang exp/tri3b_ali \\
               exp/nnet2_denlats exp/nnet2/final.mdl exp/nnet2_mmi
    """
    from kaldilite.train.nnet_discriminative import NnetDiscriminativeOptions, train_nnet2_discriminative

    progress_logging(*_PROGRESS_LOGGERS, "kaldilite.train.nnet_discriminative")
    result = train_nnet2_discriminative(data, lang, ali_dir, denlat_dir, src_model, exp,
                                        NnetDiscriminativeOptions(**kwargs))
    objf = " ".join(f"{v:.4f}" for v in result["objf"])
    click.echo(f"train-nnet2-discriminative: done in {result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU); "
               f"validation {kwargs['criterion'].upper()} objective per frame before training and by epoch: {objf} "
               f"-> {exp}/final.mdl")


COMMANDS = [make_denlats_cmd, train_mmi_cmd, train_nnet2_discriminative_cmd]
