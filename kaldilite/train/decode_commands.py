"""Decoding a data dir for command recognition with any trained acoustic model: decode-commands' job.

Every model the recipes train goes through one job function, `decode_commands_job`, which
returns the rejection rule's inputs (`kaldilite.decode.confidence.Measures`) per utterance:

- GMM systems with a speaker-independent feature pipeline (mono, tri1 deltas, tri2b LDA+MLLT)
  and nnet2 DNNs (pseudo-log-likelihoods ``log p(pdf|x) - log p(pdf)``) are loaded by the
  online bundle's `load_scoring_model`, the one loader of "a model file -> a scorer"; one
  lattice-generating pass (Kaldi's ``gmm-latgen-faster`` / ``nnet-latgen-faster``).
- SAT systems (a model dir with ``final.alimdl`` beside ``final.mdl``, written by
  `kaldilite.train.sat.train_sat`) decode in two passes as Kaldi's steps/decode_fmllr.sh: a
  speaker-independent first pass with ``final.alimdl`` (best path only, ``--first-beam``),
  per-speaker fMLLR from the Gaussian posteriors of the SI model along each best path with
  silence frames weighted ``silence_weight`` (0: only speech counts; statistics with the SAT
  model's Gaussians, as gmm-est-fmllr-gpost), then the lattice pass with ``final.mdl`` on the
  adapted features. The per-speaker transforms go to ``DECODE_DIR/trans.JOB`` as decode_fmllr.sh
  writes them. The speaker here is the data dir's utt2spk speaker, so adaptation is per speaker
  over all its test utterances (offline); live decoding has no such pass. With
  ``first_pass_measures`` the SI pass is decoded with lattices (at ``first_beam``; its best paths
  are the 1-best search's, so the transforms do not change) and its per-frame llr is kept as
  ``Measures.first_pass_llr``: rejection decided before fMLLR has pulled an out-of-vocabulary
  word toward the command the first pass took it for.

With ``phone_scores`` (``phone_llr``) every lattice pass also writes the phone-level scores of
`kaldilite.decode.confidence.PhoneScorer` (the silence phones are the job's ``silence_phones``,
the graph's ``phones/silence.int`` as decode-commands reads it); the SAT first pass does not.

The CPU time of each job covers scoring, search, lattice and confidence (and, for SAT, the first
pass and the fMLLR estimation), not feature loading: decode-commands divides it by the audio
duration for its RTF.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from kaldilite.feat.cmvn import CMVN_CARRY_CONF, cmvn_carry_values, read_cmvn_carry

log = logging.getLogger(__name__)

SI_MODEL = "final.alimdl"


@dataclasses.dataclass
class CommandDecodeOptions:
    """decode-commands' options: the lattice pass, and the first pass + fMLLR of SAT models."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 20
    acoustic_scale: float = 0.1
    lattice_beam: float = 6.0
    first_beam: float = 10.0          # decode_fmllr.sh --first-beam: the SI pass is only for adaptation
    silence_weight: float = 0.0       # weight of silence frames in the fMLLR statistics
    fmllr_update_type: str = "full"
    # gmm-est-fmllr's --fmllr-min-count: a speaker with fewer (weighted) frames keeps the identity.
    # Kaldi's 500, not decode_fmllr's 0: the background-noise pseudo-speakers of Speech Commands
    # have a few dozen speech frames, and an fMLLR from those is singular.
    fmllr_min_count: float = 500.0
    exact_llr: bool = False           # RecognizerOptions.exact_llr: constrained searches instead of clipping
    # SAT: also decode the speaker-independent pass with lattices and keep its llr
    # (Measures.first_pass_llr), so that rejection can be decided before fMLLR has pulled an
    # out-of-vocabulary word toward the command it was first mistaken for.
    first_pass_measures: bool = False
    # RecognizerOptions.phone_scores: the GOP scores of the best path when it is a command path
    # (gop_min, gop_mean in measures.jsonl); phone_llr: also its ratios against the best
    # filler/garbage path (phone_llr_min, phone_llr_min_per_frame, word_llr; one more search)
    phone_scores: bool = False
    phone_llr: bool = False
    # SAT: the hypothesis fMLLR is estimated from: "best" (the first pass's best path, as
    # decode_fmllr.sh) or "garbage" (the best path of the graph without command words: the
    # filler/garbage phone loop, so that an out-of-vocabulary word's transform is not fitted to the
    # command the first pass took it for; a command's phone-loop path is close to its own phones)
    fmllr_hypothesis: str = "best"
    # nnet2 models trained on fMLLR-adapted input (train-nnet2 --transform-dir): the directory of
    # the test speakers' transforms trans.* (a SAT system's decode dir, e.g. its decode-commands')
    transform_dir: str | None = None
    # Decode through the online decoder's CMVN (Kaldi's apply-cmvn-online --spk2utt) instead of
    # the model's offline CMVN: the global stats file (a bundle's global_cmvn.stats, or the training
    # data's cmvn.scp summed) and an online_cmvn.conf (None: defaults). Stats carried from each of a
    # speaker's utterances to the next, as decode-online carries them (the order and weights below).
    online_cmvn: str | None = None
    online_cmvn_config: str | None = None
    # a data dir holding the decoded one's utterances among others (dev for a subset of it): online
    # CMVN carried through its spk2utt, so that a subset is normalized exactly as within the whole
    online_cmvn_history: str | None = None
    # online CMVN (--online-cmvn or a model trained on it): each speaker's utterances carried in a random order
    # drawn from this seed and the speaker's name (`kaldilite.feat.cmvn.speaker_orders`: the same order whatever
    # the job split or the rest of the data dir); -1: spk2utt's (sorted ids: for Speech Commands BY WORD, a cue
    # no live user gives)
    online_cmvn_order_seed: int = 0
    # the weight of the frames each utterance's best path puts on silence phones when it joins the carried
    # stats, as decode-online's --cmvn-silence-weight (whose default this is) weighs them live; below 1 a
    # speaker's utterances are decoded one after the other, each normalized with the stats its predecessors'
    # decodes left (the jobs stay parallel across speakers), and each utterance's weights are written to
    # DECODE_DIR/cmvn_weights.JOB.ark; 1: every frame alike (apply-cmvn-online), no decode needed for them
    online_cmvn_silence_weight: float = 0.0
    # with online_cmvn_history and a silence weight below 1: the decode-commands dir of the history data dir
    # (its cmvn_weights.*.ark), whose best paths weigh the history's frames, so that DATA's utterances are
    # normalized exactly as in that decode
    online_cmvn_history_weights: str | None = None
    # nnet2 models trained with online i-vectors (train-nnet2 --online-ivector-dir): extract-ivectors-online's
    # output for the decoded data (or a data dir holding its utterances), steps/nnet2/decode.sh --online-ivector-dir
    online_ivector_dir: str | None = None


