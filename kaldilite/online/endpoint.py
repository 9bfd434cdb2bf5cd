"""Endpointing: when to stop decoding the current utterance, after Kaldi's online2 rules.

Follows src/online2/online-endpoint.{h,cc} (OnlineEndpointConfig, EndpointDetected,
TrailingSilenceLength). The decision is an OR of five rules; rule k fires when

    (the best path contains non-silence  or  not ruleK.must-contain-nonsilence)
    and trailing silence  >= ruleK.min-trailing-silence     (seconds)
    and relative cost     <= ruleK.max-relative-cost        (decoder.final_relative_cost())
    and utterance length  >= ruleK.min-utterance-length     (seconds decoded so far)

Trailing silence is the number of frames at the end of the best partial path (no final costs)
whose phone is in --endpoint.silence-phones; "contains non-silence" is, as in Kaldi,
"utterance length > trailing silence". Options keep Kaldi's names
(`--endpoint.rule2.min-trailing-silence=0.5`) so a Kaldi online.conf reads unchanged, and
Kaldi's defaults; conf/online.conf tunes them for short commands.
"""

import dataclasses
import math

import numpy as np

from kaldilite.errors import InputError

# Kaldi's OnlineEndpointConfig defaults: (must_contain_nonsilence, min_trailing_silence,
# max_relative_cost, min_utterance_length) for rule1..rule5.
KALDI_RULE_DEFAULTS = (
    (False, 5.0, math.inf, 0.0),   # 5 s of silence, even if nothing was decoded
    (True, 0.5, 2.0, 0.0),         # 0.5 s after speech when a final state is good
    (True, 1.0, 8.0, 0.0),         # 1 s after speech when a final state is OK
    (True, 2.0, math.inf, 0.0),    # 2 s after speech whatever the final state
    (False, 0.0, math.inf, 20.0),  # 20 s of utterance, whatever else
)
_RULE_FIELDS = ("must_contain_nonsilence", "min_trailing_silence", "max_relative_cost", "min_utterance_length")
_RULE_HELP = {
    "must_contain_nonsilence": "If true, this rule needs non-silence in the best-path traceback",
    "min_trailing_silence": "This rule needs trailing silence (seconds) >= this value",
    "max_relative_cost": "This rule needs the relative cost of final states <= this value",
    "min_utterance_length": "This rule needs the utterance length (seconds) >= this value",
}


@dataclasses.dataclass(frozen=True)
class OnlineEndpointRule:
    """One conjunction of the endpoint rule (Kaldi's OnlineEndpointRule)."""

    must_contain_nonsilence: bool = True
    min_trailing_silence: float = 1.0
    max_relative_cost: float = math.inf
    min_utterance_length: float = 0.0

    def activated(self, trailing_silence, relative_cost, utterance_length):
        contains_nonsilence = utterance_length > trailing_silence
        return ((contains_nonsilence or not self.must_contain_nonsilence)
                and trailing_silence >= self.min_trailing_silence
                and relative_cost <= self.max_relative_cost
                and utterance_length >= self.min_utterance_length)


def _config_fields():
    fields = [("silence_phones", str, dataclasses.field(default="", metadata={
        "option": "endpoint.silence-phones",
        "help": "Colon-separated phone ids counted as silence by endpointing (default: the bundle's "
                "phones/silence.csl)"}))]
    for k, defaults in enumerate(KALDI_RULE_DEFAULTS, start=1):
        for name, default in zip(_RULE_FIELDS, defaults):
            kind = bool if name == "must_contain_nonsilence" else float
            fields.append((f"rule{k}_{name}", kind, dataclasses.field(default=default, metadata={
                "option": f"endpoint.rule{k}.{name.replace('_', '-')}", "help": f"rule{k}: {_RULE_HELP[name]}"})))
    return fields


def _rules(self):
    return [OnlineEndpointRule(*(getattr(self, f"rule{k}_{name}") for name in _RULE_FIELDS))
            for k in range(1, len(KALDI_RULE_DEFAULTS) + 1)]


