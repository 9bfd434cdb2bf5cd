"""Command-word verbs: corpora (`prepare-speech-commands`, `synthesize-corpus`), augmentation
(`perturb-data-dir-speed`, `add-noise-data-dir`, `reverberate-data-dir`), and the command recognizer's scoring and
threshold calibration (`score-commands`, `calibrate-rejection`).
"""

import logging
import math
from pathlib import Path

import click

from kaldilite.errors import InputError, MissingFileError
from kaldilite.utils.click_options import decoder_options

log = logging.getLogger(__name__)


@click.command("perturb-data-dir-speed")
@click.argument("factors")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dest_dir", type=click.Path())
def perturb_data_dir_speed_cmd(factors, src_dir, dest_dir):
    """Speed-perturb a data dir (utils/data/perturb_data_dir_speed.sh).

    FACTORS is one factor (0.9) or a comma-separated list whose copies are combined, as
    perturb_data_dir_speed_3way.sh does with 0.9,1.0,1.1. Ids get the prefix sp<factor>-, audio
    plays through `sox ... speed <factor> |` pipes in wav.scp; features must be recomputed.

    e.g.: kaldilite perturb-data-dir-speed 0.9,1.0,1.1 data/train data/train_sp
    """
    from kaldilite.corpora.augment import perturb_data_dir_speed, perturb_data_dir_speed_3way
    from kaldilite.errors import InputError
    from kaldilite.io.datadir import DataDir

    values = _finite_numbers(factors, ",", "FACTORS must be numbers separated by commas (e.g. 0.9,1.0,1.1)")
    if not values:
        raise InputError("FACTORS is empty; give e.g. 0.9 or 0.9,1.0,1.1")
    if len(values) == 1:
        perturb_data_dir_speed(values[0], src_dir, dest_dir)
    else:
        perturb_data_dir_speed_3way(src_dir, dest_dir, values)
    data = DataDir.load(dest_dir)
    click.echo(f"{dest_dir}: {len(data)} utterances, {len(data.speakers)} speakers (speeds {factors})", err=True)


def _finite_numbers(text, separator, what):
    """The finite numbers of a list option, each by Kaldi's rule (io/config.convert_string_to_real;
    float() also took '1_0' and other scripts' digits), empty fields dropped; else InputError `what`."""
    from kaldilite.io.config import convert_string_to_real

    try:
        values = [convert_string_to_real(v) for v in text.split(separator) if v.strip()]
    except ValueError:
        values = None
    if values is None or not all(math.isfinite(v) for v in values):
        raise InputError(f"{what}, not '{text}'")
    return values


def _colon_floats(text, option, example):
    values = _finite_numbers(text, ":", f"{option} must be numbers separated by ':' (e.g. {example})")
    if not values:
        raise InputError(f"{option} is empty; give e.g. {example}")
    return values


@click.command("add-noise-data-dir")
@click.option("--bg-noise-dir", required=True, type=click.Path(exists=True),
              help="Noise clips: a data dir (wav.scp), a folder of wavs, or a list file.")
@click.option("--bg-snrs", default="15:10:5:0", show_default=True,
              help="SNRs in dB, colon-separated; one is drawn per utterance.")
@click.option("--utt-prefix", default="noise", show_default=True, help="Prefix of the new utterance and speaker ids.")
@click.option("--random-seed", default=0, show_default=True, type=int)
@click.option("--sample-frequency", type=float, default=None,
              help="Resample speech to this rate first (default: keep each file's rate).")
@click.option("--pad-range", default=None,
              help="min:max seconds of noise-only pause before and after the word (e.g. 0.2:1.5; default: none); "
                   "whole frames of --frame-shift, listed in DEST_DIR/utt2pad.")
@click.option("--pad-probability", default=0.5, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="With --pad-range: the probability of a pause on each side, drawn per utterance and side.")
@click.option("--frame-shift", default=10.0, show_default=True, type=float,
              help="With --pad-range: the frame shift in ms of the features the copies will get (the --frame-shift "
                   "of make-mfcc's config); the pauses are whole frames of it.")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dest_dir", type=click.Path())
def add_noise_data_dir_cmd(bg_noise_dir, bg_snrs, utt_prefix, random_seed, sample_frequency, pad_range,
                           pad_probability, frame_shift, src_dir, dest_dir):
    """Add background noise to every utterance (steps/data/augment_data_dir.py, --bg-* options).

    The mixed audio is written under DEST_DIR/wav/; DEST_DIR/utt2noise lists the clip, offset
    and SNR chosen for each utterance. --pad-range adds noise-only pauses around the word (the noise
    running on at its level); the word's samples stay those of the copy without them, whose alignment
    train-nnet2 extends by DEST_DIR/utt2pad.

    e.g.: kaldilite add-noise-data-dir --bg-noise-dir data/noise_train --bg-snrs 15:10:5:0 data/train data/train_noise
    """
    from kaldilite.corpora.augment import add_noise_data_dir

    snrs = _colon_floats(bg_snrs, "--bg-snrs", "15:10:5:0")
    pads = None
    if pad_range is not None:
        pads = _colon_floats(pad_range, "--pad-range", "0.2:1.5")
        if len(pads) != 2:
            raise InputError(f"--pad-range needs two values min:max, not '{pad_range}'")
    dest = add_noise_data_dir(src_dir, dest_dir, bg_noise_dir, snrs, utt_prefix, random_seed, sample_frequency,
                              pad_range=pads, pad_probability=pad_probability, frame_shift=frame_shift)
    lines = (dest / "wav.scp").read_text(encoding="utf-8").count("\n")
    click.echo(f"{dest_dir}: {lines} noisy utterances (SNR {bg_snrs} dB)", err=True)


@click.command("reverberate-data-dir")
@click.option("--num-rirs", default=100, show_default=True, type=int,
              help="How many rooms are simulated (image method); each copy draws one.")
@click.option("--rt60-range", default="0.2:0.8", show_default=True,
              help="min:max RT60 in seconds, drawn uniformly per room.")
@click.option("--speech-rvb-probability", default=1.0, show_default=True, type=float,
              help="Probability that a copy is reverberated (else it stays dry).")
@click.option("--pointsource-noise-addition-probability", default=0.0, show_default=True, type=float,
              help="Probability that a copy gets a noise clip from another point of its room (needs --noise-dir).")
@click.option("--noise-dir", type=click.Path(exists=True), default=None,
              help="Point-source noise clips: a data dir (wav.scp), a folder of wavs, or a list file.")
@click.option("--foreground-snrs", default="20:10:0", show_default=True,
              help="SNRs in dB of the point-source noise against the early reverberation, colon-separated.")
@click.option("--prefix", default="rev", show_default=True,
              help="Copy k of utterance U is <prefix><k>-U (its speaker likewise).")
@click.option("--num-replications", default=1, show_default=True, type=int, help="Reverberated copies per utterance.")
@click.option("--random-seed", default=0, show_default=True, type=int)
@click.option("--source-sampling-rate", default=16000, show_default=True, type=int,
              help="The rate the RIRs are simulated at; speech is resampled to it.")
@click.option("--nj", default=1, show_default=True, type=click.IntRange(min=1),
              help="Parallel jobs (rooms, then utterances, shared out; logs in DEST_DIR/log); any N writes the same files.")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dest_dir", type=click.Path())
def reverberate_data_dir_cmd(num_rirs, rt60_range, speech_rvb_probability, pointsource_noise_addition_probability,
                             noise_dir, foreground_snrs, prefix, num_replications, random_seed, source_sampling_rate,
                             nj, src_dir, dest_dir):
    """Reverberate a data dir with simulated rooms (steps/data/reverberate_data_dir.py).

    The room impulse responses are simulated by the image method (random shoebox rooms, as Ko et
    al. 2017 made Kaldi's RIRS_NOISES set); the copies keep the source's timing, so its alignment
    serves them (train-nnet2 copies it through utt2uniq). Audio is written under DEST_DIR/wav/;
    DEST_DIR/utt2rir lists each copy's room and noise, DEST_DIR/rooms.txt the rooms.

    e.g.: kaldilite reverberate-data-dir --num-rirs 100 --rt60-range 0.2:0.8 data/train data/train_rvb
    """
    from kaldilite.corpora.augment import reverberate_data_dir

    rt60 = _colon_floats(rt60_range, "--rt60-range", "0.2:0.8")
    if len(rt60) != 2:
        raise InputError(f"--rt60-range needs two values min:max, not '{rt60_range}'")
    snrs = _colon_floats(foreground_snrs, "--foreground-snrs", "20:10:0")
    dest = reverberate_data_dir(src_dir, dest_dir, num_rirs=num_rirs, rt60_range=tuple(rt60),
                                speech_rvb_probability=speech_rvb_probability,
                                pointsource_noise_addition_probability=pointsource_noise_addition_probability,
                                noise=noise_dir, foreground_snrs=snrs, prefix=prefix,
                                num_replications=num_replications, random_seed=random_seed,
                                sample_frequency=source_sampling_rate, nj=nj)
    lines = (dest / "wav.scp").read_text(encoding="utf-8").count("\n")
    click.echo(f"{dest_dir}: {lines} reverberated utterances ({num_rirs} rooms, RT60 {rt60_range} s)", err=True)