def is_speaker_adapted(model_path):
    """True for a SAT model (its speaker-independent ``final.alimdl`` sits beside it)."""
    return decoding_kind(model_path) == "sat"


def decoding_kind(model_path):
    """How decode-commands decodes a model, from its header: "sat" (a GMM with ``final.alimdl``
    beside it: two passes), "adapted_nnet" (an nnet2 model on fMLLR-adapted input) or "single" (one
    lattice pass). The header is read once per process (`model_header`): the verb asks before any job
    starts, and every job it runs or forks asks again."""
    from kaldilite.online.bundle import model_header, model_type_of

    model_path = Path(model_path)
    header = model_header(model_path)
    model_type = model_type_of(model_path)
    if model_type == "gmm" and (model_path.parent / SI_MODEL).is_file():
        return "sat"
    if model_type == "nnet2" and header.get("fmllr_pipeline") is not None:
        return "adapted_nnet"
    return "single"


def decode_commands_job(graph_dir, model_path, data_dir, decode_dir, job, opts_dict, silence_phones=()):
    """One job of decode-commands: ([(utt, Measures, num_frames)], wall seconds, CPU seconds).
    ``silence_phones``: the graph's silence phone ids (phones/silence.int, `kaldilite.lang.langdir.read_phone_list`),
    needed by SAT models (fMLLR statistics) and by the phone-level scores."""
    from kaldilite.train.gmm_steps import single_threaded_blas

    opts = CommandDecodeOptions(**opts_dict)
    kind = decoding_kind(model_path)  # online CMVN's fit to the model: checked by the verb, before any job
    with single_threaded_blas():
        if kind == "sat":
            return _decode_sat(graph_dir, Path(model_path), data_dir, Path(decode_dir), job, opts, silence_phones)
        if opts.transform_dir is not None or kind == "adapted_nnet":
            return _decode_adapted_nnet(graph_dir, model_path, data_dir, opts, silence_phones)
        return _decode_single_pass(graph_dir, model_path, data_dir, opts, silence_phones, Path(decode_dir), job)


