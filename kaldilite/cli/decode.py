"""Graph and decoding verbs: `mkgraph` (utils/mkgraph.sh) and `decode` (steps/decode.sh + scoring)."""

import logging
from pathlib import Path

import click

from kaldilite.errors import MissingFileError
from kaldilite.jobs.cli import job_options
from kaldilite.utils.click_options import decoder_options

log = logging.getLogger(__name__)


def _find_model(model, *candidates):
    if model:
        return Path(model)
    for directory in candidates:
        path = Path(directory) / "final.mdl"
        if path.is_file():
            return path
    raise MissingFileError(f"{Path(candidates[0]) / 'final.mdl'}: no model; pass --model or train one first")


def _load_tree(model_path, tree_path=None):
    from kaldilite.hmm import ContextDependency

    path = Path(tree_path) if tree_path else Path(model_path).parent / "tree"
    if not path.is_file():
        raise MissingFileError(f"{path}: the model's tree is missing; pass --tree or copy it next to {model_path}")
    return ContextDependency.read(path)


def _check_same_phones(lang_phones, model_phones):
    """Like mkgraph.sh's phones.txt comparison: the graph must use the model's phone numbering."""
    from kaldilite.errors import InputError

    def real_phones(path):  # disambiguation symbols (#k) may differ, as check_phones_compatible.sh allows
        return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]

    if model_phones.is_file() and lang_phones.is_file():
        if real_phones(model_phones) != real_phones(lang_phones):
            raise InputError(f"{lang_phones} differs from {model_phones}: the lang dir was not prepared with the "
                             "phone set the model was trained on; re-run prepare-lang from the same dict dir")


