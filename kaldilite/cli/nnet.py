"""nnet2 verbs: `train-nnet2` (steps/nnet2/train_pnorm_simple2.sh) and `decode-nnet2` (steps/nnet2/decode.sh).

`decode-nnet2` glues the nnet2 model to the decoder seam: `kaldilite.decode.batch` only sees a
scorer from features to a (frames x pdfs) log-likelihood matrix, here the network's log
posterior minus log prior. The graph is the one of the GMM system whose alignments trained the
network (same tree and transition model), as Kaldi's nnet2 recipes decode with exp/tri3b/graph.
"""

import logging
from pathlib import Path

import click

from kaldilite.utils.click_options import decoder_options

log = logging.getLogger(__name__)


class _TrainLog:
    """exp/log/train.log: the command line first, every library log line, the totals last."""

    def __init__(self, path, command_line):
        self.path = Path(path)
        self.command_line = command_line

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, mode="w", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s (%(name)s) %(message)s"))
        self.handler.stream.write(f"# {self.command_line}\n")
        self.logger = logging.getLogger("kaldilite.nnet")
        self.old_level = self.logger.level
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)  # the per-iteration lines are the progress report
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)
        self.handler.close()


def _command_line(ctx):
    """The call as the user gave it: options not left at their defaults, then the arguments."""
    import shlex

    words = ["kaldilite", ctx.info_name]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if isinstance(param, click.Option) and source != click.core.ParameterSource.DEFAULT:
            values = ctx.params[param.name]
            for value in values if param.multiple else [values]:  # --config a --config b, not a tuple
                words += [param.opts[0], str(value)]
    words += [str(ctx.params[p.name]) for p in ctx.command.params if isinstance(p, click.Argument)]
    return " ".join(map(shlex.quote, words))


@click.command("train-nnet2")
@click.option("--num-epochs", default=15, show_default=True, help="Passes over the training examples.")
@click.option("--samples-per-iter", default=20000, show_default=True, help="Frames per iteration.")
@click.option("--minibatch-size", default=128, show_default=True, help="Frames per SGD minibatch.")
@click.option("--initial-learning-rate", default=0.04, show_default=True,
              help="Learning rate of the first iteration (on the minibatch-averaged gradient).")
@click.option("--final-learning-rate", default=0.004, show_default=True, help="Learning rate of the last iteration.")
@click.option("--momentum", default=0.9, show_default=True, help="Classical momentum of the SGD updates.")
@click.option("--update", type=click.Choice(["sgd", "rms"]), default="sgd", show_default=True,
              help="sgd: momentum SGD (nnet2's simple update); rms: per-parameter RMS-normalized steps (Adam, "
              "--momentum as beta1), a light stand-in for nnet2's natural-gradient preconditioning; its "
              "learning rates are per-parameter step sizes (e.g. 0.004 -> 0.0004).")
@click.option("--rms-decay", default=0.999, show_default=True,
              help="With --update rms: decay of the running mean square of the gradient (Adam's beta2).")
@click.option("--max-change", default=2.0, show_default=True,
              help="Largest Frobenius norm of one component's change per minibatch (0 = no limit).")
@click.option("--num-hidden-layers", default=2, show_default=True, help="Number of p-norm hidden layers.")
@click.option("--pnorm-input-dim", default=1000, show_default=True, help="Affine output / p-norm input dimension.")
@click.option("--pnorm-output-dim", default=100, show_default=True, help="p-norm output dimension (groups).")
@click.option("--p", "p", default=2.0, show_default=True, help="The p of the p-norm.")
@click.option("--bias-stddev", default=0.5, show_default=True, help="Standard deviation of initial hidden biases.")
@click.option("--mix-up", default=0, show_default=True,
              help="Number of softmax sub-classes to mix up to halfway (0 = no mix-up; > number of pdfs).")
@click.option("--mix-up-min-count", default=1000.0, show_default=True,
              help="Mix-up gives a pdf no more sub-classes than its frame count / this (nnet-mixup --min-count).")
@click.option("--dropout-proportion", default=0.0, show_default=True,
              help="Fraction of each hidden layer's outputs zeroed in each training minibatch (dropout; 0 = off). "
              "Decoding is unchanged.")