def start_up_before_forking_jobs(job_args, nj):
    """Decode one utterance of job 1 in this process when `decode_commands_job`'s jobs will be forked
    from it (`kaldilite.parallel.jobs_fork_from_here`), so that they inherit the compiled code.

    Each job uses ~25 numba functions (decoder with and without lattices, lattice pruning and
    determinization, confidence, GMM or DNN scoring). On a cold numba cache (a fresh install)
    every forked job compiled all of them itself: ~20 s of CPU per job. With warm caches, each
    job loads them instead (~0.4 s). Done here once, the forked jobs find them in memory: a cold
    --nj 2 decode of the commands dev set (tri1, 406 utterances) took 47 s of CPU, now 27 s; warm,
    no change (7.2-7.6 s either way).
    A real utterance through the job function itself (a one-utterance subset of job 1's data,
    decoded into a temporary dir) gives every function the argument types of the real calls
    (`kaldilite.parallel.start_up_on_one_utterance`).
    """
    from kaldilite.parallel import start_up_on_one_utterance

    if not job_args:
        return
    graph_dir, model_path, data_dir, _, _, opts_dict, silence_phones = job_args[0]
    start_up_on_one_utterance(
        lambda one, tmp: decode_commands_job(graph_dir, model_path, one, str(tmp / "decode"), 1, opts_dict,
                                             silence_phones),
        data_dir, nj, len(job_args), "decode-commands")


def nnet_model_and_input(model_path, data_dir, transform_dir=None, online_ivector_dir=None):
    """(model, stream of (utt, network input)) of an nnet2 model on ``data_dir``, checked first as
    steps/nnet2/decode.sh checks them: the raw feature dimension, ``transform_dir`` present exactly
    when the model reads fMLLR-adapted input, its final.mat the model's, every speaker of
    ``data_dir`` covered; ``online_ivector_dir`` present exactly when the model was trained with
    i-vectors, of its extractor, dimension and period, every utterance covered (one-line errors, before
    any utterance is read). The stream is lazy: a verb that only wants the checks (and the loaded
    model) drops it. With i-vectors each item is the features with the frames' i-vectors appended."""
    from kaldilite.nnet.model import (check_online_ivectors, check_transform_speakers, ivector_appended,
                                      load_nnet_scorer, read_transform_dir)
    from kaldilite.utils.load_once import load_once

    model = load_once(model_path, load_nnet_scorer)
    ivectors = check_online_ivectors(model, data_dir, online_ivector_dir)
    transforms = None
    if transform_dir is not None and model.speaker_adapted:
        transforms = read_transform_dir(transform_dir, model.fmllr_pipeline.transform)
        check_transform_speakers(data_dir, transforms, transform_dir)
    elif transform_dir is not None:
        transforms = {}  # refused by model.features with the reason
    features = model.features(data_dir, transforms=transforms, transform_dir=transform_dir)
    return model, ivector_appended(model, features, ivectors)


