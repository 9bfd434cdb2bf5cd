"""Triphone verbs: `train-deltas` (steps/train_deltas.sh) and `convert-ali` (Kaldi's convert-ali)."""

import click

from kaldilite.cli import progress_logging
from kaldilite.jobs.cli import job_options


@click.command("train-deltas")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@click.option("--num-iters", default=35, show_default=True, help="Number of training iterations.")
@click.option("--max-iter-inc", default=25, show_default=True, help="Last iteration to increase #Gauss on.")
@click.option("--realign-iters", default="10 20 30", show_default=True, help="Iterations on which to realign.")
@click.option("--beam", default=10.0, show_default=True, help="Alignment beam.")
@click.option("--retry-beam", default=40.0, show_default=True, help="Beam for utterances that fail to align.")
@click.option("--boost-silence", default=1.0, show_default=True,
              help="Factor by which to boost silence likelihoods in alignment.")
@click.option("--power", default=0.25, show_default=True,
              help="Exponent of occupancy that sets each pdf's share of Gaussians.")
@click.option("--var-floor", default=0.0, show_default=True,
              help="Floor every Gaussian variance at this times the pooled within-Gaussian variance of its dimension "
                   "(0: only Kaldi's absolute floor 0.001).")
@click.option("--cluster-thresh", default=-1.0, show_default=True,
              help="build-tree: merge leaves of a root while merging costs less than this (-1: the smallest split).")
@click.option("--thresh", default=300.0, show_default=True,
              help="build-tree: minimum log-likelihood gain of a split.")
@click.option("--round-num-leaves", default=True, type=bool, show_default=True,
              help="build-tree: merge leaves down to a multiple of 8.")
@click.option("--context-width", default=3, show_default=True, help="Phones in a context window (3: triphone).")
@click.option("--central-position", default=1, show_default=True, help="Position of the central phone.")
@click.option("--stage", default=-4, show_default=True,
              help="Resume from this stage (-3 tree stats, -2 tree, -1 convert-ali, 0 graphs, N iteration).")
@click.argument("num_leaves", type=click.IntRange(min=1))
@click.argument("totgauss", type=click.IntRange(min=1))
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
def train_deltas_cmd(num_leaves, totgauss, data, lang, ali_dir, exp, realign_iters, **kwargs):
    """Triphone GMM-HMM on delta features from a previous system's alignments (steps/train_deltas.sh).

    \b
    Usage: kaldilite train-deltas [options] <num-leaves> <tot-gauss> <data-dir> <lang-dir> <alignment-dir> <exp-dir>
     e.g.: kaldilite train-deltas --nj 2 2000 10000 data/train data/lang exp/mono_ali exp/tri1
    """
    from kaldilite.io.config import iteration_list
    from kaldilite.train.deltas import DeltasOptions, train_deltas

    realign = iteration_list(realign_iters, "realign-iters")
    progress_logging("kaldilite.train.deltas", "kaldilite.train.loop")
    result = train_deltas(num_leaves, totgauss, data, lang, ali_dir, exp,
                          DeltasOptions(realign_iters=realign, **kwargs))
    last = result["history"][-1] if result["history"] else None
    summary = (f"; final avg log-likelihood per frame {last['avg_loglike']:.4f} with {last['num_gauss']} Gaussians"
               if last else "")
    click.echo(f"train-deltas: done in {result['seconds']:.1f} s{summary} -> {result['final_model']}")


@click.command("convert-ali")
@click.argument("old_model", type=click.Path(exists=True, dir_okay=False))
@click.argument("new_model", type=click.Path(exists=True, dir_okay=False))
@click.argument("new_tree", type=click.Path(exists=True, dir_okay=False))
@click.argument("ali_in", type=click.Path(exists=True, dir_okay=False))
@click.argument("ali_out", type=click.Path(dir_okay=False))
def convert_ali_cmd(old_model, new_model, new_tree, ali_in, ali_out):
    """Map alignments of one model onto another model's tree (Kaldi's convert-ali).

    Phones, HMM states and transitions of every frame are kept; the pdfs come from the new tree
    in each phone's context. Alignments are Kaldi archives (gzipped when the name ends in .gz).

    \b
    Usage: kaldilite convert-ali <old-model> <new-model> <new-tree> <old-alignments> <new-alignments>
     e.g.: kaldilite convert-ali exp/mono_ali/final.mdl exp/tri1/1.mdl exp/tri1/tree exp/mono_ali/ali.1.gz ali.1.gz
    """
    from kaldilite.errors import InputError
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.hmm.tree_build import AlignmentConverter
    from kaldilite.io.tables import read_int_vectors, write_int_vectors

    old_tm, _, _, _ = load_model(old_model)
    new_tm, _, _, _ = load_model(new_model)
    converter = AlignmentConverter(old_tm, new_tm, ContextDependency.read(new_tree))
    done = failed = 0
    converted = []
    for utt, ali in read_int_vectors(ali_in):
        try:
            converted.append((utt, converter.convert(ali)))
            done += 1
        except InputError as exc:
            click.echo(f"WARNING: {utt}: could not convert ({exc})", err=True)
            failed += 1
    write_int_vectors(converted, ali_out)
    click.echo(f"convert-ali: succeeded for {done} alignments, failed for {failed} -> {ali_out}")
    if done == 0:
        raise click.exceptions.Exit(1)


COMMANDS = [train_deltas_cmd, convert_ali_cmd]
