"""The online recognizer: audio chunks in, one result per spoken command out, listening on.

Follows Kaldi's online2 decoding loop (src/online2bin/online2-wav-gmm-latgen-faster.cc with
endpointing, src/online2/online-endpoint.h): each chunk goes through the streaming front end
(resampling, optional VAD gate, `OnlineMfcc` -> `OnlineFeaturePipeline` with online CMVN), the
frames that are ready are scored by the model's scorer and the `BeamDecoder` advances over
them; after every chunk the endpoint rules look at the best partial path. At an endpoint (or
when the VAD closes a segment, or the input ends) the utterance is finalized and the shared
rejection rule (`kaldilite.decode.rejection`) turns it into a command or `<rejected>` with a
confidence; then a new utterance starts at the first frame not decoded, so no audio is lost
or decoded twice. Online CMVN statistics of every finished utterance, whatever its decision,
become the prior of the next (Kaldi's OnlineCmvnState carried between a speaker's utterances,
as train-nnet2 --online-cmvn carries them) when `carry_cmvn` is set; the frames its best partial
path puts on silence phones weigh --cmvn-silence-weight (default 0). That weighting is ours: Kaldi's
OnlineCmvn carries every frame (weight 1), and its online decoders weigh silence only in the speaker's
i-vector statistics (OnlineSilenceWeighting, --silence-weight); unlike that class it is decided once,
on the utterance's last best partial path, with no max-state-duration rule, by the one rule
decode-commands' calibration decodes use too (`kaldilite.online.endpoint.cmvn_carry_weights`). Measured
reason: in a live stream the pauses between commands outnumber the words, and carried at full
weight they pull the speaker mean towards the room's noise floor until late words are misheard
(the digits system hears 6 of jackson's 50 "three" takes as "two" at the end of a six-word
stream, none alone; 0 with silence weight 0).

A bundle whose nnet2 model takes online i-vectors (train-nnet2 --online-ivector-dir) runs a second
front end over the same MFCC, as Kaldi's OnlineNnet2FeaturePipeline does
(src/online2/online-nnet2-feature-pipeline.h): the extractor's own pipeline (its online CMVN, splicing,
PCA) into `OnlineIvectorFeature`, whose i-vector for frame t is the estimate at frame
period * (t // period) from the speaker's frames so far (--use-most-recent-ivector=false, what
extract-ivectors-online writes for training); each frame is scored with its i-vector appended. The
i-vector statistics and the extractor's CMVN statistics are carried from utterance to utterance with
the model's CMVN (`SpeakerState`, Kaldi's OnlineIvectorExtractorAdaptationState + OnlineCmvnState).
The i-vector statistics weigh silence as Kaldi's online decoders do (OnlineSilenceWeighting,
--ivector-silence-weighting.silence-weight, default 1 = off): before each chunk is decoded, the best
partial path so far gives the frames on silence phones that weight, the frames beyond it the weight of
its last frame (the silence weight before there is any path), revised as the path changes
(`kaldilite.ivector.online.OnlineSilenceWeighting`); --cmvn-silence-weight weighs the model's CMVN
statistics, the extractor's CMVN statistics take every frame at full weight.

Times are stream seconds. A result's `start`/`end` are the first and last non-silence frames
of its best path; `latency` is the time from `end` to the result: the audio that had to be
heard after the end of speech (endpoint rule, feature look-ahead) plus the processing delay
since the chunk that completed it arrived.

The model is seen through a scorer (`log_likelihoods(feats)`, `num_pdfs`, `pipeline`), so a
GMM and a DNN plug in alike (see `kaldilite.online.bundle`).
"""

import dataclasses
import json
import logging
import math
import time

import numpy as np

from kaldilite.decode.confidence import extra_searches, phone_score_needs
from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
from kaldilite.decode.rejection import (NON_COMMAND_WORDS, REJECTED, RejectionRule, filler_word_ids,
                                        recognize_decoder)
