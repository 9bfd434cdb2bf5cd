"""Endpoint rules against Kaldi's OnlineEndpointConfig: defaults, option names, hand-worked decisions."""

import math

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.hmm import silence_tid_mask
from kaldilite.io.config import read_config
from kaldilite.online.endpoint import (OnlineEndpointConfig, OnlineEndpointRule, endpoint_detected,
                                       trailing_silence_frames)

SHIFT = 0.01


def test_defaults_are_kaldis_five_rules():
    # src/online2/online-endpoint.h: rule1(false,5,inf,0) rule2(true,0.5,2,0) rule3(true,1,8,0)
    # rule4(true,2,inf,0) rule5(false,0,inf,20)
    assert OnlineEndpointConfig().rules() == [
        OnlineEndpointRule(False, 5.0, math.inf, 0.0), OnlineEndpointRule(True, 0.5, 2.0, 0.0),
        OnlineEndpointRule(True, 1.0, 8.0, 0.0), OnlineEndpointRule(True, 2.0, math.inf, 0.0),
        OnlineEndpointRule(False, 0.0, math.inf, 20.0)]


def test_a_kaldi_online_conf_reads_with_kaldis_option_names(tmp_path):
    conf = tmp_path / "online.conf"
    conf.write_text("--endpoint.silence-phones=1:2:3:4:5\n--endpoint.rule2.min-trailing-silence=0.25\n"
                    "--endpoint.rule3.max-relative-cost=inf\n--endpoint.rule4.must-contain-nonsilence=false\n")
    config = read_config(conf, OnlineEndpointConfig)
    assert config.silence_phone_list() == [1, 2, 3, 4, 5]
    assert config.rules()[1].min_trailing_silence == 0.25
    assert config.rules()[2].max_relative_cost == math.inf
    assert config.rules()[3].must_contain_nonsilence is False


def test_a_misspelt_rule_option_is_refused_naming_the_line(tmp_path):
    conf = tmp_path / "online.conf"
    conf.write_text("--endpoint.rule2.min-trailing-silense=0.2\n")
    with pytest.raises(InputError, match=r"online.conf:1.*did you mean --endpoint.rule2.min-trailing-silence"):
        read_config(conf, OnlineEndpointConfig)


@pytest.mark.parametrize("frames, silence, cost, expected", [
    (600, 500, math.inf, "rule1"),   # 5 s of silence after 1 s of speech: rule1 needs no speech
    (300, 300, math.inf, None),      # 3 s of pure silence: rule1 needs 5 s, the others need speech
    (500, 500, 0.0, "rule1"),        # 5 s of pure silence
    (100, 50, 1.9, "rule2"),         # 0.5 s silence, good final state
    (100, 50, 2.1, None),            # ... final state slightly too costly for rule2; rule3 needs 1 s
    (200, 100, 7.9, "rule3"),        # 1 s silence, OK final state
    (200, 100, 8.1, None),
    (300, 200, math.inf, "rule4"),   # 2 s silence after speech, no final state at all
    (2000, 0, math.inf, "rule5"),    # 20 s of speech
    (1999, 0, math.inf, None),
])
def test_endpoint_decisions_follow_kaldis_disjunction(frames, silence, cost, expected):
    assert endpoint_detected(OnlineEndpointConfig(), frames, silence, SHIFT, cost) == expected


def test_contains_nonsilence_means_decoded_length_exceeds_trailing_silence():
    rule_needs_speech = [OnlineEndpointRule(True, 0.0, math.inf, 0.0)]
    assert endpoint_detected(rule_needs_speech, 10, 10, SHIFT, 0.0) is None
    assert endpoint_detected(rule_needs_speech, 11, 10, SHIFT, 0.0) == "rule1"


def test_trailing_silence_counts_back_to_the_last_non_silence_frame():
    tid_to_phone = np.array([0, 1, 1, 2, 2, 3])      # phones 1 and 3 are silence
    silence = silence_tid_mask(tid_to_phone, [1, 3])
    alignment = np.array([1, 3, 4, 2, 5, 1, 2])       # phones 1 2 2 1 3 1 1
    assert trailing_silence_frames(alignment, silence) == 4
    assert trailing_silence_frames(alignment[:3], silence) == 0
    assert trailing_silence_frames(np.array([1, 5]), silence) == 2
    assert trailing_silence_frames(np.array([], dtype=int), silence_tid_mask(tid_to_phone, [1])) == 0


def test_silence_phones_must_be_integers():
    with pytest.raises(InputError, match="silence-phones"):
        OnlineEndpointConfig(silence_phones="SIL:1").silence_phone_list()


def test_phone_lists_split_as_kaldi_splits_each_option():
    """One parser (phone_id_list) for both phone-list options, with each one's Kaldi separators:
    --endpoint.silence-phones splits on ':' only (online-endpoint.cc), --ivector-silence-weighting.silence-phones
    on ':' or ',' (OnlineSilenceWeighting); a non-integer names the option (Kaldi's rule for each field:
    tests/io/test_int_options.py)."""
    from kaldilite.online.recognizer import OnlineDecodingOptions

    assert OnlineDecodingOptions(ivector_silence_phones="1,2:3").ivector_silence_phone_list() == [1, 2, 3]
    assert OnlineDecodingOptions().ivector_silence_phone_list() == []
    # each message names the separators its option takes (the i-vector one: commas too)
    with pytest.raises(InputError) as refused:
        OnlineDecodingOptions(ivector_silence_phones="1:x").ivector_silence_phone_list()
    assert str(refused.value) == ("--ivector-silence-weighting.silence-phones='1:x': expected colon- or comma-separated "
                                  "integer phone ids (e.g. 1:2:3:4:5 or 1,2,3,4,5)")
    with pytest.raises(InputError) as refused:
        OnlineEndpointConfig(silence_phones="1,2").silence_phone_list()
    assert str(refused.value) == ("--endpoint.silence-phones='1,2': expected colon-separated integer phone ids "
                                  "(e.g. 1:2:3:4:5)")