@click.option("--spec-augment-freq-max-proportion", default=0.0, show_default=True,
              help="SpecAugment (Kaldi's spec-augment-layer freq-max-proportion; 0 = off): each training example "
              "gets a band of 0..round(proportion x dim) mel bins masked to the CMVN mean in all its frames (MFCC "
              "input is taken back to log-mel by an inverse DCT for it, Kaldi's idct-layer). Decoding is unchanged.")
@click.option("--spec-augment-time-zeroed-proportion", default=0.0, show_default=True,
              help="SpecAugment's time masks (Kaldi's time-zeroed-proportion; 0 = off): the share of frames of "
              "each example's spliced window masked, in spans of 1..--spec-augment-time-mask-max-frames.")
@click.option("--spec-augment-time-mask-max-frames", default=2, show_default=True,
              help="Longest masked time span (Kaldi's time-mask-max-frames; short here: an example is a "
              "2 x splice-width + 1 frame window, not a whole utterance).")
@click.option("--spec-augment-cepstral-lifter", default=22.0, show_default=True,
              help="The MFCCs' --cepstral-lifter, undone before masking (idct-layer's cepstral-lifter).")
@click.option("--vtlp-max-warp", default=0.0, show_default=True,
              help="Vocal-tract-length perturbation (Jaitly & Hinton 2013; 0 = off): each training example's mel "
              "bins warped by Kaldi's VTLN warp with a factor uniform on 1 +- this (e.g. 0.1), beside SpecAugment. "
              "Needs --vtlp-config. Decoding is unchanged.")
@click.option("--vtlp-config", default="", show_default=True,
              help="The MFCC (or fbank) config DATA's features were made with, e.g. conf/mfcc_hires.conf: VTLP takes "
              "their mel range and --vtln-low/--vtln-high from it (all cepstra of all mel bins needed).")
@click.option("--prior-scale", default=1.0, show_default=True,
              help="Decoding divides the posteriors by prior^prior-scale (nnet1's --prior-scale; recorded in the "
              "model): 1 = the whole prior (Kaldi's nnet2), 0 = posteriors as they are.")
@click.option("--max-models-combine", default=20, show_default=True, help="Models of the last iterations averaged.")
@click.option("--combine", type=click.Choice(["average", "optimize"]), default="average", show_default=True,
              help="Final model: average = the plain average of the last iterations' models (kept if not worse "
              "than the last model on the validation frames); optimize = nnet-combine-fast: weights per model "
              "and layer fitted by L-BFGS on the validation frames (at most --max-models-combine inputs).")
@click.option("--realign-epochs", default="", show_default=True,
              help="Epochs (space-separated, e.g. '2') at whose start the current network realigns DATA against its "
              "transcripts' training graphs (nnet-align-compiled: beam 10, retry 40, its priors re-estimated) and "
              "training continues on those alignments (train_pnorm_simple2.sh --realign-epochs). Empty: never.")
@click.option("--copy-ali-prefixes", default="", show_default=True,
              help="Space-separated COPY=SOURCE utterance-id prefixes (steps/copy_ali_dir.sh's practice): an utterance "
              "of DATA whose id starts with COPY trains on the alignment of SOURCE + the rest of its id, even when "
              "ALI_DIR aligned it too, e.g. 'noise-=sp1.0-': each additive-noise copy on its clean copy's alignment "
              "(same timing required: a length mismatch is an error). COPY alone: SOURCE is the id without COPY. "
              "Copies ALI_DIR lacks (e.g. rev1-sp1.0-<utt>) take their source's through DATA/utt2uniq regardless.")
@click.option("--splice-width", default=4, show_default=True, help="Frames of context on each side.")
@click.option("--lda-dim", default=0, show_default=True, help="Output dim of the LDA-like transform (0 = full).")
@click.option("--within-class-factor", default=0.0001, show_default=True,
              help="LDA row scaling of within-class variance (get_lda.sh).")
@click.option("--norm-vars", type=bool, default=None,
              help="CMVN variance normalization (default: as the alignment model's pipeline).")
@click.option("--online-cmvn", type=bool, default=False, show_default=True,
              help="Train on the online decoder's CMVN (apply-cmvn-online: each speaker of DATA from the prior "
              "DATA/cmvn.scp summed, stats carried between its utterances, see --online-cmvn-order and "
              "--online-cmvn-silence-weight) instead of offline per-speaker CMVN; recorded in the model, so "
              "decode-nnet2, decode-commands and export-model use it unasked. For a model decode-online will run "
              "(Kaldi's nnet2 online recipes train on apply-cmvn-online output).")