def _decode_adapted_nnet(graph_dir, model_path, data_dir, opts, silence_phones):
    """nnet2 on fMLLR-adapted input: the SAT system's features through the test speakers' transforms
    (steps/nnet2/decode.sh --transform-dir), one lattice pass."""
    model, features = nnet_model_and_input(model_path, data_dir, opts.transform_dir, opts.online_ivector_dir)
    graph, words, fillers, recognizer_opts = _recognition_setup(graph_dir, opts)
    timer = _Timer()
    results = _lattice_pass(graph, model.tm.tid_to_pdf, words, fillers, recognizer_opts, model.log_likelihoods,
                            features, timer, phone_tables=(model.tm.tid_to_phone, silence_phones))
    return results, timer.wall, timer.cpu


def _recognition_setup(graph_dir, opts):
    from kaldilite.decode.rejection import RecognizerOptions, read_fillers
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable

    graph = load_graph(graph_dir)
    words = SymbolTable.read(Path(graph_dir) / "words.txt")
    recognizer_opts = RecognizerOptions(beam=opts.beam, max_active=opts.max_active, min_active=opts.min_active,
                                        acoustic_scale=opts.acoustic_scale, lattice_beam=opts.lattice_beam,
                                        exact_llr=opts.exact_llr, phone_scores=opts.phone_scores,
                                        phone_llr=opts.phone_llr)
    return graph, words, read_fillers(graph_dir), recognizer_opts