@click.command("prepare-speech-commands")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False),
              help="lexicon.txt: words it lacks are transcribed <UNK> (default: keep every word).")
@click.option("--dev-noise-every", default=5, show_default=True, help="Every N-th noise clip is a dev silence utterance.")
@click.option("--num-speakers", type=int, default=None,
              help="Keep only this many speakers per part (those with non-command words first): quick runs.")
@click.option("--silence/--no-silence", default=True, show_default=True,
              help="Add the _background_noise_ clips as !SIL utterances (the 12-class silence class).")
@click.option("--heldout-speakers", type=click.Path(exists=True, dir_okay=False),
              help="A file of training speaker ids (noiseNN: a noise pseudo-speaker) written to OUT_DIR/heldout "
                   "instead of train; their clips are not in noise_train either.")
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path())
def prepare_speech_commands_cmd(lexicon, dev_noise_every, num_speakers, silence, heldout_speakers, corpus_dir,
                                out_dir):
    """Write OUT_DIR/{train,dev[,test]} (+ noise_train, noise_dev) from a Speech Commands folder.

    Dev is validation_list.txt, test testing_list.txt (when present), train the rest; with
    --heldout-speakers, those training speakers go to OUT_DIR/heldout (a slice no model trains on).

    e.g.: kaldilite prepare-speech-commands --lexicon lang/en/lexicon.txt $KALDILITE_DATA/speech_commands data
    """
    from kaldilite.corpora.speech_commands import prepare_speech_commands

    words = None
    if lexicon:
        with open(lexicon, encoding="utf-8") as handle:
            words = {line.split()[0] for line in handle if line.split()}
    parts = prepare_speech_commands(corpus_dir, out_dir, lexicon_words=words, dev_noise_every=dev_noise_every,
                                    speakers_per_part=num_speakers, silence=silence, heldout_speakers=heldout_speakers)
    for name, data in parts.items():
        click.echo(f"{out_dir}/{name}: {len(data)} utterances, {len(data.speakers)} speakers", err=True)


@click.command("prepare-fsdd-oov")
@click.option("--takes", default=5, show_default=True, help="Takes per speaker and digit (the lowest-numbered).")
@click.option("--sample-frequency", default=16000, show_default=True, type=int,
              help="Resample to this rate (the command models' rate) through a sox pipe in wav.scp.")
@click.option("--pad-to", default=0.0, show_default=True, type=float,
              help="Centre each clip in this many seconds of silence (1.0: Speech Commands' clip length; 0: as is).")
