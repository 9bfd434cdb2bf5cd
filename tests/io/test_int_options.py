"""Integer and integer-list options read by Kaldi's rule (kaldilite.io.config.split_integers,
parse_value, iteration_list), and the options that use them: --endpoint.silence-phones,
--ivector-silence-weighting.silence-phones, --skip-dims, the training verbs' iteration lists.

The independent answer is Kaldi's own code path re-done here over the C library: SplitStringToIntegers
and ConvertStringToInteger (src/util/text-utils.h) call strtoll(field, &end, 10) and accept a field
when strtoll read something and stopped at its end (ConvertStringToInteger: after trailing white
space), and the value fits the int type; SplitStringToVector (text-utils.cc) splits at any delimiter
character and drops empty fields only when asked to.
"""

import ctypes
import random

import pytest

from kaldilite.errors import InputError
from kaldilite.io.config import iteration_list, parse_value, split_integers

_LIBC = ctypes.CDLL(None)
_LIBC.strtoll.restype = ctypes.c_longlong
_LIBC.strtoll.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
_C_SPACE = b" \t\n\v\f\r"  # isspace() in the C locale


def strtoll(field):
    """(value, bytes read, the rest after them) of C's strtoll(field, &end, 10)."""
    buffer = ctypes.create_string_buffer(field.encode())
    end = ctypes.c_void_p()
    value = _LIBC.strtoll(ctypes.addressof(buffer), ctypes.byref(end), 10)
    read = end.value - ctypes.addressof(buffer)
    return value, read, buffer.raw[read:-1]


def kaldi_split_string_to_vector(full, delim, omit_empty_strings):
    """SplitStringToVector, step for step (find_first_of from `start`)."""
    out, start, end = [], 0, len(full)
    found = 0
    while found is not None:
        hits = [i for i in range(start, end) if full[i] in delim]
        found = hits[0] if hits else None
        if not omit_empty_strings or (found != start and start != end):
            out.append(full[start:found])
        if found is not None:
            start = found + 1
    return out


def kaldi_split_string_to_integers(full, delim, omit_empty_strings):
    """SplitStringToIntegers<int32>: the list, or None where Kaldi returns false."""
    if full == "":
        return []
    out = []
    for field in kaldi_split_string_to_vector(full, delim, omit_empty_strings):
        value, read, rest = strtoll(field)
        if read == 0 or rest != b"" or not -2 ** 31 <= value < 2 ** 31:
            return None
        out.append(value)
    return out


def kaldi_convert_string_to_integer(text):
    """ConvertStringToInteger<int64> (no range limit below strtoll's own): the value, or None."""
    value, read, rest = strtoll(text)
    if read == 0 or rest.lstrip(_C_SPACE) != b"":
        return None
    return value


def ours(text, delim, omit):
    try:
        return split_integers(text, delim, omit)
    except ValueError:
        return None


@pytest.mark.parametrize("text, delim, omit, expected", [
    ("1:2:3", ":", False, [1, 2, 3]),
    ("", ":", False, []),
    ("+4:-5", ":", False, [4, -5]),             # strtoll takes a sign
    (" 3:\t7", ":", False, [3, 7]),             # ... and white space before the digits
    ("3 :7", ":", False, None),                 # not after them
    ("1_0", ":", False, None),                  # Python's int() reads 10
    ("\u0663", ":", False, None),               # Arabic-Indic three: int() reads 3
    ("1::2", ":", False, None),                 # an empty field, as online-endpoint.cc parses it
    ("1:2:", ":", False, None),
    (" ", ":", False, None),
    ("1::2:", ":", True, [1, 2]),               # dropped when asked
    ("1,2:3", ":,", False, [1, 2, 3]),          # any of the delimiters
    ("2147483647:-2147483648", ":", False, [2 ** 31 - 1, -2 ** 31]),
    ("2147483648", ":", False, None),           # int32 overflows
    ("99999999999999999999", ":", False, None),
    ("0x10", ":", False, None),
    ("007", ":", False, [7]),
    ("++1", ":", False, None),
])
def test_split_integers_is_kaldis_split_string_to_integers(text, delim, omit, expected):
    assert kaldi_split_string_to_integers(text, delim, omit) == expected  # the hand answer is Kaldi's
    assert ours(text, delim, omit) == expected


def test_split_integers_agrees_with_kaldis_rule_on_random_strings():
    tokens = ["1", "23", "-4", "+5", "0", "007", " ", "\t", "\n", "_", "\u0663", ":", ",", "x", "-", "+",
              "2147483648", "-2147483649", "2147483647", "1e3", ".", "\u00a0"]
    rng = random.Random(0)
    accepted = refused = 0
    for _ in range(3000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 5)))
        for delim, omit in ((":", False), (":,", False), (" \t\n", True)):
            expected = kaldi_split_string_to_integers(text, delim, omit)
            assert ours(text, delim, omit) == expected, (text, delim, omit)
            accepted += expected is not None
            refused += expected is None
    assert accepted > 1000 and refused > 1000  # both sides of the rule exercised


