"""Feature-transform systems: `train-lda-mllt` (tri2b), `train-sat` (tri3b), `align-fmllr`, `decode-fmllr`.

Thin wrappers over kaldilite.train.lda_mllt and kaldilite.train.sat, with the options of
Kaldi's steps/train_lda_mllt.sh, train_sat.sh, align_fmllr.sh and decode_fmllr.sh.
"""

import click

from kaldilite.cli import progress_logging
from kaldilite.jobs.cli import job_options
from kaldilite.utils.click_options import decoder_options

# their per-iteration INFO lines are the progress report, as the scripts print "Pass N"
_PROGRESS_LOGGERS = ("kaldilite.train.loop", "kaldilite.train.lda_mllt", "kaldilite.train.sat")


def _splice_context(splice_opts):
    """--splice-opts "--left-context=3 --right-context=3" -> (3, 3)."""
    from kaldilite.io.config import convert_string_to_integer

    context = {"left-context": 4, "right-context": 4}  # splice-feats' own defaults
    for token in splice_opts.split():
        name, _, value = token.lstrip("-").partition("=")
        if name not in context:
            raise click.BadParameter(f"unknown splice option {token!r} (expected --left-context=N --right-context=N)",
                                     param_hint="--splice-opts")
        try:  # splice-feats' integer options, by Kaldi's rule (int() also took '1_0' and '٣')
            context[name] = convert_string_to_integer(value)
        except ValueError:
            raise click.BadParameter(f"{token!r}: expected an integer (e.g. --{name}=3)",
                                     param_hint="--splice-opts") from None
    return context["left-context"], context["right-context"]


def _common_training_options(func):
    options = [
        click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker)."),
        click.option("--num-iters", default=35, show_default=True, help="Number of training iterations."),
        click.option("--max-iter-inc", default=25, show_default=True, help="Last iteration to increase #Gauss on."),
        click.option("--realign-iters", default="10 20 30", show_default=True, help="Iterations on which to realign."),
        click.option("--beam", default=10.0, show_default=True, help="Alignment beam."),
        click.option("--retry-beam", default=40.0, show_default=True, help="Beam for utterances that fail to align."),
        click.option("--boost-silence", default=1.0, show_default=True, help="Factor to boost silence in alignment."),
        click.option("--cluster-thresh", default=-1.0, show_default=True,
                     help="Leaf-merging threshold of build-tree (-1: the smallest split gain)."),
        click.option("--var-floor", default=0.0, show_default=True,
                     help="Floor every Gaussian variance at this times the pooled within-Gaussian variance of its "
                          "dimension (0: only Kaldi's absolute floor 0.001)."),
        click.option("--stage", default=-5, show_default=True, help="Resume from this stage."),
    ]
    for option in reversed(options):
        func = option(func)
    return job_options(func)


_ARGS = [click.argument("num_leaves", type=int), click.argument("totgauss", type=int),
         click.argument("data", type=click.Path(exists=True, file_okay=False)),
         click.argument("lang", type=click.Path(exists=True, file_okay=False)),
         click.argument("ali_dir", type=click.Path(exists=True, file_okay=False)),
         click.argument("exp", type=click.Path(file_okay=False))]


def _training_arguments(func):
    for arg in reversed(_ARGS):
        func = arg(func)
    return func


@click.command("train-lda-mllt")
@_common_training_options
@click.option("--splice-opts", default="--left-context=3 --right-context=3", show_default=True,
              help="Frame splicing before LDA (splice-feats options).")
@click.option("--dim", default=40, show_default=True, help="Dimension after LDA.")
@click.option("--mllt-iters", default="2 4 6 12", show_default=True, help="Iterations on which to update MLLT.")
@_training_arguments
def train_lda_mllt_cmd(num_leaves, totgauss, data, lang, ali_dir, exp, splice_opts, dim, mllt_iters, realign_iters,
                       **kwargs):
    """Train an LDA+MLLT triphone system on a previous system's alignments (steps/train_lda_mllt.sh).

    \b
    Usage: kaldilite train-lda-mllt [options] <#leaves> <#gauss> <data> <lang> <ali-dir> <exp-dir>
     e.g.: kaldilite train-lda-mllt --nj 2 --splice-opts "--left-context=3 --right-context=3" \\
             2500 15000 data/train data/lang exp/tri1_ali exp/tri2b
    """
    from kaldilite.io.config import iteration_list
    from kaldilite.train.lda_mllt import LdaMlltOptions, train_lda_mllt

    left, right = _splice_context(splice_opts)
    progress_logging(*_PROGRESS_LOGGERS)
    opts = LdaMlltOptions(splice_left=left, splice_right=right, dim=dim,
                          mllt_iters=iteration_list(mllt_iters, "mllt-iters"),
                          realign_iters=iteration_list(realign_iters, "realign-iters"), **kwargs)
    result = train_lda_mllt(num_leaves, totgauss, data, lang, ali_dir, exp, opts)
    _report("train-lda-mllt", result)


@click.command("train-sat")
@_common_training_options
@click.option("--fmllr-iters", default="2 4 6 12", show_default=True, help="Iterations on which to update fMLLR.")
@click.option("--fmllr-update-type", type=click.Choice(["full", "diag", "offset", "none"]), default="full",
              show_default=True, help="fMLLR update type.")