class _Timer:
    """Wall and CPU seconds summed over the timed blocks."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def _lattice_pass(graph, tid_to_pdf, words, fillers, recognizer_opts, scorer, features, timer, best_paths=None,
                  phone_tables=None, carry=None):
    """Decode each (utt, feats) with lattices -> [(utt, Measures, num_frames)]. ``best_paths``: a
    list that receives each utterance's (utt, DecodeResult) too (the SAT first pass's, for fMLLR).
    ``phone_tables``: (the model's tid_to_phone, silence phone ids), needed with
    ``recognizer_opts.phone_scores`` (silence phones are no part of the command's phones).
    ``carry``: (dict, is_silence_tid, silence weight): each utterance's online-CMVN carry weights, decided
    by its best partial path as decode-online decides them (`kaldilite.online.endpoint.cmvn_carry_weights`),
    are put in the dict under its id before the next utterance is asked of ``features`` (which reads them)."""
    from kaldilite.decode.rejection import Recognizer, measure
    from kaldilite.online.endpoint import cmvn_carry_weights

    tid_to_phone, silence = phone_tables if phone_tables is not None else (None, ())
    recognizer = Recognizer(graph, tid_to_pdf, words, fillers, opts=recognizer_opts, tid_to_phone=tid_to_phone,
                            silence_phones=silence)
    results = []
    for utt, feats in features:
        with timer:
            recognizer.start()
            recognizer.advance(scorer(feats))
            m = measure(recognizer.word_sequences(), fillers)
            if best_paths is not None:
                best_paths.append((utt, recognizer.decoder.finalize()))
            if carry is not None:
                decided, is_silence_tid, weight = carry
                weights = cmvn_carry_weights(recognizer.decoder, is_silence_tid, len(feats), weight)
                decided[utt] = np.ones(len(feats)) if weights is None else weights
        results.append((utt, m, len(feats)))
        log.info("%s %s confidence %.3f llr %s", utt, " ".join(m.words or ()), m.confidence,
                 "-" if m.llr is None else f"{m.llr:.3f}")
    return results


def _decode_single_pass(graph_dir, model_path, data_dir, opts, silence_phones, decode_dir=None, job=1):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.online.bundle import load_scoring_model
    from kaldilite.utils.load_once import load_once

    model = load_once(model_path, load_scoring_model)  # the verb's own read when this job runs in its process
    if model.raw_feature_dim is not None and hasattr(model.scorer, "check_raw_features"):
        model.scorer.check_raw_features(data_dir)
    graph, words, fillers, recognizer_opts = _recognition_setup(graph_dir, opts)
    timer = _Timer()
    online = online_cmvn_setup(opts)
    carry = weights = None
    online_model = online is not None or getattr(model.pipeline, "cmvn", None) == "online"
    if online_model and opts.online_cmvn_silence_weight != 1.0:
        if opts.online_cmvn_history is not None:
            weights = read_history_weights(opts.online_cmvn_history_weights, opts.online_cmvn_history,
                                           opts.online_cmvn_order_seed, opts.online_cmvn_silence_weight)
        else:  # decided by each utterance's decode, before the next one of its speaker is normalized
            from kaldilite.hmm.transition_model import silence_tid_mask

            carry = ({}, silence_tid_mask(model.tid_to_phone, silence_phones), opts.online_cmvn_silence_weight)
            weights = carry[0].__getitem__  # (asked only after the utterance was decoded: never missing)
    features = load_features(data_dir, model.pipeline, online_cmvn=online, online_cmvn_history=opts.online_cmvn_history,
                             online_cmvn_order_seed=None if opts.online_cmvn_order_seed < 0 else
                             opts.online_cmvn_order_seed, online_cmvn_weights=weights)
    features = with_online_ivectors(model, data_dir, opts.online_ivector_dir, features)
    results = _lattice_pass(graph, model.tid_to_pdf, words, fillers, recognizer_opts, model.scorer.log_likelihoods,
                            features, timer, phone_tables=(model.tid_to_phone, silence_phones), carry=carry)
    if carry is not None and decode_dir is not None:
        from kaldilite.io.tables import write_vectors

        decode_dir.mkdir(parents=True, exist_ok=True)
        write_vectors(sorted(carry[0].items()), decode_dir / f"{CMVN_WEIGHTS}.{job}.ark")
    return results, timer.wall, timer.cpu


CMVN_WEIGHTS = "cmvn_weights"  # DECODE_DIR/cmvn_weights.JOB.ark: each utterance's online-CMVN carry weights


def cmvn_weight_files(decode_dir):
    """DECODE_DIR's carry-weight archives (cmvn_weights.JOB.ark), sorted: what --online-cmvn-history-weights
    reads, and what a new decode into DECODE_DIR removes first (its jobs write their own)."""
    return sorted(Path(decode_dir).glob(f"{CMVN_WEIGHTS}.*.ark"))


def _check_cmvn_carry(decode_dir, history, order_seed, silence_weight):
    """Refuse, in one line, history weights decided under another order seed or silence weight than this decode's
    (DECODE_DIR/cmvn_carry.conf, `write_cmvn_carry`'s record); a decode dir from before the record is accepted with
    a warning."""
    from kaldilite.errors import InputError

    path = Path(decode_dir) / CMVN_CARRY_CONF
    asked = " ".join(f"--{name} {text}" for name, text in cmvn_carry_values(order_seed, silence_weight).items())
    recorded = read_cmvn_carry(decode_dir, f"re-decode {history} into {decode_dir}")
    if recorded is None:
        log.warning("%s: missing (a decode from before decode-commands recorded its carry): cannot check that its "
                    "carry weights were decided with %s; re-decode %s into %s to have it checked", path, asked,
                    history, decode_dir)
        return
    seed, weight = recorded
    if (seed, weight) != (int(order_seed), float(silence_weight)):
        theirs = " ".join(f"--{name} {text}" for name, text in cmvn_carry_values(seed, weight).items())
        raise InputError(f"{path}: the carry weights of {decode_dir} were decided with {theirs}, this decode carries "
                         f"with {asked}; give this decode {theirs}, or re-decode {history} into {decode_dir} with "
                         f"{asked}")


def read_history_weights(decode_dir, history, order_seed, silence_weight):
    """{utt: carry weights} of DECODE_DIR/cmvn_weights.*.ark, the decode of the online-CMVN history data dir
    `history` (decode-commands --online-cmvn-history-weights), decided under this decode's carry (`order_seed`,
    `silence_weight`, as DECODE_DIR/cmvn_carry.conf records them); refused in one line when absent or not."""
    from kaldilite.errors import InputError, MissingFileError
    from kaldilite.io.tables import read_vectors

    if decode_dir is None:
        raise InputError(f"--online-cmvn-history {history} with --online-cmvn-silence-weight below 1 needs "
                         "--online-cmvn-history-weights DECODE_DIR: decode-commands' decode of that data dir, whose "
                         "best paths decided the silence frames its utterances carried")
    files = cmvn_weight_files(decode_dir)
    if not files:
        raise MissingFileError(f"{Path(decode_dir) / (CMVN_WEIGHTS + '.1.ark')}: missing; decode {history} with "
                               "decode-commands (online CMVN, --online-cmvn-silence-weight below 1) into "
                               f"{decode_dir} first")
    _check_cmvn_carry(decode_dir, history, order_seed, silence_weight)
    weights = {}
    for path in files:
        weights.update(read_vectors(str(path)))
    from kaldilite.io.datadir import DataDir

    missing = sorted(set(DataDir.load(history).utt2spk or ()) - set(weights))
    if missing:
        raise InputError(f"{files[0]}: no carry weights for utterance {missing[0]} of {history} ({len(missing)} in "
                         f"all); {decode_dir} must be the decode of {history} itself: re-decode it")
    return weights


def refuse_online_ivectors(online_ivector_dir, model_description):
    """One line refusing --online-ivector-dir for a model without an i-vector input (any but an nnet2 model
    trained with them, which `check_online_ivectors` checks instead); nothing when the option is absent."""
    if online_ivector_dir is not None:
        from kaldilite.errors import InputError

        raise InputError(f"--online-ivector-dir {online_ivector_dir}: {model_description} takes no i-vectors (only "
                         "an nnet2 model trained with train-nnet2 --online-ivector-dir)")


def with_online_ivectors(loaded, data_dir, online_ivector_dir, features):
    """`features` of a `LoadedModel` with its frames' i-vectors appended when it is an nnet2 model trained
    with them (`check_online_ivectors`: the dir present exactly then, of its extractor, covering DATA)."""
    if loaded.model_type != "nnet2":
        refuse_online_ivectors(online_ivector_dir, f"a {loaded.model_type} model")
        return features
    from kaldilite.nnet.model import check_online_ivectors, ivector_appended

    ivectors = check_online_ivectors(loaded.scorer, data_dir, online_ivector_dir)
    return ivector_appended(loaded.scorer, features, ivectors)


def online_cmvn_setup(opts):
    """(global stats, OnlineCmvnOptions) of ``opts.online_cmvn`` / ``online_cmvn_config``, or None."""
    if opts.online_cmvn is None:
        return None
    from kaldilite.feat.cmvn import OnlineCmvnOptions
    from kaldilite.io.config import read_config
    from kaldilite.io.tables import read_matrix

    cmvn_opts = read_config(opts.online_cmvn_config, OnlineCmvnOptions) if opts.online_cmvn_config else None
    return read_matrix(opts.online_cmvn), cmvn_opts


def first_pass_speaker_transforms(graph, si_tm, si_am, sat_am, si_feats, utt2spk, silence_phones, decoder_opts,
                                  fmllr_opts, silence_weight=0.0, words=None, results=None):
    """decode_fmllr.sh's first pass: SI best paths -> per-speaker fMLLR transforms (speaker -> D x (D+1)).

    Posteriors of ``si_am``'s Gaussians along each utterance's best path (silence phones weighted
    ``silence_weight``), statistics with ``sat_am``'s means and variances (gmm-est-fmllr-gpost).
    ``results``: the first pass's [(utt, DecodeResult)] when the caller decoded it already.
    """
    from kaldilite.decode.batch import decode_utterances
    from kaldilite.train.sat import _frame_gaussian_posteriors, estimate_speaker_transforms

    if results is None:
        results = decode_utterances(graph, si_tm.tid_to_pdf, si_am.log_likelihoods, si_feats.items(), decoder_opts,
                                    words)
    posts = {}
    for utt, result in results:
        if result is None or len(result.alignment) != len(si_feats[utt]):
            continue
        _, posts[utt] = _frame_gaussian_posteriors(si_tm, si_am, si_feats[utt], slice(None),
                                                   np.asarray(result.alignment), 1.0, silence_phones, silence_weight)
    transforms, _, _ = estimate_speaker_transforms(si_feats, posts, si_am, utt2spk, fmllr_opts, stats_model=sat_am)
    return transforms


def _decode_sat(graph_dir, model_path, data_dir, decode_dir, job, opts, silence_phones):
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.train.lda_mllt import write_speaker_transforms
    from kaldilite.train.sat import _speakers_of
    from kaldilite.transform.fmllr import FmllrOptions, apply_transform
    from kaldilite.utils.load_once import load_once

    si_tm, si_am, si_pipeline, _ = load_once(model_path.parent / SI_MODEL, load_model)
    tm, am, _, _ = load_once(model_path, load_model)
    graph, words, fillers, recognizer_opts = _recognition_setup(graph_dir, opts)
    utt2spk, _ = _speakers_of(data_dir)
    si_feats = dict(load_features(data_dir, si_pipeline))
    timer = _Timer()
    with timer:
        first = DecoderOptions(beam=opts.first_beam, max_active=opts.max_active, min_active=opts.min_active,
                               acoustic_scale=opts.acoustic_scale)
        first_results, first_llr = None, {}
        if opts.first_pass_measures:  # (its best paths are the 1-best search's, so fMLLR is unchanged)
            first_results = []
            first_pass = _lattice_pass(graph, si_tm.tid_to_pdf, words, fillers,
                                       dataclasses.replace(recognizer_opts, beam=opts.first_beam, phone_scores=False,
                                                           phone_llr=False),
                                       si_am.log_likelihoods, si_feats.items(), _Timer(), first_results)
            first_llr = {utt: m.llr for utt, m, _ in first_pass}
        fmllr_graph = graph
        if opts.fmllr_hypothesis == "garbage":
            from kaldilite.decode.confidence import restrict_graph, word_ids_by_side

            filler_ids, command_ids = word_ids_by_side(graph, words, fillers)
            if filler_ids:
                fmllr_graph, first_results = restrict_graph(graph, command_ids), None
        elif opts.fmllr_hypothesis != "best":
            raise ValueError(f"fmllr_hypothesis must be 'best' or 'garbage', not {opts.fmllr_hypothesis!r}")
        transforms = first_pass_speaker_transforms(
            fmllr_graph, si_tm, si_am, am, si_feats, utt2spk, silence_phones, first,
            FmllrOptions(update_type=opts.fmllr_update_type, min_count=opts.fmllr_min_count), opts.silence_weight,
            words, first_results)
    write_speaker_transforms(transforms, decode_dir / f"trans.{job}")

    def adapted():
        for utt, feats in si_feats.items():
            w = transforms.get(utt2spk[utt])
            yield utt, (feats if w is None else apply_transform(feats, w).astype(np.float32))

    results = _lattice_pass(graph, tm.tid_to_pdf, words, fillers, recognizer_opts, am.log_likelihoods, adapted(),
                            timer, phone_tables=(tm.tid_to_phone, silence_phones))
    for utt, m, _ in results:
        m.first_pass_llr = first_llr.get(utt)
    return results, timer.wall, timer.cpu