@click.option("--online-cmvn-order", type=click.Choice(["random", "spk2utt"]), default="spk2utt", show_default=True,
              help="With --online-cmvn: the order a speaker's utterances carry the stats in: random (drawn from "
              "--seed, afresh every epoch: a live user says the commands in any order) or spk2utt (DATA's sorted "
              "ids, as Kaldi's apply-cmvn-online; for Speech Commands that sorts a speaker's clips by word, a cue "
              "no live user gives).")
@click.option("--online-cmvn-silence-weight", default=1.0, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="With --online-cmvn: weight of the frames the alignment puts on silence phones when an utterance "
              "joins the carried stats, as decode-online's --cmvn-silence-weight (default 0) weighs its best path's; "
              "recorded in the model (1: every frame alike, Kaldi's apply-cmvn-online).")
@click.option("--transform-dir", type=click.Path(exists=True, file_okay=False),
              help="Directory of per-speaker fMLLR transforms trans.* for DATA (align-fmllr output): the network "
              "then reads the alignment system's LDA+MLLT features through them (Kaldi's feat_type=lda egs); "
              "decoding needs --transform-dir too. Default: speaker-independent input (online decoding).")
@click.option("--online-ivector-dir", type=click.Path(exists=True, file_okay=False),
              help="extract-ivectors-online's output for DATA (train_pnorm_simple2.sh --online-ivector-dir): each "
              "frame's online i-vector (row t // ivector_period) is appended to its spliced features, not spliced "
              "itself, and the preconditioning covers both (get_lda.sh). The model records the i-vector dimension, "
              "period and extractor (final.ie.id); decoding then needs --online-ivector-dir of that extractor.")
@click.option("--num-utts-subset", default=300, show_default=True, help="Utterances held out for validation.")
@click.option("--valid-diagnostic-frames", default=0, show_default=True, type=click.IntRange(min=0),
              help="Per-iteration validation objective and accuracy on a fixed random subset of this many validation "
              "frames (Kaldi's valid_diagnostic.egs); the last iteration's also on all of them, and the final "
              "combination uses them all. The network does not depend on it. 0 = all frames every iteration.")
@click.option("--diagnostic-interval", default=1, show_default=True, type=click.IntRange(min=1),
              help="Compute the per-iteration diagnostics (train and validation objective and accuracy) only every "
              "this many iterations, at each epoch's last and at the last iteration; the others log the minibatch "
              "objective alone. The network does not depend on it (Kaldi's nnet2 scripts run compute_prob_train / "
              "compute_prob_valid in the background every iteration).")
@click.option("--feat-type", "feature_type", default="",
              help="Name of the raw features, recorded in the model (its messages; export-model takes mfcc* only). "
              "Default: what DATA's archives say (make-mfcc / make-fbank write raw_<kind>_*), else 'features'; "
              "a name of another kind than the archives' is refused.")
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives the same model.")
@click.option("--num-averaged-networks", default=1, show_default=True,
              help="Train this many networks (seeds SEED, SEED+1, ...) independently on the same examples, in "
              "parallel processes (--nj), and average their posteriors when decoding (--posterior-averaging); "
              "scoring costs this many networks. Not in Kaldi's nnet2.")
@click.option("--posterior-averaging", type=click.Choice(["geometric", "arithmetic"]), default="geometric",
              show_default=True,
              help="How --num-averaged-networks' posteriors are averaged: geometric = the renormalized mean of "
              "their log-posteriors (a product of experts), arithmetic = the mean of their posteriors.")
@click.option("--nj", default=0, show_default=True, type=click.IntRange(min=0),
              help="Processes training --num-averaged-networks at once (forked after the features are loaded, "
              "one BLAS thread each with --num-threads 1); 0 = one per network, at most the cores. The networks "
              "do not depend on it (unlike Kaldi's --num-jobs-nnet, whose jobs' models are averaged).")
@click.option("--ensemble-size", default=1, show_default=True,
              help="Kaldi's ensemble training (train_pnorm_ensemble.sh; needs --initial-beta/--final-beta > 0): "
              "this many networks train together, each pulled towards their average posterior, and only the first "
              "is the model (EXP/final.mdl = final.1.mdl; the others final.2.mdl ...; scoring cost of one network).")
@click.option("--initial-beta", default=0.0, show_default=True,
              help="Ensemble training (train_pnorm_ensemble.sh; Kaldi's default 0.1): weight of the members' average "
              "posterior added to each member's one-hot target at the first iteration, rising linearly to "
              "--final-beta. 0 and 0: no ensemble training.")