def phone_id_list(text, option, separators=":"):
    """A phone-list option such as --endpoint.silence-phones=1:2:3 as integer ids, by Kaldi's rule
    (SplitStringToIntegers(text, separators, false): an empty field is refused, as in online-endpoint.cc;
    OnlineSilenceWeighting ignores the failure and weights no phone, which we refuse too); a bad
    field is a one-line error naming `option`."""
    from kaldilite.io.config import split_integers

    try:
        return split_integers(text, separators)
    except ValueError:
        names = {":": "colon", ",": "comma"}  # the message names the separators this option takes
        kinds = "- or ".join(names.get(s, repr(s)) for s in separators)
        examples = " or ".join(s.join("12345") for s in separators)
        raise InputError(f"--{option}={text!r}: expected {kinds}-separated integer phone ids (e.g. {examples})") from None


def _silence_phone_list(self):
    phones = phone_id_list(self.silence_phones, "endpoint.silence-phones")
    if len(set(phones)) != len(phones):
        raise InputError(f"--endpoint.silence-phones={self.silence_phones}: has duplicates")
    return phones


OnlineEndpointConfig = dataclasses.make_dataclass(
    "OnlineEndpointConfig", _config_fields(),
    namespace={"rules": _rules, "silence_phone_list": _silence_phone_list,
               "__doc__": "Kaldi's OnlineEndpointConfig: `--endpoint.silence-phones` and five rules "
                          "`--endpoint.ruleK.{must-contain-nonsilence,min-trailing-silence,max-relative-cost,"
                          "min-utterance-length}` (K = 1..5), with Kaldi's defaults."})
OnlineEndpointConfig.__module__ = __name__


def endpoint_detected(config, num_frames_decoded, trailing_silence_frames, frame_shift_seconds, relative_cost):
    """The name of the first rule that fires ('rule1'..'rule5'), or None (Kaldi's EndpointDetected).

    `config`: an OnlineEndpointConfig, or its `rules()` (a caller checking every chunk keeps them).
    """
    if trailing_silence_frames > num_frames_decoded:
        raise ValueError(f"{trailing_silence_frames} trailing silence frames of {num_frames_decoded} decoded")
    utterance_length = num_frames_decoded * frame_shift_seconds
    trailing_silence = trailing_silence_frames * frame_shift_seconds
    rules = config.rules() if hasattr(config, "rules") else config
    for k, rule in enumerate(rules, start=1):
        if rule.activated(trailing_silence, relative_cost, utterance_length):
            return f"rule{k}"
    return None


def cmvn_carry_weights(decoder, is_silence_tid, num_frames, silence_weight):
    """Per-frame weights with which an utterance's first `num_frames` frames join its speaker's carried
    online-CMVN stats (`kaldilite.feat.cmvn.carry_speaker_stats`): `silence_weight` on the frames the
    decoder's best partial path (`best_path`, final costs not added) puts on silence phones
    (`is_silence_tid`, from `kaldilite.hmm.silence_tid_mask`), 1 elsewhere and past the path's end; None (every
    frame 1) when `silence_weight` is 1 or no token survived. The one rule of the live carry (decode-online's
    `OnlineRecognizer`) and of decode-commands' calibration decodes; the weighting is ours, not Kaldi's
    (`kaldilite.feat.cmvn.silence_weights`)."""
    from kaldilite.feat.cmvn import silence_weights

    best = decoder.best_path() if silence_weight != 1.0 else None
    if best is None:
        return None
    silence = np.zeros(num_frames, dtype=bool)
    alignment = np.asarray(best.alignment[:num_frames], dtype=np.int64)
    silence[:len(alignment)] = is_silence_tid[alignment]
    return silence_weights(silence, silence_weight)


def trailing_silence_frames(alignment, is_silence_tid):
    """Frames at the end of `alignment` (transition-ids, one per frame) whose phone is silence
    (Kaldi's TrailingSilenceLength, counting back until the first non-silence frame);
    `is_silence_tid` from `kaldilite.hmm.silence_tid_mask`."""
    alignment = np.asarray(alignment, dtype=np.int64)
    speech = np.flatnonzero(~is_silence_tid[alignment])
    return int(alignment.size if speech.size == 0 else alignment.size - 1 - speech[-1])


__all__ = ["OnlineEndpointConfig", "OnlineEndpointRule", "endpoint_detected",
           "trailing_silence_frames", "cmvn_carry_weights", "phone_id_list",
           "KALDI_RULE_DEFAULTS"]