@click.argument("fsdd_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def prepare_fsdd_oov_cmd(takes, sample_frequency, pad_to, fsdd_dir, out_dir):
    """Write an out-of-vocabulary eval data dir: FSDD digits (never commands) from unseen speakers.

    FSDD is 8 kHz: the resampled audio has nothing above 4 kHz (a channel mismatch to report).
    Decode it with decode-commands and score it with score-commands like dev; every utterance
    counts as a non-command word.

    e.g.: kaldilite prepare-fsdd-oov --takes 5 $KALDILITE_DATA/fsdd data/oov_fsdd
    """
    from kaldilite.corpora.oov_eval import prepare_fsdd_oov

    data = prepare_fsdd_oov(fsdd_dir, out_dir, takes=takes, sample_frequency=sample_frequency, pad_to=pad_to)
    click.echo(f"{out_dir}: {len(data)} OOV utterances (FSDD digits at {sample_frequency} Hz), "
               f"{len(data.speakers)} speakers", err=True)


@click.command("prepare-synthetic-oov")
@click.option("--num-speakers", default=10, show_default=True, help="espeak-ng voices (voice + variant + rate + pitch).")
@click.option("--takes", default=1, show_default=True, help="Recordings per voice and word.")
@click.option("--seed", default=1, show_default=True, help="Voice seed (0 is the synthetic training corpus's).")
@click.argument("words_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def prepare_synthetic_oov_cmd(num_speakers, takes, seed, words_file, out_dir):
    """Write an OOV eval data dir of WORDS_FILE's words (one per line, # comments) in espeak-ng voices.

    Synthetic speech: label its figures as such. The audio goes to OUT_DIR/audio.

    e.g.: kaldilite prepare-synthetic-oov conf/oov_words.txt data/oov_synth
    """
    from kaldilite.corpora.oov_eval import prepare_synthetic_oov

    words = [line.split("#")[0].strip() for line in Path(words_file).read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w]
    data = prepare_synthetic_oov(words, out_dir, num_speakers=num_speakers, takes=takes, seed=seed)
    click.echo(f"{out_dir}: {len(data)} synthetic OOV utterances ({len(words)} words, "
               f"{len(data.speakers)} voices)", err=True)


@click.command("synthesize-corpus")
@click.option("--commands", "commands_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="commands.txt: every word of every command is synthesized.")
@click.option("--fillers", "fillers_file", type=click.Path(exists=True, dir_okay=False),
              help="fillers.txt: filler words, synthesized too (the non-command class).")
@click.option("--num-speakers", default=40, show_default=True, help="Synthetic speakers (voice + variant + rate + pitch).")
@click.option("--takes", default=2, show_default=True, help="Recordings per speaker and word.")
@click.option("--dev-every", default=5, show_default=True, type=click.IntRange(min=2),
              help="Every N-th speaker is held out for validation_list.txt (at most --num-speakers: at least one "
                   "is held out; 2 or more: at least one trains).")
@click.option("--snrs", default="30:20:15:10", show_default=True, help="SNRs (dB) of the added noise, colon-separated.")
@click.option("--seed", default=0, show_default=True, help="Random seed (the corpus is deterministic given it).")
@click.argument("out_dir", type=click.Path(file_okay=False))
def synthesize_corpus_cmd(commands_file, fillers_file, num_speakers, takes, dev_every, snrs, seed, out_dir):
    """Synthesize a Speech Commands-layout corpus with espeak-ng voices (no recordings needed).

    e.g.: kaldilite synthesize-corpus --commands lang/en/commands.txt --fillers lang/en/fillers.txt downloads/synthetic
    """
    snr_values = _colon_floats(snrs, "--snrs", "30:20:15:10")
    from kaldilite.corpora.synthetic import synthesize_corpus
    from kaldilite.lang.grammar import read_items

    words = []
    for path in [commands_file] + ([fillers_file] if fillers_file else []):
        for item_words, _, _ in read_items(path):
            words.extend(w for w in item_words if w not in words)
    out = synthesize_corpus(out_dir, words, num_speakers=num_speakers, takes=takes, dev_every=dev_every,
                            snrs=snr_values, seed=seed)
    click.echo(str(out))


@click.command("decode-commands")
@click.option("--nj", default=2, show_default=True, help="Number of parallel jobs (data split by speaker).")
@decoder_options(acwt=0.1, lattice_beam=6.0)
@click.option("--first-beam", default=10.0, show_default=True,
              help="SAT models: beam of the speaker-independent first pass (decode_fmllr.sh --first-beam).")
@click.option("--silence-weight", default=0.0, show_default=True,
              help="SAT models: weight of silence frames in the fMLLR statistics.")
@click.option("--fmllr-min-count", default=500.0, show_default=True,
              help="SAT models: a speaker with fewer speech frames keeps the identity transform (gmm-est-fmllr).")
@click.option("--exact-llr/--lattice-llr", default=False, show_default=True,
              help="LLR from constrained searches for the side missing from the lattice, instead of clipping "
                   "it at the lattice beam (RecognizerOptions.exact_llr).")
@click.option("--phone-scores/--no-phone-scores", default=False, show_default=True,
              help="Also the GOP scores of the best path when it is a command path (gop_min, gop_mean in "
                   "measures.jsonl; RecognizerOptions.phone_scores).")
@click.option("--phone-llr/--no-phone-llr", default=False, show_default=True,
              help="Also the phone-level ratios of that path against the best filler/garbage path "
                   "(phone_llr_min, phone_llr_min_per_frame, word_llr; one more 1-best search per utterance).")
@click.option("--rule-scores", default="", metavar="NAME,...",
              help="The scores the rejection rule(s) to be calibrated on this decode read (--score, logistic "
                   "--features; e.g. logistic,llr_total,gop_mean): the phone-level ones among them turn on "
                   "--phone-scores, and --phone-llr for the ratios against the garbage side.")
@click.option("--first-pass-measures/--no-first-pass-measures", default=False, show_default=True,
              help="SAT models: also decode the speaker-independent pass with lattices and keep its llr "
                   "(first_pass_llr in measures.jsonl), for rejection decided before fMLLR.")
@click.option("--fmllr-hypothesis", type=click.Choice(["best", "garbage"]), default="best", show_default=True,
              help="SAT models: fMLLR from the first pass's best path (decode_fmllr.sh), or from the best path "
                   "of the filler/garbage side of the graph (not pulled toward a command).")
@click.option("--transform-dir", type=click.Path(exists=True, file_okay=False),
              help="nnet2 models trained on fMLLR-adapted input (train-nnet2 --transform-dir): the test speakers' "
                   "transforms trans.* (e.g. the SAT system's decode dir of this data, exp/tri3b/decode_dev).")
@click.option("--online-cmvn", "online_cmvn", type=click.Path(exists=True, dir_okay=False), metavar="GLOBAL_STATS",
              help="Normalize with the online decoder's CMVN (apply-cmvn-online --spk2utt) instead of the model's "
                   "offline CMVN, this file as the prior (e.g. a bundle's global_cmvn.stats): stats carried from "
                   "each of a speaker's utterances to the next as decode-online carries them (see "
                   "--online-cmvn-order-seed, --online-cmvn-silence-weight). Speaker-independent models only; a "
                   "model trained on online CMVN (train-nnet2 "
                   "--online-cmvn) decodes that way unasked, with its own stats.")
@click.option("--online-cmvn-config", type=click.Path(exists=True, dir_okay=False),
              help="With --online-cmvn: OnlineCmvn options (e.g. a bundle's conf/online_cmvn.conf; default: "
                   "Kaldi's defaults).")
@click.option("--online-cmvn-history", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="With online CMVN (--online-cmvn, or a model trained on it): a data dir holding DATA_DIR's "
                   "utterances among others (e.g. data/dev for a subset of it); the stats are carried through ITS spk2utt, so DATA_DIR's utterances are "
                   "normalized exactly as within it (with --online-cmvn-history-weights).")
@click.option("--online-cmvn-order-seed", default=0, show_default=True, type=click.IntRange(min=-1),
              help="With online CMVN: each speaker's utterances are carried in a random order drawn from this seed and "
                   "the speaker's id (the same whatever the job split), as a live user says them in any order; -1: "
                   "spk2utt's order (sorted ids: for Speech Commands, by word).")
@click.option("--online-cmvn-silence-weight", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="With online CMVN: weight of the frames each utterance's best path puts on silence phones when it "
                   "joins the carried stats, as decode-online --cmvn-silence-weight (same default) weighs them; below "
                   "1 a speaker's utterances are decoded one after the other (jobs stay parallel across speakers) and "
                   "the weights written to DECODE_DIR/cmvn_weights.JOB.ark. 1: all frames (apply-cmvn-online). Recorded with "
                   "the order seed in DECODE_DIR/cmvn_carry.conf: export-model ships the weight of a rule calibrated "
                   "on this decode.")
@click.option("--online-cmvn-history-weights", type=click.Path(exists=True, file_okay=False), metavar="DECODE_DIR",
              help="With --online-cmvn-history and a silence weight below 1: decode-commands' decode dir of the "
                   "history data dir (its cmvn_weights.*.ark), whose best paths decided the silence frames its "
                   "utterances carried; refused when its cmvn_carry.conf records another --online-cmvn-order-seed "
                   "or --online-cmvn-silence-weight than this decode's.")
@click.option("--online-ivector-dir", type=click.Path(exists=True, file_okay=False),
              help="nnet2 models trained with online i-vectors (train-nnet2 --online-ivector-dir): "
                   "extract-ivectors-online's output for DATA_DIR (or for a data dir holding its utterances, e.g. "
                   "dev for a subset of it), with the model's extractor (steps/nnet2/decode.sh --online-ivector-dir).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="Model file (default: DECODE_DIR/../final.mdl, else GRAPH_DIR/../final.mdl): a GMM, "
                   "an LDA+MLLT GMM, a SAT GMM (final.alimdl beside it) or an nnet2 DNN.")
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(file_okay=False))
def decode_commands_cmd(graph_dir, data_dir, decode_dir, nj, beam, max_active, min_active, acwt, lattice_beam,
                        first_beam, silence_weight, fmllr_min_count, exact_llr, phone_scores, phone_llr,
                        rule_scores, first_pass_measures, fmllr_hypothesis, transform_dir, online_cmvn,
                        online_cmvn_config, online_cmvn_history, online_cmvn_order_seed, online_cmvn_silence_weight,
                        online_cmvn_history_weights, online_ivector_dir, model):
    """Decode a data dir for command recognition: per-utterance rejection measures.

    Any acoustic model: GMM (deltas or LDA+MLLT), nnet2 DNN, or SAT, which decodes in two passes
    as steps/decode_fmllr.sh (speaker-independent final.alimdl, per-speaker fMLLR -> DECODE_DIR/trans.JOB,
    then the lattice pass with final.mdl). For an nnet2 model give its GMM system's graph.

    Writes DECODE_DIR/measures.jsonl (the inputs of the rejection rule for each utterance:
    best words, label, confidence, LLR, best command), hyp.txt under the graph's rejection rule
    (GRAPH_DIR/rejection.json, else the default), rtf, log/decode.JOB.log, and decoded_with.json
    (the model and graph, with their SHA-256: a rule calibrated on this decode records them and
    export-model refuses another model). Score it with
    score-commands; calibrate the rule on it with calibrate-rejection.

    \b
    e.g.: kaldilite decode-commands --nj 2 exp/mono/graph_commands data/dev exp/mono/decode_dev
          kaldilite decode-commands exp/nnet2/graph_commands data/dev_hires exp/nnet2/decode_dev
          # a DNN trained on offline CMVN, decoded through decode-online's online CMVN:
          kaldilite decode-commands --online-cmvn exp/nnet2_online/global_cmvn.stats \\
            --online-cmvn-config exp/nnet2_online/conf/online_cmvn.conf --model exp/nnet2/final.mdl \\
            exp/nnet2/graph_commands data/dev_hires exp/nnet2_online_cmvn/decode_dev
    """
    import dataclasses
    import time

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.gmm.model import check_data_features
    from kaldilite.graph.provenance import (DECODE_RECORD_FILE, check_graph_for_model, decode_record,
                                            write_decode_record)
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.parallel import run_jobs
    from kaldilite.score.commands import MEASURES_FILE, measures_to_json
    from kaldilite.feat.cmvn import CMVN_CARRY_CONF, write_cmvn_carry
    from kaldilite.train.decode_commands import (CommandDecodeOptions, cmvn_weight_files, decode_commands_job,
                                                 decoding_kind, nnet_model_and_input, online_cmvn_setup,
                                                 refuse_online_ivectors, start_up_before_forking_jobs,
                                                 with_online_ivectors)
    from kaldilite.utils.atomic import atomic_open
    from kaldilite.utils.load_once import load_once

    start = time.perf_counter()
    if rule_scores.strip():
        from kaldilite.decode.confidence import phone_score_needs
        from kaldilite.decode.rejection import FEATURES, SCORES, is_logistic_feature

        names = rule_scores.replace(",", " ").split()
        unknown = [n for n in names if n not in SCORES and not is_logistic_feature(n)]
        if unknown:
            raise click.BadParameter(f"unknown score(s) {', '.join(unknown)}; known: {', '.join(SCORES)} and the "
                                     f"logistic features {', '.join(f for f in FEATURES if f not in SCORES)}",
                                     param_hint="--rule-scores")
        needs_scores, needs_llr = phone_score_needs(names)
        phone_scores, phone_llr = phone_scores or needs_scores, phone_llr or needs_llr
    decode_dir = Path(decode_dir)
    model_path = _find_model(model, decode_dir.parent, Path(graph_dir).parent)
    if not (Path(data_dir) / "feats.scp").is_file():
        raise MissingFileError(f"{Path(data_dir) / 'feats.scp'}: no features; run make-mfcc and "
                               f"compute-cmvn-stats on {data_dir} first")
    kind = decoding_kind(model_path)  # sat, adapted_nnet or single: the model file's header read once
    recorded_online_cmvn = False  # a model trained on online CMVN (train-nnet2 --online-cmvn) decodes with it
    # the model is read here once, for the checks; jobs run in this process or forked from it reuse it
    if transform_dir is not None or kind == "adapted_nnet":  # all checked once, before any job
        transition_model = nnet_model_and_input(model_path, data_dir, transform_dir, online_ivector_dir)[0].tm
    elif kind == "sat":
        from kaldilite.gmm.model import load_model

        transition_model = load_once(model_path, load_model)[0]
        check_data_features(model_path, data_dir)
        refuse_online_ivectors(online_ivector_dir, f"{model_path}, a SAT GMM,")
    else:
        from kaldilite.online.bundle import load_scoring_model

        loaded = load_once(model_path, load_scoring_model)
        transition_model = loaded.transition_model
        if hasattr(loaded.scorer, "check_raw_features"):  # nnet2: its message spells the whole input chain
            loaded.scorer.check_raw_features(data_dir)
        else:
            check_data_features(model_path, data_dir)
        recorded_online_cmvn = loaded.pipeline is not None and loaded.pipeline.cmvn == "online"
        if recorded_online_cmvn:
            from kaldilite.online.bundle import warn_cmvn_carry_mismatch

            warn_cmvn_carry_mismatch(model_path, loaded.pipeline, online_cmvn_silence_weight,
                                     "--online-cmvn-silence-weight", "decode-commands")
        with_online_ivectors(loaded, data_dir, online_ivector_dir, iter(()))  # (the checks, before any job)
    check_graph_for_model(graph_dir, model_path, transition_model=transition_model)
    silence_phones = ()
    carry_by_decoding = ((online_cmvn or recorded_online_cmvn) and online_cmvn_silence_weight != 1.0
                         and online_cmvn_history is None)
    if kind == "sat" or phone_scores or phone_llr or carry_by_decoding:
        # fMLLR statistics, phone scores, online CMVN's silence weighting: a missing list fails here
        from kaldilite.lang.langdir import read_phone_list

        silence_phones = read_phone_list(Path(graph_dir) / "phones" / "silence.int",
                                         "rebuild the graph with `kaldilite mkgraph` (it copies the lang dir's phone lists)")
    opts = CommandDecodeOptions(beam=beam, max_active=max_active, min_active=min_active, acoustic_scale=acwt,
                                lattice_beam=lattice_beam, first_beam=first_beam, silence_weight=silence_weight,
                                fmllr_min_count=fmllr_min_count, exact_llr=exact_llr, phone_scores=phone_scores,
                                phone_llr=phone_llr,
                                first_pass_measures=first_pass_measures, fmllr_hypothesis=fmllr_hypothesis,
                                transform_dir=None if transform_dir is None else str(transform_dir),
                                online_cmvn=online_cmvn, online_cmvn_config=online_cmvn_config,
                                online_cmvn_history=online_cmvn_history, online_cmvn_order_seed=online_cmvn_order_seed,
                                online_cmvn_silence_weight=online_cmvn_silence_weight,
                                online_cmvn_history_weights=online_cmvn_history_weights,
                                online_ivector_dir=None if online_ivector_dir is None else str(online_ivector_dir))
    if recorded_online_cmvn and (online_cmvn or online_cmvn_config):
        raise click.UsageError(f"{model_path} was trained on online CMVN and records its global stats and options: "
                               "drop --online-cmvn/--online-cmvn-config (its own online CMVN is used unasked)")
    if (online_cmvn_config or online_cmvn_history) and not (online_cmvn or recorded_online_cmvn):
        raise click.UsageError("--online-cmvn-config and --online-cmvn-history go with --online-cmvn GLOBAL_STATS "
                               "(or a model trained with train-nnet2 --online-cmvn)")
    if online_cmvn and (kind != "single" or transform_dir is not None):
        raise InputError(f"--online-cmvn: {model_path} is speaker-adapted (SAT or fMLLR input); online CMVN is for "
                         "the speaker-independent models decode-online runs")
    online_cmvn_setup(opts)  # an unreadable stats file or config fails here, before any job
    if (online_cmvn or recorded_online_cmvn) and online_cmvn_history and online_cmvn_silence_weight != 1.0:
        from kaldilite.train.decode_commands import read_history_weights

        read_history_weights(online_cmvn_history_weights, online_cmvn_history, online_cmvn_order_seed,
                             online_cmvn_silence_weight)  # (the checks, before any job)
    for stale in (*cmvn_weight_files(decode_dir), decode_dir / CMVN_CARRY_CONF, decode_dir / DECODE_RECORD_FILE):
        stale.unlink(missing_ok=True)  # this decode writes its own
    decoded_with = decode_record(model_path, graph_dir)  # (digests of the files as this decode reads them)
    parts = split_data_dir(data_dir, nj) if nj > 1 else [Path(data_dir)]
    job_args = [(str(graph_dir), str(model_path), str(part), str(decode_dir), k, dataclasses.asdict(opts),
                 silence_phones) for k, part in enumerate(parts, 1)]
    decode_dir.mkdir(parents=True, exist_ok=True)
    start_up_before_forking_jobs(job_args, len(parts))  # compiled code the forked jobs inherit
    outputs = run_jobs(decode_commands_job, job_args, decode_dir / "log", "decode", nj=len(parts))
    records = sorted((rec for output, _, _ in outputs for rec in output), key=lambda r: r[0])
    decode_seconds = sum(seconds for _, seconds, _ in outputs)
    cpu_seconds = sum(cpu for _, _, cpu in outputs)
    frames = sum(n for _, _, n in records)
    with atomic_open(decode_dir / MEASURES_FILE) as handle:
        for utt, m, n in records:
            handle.write(measures_to_json(utt, m, n) + "\n")
    write_decode_record(decode_dir, decoded_with)  # calibrate-rejection copies it into the rule, export-model checks
    if (online_cmvn or recorded_online_cmvn) and online_cmvn_history is None:
        # this decode carried its speakers' stats itself (below weight 1 its jobs decided the carry weights,
        # cmvn_weights.JOB.ark): record how; export-model ships the weight of a rule calibrated on it
        write_cmvn_carry(decode_dir, online_cmvn_order_seed, online_cmvn_silence_weight)
    rule = RejectionRule.for_graph(graph_dir)
    with atomic_open(decode_dir / "hyp.txt") as handle:
        for utt, m, n in records:
            handle.write(f"{utt} {rule.decide_measures(m, n).label}\n")
    audio_seconds = frames * 0.01
    rtf = cpu_seconds / audio_seconds if frames else float("nan")
    with atomic_open(decode_dir / "rtf") as handle:
        # CPU time, not wall time: on a shared machine the wall clock measures the neighbours
        handle.write(f"{rtf:.5f} cpu seconds {cpu_seconds:.2f} wall seconds {decode_seconds:.2f} audio seconds "
                     f"{audio_seconds:.1f} (acoustic scoring + search + lattice + confidence, and for SAT the first "
                     f"pass + fMLLR; summed over jobs)\n")
    click.echo(f"decode-commands: {len(records)} utterances in {time.perf_counter() - start:.2f} s, "
               f"RTF {rtf:.4f} (CPU time / audio) -> {decode_dir / MEASURES_FILE}")


def _find_model(model, *candidates):
    if model:
        return Path(model)
    for directory in candidates:
        if (Path(directory) / "final.mdl").is_file():
            return Path(directory) / "final.mdl"
    raise MissingFileError(f"no final.mdl in {' or '.join(str(c) for c in candidates)}; pass --model")


def _load_for_scoring(data_dir, decode_dir, commands_file):
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import MEASURES_FILE, read_measures

    data = DataDir.load(data_dir)
    if data.text is None:
        raise MissingFileError(f"{Path(data_dir) / 'text'}: no reference transcripts to score against")
    measures = read_measures(Path(decode_dir) / MEASURES_FILE)
    return dict(data.text), measures, read_command_list(commands_file)


def read_command_list(path):
    """The commands of a commands.txt (make-grammar syntax) as strings of space-joined words."""
    from kaldilite.lang.grammar import read_items

    return {" ".join(words) for words, _, _ in read_items(path)}


@click.command("score-commands")
@click.option("--rule", "rule_path", type=click.Path(exists=True, dir_okay=False),
              help="Rejection rule JSON (default: GRAPH_DIR/rejection.json via --graph, else the default rule).")
@click.option("--graph", "graph_dir", type=click.Path(exists=True, file_okay=False),
              help="Graph dir whose rejection.json is the rule.")
@click.option("--rejection/--no-rejection", default=True, show_default=True,
              help="--no-rejection: output the best command whatever the fillers and the threshold say.")
@click.option("--name", default="", help="Name of this system in the report and plot (e.g. mono).")
@click.argument("commands_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(exists=True, file_okay=False))
def score_commands_cmd(rule_path, graph_dir, rejection, name, commands_file, data_dir, decode_dir):
    """Score command recognition with rejection against DATA_DIR/text.

    Writes DECODE_DIR/scoring_commands/{report,det.txt,det.png,per_utt} (report:
    %CMD_ACC %FR %SUB %FA %FA_SIL %EER %ACC12 lines) and prints the report.

    e.g.: kaldilite score-commands --graph exp/mono/graph_commands lang/en/commands.txt data/dev exp/mono/decode_dev
    """
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import (SILENCE_CLASS, UNKNOWN_CLASS, decide_all, det_curve, equal_error_rate,
                                          plot_det, report, score_decisions, write_det_table, write_per_utt)
    from kaldilite.utils.atomic import atomic_open

    references, measures, commands = _load_for_scoring(data_dir, decode_dir, commands_file)
    if rule_path:
        rule = RejectionRule.load(rule_path)
    elif graph_dir:
        rule = RejectionRule.for_graph(graph_dir)
    else:
        rule = RejectionRule()
    if not rejection:
        rule.enabled = False
    decisions = decide_all(measures, rule)
    scores = score_decisions(references, decisions, commands)
    points = det_curve(references, measures, rule, commands)
    eer = equal_error_rate(points) if rejection else float("nan")
    out = Path(decode_dir) / ("scoring_commands" if rejection else "scoring_commands_norej")
    out.mkdir(parents=True, exist_ok=True)
    text = report(scores, eer, name)
    with atomic_open(out / "report") as handle:
        handle.write(f"# threshold {rule.threshold:g} on {rule.score}{'' if rejection else ' (rejection off)'}\n")
        handle.write(text)
    write_per_utt(out / "per_utt", references, decisions, commands)
    if rejection:
        write_det_table(out / "det.txt", points)
        pooled = det_curve(references, measures, rule, commands, negatives=(UNKNOWN_CLASS, SILENCE_CLASS))
        plot_det(out / "det.png", {f"{name or 'system'}: FA on unknown words": points,
                                   f"{name or 'system'}: FA on unknown words + silence": pooled},
                 [(f"threshold {rule.threshold:.3g}", scores.false_accept_rate, 1 - scores.accuracy)])
    click.echo(text, nl=False)


@click.command("calibrate-rejection")
@click.option("--target-fa", default=0.05, show_default=True, help="False-accept rate to meet on the dev set.")
@click.option("--score", "score_name", default=None,
              type=click.Choice(["confidence", "llr", "llr_total", "first_pass_llr_total", "logistic", "phone_llr_min",
                                 "phone_llr_min_per_frame", "word_llr", "gop_min", "gop_mean"]),
              help="Which measure to threshold (default: the rule's, confidence unless set); first_pass_llr_total: "
                   "SAT models' speaker-independent pass (decode-commands --first-pass-measures); logistic: a "
                   "logistic regression over --features, fitted on the same utterances; phone_llr_min ... gop_mean: "
                   "phone-level scores (decode-commands --phone-scores).")
@click.option("--features", default=None,
              help="logistic: comma-separated features (llr_total, llr, confidence_logit, command_margin, "
                   "command_cost_per_frame, first_pass_llr_total, num_frames, and with decode-commands "
                   "--phone-scores phone_llr_min, phone_llr_min_per_frame, word_llr, gop_min, gop_mean; default "
                   "llr_total,confidence_logit,command_margin,command_cost_per_frame).")
@click.option("--negatives", type=click.Choice(["unknown", "unknown+silence"]), default="unknown+silence",
              show_default=True, help="Which non-command utterances count for the false-accept rate.")
@click.option("--rule-out", type=click.Path(dir_okay=False),
              help="Where to write the rule (default GRAPH_DIR/rejection.json).")
@click.option("--also", "extra_sets", nargs=2, multiple=True, type=click.Path(exists=True, file_okay=False),
              metavar="DATA_DIR DECODE_DIR",
              help="Another decoded set (e.g. an OOV eval set) pooled with DATA_DIR for calibration (repeatable).")
@click.argument("commands_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("decode_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
def calibrate_rejection_cmd(target_fa, score_name, negatives, rule_out, extra_sets, features, commands_file,
                            data_dir, decode_dir, graph_dir):
    """Pick the rejection threshold on a decoded dev set for a target false-accept rate.

    Reads DECODE_DIR/measures.jsonl (decode-commands), picks the lowest threshold whose FA on
    the dev set's non-command utterances is at most --target-fa, reports the resulting
    false-reject rate and writes the rule (with the calibration figures) to GRAPH_DIR/rejection.json.
    The rule records the model and graph DECODE_DIR was decoded with (its decoded_with.json), which
    export-model checks.

    e.g.: kaldilite calibrate-rejection --target-fa 0.05 lang/en/commands.txt data/dev exp/mono/decode_dev exp/mono/graph_commands
    """
    from kaldilite.decode.rejection import RULE_FILE, RejectionRule
    from kaldilite.score.commands import SILENCE_CLASS, UNKNOWN_CLASS, calibrate_threshold

    references, measures, utt2spk = _pooled_sets([(data_dir, decode_dir)] + list(extra_sets), commands_file)
    commands = read_command_list(commands_file)
    rule = RejectionRule.for_graph(graph_dir)
    if score_name:
        rule = RejectionRule(score=score_name, threshold=rule.threshold, enabled=True)
    if features:
        rule = RejectionRule(score=rule.score, threshold=rule.threshold,
                             logistic={"features": [f.strip() for f in features.split(",") if f.strip()]})
    rule.enabled = True
    classes = (UNKNOWN_CLASS,) if negatives == "unknown" else (UNKNOWN_CLASS, SILENCE_CLASS)
    calibrated, scores = calibrate_threshold(references, measures, rule, commands, target_fa, classes, utt2spk)
    calibrated.calibration.update({"dev_data": str(data_dir), "decode_dir": str(decode_dir),
                                   "also": [list(pair) for pair in extra_sets]})
    decoded_with = _calibration_decodes_model(decode_dir, [d for _, d in extra_sets])
    if decoded_with is not None:  # export-model refuses another model (or graph) than these decodes'
        calibrated.calibration["decoded_with"] = decoded_with
    path = Path(rule_out) if rule_out else Path(graph_dir) / RULE_FILE
    calibrated.save(path)
    c = calibrated.calibration
    click.echo(f"calibrate-rejection: {calibrated.score} threshold {calibrated.threshold:.6g}: FA "
               f"{100 * c['false_accept_rate']:.2f}% on {c['num_negatives']} non-command utts (target "
               f"{100 * target_fa:.1f}%), FR {100 * c['false_reject_rate']:.2f}%, command accuracy "
               f"{100 * c['command_accuracy']:.2f}% on {c['num_commands']} -> {path}")
    if calibrated.logistic:
        lg = calibrated.logistic
        click.echo("calibrate-rejection: logistic weights (standardized features): bias "
                   f"{lg['bias']:+.3f}, " + ", ".join(f"{n} {w:+.3f}" for n, w in zip(lg["features"], lg["weights"])))


def _calibration_decodes_model(decode_dir, also_dirs):
    """DECODE_DIR's decoded_with.json record (decode-commands), or None for a decode dir without one; an --also
    decode dir recording another model is refused: one threshold is on one model's score scale. A pooled dir
    (run.sh's held-out commands, merged from DIR/parts/*, one decode per grammar) is checked by its parts'
    records (`decode_dir_record`); a dir without any record is not checked."""
    from kaldilite.graph.provenance import DECODE_RECORD_FILE, POOLED_PARTS, decode_dir_record, refuse_another_model

    record = decode_dir_record(decode_dir)
    if record is None:
        return None
    for other in also_dirs:
        theirs = decode_dir_record(other)
        if theirs is not None:
            where = Path(other) / (DECODE_RECORD_FILE if "parts" not in theirs else POOLED_PARTS)
            refuse_another_model(theirs, where, other, record, decode_dir)
    return record


def _rtf(decode_dir):
    path = Path(decode_dir) / "rtf"
    return float(path.read_text().split()[0]) if path.is_file() else float("nan")


def _pooled_sets(pairs, commands_file, keys=None):
    """References, measures and utt2spk of several (data dir, decode dir) pairs, pooled (`_pool`).
    ``keys``: a list that receives, per pair, {utterance id: its key in the pool}."""
    from kaldilite.io.datadir import DataDir

    loaded = [(data_dir, *_load_for_scoring(data_dir, decode_dir, commands_file)[:2], DataDir.load(data_dir).utt2spk)
              for data_dir, decode_dir in pairs]
    return _pool(loaded, keys)


def _pool(loaded, keys=None):
    """References, measures and utt2spk of several loaded sets [(data dir, references, measures,
    utt2spk or None)], pooled.

    The first set's utterance ids are kept; another set whose ids clash with ids already pooled
    has its ids prefixed with its data dir's name (``heldout_commands/<utt>``): a set may
    re-decode the same audio with another grammar (the held-out commands are dev's utterances).
    ``keys``: a list that receives, per set, {utterance id: its key in the pool}.
    """
    references, measures, utt2spk = {}, {}, {}
    for data_dir, refs, meas, spk in loaded:
        spk = spk or {u: u for u in refs}
        prefix = f"{Path(data_dir).name}/" if set(refs) & set(references) else ""
        if prefix and any(prefix + u in references for u in refs):
            raise InputError(f"{data_dir}: its utterance ids clash with another pooled set's even when prefixed "
                             f"with {prefix!r}; pool sets with distinct names")
        references.update({prefix + u: t for u, t in refs.items()})
        measures.update({prefix + u: v for u, v in meas.items()})
        utt2spk.update({prefix + u: spk[u] for u in refs if u in spk})
        if keys is not None:
            keys.append({u: prefix + u for u in refs})
    return references, measures, utt2spk


def commands_results_rows(data_dir, exp_dirs, commands_file, target_fa=0.05, oov_sets=(), report_only=(), rule=None,
                          calibrations=None):
    """RESULTS rows (dicts) for each exp dir: with rejection (one threshold row per calibration
    pool, 2-fold cross-calibrated by speaker), fillers and garbage without a threshold, and the
    commands-only grammar with rejection off.

    ``oov_sets`` and ``report_only``: [(name, data dir)] decoded into EXP/decode_<name>(_norej);
    each row's ``oov`` maps name -> `CommandScores` on that set alone. ``calibrations``: one tuple
    of set names per threshold row, each calibrated on dev pooled with those sets (names of
    ``oov_sets``; the first row's rule is the shipped one, ``row["rule"]``); default one row on
    dev + every ``oov_sets`` set. ``report_only`` sets are never calibrated on. In a threshold row
    a set outside its pool is decided by the rule of its speaker's fold when the pool holds that
    speaker (the held-out commands are dev's speakers), else by the threshold calibrated on all of
    the pool. ``rule``: the `RejectionRule` to calibrate (its score, logistic features), instead
    of each model's ``graph_commands/rejection.json`` (bench/rejection_rules.py compares rules so)."""
    import math

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import (MEASURES_FILE, UNKNOWN_CLASS, calibrate_threshold,
                                          cross_calibrated_decisions, decide_all, det_curve_of_decisions,
                                          equal_error_rate, read_measures, score_decisions)

    commands = read_command_list(commands_file)
    declared = dict(oov_sets)
    if calibrations is None:
        calibrations = [tuple(name for name, _ in oov_sets)]
    for pool in calibrations:
        unknown = [name for name in pool if name not in declared]
        if unknown:
            raise InputError(f"--calibrate {unknown[0]!r}: not one of the --oov sets "
                             f"({', '.join(declared) or 'none'}); report-only sets are never calibrated on")
    rows = []
    for exp in exp_dirs:
        exp = Path(exp)
        name = exp.name
        decode = exp / "decode_dev"
        if not (decode / MEASURES_FILE).is_file():
            log.warning("%s: not decoded; skipped", decode)
            continue
        sets = {"dev": (data_dir, decode)}
        for set_name, set_dir in list(oov_sets) + list(report_only):
            set_decode = exp / f"decode_{set_name}"
            if (set_decode / MEASURES_FILE).is_file():
                sets[set_name] = (set_dir, set_decode)
            else:
                log.warning("%s: not decoded; %s left out of %s's rows", set_decode, set_name, name)
        loaded = {key: _load_for_scoring(d, dec, commands_file)[:2] for key, (d, dec) in sets.items()}
        speaker = {key: DataDir.load(d).utt2spk or {} for key, (d, _) in sets.items()}
        model_rule = rule or RejectionRule.for_graph(exp / "graph_commands")

        def scores_by_set(decide_set):
            """{set: CommandScores} with decide_set(key) -> {utt: Decision} of that set."""
            return {key: score_decisions(loaded[key][0], decide_set(key), commands) for key in sets}

        for number, pool in enumerate(calibrations):
            pool = ["dev"] + [key for key in pool if key in sets]
            keys = []  # per pooled set: {utt: its key in the pool} (a clashing set's ids are prefixed)
            references, measures, utt2spk = _pool([(sets[key][0], *loaded[key], speaker[key]) for key in pool], keys)
            pooled_key = dict(zip(pool, keys))
            others = [key for key in sets if key not in pool]
            extra_items = {(key, u): (*loaded[key][1][u], speaker[key].get(u)) for key in others for u in loaded[key][0]}
            crossed, thresholds = cross_calibrated_decisions(references, measures, model_rule, commands, utt2spk,
                                                             target_fa, extra=extra_items)
            extra_crossed = {k: crossed.pop(k) for k in list(crossed) if isinstance(k, tuple)}
            # over the cross-calibrated scores: a logistic rule's come from weights fitted on the other fold
            eer = equal_error_rate(det_curve_of_decisions(references, crossed, commands, (UNKNOWN_CLASS,)))
            on_all, _ = calibrate_threshold(references, measures, model_rule, commands, target_fa, utt2spk=utt2spk)

            def decided(key):
                if key in pool:
                    return {u: crossed[pooled_key[key][u]] for u in loaded[key][0]}
                out = decide_all(loaded[key][1], on_all)
                out.update({u: d for (k, u), d in extra_crossed.items() if k == key})
                return out

            by_set = scores_by_set(decided)
            what = "logistic score (weights + threshold: " if model_rule.score == "logistic" else "threshold ("
            rows.append(dict(model=name, setting=f"rejection: fillers + garbage + {what}FA target "
                             f"{100 * target_fa:g}% on {' + '.join(pool)}, 2-fold cross-calibrated by speaker)",
                             scores=by_set.pop("dev"), oov=by_set, eer=eer, rtf=_rtf(decode) if number == 0 else math.nan,
                             note=f"thresholds {', '.join(f'{t:.3g}' for t in thresholds)}", rule=on_all,
                             calibrated_on=tuple(pool)))
        no_threshold = model_rule.with_threshold(-math.inf)
        by_set = scores_by_set(lambda key: decide_all(loaded[key][1], no_threshold))
        rows.append(dict(model=name, setting="fillers + garbage in the grammar, no threshold",
                         scores=by_set.pop("dev"), oov=by_set, eer=math.nan, rtf=math.nan, note=""))
        norej = exp / "decode_dev_norej"
        if (norej / MEASURES_FILE).is_file():
            off = RejectionRule(enabled=False)
            oov = {}
            for key, (_, set_decode) in sets.items():
                path = Path(f"{set_decode}_norej") / MEASURES_FILE
                if key != "dev" and path.is_file():
                    oov[key] = score_decisions(loaded[key][0], decide_all(read_measures(path), off), commands)
            rows.append(dict(model=name, setting="rejection off: commands-only grammar, no threshold",
                             scores=score_decisions(loaded["dev"][0],
                                                    decide_all(read_measures(norej / MEASURES_FILE), off), commands),
                             oov=oov, eer=math.nan, rtf=_rtf(norej), note=""))
    return rows


def format_results_table(rows, oov_names=()):
    """The RESULTS table (markdown) of `commands_results_rows`; one FA column per OOV set."""
    import math

    def pct(x):
        return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}"

    oov_names = list(oov_names)
    head = ["model", "setting", "command acc %", "FR %", "FA dev unknown words %"]
    head += [f"FA {n} %" for n in oov_names]
    head += ["FA dev silence %", "EER %", "12-class acc % (dev)", "RTF"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["scores"]
        rtf = "-" if math.isnan(r["rtf"]) else f"{r['rtf']:.4f}"
        cells = [r["model"], r["setting"], f"{pct(s.accuracy)} ({s.correct}/{s.num_commands})",
                 pct(s.false_reject_rate), f"{pct(s.false_accept_rate)} ({s.unknown_accepted}/{s.num_unknown})"]
        for n in oov_names:
            o = r.get("oov", {}).get(n)
            cells.append("-" if o is None else f"{pct(o.false_accept_rate)} ({o.unknown_accepted}/{o.num_unknown})")
        cells += [f"{pct(s.silence_false_accept_rate)} ({s.silence_accepted}/{s.num_silence})", pct(r["eer"]),
                  pct(s.twelve_class_accuracy), rtf]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@click.command("commands-results")
@click.option("--commands", "commands_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The commands.txt the grammars were built from.")
@click.option("--target-fa", default=0.05, show_default=True, help="FA target of the cross-calibration.")
@click.option("--oov", "oov_sets", multiple=True, metavar="NAME=DATA_DIR",
              help="An out-of-vocabulary eval set decoded into EXP/decode_NAME(_norej): its own FA column, and "
                   "its utterances join dev's negatives in the cross-calibration (repeatable).")
@click.option("--oov-report-only", "report_only", multiple=True, metavar="NAME=DATA_DIR",
              help="Like --oov, but calibrates nothing (e.g. synthetic speech): decided by the threshold "
                   "calibrated on all of dev + the --oov sets (repeatable).")
@click.option("--calibrate", "calibrations", multiple=True, metavar="NAMES",
              help="One threshold row calibrated on dev + these --oov sets (comma-separated NAMEs; '' = dev "
                   "alone); repeatable, the first row's rule is the shipped one (default: one row on dev + "
                   "every --oov set).")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
def commands_results_cmd(commands_file, target_fa, oov_sets, report_only, calibrations, data_dir, exp_dirs):
    """Print the RESULTS table of the commands recipe for each EXP_DIR's decode_dev(_norej).

    Each threshold row is 2-fold cross-calibrated by speaker on dev pooled with its --calibrate
    sets; every set has its FA column in every row (a set outside a row's pool is decided by its
    speaker's fold rule when the pool holds the speaker, else by the rule calibrated on all of it).

    \b
    e.g.: kaldilite commands-results --commands lang/en/commands.txt --oov heldout_commands=data/heldout_commands \\
            --oov oov_fsdd=data/oov_fsdd --calibrate heldout_commands --calibrate oov_fsdd data/dev exp/tri3b
    """
    def named_dirs(items, option):
        pairs = []
        for item in items:
            name, sep, path = item.partition("=")
            if not sep or not name or not Path(path).is_dir():
                raise click.BadParameter(f"'{item}': expected NAME=DATA_DIR with an existing data dir",
                                         param_hint=option)
            pairs.append((name, path))
        return pairs

    pairs, extra = named_dirs(oov_sets, "--oov"), named_dirs(report_only, "--oov-report-only")
    pools = [tuple(n.strip() for n in item.split(",") if n.strip()) for item in calibrations] or None
    rows = commands_results_rows(data_dir, exp_dirs, commands_file, target_fa, pairs, extra, calibrations=pools)
    click.echo(format_results_table(rows, [n for n, _ in pairs + extra]), nl=False)


@click.command("fuse-command-scores")
@click.argument("primary_exp", type=click.Path(exists=True, file_okay=False))
@click.argument("secondary_exp", type=click.Path(exists=True, file_okay=False))
@click.argument("out_exp", type=click.Path(file_okay=False))
def fuse_command_scores_cmd(primary_exp, secondary_exp, out_exp):
    """Fuse two systems' decodes: OUT_EXP/decode_SET/measures.jsonl for every SET both decoded.

    Each utterance keeps PRIMARY_EXP's measures and best command (the fused decision is the
    primary's command) and gains second_llr_total: SECONDARY_EXP's llr_total where its best path
    is the same command, else its lowest llr_total over decode_dev (no labels used), which
    OUT_EXP/fusion.json records with both systems. The fused row's rule is calibrate-rejection
    --score logistic --features llr_total,gop_mean,second_llr_total on OUT_EXP (its weights and
    threshold in OUT_EXP/graph_commands/rejection.json, as every row's). An offline figure: the
    online decoder runs one system.

    OUT_EXP's decodes are the fusion's: a re-fusion removes every OUT_EXP/decode_SET it did not
    write (a set no longer decoded by both), as Kaldi's combine_data.sh replaces its destination,
    so no stale set is scored or reported. A decode_SET there that is a symbolic link is unlinked
    (what it points to is not the fusion's, and is left as it is), a fused set's before it is
    written, so that no fused measures land in another dir. An OUT_EXP that holds decodes but no
    fusion.json is not a fusion's output and is refused, untouched.

    e.g.: kaldilite fuse-command-scores exp/nnet2 exp/tri3b exp/tri3b+nnet2
    """
    import json
    import shutil

    from kaldilite.score.commands import MEASURES_FILE, fuse_measures, fusion_floor, measures_to_json, read_measures
    from kaldilite.utils.atomic import atomic_open

    primary_exp, secondary_exp, out_exp = Path(primary_exp), Path(secondary_exp), Path(out_exp)
    if out_exp.resolve() in (primary_exp.resolve(), secondary_exp.resolve()):
        raise InputError(f"{out_exp}: the fused dir cannot be one of the systems fused; give a new dir "
                         "(e.g. exp/tri3b+nnet2)")
    if not (secondary_exp / "decode_dev" / MEASURES_FILE).is_file():
        raise MissingFileError(f"{secondary_exp / 'decode_dev' / MEASURES_FILE}: the dev decode the fusion "
                               "takes its lowest score from; decode data/dev with it first")
    sets = sorted(d.name for d in primary_exp.glob("decode_*") if (d / MEASURES_FILE).is_file()
                  and not d.name.endswith("_norej") and (secondary_exp / d.name / MEASURES_FILE).is_file())
    floor = fusion_floor(read_measures(secondary_exp / "decode_dev" / MEASURES_FILE))
    fused = {}
    for name in sets:  # every set fused before any is written: a refused set leaves OUT_EXP as it was
        try:
            fused[name] = fuse_measures(*(read_measures(exp / name / MEASURES_FILE)
                                          for exp in (primary_exp, secondary_exp)), floor)
        except InputError as exc:
            raise InputError(f"{primary_exp / name} and {secondary_exp / name}: {exc}") from None
    if any(out_exp.glob("decode_*")) and not (out_exp / "fusion.json").is_file():
        raise InputError(f"{out_exp}: holds decode dirs but no fusion.json, so it is not a fuse-command-scores output "
                         "(whose decodes a re-fusion replaces); give a new OUT_EXP")
    # fusion.json first: it marks OUT_EXP as the fusion's before any decode lands in it (an interrupted run re-runs)
    (out_exp / "graph_commands").mkdir(parents=True, exist_ok=True)  # calibrate-rejection writes the rule there
    # (the rule's features are calibrate-rejection's --features, recorded in graph_commands/rejection.json)
    with atomic_open(out_exp / "fusion.json") as handle:
        json.dump({"primary": str(primary_exp), "secondary": str(secondary_exp), "second_llr_total_floor": floor},
                  handle, indent=2, sort_keys=True)
        handle.write("\n")

    def unlink(link, why):  # a decode_SET link: its target is not the fusion's and is left as it is
        link.unlink()
        click.echo(f"fuse-command-scores: removed the link {link} (its target left as it is): {why}")

    for name in sets:
        if (out_exp / name).is_symlink():
            unlink(out_exp / name, "the fused measures go into a dir of the fusion's own")
        (out_exp / name).mkdir(parents=True, exist_ok=True)
        with atomic_open(out_exp / name / MEASURES_FILE) as handle:
            for utt, (m, n) in fused[name].items():
                handle.write(measures_to_json(utt, m, n) + "\n")
    for stale in sorted(d for d in out_exp.glob("decode_*") if (d.is_dir() or d.is_symlink()) and d.name not in fused):
        if stale.is_symlink():
            unlink(stale, f"{stale.name} is not decoded by both now")
            continue
        shutil.rmtree(stale)
        click.echo(f"fuse-command-scores: removed {stale}: an earlier fusion's, {stale.name} is not decoded by both now")
    click.echo(f"fuse-command-scores: {', '.join(sets)} of {primary_exp.name} + {secondary_exp.name} -> {out_exp}")


def tuning_rows(data_dir, exp_dir, settings, commands_file, target_fa=0.05, oov_sets=(), report_only=(),
                per_command=False):
    """Rows (dicts) of the rejection tuning table of one exp dir over decoding `settings`.

    Each setting NAME was decoded into EXP/decode_dev_NAME and EXP/decode_<oov>_NAME (the same
    utterances, another grammar knob or acoustic scale). One row per setting with its threshold
    2-fold cross-calibrated by speaker (the setting itself fixed), then the cross-tuned row: each
    fold decided by the setting AND threshold `tune_setting` chose on the other fold (the honest
    figure for the grid), then what tuning on all of dev + `oov_sets` chooses (what ships). The
    ``report_only`` sets are decided by the setting's threshold calibrated on all of dev + oov_sets.
    ``per_command``: one threshold per command (`calibrate_command_thresholds`) everywhere.
    """
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import (calibrate_command_thresholds, calibrate_threshold,
                                          cross_calibrated_decisions, cross_tuned_decisions, decide_all,
                                          score_decisions, tune_setting)

    calibrate = calibrate_command_thresholds if per_command else calibrate_threshold

    exp = Path(exp_dir)
    commands = read_command_list(commands_file)
    rule = RejectionRule(score="llr_total")
    pooled, per_set, extra = {}, {}, {}
    for name in settings:
        pairs = {"dev": (data_dir, exp / f"decode_dev_{name}")}
        pairs.update({key: (d, exp / f"decode_{key}_{name}") for key, d in oov_sets})
        keys = []  # a set re-decoding dev's utterances (held-out commands) is pooled under prefixed ids
        pooled[name] = _pooled_sets(pairs.values(), commands_file, keys)
        per_set[name] = {key: {pooled_id: pooled[name][0][pooled_id] for pooled_id in keys[k].values()}
                         for k, key in enumerate(pairs)}
        extra[name] = {key: _load_for_scoring(d, exp / f"decode_{key}_{name}", commands_file)[:2]
                       for key, d in report_only}
    first = settings[0]
    references, _, utt2spk = pooled[first]
    for name in settings[1:]:
        if set(pooled[name][0]) != set(references):
            raise InputError(f"{exp}: setting {name} decoded other utterances than {first}; decode the same sets")

    def by_set(name, decisions, extra_rule):
        out = {key: score_decisions(refs, decisions, commands) for key, refs in per_set[name].items()}
        for key, (refs, meas) in extra[name].items():
            out[key] = score_decisions(refs, decide_all(meas, extra_rule), commands)
        return out

    rows = []
    measures_by_setting = {name: pooled[name][1] for name in settings}
    for name in settings:
        crossed, thresholds = cross_calibrated_decisions(references, measures_by_setting[name], rule, commands,
                                                         utt2spk, target_fa, per_command=per_command)
        on_all, _ = calibrate(references, measures_by_setting[name], rule, commands, target_fa)
        rows.append(dict(setting=name, how="threshold cross-calibrated", scores=by_set(name, crossed, on_all),
                         note=", ".join(f"{t:.3g}" for t in thresholds)))
    crossed, choices = cross_tuned_decisions(references, measures_by_setting, rule, commands, utt2spk, target_fa,
                                             per_command=per_command)
    chosen, on_all, _ = tune_setting(references, measures_by_setting, rule, commands, target_fa,
                                     per_command=per_command, utt2spk=utt2spk)
    scores = {key: score_decisions(refs, crossed, commands) for key, refs in per_set[first].items()}
    for key, (refs, meas) in extra[chosen].items():
        scores[key] = score_decisions(refs, decide_all(meas, on_all), commands)
    rows.append(dict(setting="cross-tuned", how="setting + threshold chosen on the other fold", scores=scores,
                     note="; ".join(f"{n} @ {t:.3g}" for n, t in choices)))
    rows.append(dict(setting=chosen, how="tuned on all (ships)",
                     scores=by_set(chosen, decide_all(measures_by_setting[chosen], on_all), on_all),
                     note=f"{on_all.threshold:.4g}"))
    return rows


def format_tuning_table(model, rows, set_names):
    """Markdown table of `tuning_rows`: command accuracy and FA per set."""
    def pct(s, which):
        if which == "acc":
            return f"{100 * s.accuracy:.1f}"
        fa = s.false_accept_rate
        return "-" if fa != fa else f"{100 * fa:.1f}"

    head = ["model", "setting", "how", "command acc %"]
    head += [f"FA {'dev fillers' if n == 'dev' else n} %" for n in set_names] + ["thresholds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [model, r["setting"], r["how"], pct(r["scores"]["dev"], "acc")]
        cells += [pct(r["scores"][n], "fa") if n in r["scores"] else "-" for n in set_names]
        cells.append(r["note"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@click.command("tune-rejection")
@click.option("--commands", "commands_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The commands.txt the grammars were built from.")
@click.option("--setting", "settings", multiple=True, required=True, metavar="NAME",
              help="A decoding setting (grammar knob, acoustic scale) decoded into EXP_DIR/decode_<set>_NAME "
                   "(repeatable; list the default first: ties go to the earlier setting).")
@click.option("--target-fa", default=0.05, show_default=True, help="FA target on the unknown words + silence.")
@click.option("--oov", "oov_sets", multiple=True, metavar="NAME=DATA_DIR",
              help="An OOV set pooled with dev for tuning (repeatable).")
@click.option("--oov-report-only", "report_only", multiple=True, metavar="NAME=DATA_DIR",
              help="An OOV set only reported, never tuned on (repeatable).")
@click.option("--per-command", is_flag=True, help="One threshold per command (FA budget shared among them).")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("exp_dir", type=click.Path(exists=True, file_okay=False))
def tune_rejection_cmd(commands_file, settings, target_fa, oov_sets, report_only, per_command, data_dir, exp_dir):
    """Choose a decoding setting and llr_total threshold for rejection, 2-fold cross-tuned by speaker.

    Prints one row per setting (threshold cross-calibrated), the cross-tuned row (setting and
    threshold chosen on the other speakers' fold) and the choice tuned on all of dev + --oov.

    \b
    e.g.: kaldilite tune-rejection --commands lang/en/commands.txt --setting gb0_a0.1 --setting gb2_a0.1 \\
            --oov oov_fsdd=data/oov_fsdd --oov-report-only oov_synth=data/oov_synth data/dev exp/tri3b
    """
    def named_dirs(items):
        return [tuple(item.split("=", 1)) for item in items]

    pairs, extra = named_dirs(oov_sets), named_dirs(report_only)
    rows = tuning_rows(data_dir, exp_dir, list(settings), commands_file, target_fa, pairs, extra, per_command)
    names = ["dev"] + [n for n, _ in pairs + extra]
    table = format_tuning_table(Path(exp_dir).name, rows, names)
    click.echo(table, nl=False)


COMMANDS = [prepare_speech_commands_cmd, prepare_fsdd_oov_cmd, prepare_synthetic_oov_cmd, synthesize_corpus_cmd, perturb_data_dir_speed_cmd, add_noise_data_dir_cmd,
            reverberate_data_dir_cmd, decode_commands_cmd,
            score_commands_cmd, calibrate_rejection_cmd, commands_results_cmd, tune_rejection_cmd,
            fuse_command_scores_cmd]