from kaldilite.errors import InputError
from kaldilite.feat.extract import OnlineMfcc
from kaldilite.feat.streaming import OnlineFeaturePipeline
from kaldilite.hmm.transition_model import silence_tid_mask
from kaldilite.online.endpoint import (OnlineEndpointConfig, cmvn_carry_weights, endpoint_detected, phone_id_list,
                                       trailing_silence_frames)
from kaldilite.online.sources import StreamingResampler
from kaldilite.online.vad import VadGate, VadOptions

log = logging.getLogger(__name__)

JSON_INFINITY = 1e300  # decode-online --json writes an infinite score as +/- this (JSON has no infinities)


@dataclasses.dataclass
class OnlineDecodingOptions:
    """Decoder and loop options of decode-online (`conf/online.conf`), with Kaldi's names."""

    beam: float = dataclasses.field(default=13.0, metadata={"help": "Decoding beam"})
    max_active: int = dataclasses.field(default=7000, metadata={"help": "Maximum number of active tokens"})
    min_active: int = dataclasses.field(default=20, metadata={"help": "Minimum number of active tokens"})
    acoustic_scale: float = dataclasses.field(default=0.1, metadata={"help": "Scale on acoustic log-likelihoods"})
    lattice_beam: float = dataclasses.field(default=6.0, metadata={"help": "Lattice beam (rejection confidence)"})
    chunk_length: float = dataclasses.field(default=0.05, metadata={
        "help": "Seconds of audio processed at a time (features, decoding, endpoint check); capture "
                "hands over 10 ms chunks, buffered until then"})
    do_endpointing: bool = dataclasses.field(default=True, metadata={
        "help": "Finalize an utterance when the endpoint rules fire (else only at a VAD segment end or "
                "the end of input)"})
    carry_cmvn: bool = dataclasses.field(default=True, metadata={
        "help": "Carry online-CMVN statistics (and a model's i-vector statistics) from one utterance to the next "
                "(one speaker)"})
    cmvn_silence_weight: float = dataclasses.field(default=0.0, metadata={
        "help": "Weight of the frames the best path puts on silence phones when an utterance's frames join the "
                "carried CMVN statistics; 1: all frames alike, as Kaldi's OnlineCmvn carries them (not a Kaldi "
                "option: Kaldi weighs silence only in online i-vector estimation, its --silence-weight)"})
    # Kaldi's OnlineSilenceWeightingConfig, registered with prefix ivector-silence-weighting (online2 binaries)
    ivector_silence_weight: float = dataclasses.field(default=1.0, metadata={
        "option": "ivector-silence-weighting.silence-weight",
        "help": "For a model with online i-vectors: weight in the i-vector statistics of the frames the decoder's "
                "best partial path puts on silence phones (1: off, Kaldi's default; steps/online/nnet2/decode.sh: "
                "'e.g. 0' to enable)"})
    ivector_silence_phones: str = dataclasses.field(default="", metadata={
        "option": "ivector-silence-weighting.silence-phones",
        "help": "Colon- (or comma-) separated phone ids weighted by --ivector-silence-weighting.silence-weight "
                "(default: the bundle's phones/silence.csl, what Kaldi's decode scripts pass)"})
    ivector_max_state_duration: float = dataclasses.field(default=-1.0, metadata={
        "option": "ivector-silence-weighting.max-state-duration",
        "help": "Runs of one transition-id at least this many frames long also weigh "
                "--ivector-silence-weighting.silence-weight (whole frames: Kaldi truncates it; < 1: off, Kaldi's "
                "default -1; its decode scripts pass 40)"})
    endpoint: OnlineEndpointConfig = dataclasses.field(default_factory=OnlineEndpointConfig)
    vad_opts: VadOptions = dataclasses.field(default_factory=VadOptions)

    def ivector_silence_weighting(self):
        """The `OnlineSilenceWeightingConfig` of the --ivector-silence-weighting.* options, checked."""
        from kaldilite.ivector.online import OnlineSilenceWeightingConfig

        return OnlineSilenceWeightingConfig(self.ivector_silence_weight, self.ivector_max_state_duration).check()

    def ivector_silence_phone_list(self):
        """--ivector-silence-weighting.silence-phones as phone ids ([]: not given); colons or commas, as Kaldi's."""
        return phone_id_list(self.ivector_silence_phones, "ivector-silence-weighting.silence-phones", ":,")

    def decoder_options(self):
        # lattice_beam too: the decoder's periodic link pruning must keep what the rule's lattice reads
        return DecoderOptions(beam=self.beam, max_active=self.max_active, min_active=self.min_active,
                              acoustic_scale=self.acoustic_scale, lattice_beam=self.lattice_beam)