@click.option("--silence-weight", default=0.0, show_default=True, help="Weight of silence frames in fMLLR stats.")
@_training_arguments
def train_sat_cmd(num_leaves, totgauss, data, lang, ali_dir, exp, fmllr_iters, realign_iters, **kwargs):
    """Speaker adaptive training with per-speaker fMLLR on LDA+MLLT features (steps/train_sat.sh).

    \b
    Usage: kaldilite train-sat [options] <#leaves> <#gauss> <data> <lang> <ali-dir> <exp-dir>
     e.g.: kaldilite train-sat --nj 2 2500 15000 data/train data/lang exp/tri2b_ali exp/tri3b
    """
    from kaldilite.io.config import iteration_list
    from kaldilite.train.sat import SatOptions, train_sat

    progress_logging(*_PROGRESS_LOGGERS)
    opts = SatOptions(fmllr_iters=iteration_list(fmllr_iters, "fmllr-iters"),
                      realign_iters=iteration_list(realign_iters, "realign-iters"), **kwargs)
    result = train_sat(num_leaves, totgauss, data, lang, ali_dir, exp, opts)
    _report("train-sat", result)


def _report(verb, result):
    hist = result["history"]
    last = f"; final avg log-likelihood per frame {hist[-1]['avg_loglike']:.4f} with {hist[-1]['num_gauss']} " \
           "Gaussians" if hist else ""
    click.echo(f"{verb}: done in {result['seconds']:.1f} s{last} -> {result['final_model']}")


@click.command("align-fmllr")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--beam", default=10.0, show_default=True, help="Alignment beam.")
@click.option("--retry-beam", default=40.0, show_default=True, help="Beam for utterances that fail to align.")
@click.option("--boost-silence", default=1.0, show_default=True, help="Factor to boost silence likelihoods.")
@click.option("--fmllr-update-type", type=click.Choice(["full", "diag", "offset", "none"]), default="full",
              show_default=True, help="fMLLR update type.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(file_okay=False))
def align_fmllr_cmd(data, lang, src, ali_dir, **kwargs):
    """Align a data dir with a SAT system, estimating fMLLR per speaker (steps/align_fmllr.sh).

    \b
    Usage: kaldilite align-fmllr [options] <data-dir> <lang-dir> <src-dir> <align-dir>
     e.g.: kaldilite align-fmllr --nj 2 data/train data/lang exp/tri3b exp/tri3b_ali
    """
    from kaldilite.train.sat import align_fmllr

    progress_logging(*_PROGRESS_LOGGERS)
    result = align_fmllr(data, lang, src, ali_dir, **kwargs)
    click.echo(f"align-fmllr: aligned {result['aligned']} utterances, {result['failed']} failed in "
               f"{result['seconds']:.1f} s -> {ali_dir}")


@click.command("decode-fmllr")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@decoder_options(min_active=None, beam_help="Decoding beam of the adapted passes.")  # steps/decode_fmllr.sh's
@click.option("--first-beam", default=10.0, show_default=True, help="Decoding beam of the speaker-independent pass.")
@click.option("--silence-weight", default=0.01, show_default=True, help="Weight of silence frames in fMLLR stats.")
@click.option("--fmllr-update-type", type=click.Choice(["full", "diag", "offset", "none"]), default="full",
              show_default=True, help="fMLLR update type.")
@click.option("--posteriors", type=click.Choice(["lattice", "best-path"]), default="lattice", show_default=True,
              help="Frame posteriors of the fMLLR statistics: each pass's lattice (as decode_fmllr.sh) or 1-best path.")
@click.option("--lattice-beam", default=6.0, show_default=True, help="Lattice beam of the speaker-independent pass.")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False),
              help="SAT system dir with final.mdl and final.alimdl (default: DECODE_DIR/..).")
@click.option("--si-dir", type=click.Path(exists=True, file_okay=False),
              help="Skip the speaker-independent pass: the first fMLLR estimate uses the lattices lat.*.gz of this "
              "decode dir (decode_fmllr.sh --si-dir), e.g. a speaker-independent DNN's (decode-nnet2 --lattice-beam).")
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(file_okay=False))
def decode_fmllr_cmd(graph_dir, data_dir, decode_dir, nj, beam, first_beam, max_active, acwt, silence_weight,
                     fmllr_update_type, posteriors, lattice_beam, model_dir, si_dir):
    """Two-pass fMLLR decoding with a SAT system (steps/decode_fmllr.sh).

    Speaker-independent first pass with final.alimdl (results in DECODE_DIR.si), per-speaker
    fMLLR from its lattices' posteriors, adapted pass with final.mdl, one more fMLLR update and the final
    pass; DECODE_DIR/{hyp.txt, wer, trans.JOB}.

    \b
    Usage: kaldilite decode-fmllr [options] <graph-dir> <data-dir> <decode-dir>
     e.g.: kaldilite decode-fmllr --nj 2 exp/tri3b/graph data/test exp/tri3b/decode_test
    """
    from pathlib import Path

    from kaldilite.graph.provenance import check_graph_for_model
    from kaldilite.train.sat import FmllrDecodeOptions, decode_fmllr

    model_path = Path(model_dir or Path(decode_dir).parent) / "final.mdl"
    if model_path.is_file():  # decode_fmllr names a missing SAT model itself
        check_graph_for_model(graph_dir, model_path)
    opts = FmllrDecodeOptions(beam=beam, first_beam=first_beam, max_active=max_active, acoustic_scale=acwt,
                              silence_weight=silence_weight, fmllr_update_type=fmllr_update_type,
                              posteriors=posteriors, lattice_beam=lattice_beam,
                              si_dir=None if si_dir is None else str(si_dir))
    result = decode_fmllr(graph_dir, data_dir, decode_dir, model_dir=model_dir, nj=nj, opts=opts)
    click.echo(f"decode-fmllr: done in {result['seconds']:.1f} s")
    for key in ("si", "final"):
        if result[key]:
            click.echo(result[key])


COMMANDS = [train_lda_mllt_cmd, train_sat_cmd, align_fmllr_cmd, decode_fmllr_cmd]