@click.command("mkgraph")
@click.option("--self-loop-scale", default=0.1, show_default=True, help="Scale on self-loop probabilities.")
@click.option("--transition-scale", default=1.0, show_default=True, help="Scale on the other transition probabilities.")
@click.option("--model", type=click.Path(dir_okay=False), help="Model file (default MODEL_DIR/final.mdl).")
@click.argument("lang_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("graph_dir", type=click.Path(file_okay=False))
def mkgraph_cmd(lang_dir, model_dir, graph_dir, self_loop_scale, transition_scale, model):
    """Build the decoding graph HCLG for a lang dir with G.fst (like utils/mkgraph.sh).

    \b
    Usage: kaldilite mkgraph [options] <lang-dir> <model-dir> <graph-dir>
     e.g.: kaldilite mkgraph data/lang_test exp/mono exp/mono/graph
    """
    import time

    from kaldilite.gmm.model import load_transition_model
    from kaldilite.graph.mkgraph import mkgraph

    start = time.perf_counter()
    model_path = _find_model(model, model_dir)
    _check_same_phones(Path(lang_dir) / "phones.txt", Path(model_path).parent / "phones.txt")
    tm = load_transition_model(model_path)
    tree = _load_tree(model_path)
    graph = mkgraph(lang_dir, graph_dir, tm, tree, transition_scale=transition_scale,
                    self_loop_scale=self_loop_scale, model_path=model_path)
    click.echo(f"mkgraph: {graph_dir}/HCLG.fst has {graph.num_states} states, {graph.num_arcs} arcs "
               f"({time.perf_counter() - start:.2f} s)")


def decode_job(graph_dir, model_path, data_dir, beam, max_active, min_active, acoustic_scale, lmwts=(),
               lattice_beam=None, lattice_path=None, transform_dir=None, online_ivector_dir=None):
    """One decoding job of `decode` and `decode-nnet2` (module level so that it can run in a worker
    process): any model type, the scorer being the only difference (`_model_scorer`).

    Returns {None: [(utt, words)] at `acoustic_scale`, lmwt: [(utt, words)] at 1/lmwt ...}; with
    `lattice_beam`, also writes the lattices to `lattice_path` and returns "decisions":
    [(utt, decision line)] from the graph dir's rejection rule (kaldilite.decode.rejection).
    `transform_dir`: the test speakers' fMLLR transforms of an nnet2 model on adapted input.
    """
    from kaldilite.decode.batch import decode_utterances_at_scales
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.train.gmm_steps import single_threaded_blas

    tid_to_pdf, scorer, features = _model_scorer(model_path, data_dir, transform_dir, online_ivector_dir)
    graph = load_graph(graph_dir)
    words = SymbolTable.read(Path(graph_dir) / "words.txt")
    opts = DecoderOptions(beam=beam, max_active=max_active, min_active=min_active, acoustic_scale=acoustic_scale)
    scales = {None: float(acoustic_scale)}
    scales.update({lmwt: 1.0 / lmwt for lmwt in lmwts})
    # one BLAS thread per job, as the other decoders' and trainers' jobs: with --nj jobs on as many
    # cores, OpenBLAS's own threads only spin against the other jobs (FSDD test set, --nj 2:
    # 5.7-7 s of CPU with default threads, 1.2 s with one)
    with single_threaded_blas():
        results = decode_utterances_at_scales(graph, tid_to_pdf, scorer, features, opts, list(scales.values()),
                                              words, lattice_beam=lattice_beam)
    out = {key: [(utt, " ".join(words.symbol(w) for w in r.words)) for utt, r in results[scale] if r is not None]
           for key, scale in scales.items()}
    if lattice_beam is not None:
        out["decisions"] = _write_lattices_and_decide(graph_dir, results[scales[None]], words, acoustic_scale,
                                                      lattice_beam, lattice_path)
    return out


def _model_scorer(model_path, data_dir, transform_dir=None, online_ivector_dir=None):
    """(tid_to_pdf, scorer: features -> frames x pdfs log-likelihoods, stream of (utt, model input))
    of a model file of any type: a GMM's log-likelihoods on its pipeline's features (gmm-latgen-faster),
    or an nnet2 model's log posterior - log prior after the checks of steps/nnet2/decode.sh
    (`nnet_model_and_input`). The decoder below sees only the scorer."""
    model_type, tid_to_pdf, scorer, _, gmm_pipeline = _read_scoring_model(model_path)
    if model_type == "nnet2":
        from kaldilite.train.decode_commands import nnet_model_and_input

        _, features = nnet_model_and_input(model_path, data_dir, transform_dir,  # the model read above
                                           online_ivector_dir)
        return tid_to_pdf, scorer, features
    from kaldilite.errors import InputError
    from kaldilite.feat.pipeline import load_features
    from kaldilite.train.decode_commands import refuse_online_ivectors

    if transform_dir is not None:
        raise InputError(f"{model_path}: a GMM model takes no --transform-dir here; decode a SAT system with "
                         "decode-fmllr")
    refuse_online_ivectors(online_ivector_dir, f"{model_path}, a GMM model,")
    return tid_to_pdf, scorer, load_features(data_dir, gmm_pipeline)


def _read_scoring_model(model_path):
    """(model type, tid_to_pdf, scorer, input dim, the GMM's feature pipeline or None) of a model file
    of any type, read through load_once: the verb's start-up, its jobs in this process (--nj 1) and
    the ones forked from it share one read."""
    from kaldilite.online.bundle import model_type_of
    from kaldilite.utils.load_once import load_once

    if model_type_of(model_path) == "nnet2":
        from kaldilite.nnet.model import load_nnet_scorer

        model = load_once(model_path, load_nnet_scorer)
        return "nnet2", model.tm.tid_to_pdf, model.log_likelihoods, model.input_dim, None
    from kaldilite.gmm.model import load_model

    tm, am, pipeline, _ = load_once(model_path, load_model)
    return "gmm", tm.tid_to_pdf, am.log_likelihoods, am.dim, pipeline


def _start_up_before_forking_jobs(job_args, nj):
    """Run `decode_job` on one utterance of job 1 in this process when the jobs will be forked from
    it, so that they inherit the compiled code (as decode-commands' start_up_before_forking_jobs).

    A job process that starts cold imports numba and the decoder, initialises numba's compiler
    target and loads (or, on a cold cache, compiles) every numba function it calls. Forked jobs
    inherit all of that from this process, so it is done once here instead of once per job. The
    job function itself, on a one-utterance subset of job 1's data with the jobs' own options,
    calls exactly what the jobs will call with the same argument types: with --lattice-beam that
    includes lattice generation, pruning, determinization and the rejection rule's confidence
    measures, which a one-frame decode without lattices left to each job to compile (a cold
    `decode --nj 2 --lattice-beam 6` of the commands dev set with tri1: 23.5 s of CPU, now 14 s;
    warm, no change: 5.2 s).
    Jobs that run here (--nj 1) or elsewhere (slurm) need none of it (`kaldilite.parallel.start_up_on_one_utterance`).
    """
    import inspect

    from kaldilite.parallel import start_up_on_one_utterance

    if not job_args:
        return
    args = inspect.signature(decode_job).bind(*job_args[0]).arguments

    def one_utterance(data_dir, tmp):
        args["data_dir"] = data_dir
        if args.get("lattice_path") is not None:
            args["lattice_path"] = str(tmp / "lat.1.gz")
        decode_job(**args)

    start_up_on_one_utterance(one_utterance, args["data_dir"], nj, len(job_args), "decode")


def _write_lattices_and_decide(graph_dir, results, words, acoustic_scale, lattice_beam, lattice_path):
    """Write a job's lattices (Kaldi text archive, gzipped) and apply the rejection rule to each."""
    from kaldilite.decode.lattice import Lattice, write_lattices
    from kaldilite.decode.confidence import word_sequences_of_lattice
    from kaldilite.decode.rejection import RejectionRule, read_fillers

    rule = RejectionRule.for_graph(graph_dir)
    fillers = read_fillers(graph_dir)
    lattices = []
    decisions = []
    for utt, result in results:
        lat = result.lattice if result is not None and result.lattice is not None else Lattice.empty()
        lattices.append((utt, lat))
        num_frames = result.num_frames if result is not None else 0
        d = rule.decide(word_sequences_of_lattice(lat, words, num_frames, acoustic_scale, lattice_beam), fillers)
        llr = "NA" if d.llr is None else f"{d.llr:.4f}"
        decisions.append((utt, f"{d.label.replace(' ', '+')} {d.confidence:.4f} {llr} {d.reason}"))
    write_lattices(lattice_path, lattices)
    return decisions


@click.command("decode")
@click.option("--nj", default=4, show_default=True, help="Number of parallel jobs (data split by speaker).")
@job_options
@decoder_options()  # steps/decode.sh's defaults
@click.option("--min-lmwt", type=int, help="With --max-lmwt: also decode at acoustic scale 1/LMWT for each "
              "LMWT in the range and write wer_LMWT files, best_wer picking the best (Kaldi's score.sh sweep).")
@click.option("--max-lmwt", type=int, help="Last LMWT of the sweep (see --min-lmwt).")
@click.option("--lattice-beam", type=float, help="Also write lattices pruned to this beam (Kaldi's default 6) as "
              "DECODE_DIR/lat.JOB.gz, and DECODE_DIR/decisions.txt (utt label confidence llr reason) from "
              "GRAPH_DIR/rejection.json (or the default rule).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="Model file (default: DECODE_DIR/../final.mdl, else GRAPH_DIR/../final.mdl).")
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(file_okay=False))
def decode_cmd(graph_dir, data_dir, decode_dir, nj, beam, max_active, min_active, acwt, min_lmwt, max_lmwt, model,
               lattice_beam=None):
    """Decode a data dir with a graph and score it when DATA/text exists (like steps/decode.sh).

    Writes DECODE_DIR/hyp.txt (Kaldi text: utt word...), log/decode.JOB.log, and with a
    reference DECODE_DIR/wer and scoring/best_wer. With --min-lmwt/--max-lmwt also
    scoring/LMWT.txt and wer_LMWT per language-model weight, best_wer naming the best.

    \b
    Usage: kaldilite decode [options] <graph-dir> <data-dir> <decode-dir>
     e.g.: kaldilite decode --nj 2 exp/mono/graph data/test exp/mono/decode_test
           kaldilite decode --min-lmwt 7 --max-lmwt 17 exp/mono/graph data/test exp/mono/decode_test
           kaldilite decode --lattice-beam 6 exp/mono/graph_cmd data/dev exp/mono/decode_dev
    """
    import time

    from kaldilite.gmm.model import check_data_features
    from kaldilite.graph.provenance import check_graph_for_model
    from kaldilite.io.datadir import split_data_dir

    start = time.perf_counter()
    decode_dir = Path(decode_dir)
    model_path = _find_model(model, decode_dir.parent, Path(graph_dir).parent)
    check_graph_for_model(graph_dir, model_path)
    if not (Path(data_dir) / "feats.scp").is_file():
        raise MissingFileError(f"{Path(data_dir) / 'feats.scp'}: no features; run make-mfcc and "
                               f"compute-cmvn-stats on {data_dir} first")
    check_data_features(model_path, data_dir)
    lmwts = _lmwt_range(min_lmwt, max_lmwt)
    parts = split_data_dir(data_dir, nj) if nj > 1 else [Path(data_dir)]
    job_args = [(str(graph_dir), str(model_path), str(part), beam, max_active, min_active, acwt, lmwts)
                + ((lattice_beam, str(decode_dir / f"lat.{job}.gz")) if lattice_beam is not None else ())
                for job, part in enumerate(parts, 1)]
    _run_decode_jobs("decode", graph_dir, model_path, data_dir, decode_dir, nj, job_args, lmwts, lattice_beam, start)


def _lmwt_range(min_lmwt, max_lmwt):
    """The LMWTs of --min-lmwt/--max-lmwt (() without them), checked."""
    if (min_lmwt is None) != (max_lmwt is None) or (min_lmwt is not None and not 0 < min_lmwt <= max_lmwt):
        raise click.UsageError("--min-lmwt and --max-lmwt go together, with 0 < min <= max")
    return tuple(range(min_lmwt, max_lmwt + 1)) if min_lmwt is not None else ()


def _run_decode_jobs(verb, graph_dir, model_path, data_dir, decode_dir, nj, job_args, lmwts, lattice_beam, start):
    """The rest of `decode` and `decode-nnet2` once their checks are done: `decode_job` over
    `job_args` (one per data part), then DECODE_DIR/hyp.txt, scoring/LMWT.txt, decisions.txt (with
    `lattice_beam`), num_jobs, the summary line and the scoring (`_score`)."""
    import time

    from kaldilite.parallel import run_jobs
    from kaldilite.utils.atomic import atomic_open

    decode_dir.mkdir(parents=True, exist_ok=True)
    _start_up_before_forking_jobs(job_args, nj)
    outputs = run_jobs(decode_job, job_args, decode_dir / "log", "decode", nj=nj)
    hyps = {key: dict(sorted(pair for output in outputs for pair in output[key])) for key in (None,) + lmwts}
    _write_text(decode_dir / "hyp.txt", hyps[None])
    for lmwt in lmwts:
        _write_text(decode_dir / "scoring" / f"{lmwt}.txt", hyps[lmwt])
    if lattice_beam is not None:
        _write_text(decode_dir / "decisions.txt", dict(sorted(p for output in outputs for p in output["decisions"])))
    with atomic_open(decode_dir / "num_jobs") as handle:
        handle.write(f"{len(job_args)}\n")
    summary = f"{verb}: {len(hyps[None])} utterances in {time.perf_counter() - start:.2f} s -> {decode_dir / 'hyp.txt'}"
    wer_line = _score(data_dir, decode_dir, hyps)
    click.echo(summary)
    if wer_line:
        click.echo(wer_line)


def _write_text(path, hyps):
    from kaldilite.utils.atomic import atomic_open

    with atomic_open(path) as handle:
        handle.writelines(f"{utt} {text}".rstrip() + "\n" for utt, text in hyps.items())


def _score(data_dir, decode_dir, hyps):
    """Score against DATA/text (Kaldi's compute-wer): `wer` for --acwt, `wer_LMWT` per swept
    weight, and scoring/best_wer with the best of them. Returns the best %WER line or None."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.utils.atomic import atomic_open

    data = DataDir.load(data_dir)
    if data.text is None:
        return None
    try:
        from kaldilite.score.wer import compute_wer
    except ImportError:
        log.warning("kaldilite.score.wer is not available: scoring skipped")
        return None
    best = None
    for key, hyp in hyps.items():
        stats = compute_wer(dict(data.text), hyp)  # mode "present", as steps/score_kaldi.sh
        report = str(stats).rstrip("\n")
        path = decode_dir / ("wer" if key is None else f"wer_{key}")
        with atomic_open(path) as handle:
            handle.write(report + "\n")
        line = report.splitlines()[0]
        rate = float(line.split()[1])
        if best is None or rate < best[0]:
            best = (rate, line, path)
    with atomic_open(decode_dir / "scoring" / "best_wer") as handle:
        handle.write(f"{best[1]} {best[2]}\n")
    return f"{best[1]} {best[2]}"


COMMANDS = [mkgraph_cmd, decode_cmd]