@dataclasses.dataclass(eq=False)
class SpeakerState:
    """What a speaker's next utterance starts from (Kaldi's adaptation state of online2 decoding):
    `cmvn`, the online-CMVN state of the model's features (an `OnlineCmvnState`; for a model without
    CMVN one nothing reads); for a model with an i-vector input also `ivector_cmvn`, the CMVN state of
    the extractor's features (None: its pipeline's prior, a new speaker's), and `ivector`, the
    i-vector statistics (`OnlineIvectorAdaptationState`). `ModelBundle.speaker_state()` is a new
    speaker's (the priors alone)."""

    cmvn: object = None
    ivector_cmvn: object = None
    ivector: object = None

    def copy(self):
        from kaldilite.ivector.online import OnlineIvectorAdaptationState

        return SpeakerState(None if self.cmvn is None else self.cmvn.copy(),
                            None if self.ivector_cmvn is None else self.ivector_cmvn.copy(),
                            None if self.ivector is None else OnlineIvectorAdaptationState(self.ivector.stats.copy()))


@dataclasses.dataclass
class OnlineResult:
    """One recognized (or rejected) utterance of a stream."""

    source: str
    text: str            # the command, or "<rejected>"
    accepted: bool
    confidence: float
    start: float         # stream seconds: first non-silence frame of the best path
    end: float           # stream seconds: end of the last non-silence frame
    latency: float       # seconds from `end` to the result
    endpoint: str        # rule1..rule5, vad, end-of-input, overrun
    reason: str          # the rejection rule's reason (accepted, filler, low-confidence, ...)
    words: tuple = ()    # the raw best path (fillers and garbage words included)
    num_frames: int = 0
    score: float = math.nan  # what the rejection rule compared with its threshold (e.g. llr_total)

    def to_line(self):
        """`SOURCE START-END confidence=C latency=Nms endpoint=RULE TEXT`: the command (which may
        have several words) last, the source name with its blanks replaced by `_`."""
        source = "_".join(self.source.split())
        return (f"{source} {self.start:.2f}-{self.end:.2f} confidence={self.confidence:.3f} "
                f"latency={self.latency * 1000:.0f}ms endpoint={self.endpoint} {self.text}")

    def to_json(self):
        """One JSON object (RFC 8259: no infinities): -inf / +inf are written as -/+JSON_INFINITY,
        which compares with any threshold as the infinity does (a score of -inf: no command path,
        rejected whatever the threshold); NaN (no value) as null."""
        data = dataclasses.asdict(self)
        data["words"] = list(self.words)
        for key in ("confidence", "start", "end", "latency", "score"):
            value = float(data[key])
            data[key] = (None if math.isnan(value) else round(value, 4) if math.isfinite(value)
                         else math.copysign(JSON_INFINITY, value))
        return json.dumps(data, ensure_ascii=False, allow_nan=False)