@click.option("--final-beta", default=0.0, show_default=True,
              help="Ensemble training: the weight at the last iteration (Kaldi's default 6).")
@click.option("--num-threads", default=1, show_default=True, type=click.IntRange(0, 1),
              help="BLAS threads for training: 1 = one (measured faster: 128-frame minibatches are too small "
              "for threads to pay on a busy 2-core machine), 0 = OpenBLAS's default (all cores).")
@click.option("--config", "configs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Kaldi-style config (--option=value lines) read before the command line; repeatable, a later "
              "file overriding an earlier one (as Kaldi's --config), e.g. a shared conf then one that holds only "
              "what differs.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.argument("lang", type=click.Path(exists=True, file_okay=False))
@click.argument("ali_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp", type=click.Path(file_okay=False))
@click.pass_context
def train_nnet2_cmd(ctx, data, lang, ali_dir, exp, configs, num_threads, **kwargs):
    """Train a p-norm DNN on a GMM system's alignments (like steps/nnet2/train_pnorm_simple2.sh).

    Input: the data dir's features with the alignment model's CMVN (--online-cmvn true: the online
    decoder's, carried through each speaker's utterances from the data's global stats; with
    --online-cmvn-order random --online-cmvn-silence-weight 0 as decode-online carries it), spliced +-splice-width,
    through an LDA-like transform estimated from the alignments; all recorded in EXP/final.mdl.
    With --transform-dir: the SAT system's features (CMVN, splice, final.mat) through each
    speaker's fMLLR transform, then spliced and transformed as above.
    Log: EXP/log/train.log (objective and accuracy per iteration, train and validation); with
    --num-averaged-networks also EXP/log/train_network.K.log, network K's own lines.

    \b
    Usage: kaldilite train-nnet2 [options] <data> <lang> <ali-dir> <exp-dir>
     e.g.: kaldilite train-nnet2 --num-epochs 15 data/train data/lang exp/tri3b_ali exp/nnet2
           kaldilite train-nnet2 --transform-dir exp/tri3b_ali data/train data/lang exp/tri3b_ali exp/nnet2
           kaldilite train-nnet2 --online-cmvn true data/train_hires data/lang exp/tri3b_ali exp/nnet2_online
           kaldilite train-nnet2 --num-averaged-networks 2 data/train data/lang exp/tri3b_ali exp/nnet2_avg2
           kaldilite train-nnet2 --online-cmvn true --online-ivector-dir exp/nnet2_online/ivectors_train_hires \\
             data/train_hires data/lang exp/tri3b_ali exp/nnet2_online
    """
    import contextlib

    from kaldilite.feat.pipeline import recorded_feature_type
    from kaldilite.io.config import click_values_with_configs
    from kaldilite.nnet.train import Nnet2Options, train_nnet2

    values = click_values_with_configs(ctx, configs, kwargs)
    # resolved before the options are made, so that they read --vtlp-config once, for the right feature kind
    values["feature_type"] = recorded_feature_type(data, values.get("feature_type") or "")
    opts = Nnet2Options(**values)
    threads = contextlib.nullcontext()
    if num_threads == 1:
        from kaldilite.train.gmm_steps import single_threaded_blas

        threads = single_threaded_blas()
    with threads, _TrainLog(Path(exp) / "log" / "train.log", _command_line(ctx)):
        realigner = None
        if opts.realign_epoch_list():
            from kaldilite.train.nnet_realign import TrainingGraphRealigner

            realigner = TrainingGraphRealigner(data, lang)
        result = train_nnet2(data, lang, ali_dir, exp, opts, realigner=realigner)
        final = result["final"]
        summary = (f"train-nnet2: done in {result['seconds']:.1f} s ({result['frames_per_second']:.0f} frames/s); "
                   f"input {result['input']}; final train objf {final['train_objf']:.4f} accuracy "
                   f"{final['train_acc']:.4f}")
        if "valid_objf" in final:
            summary += f", validation objf {final['valid_objf']:.4f} accuracy {final['valid_acc']:.4f}"
        logging.getLogger("kaldilite.nnet").info("%s -> %s", summary, result["final_model"])
    click.echo(f"{summary} -> {result['final_model']}")


@click.command("decode-nnet2")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@decoder_options(beam=15.0, min_active=200, acwt=0.1, beam_help="Decoding beam (nnet2 decode.sh's default).",
                 acwt_help="Acoustic scale on the pseudo log-likelihoods.")
@click.option("--min-lmwt", type=int, help="With --max-lmwt: also decode at acoustic scale 1/LMWT for each LMWT "
              "and write wer_LMWT files, best_wer naming the best (Kaldi's score.sh sweep).")
@click.option("--max-lmwt", type=int, help="Last LMWT of the sweep (see --min-lmwt).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="nnet2 model file (default: DECODE_DIR/../final.mdl).")
@click.option("--lattice-beam", type=float,
              help="Also write DECODE_DIR/lat.JOB.gz, word lattices pruned to this beam (Kaldi's decode.sh writes "
              "them always; here on request), e.g. for decode-fmllr --si-dir, and DECODE_DIR/decisions.txt (utt "
              "label confidence llr reason) from GRAPH_DIR/rejection.json (or the default rule), as decode.")
@click.option("--transform-dir", type=click.Path(exists=True, file_okay=False),
              help="Per-speaker fMLLR transforms trans.* of DATA_DIR, from the SAT system's decode-fmllr (e.g. "
              "exp/tri3b/decode_test); required by a model trained with --transform-dir, refused by others.")
@click.option("--online-ivector-dir", type=click.Path(exists=True, file_okay=False),
              help="extract-ivectors-online's output for DATA_DIR, with the extractor the model was trained with; "
              "required by a model trained with --online-ivector-dir, refused by others.")
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(file_okay=False))
def decode_nnet2_cmd(graph_dir, data_dir, decode_dir, nj, beam, max_active, min_active, acwt, min_lmwt, max_lmwt,
                     model, lattice_beam, transform_dir, online_ivector_dir):
    """Decode a data dir with an nnet2 model and a graph, score when DATA/text exists (like steps/nnet2/decode.sh).

    The graph comes from the GMM system whose tree the network shares (e.g. exp/tri3b/graph).
    Writes DECODE_DIR/hyp.txt, log/decode.JOB.log, and with a reference DECODE_DIR/wer and
    scoring/best_wer.

    \b
    Usage: kaldilite decode-nnet2 [options] <graph-dir> <data-dir> <decode-dir>
     e.g.: kaldilite decode-nnet2 --nj 2 exp/tri3b/graph data/test exp/nnet2/decode_test
           kaldilite decode-nnet2 --transform-dir exp/tri3b/decode_test exp/tri3b/graph data/test exp/nnet2/decode_test
           kaldilite decode-nnet2 --online-ivector-dir exp/nnet2_online/ivectors_test exp/tri3b/graph data/test_hires \\
             exp/nnet2_online/decode_test
    """
    import time

    from kaldilite.cli.decode import _lmwt_range, _run_decode_jobs
    from kaldilite.errors import MissingFileError
    from kaldilite.graph.provenance import check_graph_for_model
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.train.decode_commands import nnet_model_and_input

    start = time.perf_counter()
    decode_dir = Path(decode_dir)
    model_path = Path(model) if model else decode_dir.parent / "final.mdl"
    if not model_path.is_file():
        raise MissingFileError(f"{model_path}: no model; pass --model or train one (kaldilite train-nnet2)")
    lmwts = _lmwt_range(min_lmwt, max_lmwt)
    # the model, its graph, its raw feature dimension and --transform-dir (present exactly when the
    # model needs it, final.mat as the model's, every speaker covered): all checked here, once, before
    # any job starts, as decode-commands checks them
    model, _ = nnet_model_and_input(model_path, data_dir, transform_dir, online_ivector_dir)
    check_graph_for_model(graph_dir, model_path, transition_model=model.tm)
    parts = split_data_dir(data_dir, nj) if nj > 1 else [Path(data_dir)]
    job_args = [(str(graph_dir), str(model_path), str(part), beam, max_active, min_active, acwt, lmwts,
                 lattice_beam, str(decode_dir / f"lat.{job}.gz"), None if transform_dir is None else str(transform_dir),
                 None if online_ivector_dir is None else str(online_ivector_dir))
                for job, part in enumerate(parts, 1)]
    _run_decode_jobs("decode-nnet2", graph_dir, model_path, data_dir, decode_dir, nj, job_args, lmwts, lattice_beam,
                     start)


COMMANDS = [train_nnet2_cmd, decode_nnet2_cmd]