@pytest.mark.parametrize("text", ["12", "-3", "+4", " 5", "6 ", "\t7\n", "1_0", "\u0663", "", "x", "0x1", "1.0",
                                  "3 4", "+-1"])
def test_integer_option_values_follow_convert_string_to_integer(text):
    try:
        value = parse_value(text, int, "num-iters", "conf/x.conf:1")
    except InputError as exc:
        assert str(exc) == f"conf/x.conf:1: bad value {text.strip()!r} for --num-iters: expected an integer"
        value = None
    assert value == kaldi_convert_string_to_integer(text)


def test_phone_list_options_refuse_what_kaldi_refuses():
    """--endpoint.silence-phones (online-endpoint.cc) and --ivector-silence-weighting.silence-phones
    (OnlineSilenceWeighting, ':' or ','): SplitStringToIntegers with empty fields refused."""
    from kaldilite.online.endpoint import OnlineEndpointConfig
    from kaldilite.online.recognizer import OnlineDecodingOptions

    assert OnlineEndpointConfig(silence_phones="+1: 2").silence_phone_list() == [1, 2]
    assert OnlineDecodingOptions(ivector_silence_phones="1,2:3").ivector_silence_phone_list() == [1, 2, 3]
    for bad in ("1_0", "\u0663", "1:2:", "1::2", "1 "):
        with pytest.raises(InputError, match="expected colon-separated integer phone ids"):
            OnlineEndpointConfig(silence_phones=bad).silence_phone_list()
        with pytest.raises(InputError, match="expected colon- or comma-separated"):
            OnlineDecodingOptions(ivector_silence_phones=bad).ivector_silence_phone_list()


def test_skip_dims_follow_kaldis_online_cmvn_rule():
    from kaldilite.feat.cmvn import OnlineCmvnOptions

    assert OnlineCmvnOptions(skip_dims="0:+3").skip_dim_list() == [0, 3]
    assert OnlineCmvnOptions().skip_dim_list() == []
    for bad in ("1_2", "\u0663", "1::2", "1:"):
        with pytest.raises(InputError) as refused:
            OnlineCmvnOptions(skip_dims=bad).skip_dim_list()
        assert str(refused.value) == f"--skip-dims={bad!r}: expected a colon-separated list of integers"


def test_iteration_lists_are_words_of_integers():
    assert iteration_list("10 20  30 ", "realign-iters") == (10, 20, 30)
    assert iteration_list("", "realign-iters") == ()
    for bad in ("10,20", "1_0", "\u0663"):
        with pytest.raises(InputError) as refused:
            iteration_list(bad, "fmllr-iters")
        assert str(refused.value) == (f"--fmllr-iters={bad!r}: expected space-separated iteration numbers "
                                      "(e.g. '10 20 30')")


@pytest.mark.parametrize("verb", ["train-mono", "train-deltas", "train-lda-mllt", "train-sat"])
def test_training_verbs_refuse_a_bad_iteration_list_in_one_line(verb, tmp_path):
    """Each verb's --realign-iters goes through iteration_list before any work (train-mono and
    train-lda-mllt raised a ValueError traceback)."""
    from click.testing import CliRunner

    from kaldilite.cli import cli

    dirs = [str(tmp_path / d) for d in ("data", "lang", "ali", "exp")]
    for d in dirs[:3]:
        (tmp_path / d.rsplit("/", 1)[1]).mkdir()
    args = [verb, "--realign-iters", "10,20"]
    args += dirs[:2] + [dirs[3]] if verb == "train-mono" else ["100", "1000"] + dirs
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == ("--realign-iters='10,20': expected space-separated iteration numbers "
                                     "(e.g. '10 20 30')")


@pytest.mark.parametrize("opts, context", [
    ("--left-context=3 --right-context=2", (3, 2)), ("--right-context=+0", (4, 0)), ("", (4, 4)),
    ("--left-context=1_0", None), ("--left-context=\u0663", None), ("--right-context=2.0", None),
])
def test_splice_opts_contexts_are_integers_by_kaldis_rule(opts, context):
    """train-lda-mllt's --splice-opts are splice-feats' integer options (ConvertStringToInteger; its
    defaults 4 and 4): int() read '1_0' as 10 and Arabic-Indic 3 as 3."""
    import click

    from kaldilite.cli.transform import _splice_context

    if context is not None:
        assert _splice_context(opts) == context
        return
    with pytest.raises(click.BadParameter, match="expected an integer"):
        _splice_context(opts)