class OnlineRecognizer:
    """Chunk-by-chunk recognition of one audio stream with a loaded model bundle.

    `accept(samples, start=None, arrival=None)` takes audio at `sample_rate` (its stream
    index `start`: a jump means samples were dropped) and returns the finished `OnlineResult`s;
    `input_finished()` flushes the last utterance. Audio is processed (features, scoring,
    decoding, endpoint check) whenever `--chunk-length` seconds have accumulated, as Kaldi's
    online2 tools do; smaller source chunks are buffered until then. `partial()` is the current
    best word sequence; `on_partial(words)` (optional) is called whenever it changes.
    """

    def __init__(self, bundle, opts=None, sample_rate=None, source_name="stream", on_partial=None, vad_is_speech=None):
        self.bundle = bundle
        self.opts = opts or bundle.online_opts
        self.source_name = source_name
        self.on_partial = on_partial
        self.model_rate = int(bundle.mfcc_opts.frame_opts.sample_frequency)
        self.sample_rate = int(sample_rate or self.model_rate)
        self.frame_shift = bundle.mfcc_opts.frame_opts.frame_shift / 1000.0
        self._shift_samples = int(round(self.frame_shift * self.model_rate))
        self._interval = max(1, int(round(self.opts.chunk_length * self.model_rate)))
        silence = bundle.silence_phones(self.opts.endpoint)
        self._silence_tid = silence_tid_mask(bundle.tid_to_phone, silence)
        self._rules = self.opts.endpoint.rules()
        self.decoder = BeamDecoder(bundle.graph, bundle.tid_to_pdf, self.opts.decoder_options(), lattice=True)
        self._merge_words = filler_word_ids(bundle.graph, bundle.words, bundle.fillers)
        self.rule = bundle.rejection or RejectionRule()
        # a rule on phone-level scores: the utterance's frames are kept and its best path's phones scored
        # at its end (and the best filler/garbage path searched for the ratios against it), as
        # decode-commands --phone-scores (--phone-llr) does
        phone_scores, phone_llr = phone_score_needs(self.rule.needs_phone_scores())
        contrast, self._phone_scorer = extra_searches(
            bundle.graph, bundle.tid_to_pdf, bundle.words, bundle.fillers, self.opts.decoder_options(),
            self._merge_words, phone_scores=phone_scores, phone_llr=phone_llr, tid_to_phone=bundle.tid_to_phone,
            silence_phones=bundle.silence_phones())
        # what is fed the utterance's frames besides the decoder
        self._phone_parts = tuple(part for part in (contrast, self._phone_scorer) if part is not None)
        # silence weighting of the i-vector stats (Kaldi's OnlineSilenceWeighting), for a model with i-vectors
        self._ivector_weighting = self.opts.ivector_silence_weighting()
        phones = self.opts.ivector_silence_phone_list()  # checked whatever the model
        self._ivector_silence_tid = None
        if bundle.ivector_model is not None and self._ivector_weighting.active:
            self._ivector_silence_tid = silence_tid_mask(
                bundle.tid_to_phone, np.array(phones, dtype=np.int64) if phones else bundle.silence_phones())
        self._speaker = bundle.speaker_state()
        self._vad = VadGate(self.model_rate, self.opts.vad_opts, vad_is_speech) if self.opts.vad_opts.vad else None
        self._resampler = None
        self._next_input = 0     # stream index (input rate) expected next
        self._samples_in = 0     # model-rate samples received so far (stream index of the next one)
        self._in_segment = self._vad is None
        self.num_overruns = 0
        self.results = []
        self._last_partial = None
        self._start_utterance(0)

    # ------------------------------------------------------------------ utterance lifecycle
    def _start_utterance(self, model_sample):
        self._utt_start = model_sample          # model-rate stream index of frame 0
        self._utt_audio = []                    # model-rate samples given to the feature extractor
        self._pending = []                      # samples waiting for a whole --chunk-length
        self._pending_len = 0
        self._mfcc = OnlineMfcc(self.bundle.mfcc_opts)
        self._features = OnlineFeaturePipeline(self._mfcc, self.bundle.pipeline, self.bundle.cmvn_opts,
                                               self._speaker.cmvn)
        self._ivector_features = self._ivectors = self._silence_weighting = None
        ivector_model = self.bundle.ivector_model
        if ivector_model is not None:
            from kaldilite.ivector.online import OnlineIvectorFeature, OnlineSilenceWeighting

            self._ivector_features = OnlineFeaturePipeline(self._mfcc, ivector_model.pipeline, None,
                                                           self._speaker.ivector_cmvn)
            self._ivectors = OnlineIvectorFeature(self._ivector_features, ivector_model.ubm, ivector_model.extractor,
                                                  self.bundle.ivector_opts, self._speaker.ivector)
            if self._ivector_silence_tid is not None:
                self._silence_weighting = OnlineSilenceWeighting(self._ivector_silence_tid, self._ivector_weighting)
        self.decoder.init()
        for part in self._phone_parts:
            part.init()
        self._decoded = 0
        self._last_partial = None
        self._after_endpoint = False  # set when this utterance is the audio after an endpoint

    def _utt_time(self, frame):
        return (self._utt_start + frame * self._shift_samples) / self.model_rate

    def _feed(self, samples, arrival):
        """Model-rate samples into the current utterance, processed in blocks of exactly
        --chunk-length counted from the utterance start, each followed by an endpoint check.
        Cutting the blocks at fixed stream positions (not wherever the source's chunks happen to
        end) makes every decision a function of the audio alone: a microphone's block size, a
        resampler's delay or a dropped-in odd chunk cannot move an endpoint, and with it the start
        of the next utterance."""
        if samples.size:
            self._pending.append(samples)
            self._pending_len += samples.size
        results = []
        while self._pending_len >= self._interval:
            self._process(self._interval)
            result = self._endpointed(arrival)
            if result is not None:
                results.append(result)
        return results

    def _process(self, num_samples=None):
        """Features of the first `num_samples` pending samples (all of them when None), then
        decode every frame that became ready."""
        if self._pending_len:
            samples = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
            if num_samples is not None and num_samples < samples.size:
                samples, rest = samples[:num_samples], samples[num_samples:]
                self._pending, self._pending_len = [rest], rest.size
            else:
                self._pending, self._pending_len = [], 0
            self._utt_audio.append(samples)
            self._mfcc.accept_waveform(samples)
        self._decode_ready()

    def _decode_ready(self):
        ready = self._features.num_frames_ready
        if self._ivectors is not None:
            ready = min(ready, self._ivectors.num_frames_ready)
        if ready > self._decoded:
            if self._silence_weighting is not None:
                # as Kaldi's online2 loop: the traceback so far weighs the frames ready before they are decoded
                best = self.decoder.best_path() if self._decoded else None
                if best is not None:
                    self._silence_weighting.compute_current_traceback(best.alignment)
                self._ivectors.update_frame_weights(self._silence_weighting.delta_weights(ready))
            feats = self._features.get_frames(self._decoded, ready)
            if self._ivectors is None:
                loglikes = self.bundle.scorer.log_likelihoods(feats)
            else:
                loglikes = self.bundle.scorer.log_likelihoods(feats, self._ivectors.get_frames(self._decoded, ready))
            self.decoder.advance(loglikes)
            for part in self._phone_parts:
                part.advance(loglikes)
            self._decoded = ready
            if self.on_partial is not None:
                words = self.partial()
                if words != self._last_partial:
                    self._last_partial = words
                    self.on_partial(words)

    def partial(self):
        """The best word sequence of the current utterance so far (fillers included)."""
        best = self.decoder.best_path() if self._decoded else None
        return tuple(self.bundle.words.symbol(w) for w in best.words) if best else ()

    def _check_endpoint(self):
        if not self.opts.do_endpointing or self._decoded == 0:
            return None
        best = self.decoder.best_path()
        if best is None:
            return None
        trailing = trailing_silence_frames(best.alignment, self._silence_tid)
        if 0 < trailing < self._decoded and self.decoder.final_relative_cost() < math.inf:
            # The words reported are those of the best COMPLETE path (finalize adds final costs),
            # so the silence that ends the utterance must be on that path too. Kaldi counts it on
            # the partial path only; with a command grammar the two differ exactly when the
            # partial path has entered silence inside a word (a stop closure, "lef|t") that the
            # complete path still spells out: ending there cut the word in two and the rule,
            # calibrated on whole words, rejected both halves. Whether anything was said at all is
            # still judged on the partial path alone (a complete path may be forced to hold a word).
            complete = self.decoder.finalize()
            trailing = min(trailing, trailing_silence_frames(complete.alignment, self._silence_tid))
        return endpoint_detected(self._rules, self._decoded, trailing, self.frame_shift,
                                 self.decoder.final_relative_cost())

    def _finish_utterance(self, endpoint, arrival, restart=True):
        """Finalize: decide and make the result; restart after the decoded frames.

        Whether there was speech at all is judged as Kaldi's endpointing does, on the best path
        without final costs (a grammar that must end in a word would otherwise force one onto
        silence): for an utterance ended by an endpoint rule, and for the audio left over after
        one. A segment known to hold speech (a file, a VAD segment) is finalized as Kaldi's
        online2 tools finalize it, with final costs.

        An endpoint rule has also checked that the utterance can end here (its
        max-relative-cost); the end of the input, of a VAD segment or an overrun checks nothing.
        So audio left over after an endpoint that ends there is only taken as a word when a
        complete path is among the hypotheses the lattice keeps (final relative cost <=
        --lattice-beam): otherwise the audio stopped inside something the model cannot finish
        (noise taken for the onset of a word), and finalizing would force a word whose lattice
        holds no competitor, so it would be accepted with confidence 1.
        """
        result = None
        partial = self.decoder.best_path() if self._decoded else None
        by_rule = endpoint.startswith("rule")
        needs_speech = by_rule or self._after_endpoint
        if partial is not None and self._after_endpoint and not by_rule:
            relative_cost = self.decoder.final_relative_cost()
            if relative_cost > self.opts.lattice_beam:
                log.debug("%s: %s after an endpoint: no complete path within the lattice beam (final relative "
                          "cost %.2f > %g): no result", self.source_name, endpoint, relative_cost,
                          self.opts.lattice_beam)
                partial = None
        best = final = None  # (final: the decoder's finalize(), computed once; the rule's phone scores read it)
        if partial is not None:
            if not needs_speech:
                best = final = self.decoder.finalize()
            elif not self._silence_tid[partial.alignment].all():
                best = final = self.decoder.finalize()
                if self._silence_tid[best.alignment].all():
                    best = partial
        speech = np.flatnonzero(~self._silence_tid[best.alignment]) if best is not None else ()
        decision = None
        if len(speech):
            decision = recognize_decoder(self.decoder, self.bundle.words, self.bundle.fillers, self.rule,
                                         self.opts.lattice_beam, merge_words=self._merge_words,
                                         phone_scorer=self._phone_scorer, best=final)
            if needs_speech and decision.reason in ("no-path", "no-word"):
                decision = None  # a few noise frames that never completed a word: nothing was said
            elif decision.words is not None and set(decision.words) <= NON_COMMAND_WORDS:
                decision = None  # the grammar's silence word won: noise, not a word
        if decision is not None:
            end = self._utt_time(int(speech[-1]) + 1)
            waited = max(0.0, self._samples_in / self.model_rate - end)
            processing = time.monotonic() - arrival if arrival is not None else 0.0
            result = OnlineResult(
                source=self.source_name, text=decision.label if decision.accepted else REJECTED,
                accepted=decision.accepted, confidence=float(decision.confidence),
                start=self._utt_time(int(speech[0])), end=end, latency=waited + processing, endpoint=endpoint,
                reason=decision.reason, words=tuple(w for w in (decision.words or ()) if w != "<eps>"),
                num_frames=self._decoded, score=float(decision.score))
            self.results.append(result)
            log.info("%s", result.to_line())
        # Every decoded frame joins the speaker's CMVN stats, whatever was decided (a rejection included):
        # Kaldi's online2 tools take the adaptation state after every utterance, and train-nnet2
        # --online-cmvn carries every training utterance (apply_cmvn_online, its alignment's silence
        # weighted --online-cmvn-silence-weight). Silence frames weigh --cmvn-silence-weight: a training
        # clip is about half speech, a live stream mostly pauses.
        # Frames not decoded are the next utterance's and join with it.
        if self.opts.carry_cmvn and self._decoded:
            self._speaker = self._state_after(self._decoded)
        if restart:
            # The next utterance begins at the first frame not decoded: its samples go in again.
            consumed = self._decoded * self._shift_samples
            audio = self._utt_audio + self._pending
            rest = np.concatenate(audio)[consumed:] if audio else np.zeros(0, np.float32)
            self._start_utterance(self._utt_start + consumed)
            self._after_endpoint = True
            if rest.size and self._in_segment:
                self._pending, self._pending_len = [rest], rest.size
        return result

    def _state_after(self, num_frames):
        """The speaker state after this utterance's first `num_frames` frames joined it."""
        state = self._speaker.copy()
        if hasattr(self._features.source, "get_state"):  # the OnlineCmvn (absent for a model without CMVN)
            weights = cmvn_carry_weights(self.decoder, self._silence_tid, num_frames, self.opts.cmvn_silence_weight)
            state.cmvn = self._features.source.get_state(num_frames - 1, weights)
        if self._ivectors is not None:
            if hasattr(self._ivector_features.source, "get_state"):
                state.ivector_cmvn = self._ivector_features.source.get_state(num_frames - 1)
            state.ivector = self._ivectors.adaptation_state(num_frames)
        return state

    def _endpointed(self, arrival):
        """Finalize the utterance when an endpoint rule fires (the audio after its decoded frames
        becomes the next utterance's pending audio); the result, if it holds one."""
        rule = self._check_endpoint()
        return None if rule is None else self._finish_utterance(rule, arrival)

    def _end_segment(self, endpoint, arrival):
        """The segment's audio is complete (VAD end, overrun, end of input): decode it all, finalize."""
        if self._pending_len or self._utt_audio:
            self._process()
            self._mfcc.input_finished()
            self._decode_ready()
        result = self._finish_utterance(endpoint, arrival, restart=False)
        return [result] if result else []

    # ------------------------------------------------------------------ public API
    @property
    def cmvn_state(self):
        """The online-CMVN state the next utterance starts from (an `OnlineCmvnState`; for a model
        without CMVN one nothing reads): the global prior plus, with `carry_cmvn`, the frames of this
        speaker's finished utterances so far (decided or not; silence frames weigh --cmvn-silence-weight):
        `speaker_state.cmvn`."""
        return None if self._speaker.cmvn is None else self._speaker.cmvn.copy()

    @property
    def speaker_state(self):
        """The whole `SpeakerState` the next utterance starts from (CMVN and, for an i-vector model, the
        extractor's CMVN and the i-vector statistics)."""
        return self._speaker.copy()

    def new_stream(self, source_name=None, speaker_state=None):
        """Start another stream: times restart at zero. The speaker state carried so far (with
        `carry_cmvn`) is kept -- the next file of the same speaker -- unless `speaker_state`
        replaces it: `bundle.speaker_state()` (the priors alone) for a new speaker, or the
        `speaker_state` a recognizer had after another speaker's last file, to resume that speaker."""
        self.source_name = source_name or self.source_name
        if speaker_state is not None:
            self._speaker = speaker_state.copy()
        self._resampler = None
        self._next_input = 0
        self._samples_in = 0
        if self._vad is not None:
            self._vad = VadGate(self.model_rate, self.opts.vad_opts, self._vad._is_speech)
        self._in_segment = self._vad is None
        self._start_utterance(0)

    def accept(self, samples, start=None, arrival=None):
        """Take a chunk of audio at `sample_rate`; returns the results it completed."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if arrival is None:
            arrival = time.monotonic()
        results = []
        if start is not None and start != self._next_input:
            if start < self._next_input:
                raise InputError(f"{self.source_name}: chunk at sample {start} overlaps audio already received")
            results += self._gap(start, arrival)
        self._next_input += samples.size
        if self.sample_rate != self.model_rate:
            if self._resampler is None:
                self._resampler = StreamingResampler(self.sample_rate, self.model_rate)
            samples = self._resampler.accept(samples)
        results += self._accept_model_rate(samples, arrival)
        return results

    def _accept_model_rate(self, samples, arrival):
        self._samples_in += samples.size
        if self._vad is None:
            return self._feed(samples, arrival)
        results = []
        for event in self._vad.accept(samples):
            results += self._vad_event(event, arrival)
        return results

    def _vad_event(self, event, arrival):
        if event[0] == "start":
            self._in_segment = True
            self._start_utterance(event[1])
            return []
        if event[0] == "audio":
            return self._feed(np.asarray(event[2], dtype=np.float32), arrival) if self._in_segment else []
        results = self._end_segment("vad", arrival) if self._in_segment else []
        self._in_segment = False
        return results

    def _gap(self, start, arrival):
        """Samples were dropped (overrun): close the utterance and resume after the gap."""
        self.num_overruns += 1
        missing = start - self._next_input
        log.warning("%s: %d samples (%.3f s) were dropped before %.3f s (overrun); the current utterance ends there",
                    self.source_name, missing, missing / self.sample_rate, start / self.sample_rate)
        results = []
        if self._resampler is not None:
            rest = self._resampler.flush()
            self._samples_in += rest.size
            if self._in_segment and self._vad is None:
                self._pending.append(rest)
                self._pending_len += rest.size
        if self._in_segment:
            results += self._end_segment("overrun", arrival)
        self._resampler = None
        self._next_input = start
        self._samples_in = int(round(start * self.model_rate / self.sample_rate))
        if self._vad is not None:
            self._vad = VadGate(self.model_rate, self.opts.vad_opts, self._vad._is_speech)
            self._vad._pos = self._samples_in
            self._in_segment = False
        self._start_utterance(self._samples_in)
        return results

    def input_finished(self):
        """End of the stream: decode the last frames and finalize; returns the last results."""
        arrival = time.monotonic()
        results = []
        if self._resampler is not None:
            results += self._accept_model_rate(self._resampler.flush(), arrival)
            self._resampler = None
        if self._vad is not None:
            for event in self._vad.finish():
                results += self._vad_event(event, arrival)
            return results
        return results + self._end_segment("end-of-input", arrival)


def recognize_stream(recognizer, source, emit=None):
    """Run `source` (an AudioSource) through `recognizer`; call `emit(result)` for each result.

    Returns the list of results. Overruns are logged and counted in `recognizer.num_overruns`.
    """
    results = []
    realtime = getattr(source, "realtime", False)
    for chunk in source.chunks():
        for result in recognizer.accept(chunk.samples, chunk.start, chunk.arrival if realtime else None):
            results.append(result)
            if emit:
                emit(result)
    for result in recognizer.input_finished():
        results.append(result)
        if emit:
            emit(result)
    if source.overruns:
        log.warning("%s: %d overrun(s): %d samples (%.2f s) dropped because recognition fell behind capture",
                    source.name, source.overruns, source.dropped_samples, source.dropped_samples / source.sample_rate)
    return results


__all__ = ["OnlineDecodingOptions", "OnlineResult", "OnlineRecognizer", "SpeakerState", "recognize_stream"]
