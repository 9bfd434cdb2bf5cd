"""The endpoint check counts trailing silence on the path whose words are reported.

The live commands system (Speech Commands dev, nnet2 bundle) ended "left" at the closure before
its final /t/: the partial best path (no final costs) was in silence for 0.1 s, rule2 fired, and
the complete path that was then decided still spelled "left" up to the last frame; the word was
cut in two, the first half rejected and the rest accepted as "up". Here the decoder is replaced
by one whose paths are given, so each case is computed by hand from the rule's definition.
"""

import dataclasses

import numpy as np
import pytest


@dataclasses.dataclass
class _Path:
    alignment: np.ndarray
    words: tuple = ()


class _Decoder:
    """The three decoder queries the endpoint check makes, with fixed answers."""

    def __init__(self, partial, complete, relative_cost=0.0):
        self.partial, self.complete, self.relative_cost = partial, complete, relative_cost

    def best_path(self):
        return _Path(self.partial)

    def finalize(self):
        return _Path(self.complete)

    def final_relative_cost(self):
        return self.relative_cost


@pytest.fixture
def recognizer(commands_bundle):
    from kaldilite.online.recognizer import OnlineRecognizer

    # Kaldi's rule1 (5 s of silence whatever came before): with conf/online.conf's 1 s, rule1 (checked
    # first) would end the utterances below as soon as rule4 (1 s) does
    endpoint = dataclasses.replace(commands_bundle.online_opts.endpoint, rule1_min_trailing_silence=5.0)
    rec = OnlineRecognizer(commands_bundle, dataclasses.replace(commands_bundle.online_opts, endpoint=endpoint))
    silence = np.flatnonzero(rec._silence_tid[1:]) + 1
    speech = np.flatnonzero(~rec._silence_tid)
    return rec, int(silence[0]), int(speech[0])


def _check(rec, partial, complete, relative_cost=0.0):
    rec.decoder = _Decoder(np.asarray(partial), np.asarray(complete), relative_cost)
    rec._decoded = len(partial)
    return rec._check_endpoint()


def _rule2_frames(rec):
    rule2 = rec.opts.endpoint.rules()[1]
    return int(np.ceil(rule2.min_trailing_silence / rec.frame_shift - 1e-9))


def test_no_endpoint_while_the_complete_path_is_still_inside_the_word(recognizer):
    rec, sil, sp = recognizer
    n = _rule2_frames(rec) + 5
    # Partial path: word, then n frames of silence (a stop closure); complete path: the word to the end.
    assert _check(rec, [sil] * 20 + [sp] * 30 + [sil] * n, [sil] * 20 + [sp] * (30 + n)) is None


def test_endpoint_when_both_paths_end_in_silence(recognizer):
    rec, sil, sp = recognizer
    n = _rule2_frames(rec)
    assert _check(rec, [sil] * 20 + [sp] * 30 + [sil] * n, [sil] * 20 + [sp] * 30 + [sil] * n) == "rule2"
    # Fewer trailing frames on the complete path than rule2 needs: not yet.
    assert _check(rec, [sil] * 20 + [sp] * 30 + [sil] * n, [sil] * 20 + [sp] * 31 + [sil] * (n - 1)) is None


def test_silence_alone_is_not_an_endpoint_even_if_the_complete_path_must_hold_a_word(recognizer):
    rec, sil, sp = recognizer
    n = _rule2_frames(rec)
    # Only silence decoded; the grammar forces a word onto the complete path: nothing was said yet.
    assert _check(rec, [sil] * (30 + n), [sp] * 30 + [sil] * n) is None


def test_no_complete_path_falls_back_to_kaldis_partial_path_rule(recognizer):
    rec, sil, sp = recognizer
    n = _rule2_frames(rec)
    # No final state active (relative cost inf): rule2/3 need a finite cost, rule4 only silence length.
    rule4 = int(np.ceil(rec.opts.endpoint.rules()[3].min_trailing_silence / rec.frame_shift - 1e-9))
    assert _check(rec, [sp] * 30 + [sil] * rule4, [sp] * (30 + rule4), relative_cost=np.inf) == "rule4"
    assert _check(rec, [sp] * 30 + [sil] * n, [sp] * (30 + n), relative_cost=np.inf) is None
